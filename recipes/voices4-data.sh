#!/usr/bin/env bash
# The next stage's new audio after voices3 (issue 15): 3,000 more sentences that no earlier prompt, held-out set,
# dev or test split, voices2 or voices3 holds, half Debian's fortunes and half read prose and conversation, read
# by the same engines (RHVoice half, Kokoro 0.3, Piper 0.2) with voices3's tempo and pitch ranges and a new seed.
# pretrained-8 (voices3 beside voices2) gained 2.9 points on real-dev and 3.7 on the held-out engine over
# pretrained-7; this is the audio of the stage after it (recipes/pretrained-9.toml).
#
#   setsid nohup recipes/voices4-data.sh > work/voices4-data.log 2>&1 < /dev/null &
#
# Needs recipes/general-data.sh's corpus and real-speech steps (the sentences must avoid their dev and test texts).
# voices2's and voices3's sentences are written here when missing (their scripts with TEXT_ONLY=1: the texts alone,
# seconds, no audio), so this runs on a machine that never synthesized them. Resumable: `edgeasr data synth`
# continues an interrupted run in the same folder. About an hour on 2 cores. Nothing here is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
EDGEASR="${EDGEASR:-${EDGEASR_VENV:-$HOME/.cache/edgeasr/venv}/bin/edgeasr}"
PY="$(dirname "$EDGEASR")/python"
W=work
mkdir -p $W/voices4
have() { [ -s "$1" ]; }
have $W/voices2/text.txt || TEXT_ONLY=1 recipes/voices2-data.sh
have $W/voices3/text.txt || TEXT_ONLY=1 recipes/voices3-data.sh
[ -s $W/voices4/text.txt ] || $PY recipes/fresh_sentences.py --seed 17 --pool $W/lm/fortunes-all.txt=1500 \
  --pool $W/lm/bible-all.txt,$W/lm/chatterbot-all.txt=1500 --avoid $W/general/text.txt --avoid $W/heldout/wordnet.txt \
  --avoid $W/voices2/text.txt --avoid $W/voices3/text.txt --avoid-manifest $W/corpus/dev.jsonl \
  --avoid-manifest $W/corpus/test.jsonl --avoid-manifest $W/real/dev.jsonl --avoid-manifest $W/real/cathy-check.jsonl \
  --out $W/voices4/text.txt
$EDGEASR data synth --text $W/voices4/text.txt --engines kokoro,piper,rhvoice --engine-weights kokoro=0.3,piper=0.2,rhvoice=0.5 \
  --speed-range 0.8,1.25 --pitch-range=-3,3 \
  --out $W/voices4 --dev-fraction 0 --test-fraction 0 --workers "${WORKERS:-2}" --seed 17 --quiet
