#!/usr/bin/env bash
# Builds every input of the general-English recipes (recipes/general-*.toml) and of their evaluation
# (export/general-eval.toml, bench/budgets.toml's accuracy target) under work/, in one command, the
# commands their headers give, in the order training needs them. Idempotent: a step whose output
# exists is skipped, so an interrupted run (or a new session on a machine that kept work/) resumes.
#
#   setsid nohup recipes/general-data.sh > work/general-data.log 2>&1 < /dev/null &
#
# Needs `./run setup` first (the TTS engines, the text sources and the virtual environment). Measured
# on 2 cores (AMD EPYC Zen 4): 24 minutes in all, most of it the neural voices. Nothing here is
# committed: work/ is ignored.
set -euo pipefail
cd "$(dirname "$0")/.."
EDGEASR="${EDGEASR:-${EDGEASR_VENV:-$HOME/.cache/edgeasr/venv}/bin/edgeasr}"
PY="$(dirname "$EDGEASR")/python"
RS=../shared/data/real-speech
W=work
mkdir -p $W/real $W/general $W/heldout $W/lm $W/hass

step() { echo "[general-data $(date +%H:%M:%S)] $*"; }
have() { [ -s "$1" ]; }

# 1. Real speech: the training side of ../shared/data/real-speech (never dev.txt) and its dev side raw.
for s in cathy fsdd speech_commands an4 arctic_pra fleurs_en; do
  have $W/real/$s/train.jsonl || { step "import $s (train side)"; $EDGEASR data import $RS/$s.jsonl --out $W/real/$s --exclude-list $RS/dev.txt --workers 2 --quiet; }
  have $W/real/$s/dev.jsonl || { step "import $s (dev side, raw)"; $EDGEASR data import $RS/$s.jsonl --out $W/real/$s --split dev --only-list $RS/dev.txt --no-trim --no-loudness --workers 2 --quiet; }
