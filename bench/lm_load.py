"""What a word n-gram costs a decoder at load: bytes on disk, n-grams, and the seconds to build its search.

Each ``--lm NAME=PATH`` is loaded as the runtime loads a version's ``lm.arpa`` (``BeamSearchDecoder``:
KenLM parsing the ARPA text, plain or gzip-compressed, or mapping a KenLM binary (``lm.bin``, its
lexicon read from ``.words``), then the lexicon trie), ``--rounds`` times in
this process; the fastest round is reported. This is most of a cold start of a model that ships a
large n-gram (``bench/cold_start.py`` times the whole of it).

    python bench/lm_load.py --lm general=work/lm/lm-general.arpa --lm general-gz=work/lm/lm-general.arpa.gz \\
        --out bench/results/eval-cpu-2core-epyc/general-lm-load
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _results import write_results  # bench/_results.py (scripts run as python bench/NAME.py)

from edgeasr.decoding import KENLM_BINARY_MAGIC, TOKENS, BeamSearchDecoder, open_arpa


def _ngrams(path: Path) -> list[int]:
    """The ``ngram N=count`` lines of an ARPA file's header (none for a KenLM binary)."""
    counts = []
    with open(path, "rb") as fh:
        if fh.read(len(KENLM_BINARY_MAGIC)) == KENLM_BINARY_MAGIC:
            return counts
    with open_arpa(path) as fh:
        for line in fh:
            if line.startswith("ngram "):
                counts.append(int(line.split("=")[1]))
            elif line.startswith("\\1-grams"):
                break
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lm", action="append", required=True, help="NAME=PATH of an ARPA file (repeat)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", required=True, help="output stem: writes .json and .txt")
    args = parser.parse_args()

    rows = []
    for spec in args.lm:
        name, path = spec.split("=", 1)
        best = float("inf")
        for _ in range(args.rounds):
            started = time.perf_counter()
            decoder = BeamSearchDecoder(path, list(TOKENS))
            best = min(best, time.perf_counter() - started)
            del decoder
        rows.append(
            {
                "name": name,
                "path": path,
                "bytes": Path(path).stat().st_size,
                "ngrams": _ngrams(Path(path)),
                "load_s": best,
            }
        )
    lines = [
        f"# python bench/lm_load.py {' '.join('--lm ' + s for s in args.lm)} --rounds {args.rounds}",
        f"{'n-gram':<28} {'MB':>6} {'n-grams by order':<36} {'load s':>7}",
    ]
    for r in rows:
        counts = "/".join(str(c) for c in r["ngrams"]) or "(KenLM binary)"
        lines.append(f"{r['name']:<28} {r['bytes'] / 1e6:6.1f} {counts:<36} {r['load_s']:7.3f}")
    write_results(args.out, vars(args), rows, lines)


if __name__ == "__main__":
    main()
