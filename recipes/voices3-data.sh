#!/usr/bin/env bash
# The next stage's new audio (issue 15): 3,000 sentences that no earlier prompt, held-out set, dev or test split
# or voices2 holds, half of them from a text source the training data has never used (Debian's fortunes:
# quotations, proverbs, jokes, every register of written English) and half read prose and conversation, read by
# the same engines as voices2 (RHVoice half, Kokoro 0.3, Piper 0.2) with wider tempo and pitch ranges.
# pretrained-7 (MODEL_CARD.md) gained about half a point to a point on the held-out engines from voices2's 2.9 h.
#
#   setsid nohup recipes/voices3-data.sh > work/voices3-data.log 2>&1 < /dev/null &
#
# Needs recipes/general-data.sh's corpus and real-speech steps and recipes/voices2-data.sh's text (the sentences
# must avoid them). Resumable: `edgeasr data synth` continues an interrupted run in the same folder. About an
# hour on 2 cores (voices2 took 58 minutes beside other jobs). Nothing here is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
EDGEASR="${EDGEASR:-${EDGEASR_VENV:-$HOME/.cache/edgeasr/venv}/bin/edgeasr}"
PY="$(dirname "$EDGEASR")/python"
W=work
mkdir -p $W/voices3 $W/lm $W/heldout
have() { [ -s "$1" ]; }
have $W/voices2/text.txt || { echo "run recipes/voices2-data.sh first: voices3 avoids its sentences" >&2; exit 1; }
have $W/lm/bible-all.txt || $EDGEASR data sentences --source bible --num 0 --min-words 2 --max-words 40 --out $W/lm/bible-all.txt
have $W/lm/chatterbot-all.txt || $EDGEASR data sentences --source chatterbot --num 0 --min-words 1 --max-words 40 --out $W/lm/chatterbot-all.txt
have $W/lm/fortunes-all.txt || $EDGEASR data sentences --source fortunes --num 0 --min-words 3 --max-words 20 --out $W/lm/fortunes-all.txt
have $W/heldout/wordnet.txt || $EDGEASR data sentences --out $W/heldout/wordnet.txt --num 300
[ -s $W/voices3/text.txt ] || $PY - <<'PYEOF'
import random

from edgeasr.manifest import read_manifest
from edgeasr.text import TextNormalizationError, normalize_text


def label(sentence: str) -> str:
    try:
        return normalize_text(sentence)
    except TextNormalizationError:
        return ""


# compared in the labelling convention: a manifest holds labels, a text file raw sentences
texts = ("work/general/text.txt", "work/heldout/wordnet.txt", "work/voices2/text.txt")
avoid = {label(s) for f in texts for s in open(f, encoding="utf-8")}
for m in ["work/corpus/dev.jsonl", "work/corpus/test.jsonl", "work/real/dev.jsonl", "work/real/cathy-check.jsonl"]:
    avoid |= {str(r["text"]).strip() for r in read_manifest(m)}


def fresh(files: tuple[str, ...]) -> list[str]:
    lines = [s.strip() for f in files for s in open(f, encoding="utf-8")]
    kept = [s for s in dict.fromkeys(lines) if s and 3 <= len(s.split()) <= 20 and label(s) and label(s) not in avoid]
    random.Random(13).shuffle(kept)
    return kept


fortunes = fresh(("work/lm/fortunes-all.txt",))
prose = fresh(("work/lm/bible-all.txt", "work/lm/chatterbot-all.txt"))
chosen = fortunes[:1500] + prose[: 3000 - min(1500, len(fortunes))]
random.Random(13).shuffle(chosen)
# each source's "# source: ...; licence: ..." line first: `edgeasr data synth` records them in summary.json
heads = [s.strip() for f in ("work/lm/fortunes-all.txt", "work/lm/bible-all.txt", "work/lm/chatterbot-all.txt") for s in open(f, encoding="utf-8") if s.startswith("# source:")]
open("work/voices3/text.txt", "w", encoding="utf-8").write("\n".join(heads + chosen) + "\n")
print(f"voices3: {len(fortunes)} new fortunes, {len(prose)} new prose sentences, {len(chosen)} kept")
PYEOF
$EDGEASR data synth --text $W/voices3/text.txt --engines kokoro,piper,rhvoice --engine-weights kokoro=0.3,piper=0.2,rhvoice=0.5 \
  --speed-range 0.8,1.25 --pitch-range=-3,3 \
  --out $W/voices3 --dev-fraction 0 --test-fraction 0 --workers "${WORKERS:-2}" --seed 13 --quiet
