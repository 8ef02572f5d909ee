"""Two n-grams, one choice per utterance: the product's commands or general English.

A general model decoded with the open general-English n-gram loses in-domain accuracy to its
28,000-word lexicon (``results/eval-cpu-2core-epyc/general-6-lexicon.txt``: 14.25% on test300
against 9.89% with the shipped 1,531-word n-gram); decoded with the closed n-gram it cannot say
most of what real people say. This script measures a sentence-level choice between the two
searches: each utterance is searched twice (the model's own open n-gram and settings, and the
domain version's closed n-gram and settings), and the domain transcript is taken when

    acoustic(domain) + k * lm(domain) + bias * words(domain) >= acoustic(open) + lm_weight(open) * lm(open)

(``edgeasr.decoding.prefer_domain``, the rule a version with ``lm-domain.arpa`` decodes by; the
scores are each search's ``search_scored``): a sentence-level mixture of the two language models,
``bias`` a per-word log prior of the product's words. (``general-6-two-domain.txt`` and
``general-7-two-domain.txt`` were measured with a bias per sentence, before the per-word one
replaced it; ``general-7-two-domain-word.txt`` is the per-word rule on the same model.) ``k`` and
``bias`` are chosen on the tuning splits only: the lowest WER on ``--tune-open`` whose WER on
``--tune-domain`` is at most ``--domain-limit``; every split is then read at that point.

    python bench/two_domain.py --model work/bundles/general-6 --domain triton_models/edgeasr/2 \\
        check3=work/real/check3.jsonl cdev=work/corpus/dev.jsonl \\
        test=work/corpus/test300.jsonl real-dev=work/real/dev.jsonl \\
        --tune-open check3 --tune-domain cdev --out bench/results/eval-cpu-2core-epyc/general-6-two-domain

``edgeasr export`` with ``domain_decoder`` (``export/general-two.toml``) tunes the same choice on
one check set; this script shows the whole grid on every split.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import replace
from pathlib import Path

import jiwer
import numpy as np
from _results import write_results  # bench/_results.py (scripts run as python bench/NAME.py)

from edgeasr.decoding import TOKENS, BeamSearchDecoder, BeamSearchOptions, find_lm, prefer_domain
from edgeasr.manifest import load_row_audio, read_manifest
from edgeasr.recognizer import Recognizer, RecognizerOptions


def _best(decoder: BeamSearchDecoder, logprobs: np.ndarray) -> tuple[str, dict, float]:
    """(transcript, scores, seconds) of one search alone (``BeamSearchDecoder.search_scored``)."""
    started = time.perf_counter()
    words, scores = decoder.search_scored(logprobs)
    return " ".join(w for w, _, _ in words), scores, time.perf_counter() - started


def _wer(refs: list[str], hyps: list[str]) -> float:
    return round(jiwer.wer(refs, [h or "<empty>" for h in hyps]), 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("splits", nargs="+", help="NAME=MANIFEST")
    parser.add_argument("--model", required=True, help="a bundle or version folder with the open n-gram")
    parser.add_argument("--domain", default="triton_models/edgeasr/2", help="a version folder with the closed n-gram")
    parser.add_argument("--tune-open", required=True, help="the split whose WER the choice minimises")
    parser.add_argument("--tune-domain", required=True, help="the in-domain split held to --domain-limit")
    parser.add_argument("--domain-limit", type=float, default=0.095, help="WER allowed on --tune-domain")
    parser.add_argument("--ks", default="0.9,1.2,1.5,1.8,2.1")
    parser.add_argument("--biases", default="0,1,1.5,2,3,4", help="per-word biases of the domain search")
    parser.add_argument("--out", required=True, help="output stem: writes .json and .txt")
    parser.add_argument("--dump", default="", help="also write every utterance's transcripts and scores (JSON)")
    args = parser.parse_args()

    rec = Recognizer(args.model, RecognizerOptions(threads=1, decoder="greedy"))
    model_dir = Path(args.model)
    open_search = BeamSearchDecoder(
        find_lm(model_dir), list(TOKENS), BeamSearchOptions.from_json(model_dir / "decoder.json")
    )
    domain_search = BeamSearchDecoder(
        find_lm(args.domain), list(TOKENS), BeamSearchOptions.from_json(Path(args.domain) / "decoder.json")
    )
    weight = open_search.options.lm_weight
    data: dict[str, dict] = {}
    for spec in args.splits:
        name, manifest = spec.split("=", 1)
        rows = read_manifest(manifest)
        refs, found = [], []
        audio_s = 0.0
        for row in rows:
            wave = load_row_audio(row, manifest, allow_outside=True)
            audio_s += wave.size / 16000.0
            logprobs = rec.logprobs(wave, 16000)
            refs.append(row["text"])
            found.append((_best(open_search, logprobs), _best(domain_search, logprobs)))
        data[name] = {"refs": refs, "found": found, "audio_s": audio_s}

    if args.dump:
        Path(args.dump).write_text(
            json.dumps(
                {n: [[r, *o, *dm] for r, (o, dm) in zip(d["refs"], d["found"], strict=True)] for n, d in data.items()}
            )
        )

    def chosen(name: str, k: float, bias: float) -> list[str]:
        out = []
        options = replace(open_search.options, domain_weight=k, domain_word_bias=bias)
        for (o_text, o_scores, _), (d_text, d_scores, _) in data[name]["found"]:
            out.append(d_text if prefer_domain(o_scores, d_scores, options) else o_text)
        return out

    grid = []
    for k, bias in itertools.product(map(float, args.ks.split(",")), map(float, args.biases.split(","))):
        wers = {f"{n}_wer": _wer(d["refs"], chosen(n, k, bias)) for n, d in data.items()}
        grid.append({"k": k, "bias": bias, **wers})
    allowed = [g for g in grid if g[f"{args.tune_domain}_wer"] <= args.domain_limit]
    pick = min(allowed or grid, key=lambda g: (g[f"{args.tune_open}_wer"], g[f"{args.tune_domain}_wer"]))

    names = list(data)
    lines = [
        f"open: {args.model} (lm_weight {weight}); domain: {args.domain}; one thread",
        f"choice tuned on {args.tune_open} (lowest WER) with {args.tune_domain} <= {100 * args.domain_limit:.1f}%: "
        f"k {pick['k']}, bias {pick['bias']}" + ("" if allowed else " (no point met the limit: the best overall)"),
        f"{'':24s}" + " ".join(f"{n:>10s}" for n in names),
    ]
    rows_out = []
    for label, hyps in (
        ("open n-gram", {n: [f[0][0] for f in d["found"]] for n, d in data.items()}),
        ("domain n-gram", {n: [f[1][0] for f in d["found"]] for n, d in data.items()}),
        (f"choice k {pick['k']} bias {pick['bias']}", {n: chosen(n, pick["k"], pick["bias"]) for n in names}),
    ):
        wers = {n: _wer(data[n]["refs"], hyps[n]) for n in names}
        rows_out.append({"decoding": label, **{f"{n}_wer": w for n, w in wers.items()}})
        lines.append(f"{label:24s}" + " ".join(f"{100 * wers[n]:>9.2f}%" for n in names))
    speed = {
        n: {
            "open_ms": round(1000 * sum(f[0][2] for f in d["found"]) / len(d["found"]), 2),
            "domain_ms": round(1000 * sum(f[1][2] for f in d["found"]) / len(d["found"]), 2),
        }
        for n, d in data.items()
    }
    lines.append(
        "search ms per utterance (open + domain): "
        + ", ".join(f"{n} {s['open_ms']:.1f} + {s['domain_ms']:.1f}" for n, s in speed.items())
    )
    lines.append("grid (k, bias: WER per split):")
    lines += [
        f"  {g['k']:.1f} {g['bias']:+5.1f}  " + " ".join(f"{100 * g[f'{n}_wer']:>9.2f}%" for n in names) for g in grid
    ]
    write_results(args.out, vars(args), [*rows_out, {"speed": speed, "pick": pick, "grid": grid}], lines)


if __name__ == "__main__":
    main()
