#!/usr/bin/env bash
# More voices for the held-out engines (issue 15): 3,000 sentences of read prose and conversation that no training
# manifest, dev or test split or held-out set holds, read by the neural and formant voices the training data has
# least of (RHVoice half, Kokoro 0.3, Piper 0.2). pretrained-6 (MODEL_CARD.md) showed that another stage on
# the same 30.7 h stopped paying on speech from sources the model never heard; this is the next stage's new audio.
#
#   setsid nohup recipes/voices2-data.sh > work/voices2-data.log 2>&1 < /dev/null &
#
# Needs recipes/general-data.sh's corpus and real-speech steps first (the sentences must avoid their dev and test
# texts); it may run beside that script's later steps. Resumable: `edgeasr data
# synth` continues an interrupted run in the same folder. Kokoro reads at about 1.2x real time on one core here
# (30 sentences, 95.6 s of audio, in 80 s), RHVoice and Piper 30-100x faster. Nothing here is committed.
#
# 2026-12-06: 3,000 sentences, RHVoice half, Kokoro 0.3, Piper 0.2 (was 4,000, Kokoro half: hours
# on 2 cores, and the first run died with its session). RHVoice's HTS voices are the parametric synthesis closest
# to SVOX Pico, the held-out engine the model is furthest from.
set -euo pipefail
cd "$(dirname "$0")/.."
EDGEASR="${EDGEASR:-${EDGEASR_VENV:-$HOME/.cache/edgeasr/venv}/bin/edgeasr}"
PY="$(dirname "$EDGEASR")/python"
W=work
mkdir -p $W/voices2 $W/lm $W/heldout
# the sentence texts of general-data.sh's prompts and of every manifest kept out of training, compared in the
# labelling convention (a manifest holds labels, a text file raw sentences); the general and held-out manifests
# are read from the texts they were synthesized from, so this can run while their synthesis does
have() { [ -s "$1" ]; }
have $W/lm/bible-all.txt || $EDGEASR data sentences --source bible --num 0 --min-words 2 --max-words 40 --out $W/lm/bible-all.txt
have $W/lm/chatterbot-all.txt || $EDGEASR data sentences --source chatterbot --num 0 --min-words 1 --max-words 40 --out $W/lm/chatterbot-all.txt
have $W/heldout/wordnet.txt || $EDGEASR data sentences --out $W/heldout/wordnet.txt --num 300
[ -s $W/voices2/text.txt ] || $PY recipes/fresh_sentences.py --seed 7 --pool $W/lm/bible-all.txt,$W/lm/chatterbot-all.txt=3000 \
  --avoid $W/general/text.txt --avoid $W/heldout/wordnet.txt --avoid-manifest $W/corpus/dev.jsonl \
  --avoid-manifest $W/corpus/test.jsonl --avoid-manifest $W/real/dev.jsonl --avoid-manifest $W/real/cathy-check.jsonl \
  --out $W/voices2/text.txt
[ -z "${TEXT_ONLY:-}" ] || exit 0  # TEXT_ONLY=1: the sentences alone (a later script avoids them)
$EDGEASR data synth --text $W/voices2/text.txt --engines kokoro,piper,rhvoice --engine-weights kokoro=0.3,piper=0.2,rhvoice=0.5 \
  --out $W/voices2 --dev-fraction 0 --test-fraction 0 --workers "${WORKERS:-2}" --seed 11 --quiet
