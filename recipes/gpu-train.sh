#!/usr/bin/env bash
# Trains general-8a (recipes/general-8a.toml, grown from general-7) and/or general-8b
# (recipes/general-8b.toml, wider, from scratch) on a lent GPU machine (the `device` tool: one H200,
# 16 cores, a bare image with torch; 15 minutes of device time a session), within SECONDS for the
# whole command, each run's learning-rate schedule fitted to its time (`edgeasr train --fit-schedule`).
#
#   (here)  recipes/gpu-prepare.sh                                 # work/carry and .whl
#   (there) DIAG=1 bash recipes/gpu-train.sh 420                   # carry: work/carry, .whl
#
# DIAG=1 first runs bench/train_step.py (at most 100 s) and trains in what it found faster: bf16
# unless fp32 is 15% faster, cuDNN autotuning only where it is 23% faster. One run gets 14 data workers, two get 7 each.
# What it writes to $OUT (at most 8 files: the tool's limit): run.log (the machine and every step),
# train_step.json (DIAG), <run>.log, <run>-best.pt (copied whenever the dev check improves, so a run
# cut off at the command's limit still brings its best back), <run>-final.pt (the last weights,
# without the optimizer), reports.json. Nothing here needs edgeasr installed: it runs from src/.
#
# Measured: bench/results/gpu-h200/README.md.
set -uo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)
BUDGET="${1:-420}"
shift || true
RUNS_WANTED="${*:-8a 8b}"
OUT="${OUT:-work/gpu-out}"
RUNS=/tmp/edgeasr-runs
mkdir -p "$OUT" "$RUNS" /tmp/edgeasr-recipes
LOG="$OUT/run.log"
say() { echo "[gpu-train $(date +%H:%M:%S)] $*" | tee -a "$LOG"; }

if [ -d .whl ]; then  # the packages the machine's image lacks, carried as wheels
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    >> "$LOG" 2>&1 || { say "the carried wheels did not install"; exit 1; }
fi
export PYTHONPATH="/tmp/site:$PWD/src" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv >> "$LOG" 2>&1
python3 -c "import torch, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'numpy', numpy.__version__)" \
  >> "$LOG" 2>&1
say "cores: $(nproc); runs: $RUNS_WANTED; budget ${BUDGET}s"

say "unpack"
python3 recipes/carry.py unpack work/carry --out work/carried --workers "$(nproc)" >> "$LOG" 2>&1 \
  || { say "unpack failed"; exit 1; }
say "unpacked: $(du -sh work/carried | cut -f1)"

N=$(echo $RUNS_WANTED | wc -w)
WORKERS=$(( 14 / N ))
PRECISION=auto
BENCH=0
if [ "${DIAG:-0}" = 1 ]; then
  say "diagnose a step"
  timeout 100 python3 bench/train_step.py --recipe recipes/general-8a.toml --manifest work/carried/check3.jsonl \
    --workers "7,14" --out "$OUT/train_step.json" >> "$LOG" 2>&1
  read -r PRECISION BENCH < <(python3 - "$OUT/train_step.json" <<'EOF'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception:
    print("auto 0"); raise SystemExit
t = {(p, b): r.get(f"ms_encoder_fwd_bwd_{p}_cudnn_benchmark_{b}") for p in ("bf16", "fp32") for b in (False, True)}
if any(v is None for v in t.values()):
    print("auto 0"); raise SystemExit
# bf16 unless fp32 is clearly faster; autotuning only where it clearly pays, since it benchmarks
# every new shape once (the first epoch of a bucketed run meets a few dozen)
p = "fp32" if t[("fp32", False)] < 0.85 * t[("bf16", False)] else "bf16"
b = t[(p, True)] < 0.77 * t[(p, False)]
print(p, int(b))
EOF
)
  say "train in $PRECISION, cudnn.benchmark=$BENCH"
fi

ELAPSED=$(( $(date +%s) - START ))
MINUTES=$(python3 -c "print(round(max(0.5, ($BUDGET - $ELAPSED - 45) / 60), 2))")
say "train $RUNS_WANTED for $MINUTES minutes, $WORKERS data workers each"
PIDS=()
for r in $RUNS_WANTED; do
  sed -e "s/^num_workers = .*/num_workers = $WORKERS/" -e "s/^precision = .*/precision = \"$PRECISION\"/" \
    "recipes/general-$r.toml" > "/tmp/edgeasr-recipes/general-$r.toml"
  INIT=()
  [ "$r" = 8a ] && INIT=(--init recipes/checkpoints/general-7.pt)
  python3 -c "import sys, torch; torch.backends.cudnn.benchmark = sys.argv[1] == '1'; from edgeasr.cli import main; sys.exit(main(sys.argv[2:]))" \
    "$BENCH" train --recipe "/tmp/edgeasr-recipes/general-$r.toml" "${INIT[@]}" --out "$RUNS/$r" \
    --max-minutes "$MINUTES" --fit-schedule > "$OUT/$r.log" 2>&1 &
  PIDS+=($!)
done
copy_best() {
  for r in $RUNS_WANTED; do
    [ -f "$RUNS/$r/best.pt" ] && { [ "$RUNS/$r/best.pt" -nt "$OUT/$r-best.pt" ] || [ ! -f "$OUT/$r-best.pt" ]; } \
      && cp "$RUNS/$r/best.pt" "$OUT/$r-best.pt"
  done
}
running() { for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
while running; do
  sleep 10
  copy_best
done
for p in "${PIDS[@]}"; do wait "$p"; say "pid $p exit $?"; done
copy_best

python3 - "$RUNS" "$OUT" $RUNS_WANTED >> "$LOG" 2>&1 <<'EOF'
import json, sys
from pathlib import Path
import torch
runs, out = Path(sys.argv[1]), Path(sys.argv[2])
reports = {}
for r in sys.argv[3:]:
    last = runs / r / "last.pt"
    if last.exists():
        ckpt = torch.load(last, map_location="cpu", weights_only=True)
        keep = {k: v for k, v in ckpt.items() if k not in ("optimizer", "scheduler", "history", "epoch", "epoch_pos")}
        torch.save(keep, out / f"{r}-final.pt")
    rep = runs / r / "report.json"
    if rep.exists():
        reports[r] = json.loads(rep.read_text())
        h = reports[r]
        print(r, "steps", h["steps"], "horizon", h.get("horizon_steps"), "seconds", h["seconds_this_run"],
              "dev", [(d["step"], round(100 * d["wer"], 2), round(100 * d["cer"], 2)) for d in h["history"]["dev"]])
(out / "reports.json").write_text(json.dumps(reports, indent=1))
EOF
say "done in $(( $(date +%s) - START )) s"
cat "$LOG"
ls -la "$OUT"
