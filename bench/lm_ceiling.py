"""How much an n-gram alone can buy an acoustic model: one model's log-probabilities, several n-grams.

The acoustic model runs once per utterance; every ``--lm`` is then searched over the same frames
with the model's own search settings (``decoder.json`` of ``--settings``, or of the model folder)
at each of its weights, and WER is reported per split and per group (``--group-by`` field, the
part before ``:SEP``). Give it the model's own n-gram and one that also counts the evaluated
sentences (an *oracle*, built with ``edgeasr lm`` without that split's ``--hold-out``): the oracle's
WER is a floor no n-gram of general text can go below, so the gap between the two is all that a
better language model could ever win there; the rest is the acoustic model's.

    # the oracle: recipes/general-data.sh's general n-gram, with cathy's dev sentences counted
    edgeasr lm work/corpus/train.jsonl work/general/train.jsonl work/real/train-fit2.jsonl \
        work/real/cathy/dev.jsonl --text work/lm/bible-all.txt --text work/lm/chatterbot-all.txt \
        --hold-out work/corpus/dev.jsonl --hold-out work/corpus/test.jsonl --hold-out work/general/dev.jsonl \
        --hold-out work/general/test.jsonl --hold-out work/real/cathy-check.jsonl \
        --hold-out work/real/fleurs_en/dev.jsonl --hold-out work/real/arctic_pra/dev.jsonl \
        --hold-out work/real/an4/dev.jsonl --hold-out work/heldout/train.jsonl \
        --general-vocabulary 20000 --out work/lm/lm-oracle-cathy.arpa
    python bench/lm_ceiling.py --model work/bundles/general-7 real-dev=work/real/dev.jsonl \
        --lm general=work/lm/lm-general.arpa --lm oracle=work/lm/lm-oracle-cathy.arpa \
        --weights 0.9:-0.5,1.3:-0.5,1.7:0 --out bench/results/eval-cpu-2core-epyc/general-7-lm-ceiling

(``work/bundles/general-7``: ``export/general-eval.toml``'s export of ``recipes/checkpoints/general-7.pt``.)
Training rows show how well the model fits what it learnt from (``general-7-training-rows``):

    python bench/lm_ceiling.py --model work/bundles/general-7 cathy-train=work/real/cathy-fit.jsonl \
        general-train=work/general/train.jsonl --limit 150 --group-by "" --lm general=work/lm/lm-general.arpa \
        --out bench/results/eval-cpu-2core-epyc/general-7-training-rows
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import jiwer
from _results import write_results  # bench/_results.py (scripts run as python bench/NAME.py)

from edgeasr.decoding import TOKENS, BeamSearchDecoder, BeamSearchOptions
from edgeasr.manifest import load_row_audio, read_manifest
from edgeasr.recognizer import Recognizer, RecognizerOptions


def _group(row: dict, spec: str) -> str:
    field, _, sep = spec.partition(":")
    value = str(row.get(field, "?"))
    return value.split(sep)[0] if sep else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("splits", nargs="+", help="NAME=MANIFEST")
    parser.add_argument("--model", required=True, help="a version folder or bundle (its model.onnx)")
    parser.add_argument("--settings", default="", help="decoder.json to search with (default: the model's)")
    parser.add_argument("--lm", action="append", required=True, help="NAME=ARPA (plain or gzip)")
    parser.add_argument("--weights", default="", help="LM_WEIGHT:WORD_SCORE,... (default: the settings' own)")
    parser.add_argument("--group-by", default="speaker:-", help="manifest field per group ('': none)")
    parser.add_argument("--limit", type=int, default=0, help="utterances per split (0: all)")
    parser.add_argument("--out", required=True, help="output stem: writes .json and .txt")
    args = parser.parse_args()

    rec = Recognizer(args.model, RecognizerOptions(threads=2, decoder="greedy"))
    settings = Path(args.settings) if args.settings else Path(args.model) / "decoder.json"
    base = BeamSearchOptions.from_json(settings)
    points = [tuple(float(x) for x in p.split(":")) for p in args.weights.split(",") if p] or [
        (base.lm_weight, base.word_score)
    ]
    splits = {}
    for spec in args.splits:
        name, manifest = spec.split("=", 1)
        rows = read_manifest(manifest)[: args.limit or None]
        logprobs = [rec.logprobs(load_row_audio(r, manifest, allow_outside=True), 16000) for r in rows]
        groups = [_group(r, args.group_by) if args.group_by else name for r in rows]
        splits[name] = (logprobs, [r["text"] for r in rows], groups)

    rows_out, lines = [], [f"{args.model}, search settings of {settings}; WER per split and group"]
    for spec in args.lm:
        lm_name, path = spec.split("=", 1)
        for weight, word_score in points:
            started = time.perf_counter()
            decoder = BeamSearchDecoder(path, list(TOKENS), replace(base, lm_weight=weight, word_score=word_score))
            load_s = time.perf_counter() - started
            for name, (logprobs, refs, groups) in splits.items():
                hyps = [" ".join(w for w, _, _ in decoder.search(lp)) or "<empty>" for lp in logprobs]
                by = defaultdict(lambda: ([], []))
                for g, r, h in zip(groups, refs, hyps, strict=True):
                    by[g][0].append(r)
                    by[g][1].append(h)
                per_group = {g: round(jiwer.wer(*v), 4) for g, v in sorted(by.items())}
                wer = round(jiwer.wer(refs, hyps), 4)
                rows_out.append(
                    {
                        "lm": lm_name,
                        "lm_weight": weight,
                        "word_score": word_score,
                        "split": name,
                        "wer": wer,
                        "groups": per_group,
                        "load_s": round(load_s, 2),
                    }
                )
                shown = "  ".join(f"{g} {100 * v:.1f}" for g, v in per_group.items())
                lines.append(f"{lm_name:10s} {weight:4.1f} {word_score:5.1f}  {name:12s} {100 * wer:6.2f}%   {shown}")
    write_results(args.out, vars(args), rows_out, lines)


if __name__ == "__main__":
    main()