done
have $W/real/train.jsonl || $EDGEASR data merge $W/real/{cathy,fsdd,speech_commands,an4,arctic_pra}/train.jsonl --out $W/real/train.jsonl
have $W/real/dev.jsonl || $EDGEASR data merge $W/real/*/dev.jsonl --out $W/real/dev.jsonl
have $W/real/check.jsonl || $EDGEASR data split $W/real/train.jsonl --by speaker --fraction 0.05 --out $W/real/train-fit.jsonl --held-out $W/real/check.jsonl
have $W/real/cathy-check.jsonl || $EDGEASR data split $W/real/cathy/train.jsonl --by text --fraction 0.07 --out $W/real/cathy-fit.jsonl --held-out $W/real/cathy-check.jsonl
have $W/real/check2.jsonl || $EDGEASR data merge $W/real/check.jsonl $W/real/cathy-check.jsonl --out $W/real/check2.jsonl
# train-fit2: train-fit without cathy's held-out prompts (a speaker-level --hold-out would drop all of cathy).
have $W/real/train-fit2.jsonl || $PY - <<'EOF'
from edgeasr.manifest import read_manifest, resolve_audio_path, write_manifest
check = "work/real/cathy-check.jsonl"
held = {resolve_audio_path(r, check).resolve() for r in read_manifest(check)}
fit = "work/real/train-fit.jsonl"
rows = [r for r in read_manifest(fit) if resolve_audio_path(r, fit).resolve() not in held]
write_manifest(rows, "work/real/train-fit2.jsonl")
print(f"train-fit2: {len(rows)} rows")
EOF

# 2. The in-domain corpus (the default recipe's prompts and engines) and its first 300 test rows.
have $W/corpus/train.jsonl || { step "synth corpus"; $EDGEASR data synth --out $W/corpus --num-sentences 12000 --workers 2 --seed 0 --quiet; }
have $W/corpus/test300.jsonl || head -n 300 $W/corpus/test.jsonl > $W/corpus/test300.jsonl

# 3. General English: read prose (World English Bible) and conversation (chatterbot-corpus), seven engines.
have $W/general/chatterbot.txt || $EDGEASR data sentences --source chatterbot --num 0 --min-words 2 --max-words 20 --out $W/general/chatterbot.txt
have $W/general/bible.txt || $EDGEASR data sentences --source bible --num 6000 --min-words 4 --max-words 20 --out $W/general/bible.txt
have $W/general/text.txt || cat $W/general/chatterbot.txt $W/general/bible.txt > $W/general/text.txt
have $W/general/train.jsonl || { step "synth general"; $EDGEASR data synth --out $W/general --text $W/general/text.txt \
  --engines espeak-ng,flite,festival,rhvoice,piper,hibari,kokoro --dev-fraction 0.02 --test-fraction 0.02 --workers 2 --seed 1 --quiet; }
have $W/real/check3.jsonl || $EDGEASR data merge $W/real/check2.jsonl $W/general/dev.jsonl --out $W/real/check3.jsonl

# 4. Held-out evaluation: WordNet's usage examples (a text source no training prompt uses) spoken by
#    SVOX Pico and by MBROLA (engines no training row uses).
have $W/heldout/wordnet.txt || $EDGEASR data sentences --out $W/heldout/wordnet.txt --num 300
have $W/heldout/train.jsonl || { step "synth heldout"; $EDGEASR data synth --text $W/heldout/wordnet.txt --engines pico --out $W/heldout --dev-fraction 0 --test-fraction 0 --quiet; }
have $W/heldout-mbrola/train.jsonl || { step "synth heldout-mbrola"; $EDGEASR data synth --text $W/heldout/wordnet.txt --engines mbrola --voices 'mbrola-mb-us?,mbrola-mb-en1,mbrola-mb-de6-en,mbrola-mb-fr4-en' --out $W/heldout-mbrola --dev-fraction 0 --test-fraction 0 --quiet; }

# 5. Home Assistant commands (home-assistant-intents + hassil), every commercial-use engine.
have $W/hass/text.txt || $EDGEASR data sentences --source hass --num 0 --min-words 1 --max-words 20 --out $W/hass/text.txt
have $W/hass/train.jsonl || { step "synth hass"; $EDGEASR data synth --out $W/hass --text $W/hass/text.txt \
  --engines espeak-ng,flite,festival,rhvoice,piper,hibari --dev-fraction 0.02 --test-fraction 0.02 --workers 2 --seed 2 --quiet; }

# 6. The general-English word 4-gram of export/general-eval.toml (held-out text never counted).
have $W/lm/bible-all.txt || $EDGEASR data sentences --source bible --num 0 --min-words 2 --max-words 40 --out $W/lm/bible-all.txt
have $W/lm/chatterbot-all.txt || $EDGEASR data sentences --source chatterbot --num 0 --min-words 1 --max-words 40 --out $W/lm/chatterbot-all.txt
# Every general n-gram below counts the same text and drops the same held-out sentences; they differ in the
# vocabulary mixed in from wordfreq and in pruning.
LM_TEXT=($W/corpus/train.jsonl $W/general/train.jsonl $W/real/train-fit2.jsonl
  --text $W/lm/bible-all.txt --text $W/lm/chatterbot-all.txt
  --hold-out $W/corpus/dev.jsonl --hold-out $W/corpus/test.jsonl --hold-out $W/general/dev.jsonl
  --hold-out $W/general/test.jsonl --hold-out $W/real/cathy-check.jsonl --hold-out $W/real/cathy/dev.jsonl
  --hold-out $W/real/fleurs_en/dev.jsonl --hold-out $W/real/arctic_pra/dev.jsonl --hold-out $W/real/an4/dev.jsonl
  --hold-out $W/heldout/train.jsonl)
have $W/lm/lm-general.arpa || { step "lm-general"; $EDGEASR lm "${LM_TEXT[@]}" --general-vocabulary 20000 --out $W/lm/lm-general.arpa; }
# The same n-gram gzip-compressed, as the shipped default model (export/general-int8.toml) ships it.
have $W/lm/lm-general.arpa.gz || gzip -9 -n -c $W/lm/lm-general.arpa > $W/lm/lm-general.arpa.gz
# The same text with the 3- and 4-grams seen once dropped: 12 MB of ARPA, half the load time, within 0.3 WER points
# (bench/results/eval-cpu-2core-epyc/general-lm-pruning.txt, general-lm-load.txt); the next version's n-gram.
have $W/lm/lm-general-pruned.arpa || { step "lm-general-pruned"; $EDGEASR lm "${LM_TEXT[@]}" --general-vocabulary 20000 --prune 0 0 1 --out $W/lm/lm-general-pruned.arpa; }
# The same text with wordfreq's 100,000 most frequent words in place of 20,000 (103,701 words): the open vocabulary of
# versions 28 and 29 (export/open-100k.toml, export/open-100k-int8-stored.toml; issue 15 asks for at least 100k).
have $W/lm/lm-general-100k.arpa || { step "lm-general-100k"; $EDGEASR lm "${LM_TEXT[@]}" --general-vocabulary 100000 --out $W/lm/lm-general-100k.arpa; }
have $W/lm/lm-general-100k.arpa.gz || gzip -9 -n -c $W/lm/lm-general-100k.arpa > $W/lm/lm-general-100k.arpa.gz
# The same text and vocabulary with more general English prose counted (issue 15: an n-gram "estimated from large
# bundled text"): the quotations of fortunes, Jane Austen's six novels, Moby Dick and sentences walked through a
# word-trigram chain of Wikipedia articles (edgeasr.data.text_sources), 1.4 M words beside the 0.8 M before; the
# n-gram of versions 30 and 31 (export/general-text.toml, export/general-text-int8-stored.toml;
# bench/results/eval-cpu-2core-xeon/general-text-lm.txt).
have $W/lm/fortunes-all.txt || $EDGEASR data sentences --source fortunes --num 0 --min-words 3 --max-words 20 --out $W/lm/fortunes-all.txt
have $W/lm/austen-all.txt || $EDGEASR data sentences --source austen --num 0 --min-words 2 --max-words 40 --out $W/lm/austen-all.txt
have $W/lm/mobydick-all.txt || $EDGEASR data sentences --source mobydick --num 0 --min-words 2 --max-words 40 --out $W/lm/mobydick-all.txt
have $W/lm/wikipedia-all.txt || $EDGEASR data sentences --source wikipedia --num 0 --min-words 2 --max-words 40 --out $W/lm/wikipedia-all.txt
have $W/lm/lm-general-text.arpa || { step "lm-general-text"; $EDGEASR lm "${LM_TEXT[@]}" --text $W/lm/fortunes-all.txt \
  --text $W/lm/austen-all.txt --text $W/lm/mobydick-all.txt --text $W/lm/wikipedia-all.txt --general-vocabulary 100000 \
  --out $W/lm/lm-general-text.arpa; }
step "done"
