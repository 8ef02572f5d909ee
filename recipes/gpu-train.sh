#!/usr/bin/env bash
# Trains recipes/general-8a.toml and recipes/general-8b.toml side by side on a lent GPU machine (the
# `device` tool: one H200, 16 cores, a bare image with torch; 15 minutes of device time a session),
# each for MINUTES with its learning-rate schedule fitted to that time (`edgeasr train --fit-schedule`).
#
#   (here)  python recipes/carry.py pack --out work/carry ...      # recipes/general-8a.toml: what
#           python3 -m pip download ... -d .whl soundfile cffi pycparser soxr jiwer rapidfuzz
#   (there) bash recipes/gpu-train.sh 6                            # carry: work/carry, .whl
#
# What it writes to $OUT (at most 8 files: the tool's limit): run.log (the machine and every step),
# 8a.log and 8b.log (the trainers' output), 8a-best.pt and 8b-best.pt (copied whenever the dev check
# improves, so a run cut off at the command's limit still brings its best back), 8a-final.pt and
# 8b-final.pt (the last weights, without the optimizer), reports.json (both report.json files).
# Nothing here needs edgeasr installed: it runs from src/ under the machine's own python3.
set -uo pipefail
cd "$(dirname "$0")/.."
MINUTES="${1:-6}"
OUT="${OUT:-work/gpu-out}"
RUNS=/tmp/edgeasr-runs
mkdir -p "$OUT" "$RUNS"
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
say "cores: $(nproc)"

say "unpack"
python3 recipes/carry.py unpack work/carry --out work/carried --workers "$(nproc)" >> "$LOG" 2>&1 \
  || { say "unpack failed"; exit 1; }
say "unpacked: $(du -sh work/carried | cut -f1)"

say "train both for $MINUTES minutes"
python3 -m edgeasr train --recipe recipes/general-8a.toml --init recipes/checkpoints/general-7.pt --out "$RUNS/8a" \
  --max-minutes "$MINUTES" --fit-schedule > "$OUT/8a.log" 2>&1 &
A=$!
python3 -m edgeasr train --recipe recipes/general-8b.toml --out "$RUNS/8b" \
  --max-minutes "$MINUTES" --fit-schedule > "$OUT/8b.log" 2>&1 &
B=$!
copy_best() {
  for r in 8a 8b; do
    [ -f "$RUNS/$r/best.pt" ] && { [ "$RUNS/$r/best.pt" -nt "$OUT/$r-best.pt" ] || [ ! -f "$OUT/$r-best.pt" ]; } \
      && cp "$RUNS/$r/best.pt" "$OUT/$r-best.pt"
  done
}
while kill -0 $A 2>/dev/null || kill -0 $B 2>/dev/null; do
  sleep 15
  copy_best
done
wait $A; RA=$?
wait $B; RB=$?
copy_best
say "8a exit $RA, 8b exit $RB"

python3 - "$RUNS" "$OUT" >> "$LOG" 2>&1 <<'EOF'
import json, sys
from pathlib import Path
import torch
runs, out = Path(sys.argv[1]), Path(sys.argv[2])
reports = {}
for r in ("8a", "8b"):
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
say "done"
tail -n 8 "$LOG"
ls -la "$OUT"
