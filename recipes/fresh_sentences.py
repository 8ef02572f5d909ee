"""Sentences for a new-voices data script (recipes/voices*-data.sh) that no earlier text or manifest holds.

Sentences are compared in the labelling convention (``edgeasr.text.normalize_text``): a manifest holds labels, a
text file raw sentences. Each ``--pool`` (text files written by ``edgeasr data sentences``, and how many sentences to
take from them) is filtered to 3-20 words and to labels outside every ``--avoid`` text and ``--avoid-manifest``,
de-duplicated in file order and shuffled with ``--seed``; with more than one pool the chosen sentences are shuffled
once more. The output starts with each pool file's ``# source: ...; licence: ...`` line, which ``edgeasr data
synth`` records in the corpus's ``summary.json``.

    python recipes/fresh_sentences.py --seed 13 --pool work/lm/fortunes-all.txt=1500 \\
        --pool work/lm/bible-all.txt,work/lm/chatterbot-all.txt=1500 --avoid work/general/text.txt \\
        --avoid-manifest work/real/dev.jsonl --out work/voices3/text.txt
"""

from __future__ import annotations

import argparse
import random

from edgeasr.manifest import read_manifest
from edgeasr.text import TextNormalizationError, normalize_text


def label(sentence: str) -> str:
    """The sentence in the labelling convention, or "" where it has none."""
    try:
        return normalize_text(sentence)
    except TextNormalizationError:
        return ""


def _lines(files: list[str]) -> list[str]:
    """Every line of the files, stripped, in order."""
    lines: list[str] = []
    for name in files:
        with open(name, encoding="utf-8") as f:
            lines += [s.strip() for s in f]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", action="append", required=True, help="FILE[,FILE...]=N: sentences to draw N from")
    parser.add_argument("--avoid", action="append", default=[], help="a text file whose sentences are left out")
    parser.add_argument("--avoid-manifest", action="append", default=[], help="a manifest whose labels are left out")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    avoid = {label(s) for s in _lines(args.avoid)}
    for manifest in args.avoid_manifest:
        avoid |= {str(r["text"]).strip() for r in read_manifest(manifest)}
    avoid.add("")  # a line without a label (a source line, a sentence the convention cannot spell) is never chosen
    heads, chosen, found = [], [], []
    for pool in args.pool:
        names, count = pool.rsplit("=", 1)
        files = names.split(",")
        lines = _lines(files)
        heads += [s for s in lines if s.startswith("# source:")]
        kept = [s for s in dict.fromkeys(lines) if s and 3 <= len(s.split()) <= 20 and label(s) not in avoid]
        random.Random(args.seed).shuffle(kept)
        # a source line has a label too: it is dropped after the shuffle, so that the order, and with it the
        # sentences of voices2 and voices3 (written before this rule), stay as they were
        kept = [s for s in kept if not s.startswith("# source:")]
        chosen += kept[: int(count)]
        found.append(len(kept))
    if len(args.pool) > 1:
        random.Random(args.seed).shuffle(chosen)
    with open(args.out, "w", encoding="utf-8") as out:
        out.write("\n".join(heads + chosen) + "\n")
    print(f"{args.out}: {found} new sentences in the pools, {len(chosen)} kept")


if __name__ == "__main__":
    main()
