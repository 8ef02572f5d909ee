"""The two-n-gram search with and without the narrow domain precheck: what it saves, and whether it changes a word.

A version with a domain n-gram searches every utterance twice: the open search and the closed command search,
which on read sentences costs more than the open one and almost never wins there. With ``domain_precheck_beam``
(``decoder.json``; :func:`edgeasr.decoding.domain_out_of_reach`) a narrow domain search runs first and the full
one only where the narrow one comes within ``domain_precheck_margin`` of the open search. The acoustic model runs
once per utterance; each setting then decodes every split on one thread, settings in turns, the fastest of
``--rounds`` counting. ``changed``: utterances whose transcript differs from the setting ``off`` (the folder's
search without a precheck); ``full``: the share of utterances on which the full domain search still ran.

    python bench/domain_precheck.py --model triton_models/edgeasr/13 test=work/corpus/test.jsonl \\
        real-dev=work/real/dev.jsonl --settings off,100/16/5 \\
        --out bench/results/eval-cpu-2core-epyc/domain-precheck-v13
"""

from __future__ import annotations

import argparse
import time

import jiwer
from _results import write_results  # bench/_results.py (scripts run as python bench/NAME.py)

from edgeasr.decoding import TOKENS, BeamSearchDecoder
from edgeasr.manifest import load_row_audio, read_manifest
from edgeasr.recognizer import Recognizer, RecognizerOptions


def _setting(spec: str) -> dict:
    """``off`` or ``BEAM/THRESHOLD/MARGIN`` as decoder.json overrides."""
    if spec == "off":
        return {"domain_precheck_beam": 0}
    beam, threshold, margin = spec.split("/")
    return {
        "domain_precheck_beam": int(beam),
        "domain_precheck_threshold": float(threshold),
        "domain_precheck_margin": float(margin),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("splits", nargs="+", help="NAME=MANIFEST")
    parser.add_argument("--model", default="triton_models/edgeasr/13", help="a version folder with two n-grams")
    parser.add_argument("--limit", type=int, default=300, help="utterances per split")
    parser.add_argument("--settings", default="off,100/16/5", help="off or BEAM/THRESHOLD/MARGIN, ...")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", required=True, help="output stem: writes .json and .txt")
    args = parser.parse_args()

    rec = Recognizer(args.model, RecognizerOptions(threads=1, decoder="greedy"))
    data = {}
    for spec in args.splits:
        name, manifest = spec.split("=", 1)
        rows = read_manifest(manifest)[: args.limit]
        waves = [load_row_audio(r, manifest, allow_outside=True) for r in rows]
        started = time.process_time()
        logprobs = [rec.logprobs(w, 16000) for w in waves]
        data[name] = {
            "refs": [r["text"] for r in rows],
            "logprobs": logprobs,
            "audio_s": sum(w.size for w in waves) / 16000.0,
            "acoustic_s": time.process_time() - started,
        }
    settings = args.settings.split(",")
    if "off" not in settings:
        settings.insert(0, "off")
    decoders = {s: BeamSearchDecoder.from_dir(args.model, list(TOKENS), **_setting(s)) for s in settings}
    if decoders["off"].domain is None:
        parser.error(f"{args.model} has one n-gram: nothing to precheck")
    seconds = {(s, n): [] for s in settings for n in data}
    found = {}
    for _ in range(args.rounds):
        for s, decoder in decoders.items():
            for name, d in data.items():
                started = time.process_time()  # this process's CPU time: one thread, other jobs aside
                found[(s, name)] = [decoder.search_scored(lp) for lp in d["logprobs"]]
                seconds[(s, name)].append(time.process_time() - started)
    rows = []
    for s in settings:
        row = {"setting": s, **_setting(s)}
        for name, d in data.items():
            answers = found[(s, name)]
            texts = [" ".join(w for w, _, _ in words) for words, _ in answers]
            plain = [" ".join(w for w, _, _ in words) for words, _ in found[("off", name)]]
            decode_s = min(seconds[(s, name)])
            row[name] = {
                "wer": round(jiwer.wer(d["refs"], texts), 5),
                "changed": sum(a != b for a, b in zip(texts, plain, strict=True)),
                "full": round(sum(bool(sc["domain_full"]) for _, sc in answers) / len(answers), 4),
                "decode_ms_per_audio_s": round(1000 * decode_s / d["audio_s"], 3),
                "x_realtime": round(d["audio_s"] / (decode_s + d["acoustic_s"]), 1),
            }
        rows.append(row)
    names = list(data)
    lines = [
        f"{args.model}, one thread (CPU time of this process), {args.limit} utterances per split, best of "
        f"{args.rounds} rounds; acoustic model alone: "
        + ", ".join(f"{n} {1000 * data[n]['acoustic_s'] / data[n]['audio_s']:.1f} ms per audio s" for n in names),
        f"{'setting':>12s} "
        + " ".join(f"{n + ' WER':>16s} {'chg':>4s} {'full':>5s} {'ms/s':>6s} {'xRT':>5s}" for n in names),
    ]
    for r in rows:
        lines.append(
            f"{r['setting']:>12s} "
            + " ".join(
                f"{100 * r[n]['wer']:>15.2f}% {r[n]['changed']:>4d} {100 * r[n]['full']:>4.0f}% "
                f"{r[n]['decode_ms_per_audio_s']:>6.2f} {r[n]['x_realtime']:>5.0f}"
                for n in names
            )
        )
    write_results(args.out, vars(args), rows, lines)


if __name__ == "__main__":
    main()
