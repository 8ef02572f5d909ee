"""Beam-search pruning against speed, on in-domain and held-out speech: what each setting costs in WER.

The acoustic model runs once per utterance (its log-probabilities are kept); each beam setting then
decodes every split on one thread, in turns, and the fastest of ``--rounds`` counts. Speed is
audio seconds per decoding second plus the acoustic model's own time, so ``x_realtime`` is the
whole on-device path's speed with that setting. A folder with two n-grams (``lm-domain.arpa``) is
decoded with both searches: by default the general one pruned to each setting and the domain one as
it ships; ``--prune domain`` prunes the domain search instead (the general one as it ships).

    python bench/beam_pruning.py --model triton_models/edgeasr/2 \\
        test=work/corpus/test.jsonl heldout=work/heldout/train.jsonl real-dev=work/real/dev.jsonl \\
        --out bench/results/eval-cpu-2core-epyc/beam-pruning
"""

from __future__ import annotations

import argparse
import itertools
import time
from dataclasses import asdict
from pathlib import Path

import jiwer
from _results import write_results  # bench/_results.py (scripts run as python bench/NAME.py)

from edgeasr.decoding import DOMAIN_DECODER_FILE, DOMAIN_LM_FILE, TOKENS, BeamSearchDecoder, BeamSearchOptions, find_lm
from edgeasr.manifest import load_row_audio, read_manifest
from edgeasr.recognizer import Recognizer, RecognizerOptions


def _searched(decoder: BeamSearchDecoder, logprobs) -> int:
    """How many of an utterance's frames the search visits."""
    kept = decoder._searched_frames(logprobs)  # the decoder's own rule, not a copy of it
    return len(logprobs) if kept is None else int(kept.size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("splits", nargs="+", help="NAME=MANIFEST")
    parser.add_argument("--model", default="triton_models/edgeasr/2", help="a version folder with a beam search")
    parser.add_argument("--limit", type=int, default=300, help="utterances per split")
    parser.add_argument("--beam-sizes", default="500,100,50")
    parser.add_argument("--token-sizes", default="8,5")
    parser.add_argument("--thresholds", default="20,15,12,10")
    parser.add_argument(
        "--blank-skips", default="", help="blank_skip values to try (default: the shipped decoder.json's)"
    )
    parser.add_argument(
        "--prune",
        choices=("general", "domain"),
        default="general",
        help="with two n-grams: which search each setting prunes (the other as it ships)",
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", required=True, help="output stem: writes .json and .txt")
    args = parser.parse_args()

    rec = Recognizer(args.model, RecognizerOptions(threads=1, decoder="greedy"))
    shipped = BeamSearchOptions.from_json(Path(args.model) / "decoder.json")
    data = {}
    for spec in args.splits:
        name, manifest = spec.split("=", 1)
        rows = read_manifest(manifest)[: args.limit]
        waves = [load_row_audio(r, manifest, allow_outside=True) for r in rows]
        started = time.perf_counter()
        logprobs = [rec.logprobs(w, 16000) for w in waves]
        acoustic_s = time.perf_counter() - started
        data[name] = {
            "refs": [r["text"] for r in rows],
            "logprobs": logprobs,
            "audio_s": sum(w.size for w in waves) / 16000.0,
            "acoustic_s": acoustic_s,
        }
    skips = args.blank_skips.split(",") if args.blank_skips else [shipped.blank_skip]
    settings = [
        (int(b), int(t), float(th), float(sk))
        for b, t, th, sk in itertools.product(
            args.beam_sizes.split(","), args.token_sizes.split(","), args.thresholds.split(","), skips
        )
    ]

    def pruned(s: tuple) -> BeamSearchDecoder:
        """The folder's decoder as it ships (two searches where it has lm-domain.arpa), one search pruned to s."""
        prune = {"beam_size": s[0], "beam_size_token": s[1], "beam_threshold": s[2], "blank_skip": s[3]}
        if args.prune == "general":
            return BeamSearchDecoder.from_dir(args.model, list(TOKENS), **prune)
        d = Path(args.model)
        domain_options = BeamSearchOptions.from_json(d / DOMAIN_DECODER_FILE)
        domain = BeamSearchDecoder(
            find_lm(d, DOMAIN_LM_FILE), list(TOKENS), BeamSearchOptions(**{**asdict(domain_options), **prune})
        )
        return BeamSearchDecoder(find_lm(d), list(TOKENS), shipped, domain)

    decoders = {s: pruned(s) for s in settings}
    seconds = {(s, n): [] for s in settings for n in data}
    hyps = {}
    for _ in range(args.rounds):
        for s, decoder in decoders.items():
            for name, d in data.items():
                started = time.perf_counter()
                out = [" ".join(w for w, _, _ in decoder.search(lp)) for lp in d["logprobs"]]
                seconds[(s, name)].append(time.perf_counter() - started)
                hyps[(s, name)] = out
    rows = []
    for s in settings:
        row = {"beam_size": s[0], "beam_size_token": s[1], "beam_threshold": s[2], "blank_skip": s[3]}
        row["searched_frames"] = {  # share of frames the search visits (blank runs collapsed)
            name: round(
                sum(_searched(decoders[s], lp) for lp in d["logprobs"]) / sum(len(lp) for lp in d["logprobs"]), 4
            )
            for name, d in data.items()
        }
        for name, d in data.items():
            decode_s = min(seconds[(s, name)])
            row[f"{name}_wer"] = round(jiwer.wer(d["refs"], hyps[(s, name)]), 5)
            row[f"{name}_decode_ms"] = round(1000 * decode_s / len(d["refs"]), 3)
            row[f"{name}_x_realtime"] = round(d["audio_s"] / (decode_s + d["acoustic_s"]), 1)
        rows.append(row)
    names = list(data)
    lines = [
        f"{args.model}, one thread, {args.limit} utterances per split, pruning the {args.prune} search; "
        "acoustic model x real time: "
        + ", ".join(f"{n} {data[n]['audio_s'] / data[n]['acoustic_s']:.0f}" for n in names),
        f"{'beam':>5s} {'tok':>4s} {'thr':>5s} {'skip':>5s} "
        + " ".join(f"{n + ' WER':>14s} {'ms':>6s} {'xRT':>6s} {'frames':>6s}" for n in names),
    ]
    for r in rows:
        lines.append(
            f"{r['beam_size']:>5d} {r['beam_size_token']:>4d} {r['beam_threshold']:>5.0f} {r['blank_skip']:>5.2f} "
            + " ".join(
                f"{100 * r[f'{n}_wer']:>13.2f}% {r[f'{n}_decode_ms']:>6.1f} {r[f'{n}_x_realtime']:>6.0f} "
                f"{100 * r['searched_frames'][n]:>5.1f}%"
                for n in names
            )
        )
    write_results(args.out, vars(args), rows, lines)


if __name__ == "__main__":
    main()
