#!/usr/bin/env bash
# A check set of held-out engines (issue 15), for choosing between candidate models without reading the gate's
# splits: 300 WordNet usage examples that the gate's 300 (work/heldout/wordnet.txt) do not hold, read by six MBROLA
# speakers that the gate's heldout-mbrola split does not use (foreign speakers reading English: af1, de1, fr1, nl2,
# pl1, ro1; Debian non-free mbrola-XX packages that ./run setup installs). No model trains on it (MBROLA's terms:
# edgeasr train refuses its rows) and no text of it is in any training prompt or n-gram. Seconds on 2 cores.
#
#   recipes/check-ood-data.sh
#
# A second check set, check-text, holds the held-out text source alone: 300 more WordNet usage examples that neither
# the gate nor check-ood holds, read by training engines (RHVoice's LGPL voices and Piper), so that an n-gram can be
# chosen on speech the acoustic model reads well (CER about 9%, where check-ood's is about 52%) without reading the
# gate's splits (bench/results/eval-cpu-2core-xeon/general-text-lm.txt). Half a minute.
#
# Needs recipes/general-data.sh's held-out step (the gate's sentences, which this set avoids). Nothing here is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
EDGEASR="${EDGEASR:-${EDGEASR_VENV:-$HOME/.cache/edgeasr/venv}/bin/edgeasr}"
PY="$(dirname "$EDGEASR")/python"
W=work
mkdir -p $W/check-ood
have() { [ -s "$1" ]; }
have $W/heldout/wordnet.txt || $EDGEASR data sentences --out $W/heldout/wordnet.txt --num 300
have $W/check-ood/wordnet-all.txt || $EDGEASR data sentences --source wordnet --num 0 --out $W/check-ood/wordnet-all.txt
have $W/check-ood/text.txt || $PY recipes/fresh_sentences.py --seed 23 --pool $W/check-ood/wordnet-all.txt=300 \
  --avoid $W/heldout/wordnet.txt --out $W/check-ood/text.txt
$EDGEASR data synth --text $W/check-ood/text.txt --engines mbrola \
  --voices 'mbrola-mb-af1-en,mbrola-mb-de1-en,mbrola-mb-fr1-en,mbrola-mb-nl2-en,mbrola-mb-pl1-en,mbrola-mb-ro1-en' \
  --out $W/check-ood --dev-fraction 0 --test-fraction 0 --seed 23 --quiet
mkdir -p $W/check-text
have $W/check-text/text.txt || $PY recipes/fresh_sentences.py --seed 29 --pool $W/check-ood/wordnet-all.txt=300 \
  --avoid $W/heldout/wordnet.txt --avoid $W/check-ood/text.txt --out $W/check-text/text.txt
$EDGEASR data synth --text $W/check-text/text.txt --engines rhvoice,piper --engine-weights rhvoice=0.6,piper=0.4 \
  --out $W/check-text --dev-fraction 0 --test-fraction 0 --seed 29 --workers 2 --quiet
