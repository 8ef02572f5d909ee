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
[ -s $W/voices3/text.txt ] || $PY recipes/fresh_sentences.py --seed 13 --pool $W/lm/fortunes-all.txt=1500 \
  --pool $W/lm/bible-all.txt,$W/lm/chatterbot-all.txt=1500 --avoid $W/general/text.txt --avoid $W/heldout/wordnet.txt \
  --avoid $W/voices2/text.txt --avoid-manifest $W/corpus/dev.jsonl --avoid-manifest $W/corpus/test.jsonl \
  --avoid-manifest $W/real/dev.jsonl --avoid-manifest $W/real/cathy-check.jsonl --out $W/voices3/text.txt
[ -z "${TEXT_ONLY:-}" ] || exit 0  # TEXT_ONLY=1: the sentences alone (a later script avoids them)
$EDGEASR data synth --text $W/voices3/text.txt --engines kokoro,piper,rhvoice --engine-weights kokoro=0.3,piper=0.2,rhvoice=0.5 \
  --speed-range 0.8,1.25 --pitch-range=-3,3 \
  --out $W/voices3 --dev-fraction 0 --test-fraction 0 --workers "${WORKERS:-2}" --seed 13 --quiet
