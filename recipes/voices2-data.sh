#!/usr/bin/env bash
# More voices for the held-out engines (issue 15): 4,000 sentences of read prose and conversation that no training
# manifest, dev or test split or held-out set holds, read by the neural and formant voices the training data has
# least of (Kokoro half, Piper and RHVoice a quarter each). pretrained-6 (MODEL_CARD.md) showed that another stage on
# the same 30.7 h stopped paying on speech from sources the model never heard; this is the next stage's new audio.
#
#   setsid nohup recipes/voices2-data.sh > work/voices2-data.log 2>&1 < /dev/null &
#
# Needs recipes/general-data.sh first (its manifests are what the sentences must avoid). Resumable: `edgeasr data
# synth` continues an interrupted run in the same folder. Kokoro reads at about 1.2x real time on one core here
# (30 sentences, 95.6 s of audio, in 80 s), so the full set takes hours on 2 cores. Nothing here is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
EDGEASR="${EDGEASR:-${EDGEASR_VENV:-$HOME/.cache/edgeasr/venv}/bin/edgeasr}"
PY="$(dirname "$EDGEASR")/python"
W=work
mkdir -p $W/voices2
[ -s $W/voices2/text.txt ] || $PY - <<'PYEOF'
import random

from edgeasr.manifest import read_manifest

avoid = {line.strip() for line in open("work/general/text.txt", encoding="utf-8")}
for m in ["work/general/train.jsonl", "work/general/dev.jsonl", "work/general/test.jsonl", "work/corpus/dev.jsonl",
          "work/corpus/test.jsonl", "work/heldout/train.jsonl", "work/real/dev.jsonl", "work/real/cathy-check.jsonl"]:
    avoid |= {str(r["text"]).strip() for r in read_manifest(m)}
lines = [s.strip() for f in ("work/lm/bible-all.txt", "work/lm/chatterbot-all.txt") for s in open(f, encoding="utf-8")]
new = [s for s in dict.fromkeys(lines) if s and s not in avoid and 3 <= len(s.split()) <= 20]
random.Random(7).shuffle(new)
open("work/voices2/text.txt", "w", encoding="utf-8").write("\n".join(new[:4000]) + "\n")
print(f"voices2: {len(new)} new sentences, 4000 kept")
PYEOF
$EDGEASR data synth --text $W/voices2/text.txt --engines kokoro,piper,rhvoice --engine-weights kokoro=0.5,piper=0.25,rhvoice=0.25 \
  --out $W/voices2 --dev-fraction 0 --test-fraction 0 --workers "${WORKERS:-1}" --seed 11 --quiet
