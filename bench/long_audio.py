"""Short utterances joined into one long recording: what each model reads there, against each alone.

The utterances of a manifest (the eight samples by default) are joined with ``--pause`` seconds of
silence between them and transcribed in one call of ``Recognizer.transcribe`` (with its windows of
``--window`` seconds), then each on its own. A whole-input model's call hears the recording in
pieces cut at pauses (``RecognizerOptions.pause_seconds``); it is also read heard whole
(``pause_seconds=0``). Another reading searches the long recording's
log-probabilities piece by piece, cut where the greedy path holds ``--cut-frames`` blanks in a row:
what a search that chooses its n-gram per phrase rather than per recording would give (a model
with two n-grams chooses once per call). WER against the joined references; one thread.

    python bench/long_audio.py --model triton_models/edgeasr/2 --model triton_models/edgeasr/4 \\
        --out bench/results/eval-cpu-2core-epyc/long-audio
"""

from __future__ import annotations

import argparse

import jiwer
import numpy as np
from _results import write_results  # bench/_results.py (scripts run as python bench/NAME.py)

from edgeasr.decoding import BLANK
from edgeasr.manifest import load_row_audio, read_manifest
from edgeasr.recognizer import Recognizer, RecognizerOptions


def _cuts(logprobs: np.ndarray, run: int) -> list[int]:
    """Frame indices in the middle of every run of ``run`` greedy blanks."""
    cuts, length = [], 0
    for i, blank in enumerate(logprobs.argmax(axis=-1) == BLANK):
        length = length + 1 if blank else 0
        if length == run:
            cuts.append(i - run // 2)
    return cuts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="model dir or version dir (repeat)")
    parser.add_argument("--manifest", default="samples/manifest.jsonl")
    parser.add_argument("--pause", type=float, default=0.3, help="seconds of silence between utterances")
    parser.add_argument("--window", type=float, default=20.0, help="RecognizerOptions.window_seconds")
    parser.add_argument("--cut-frames", type=int, default=12, help="greedy blanks in a row that cut the search")
    parser.add_argument("--out", required=True, help="output stem: writes .json and .txt")
    args = parser.parse_args()

    rows = read_manifest(args.manifest)
    waves = [load_row_audio(r, args.manifest, allow_outside=True) for r in rows]
    refs = [r["text"] for r in rows]
    pause = np.zeros(round(args.pause * 16000), np.float32)
    joined = np.concatenate([x for w in waves for x in (w, pause)])
    results = []
    for model in args.model:
        rec = Recognizer(model, RecognizerOptions(window_seconds=args.window))
        alone = [rec.transcribe(w, 16000).text for w in waves]
        whole = rec.transcribe(joined, 16000).text
        heard_whole = Recognizer(model, RecognizerOptions(window_seconds=args.window, pause_seconds=0.0))
        one_piece = heard_whole.transcribe(joined, 16000).text
        logprobs = rec.logprobs(joined, 16000)
        pieces = np.split(logprobs, _cuts(logprobs, args.cut_frames))
        cut = " ".join(t for t in (rec.decode(p, 0.0).text for p in pieces if p.shape[0]) if t)
        results.append(
            {
                "model": model,
                "version": rec.version,
                "whole_input": rec.whole_input,
                "wer_alone": jiwer.wer(refs, alone),
                "wer_joined": jiwer.wer(" ".join(refs), whole),
                "wer_joined_whole": jiwer.wer(" ".join(refs), one_piece),
                "wer_joined_cut": jiwer.wer(" ".join(refs), cut),
                "pieces": len(pieces),
                "joined": whole,
                "joined_whole": one_piece,
                "joined_cut": cut,
            }
        )
    lines = [
        f"# python bench/long_audio.py {' '.join('--model ' + m for m in args.model)} --manifest {args.manifest} "
        f"--pause {args.pause} --window {args.window} --cut-frames {args.cut_frames}",
        f"# {len(rows)} utterances joined with {args.pause} s pauses: {joined.size / 16000:.1f} s",
        f"{'model':<30} {'version':>7} {'whole input':>11} {'each alone':>10} {'joined':>7} {'heard whole':>11} "
        f"{'whole, cut search':>17}",
    ]
    for r in results:
        lines.append(
            f"{r['model']:<30} {r['version']:>7} {'yes' if r['whole_input'] else 'no':>11} "
            f"{100 * r['wer_alone']:9.1f}% {100 * r['wer_joined']:6.1f}% {100 * r['wer_joined_whole']:10.1f}% "
            f"{100 * r['wer_joined_cut']:16.1f}%"
        )
    for r in results:
        lines += [
            f"# {r['model']} joined: {r['joined']}",
            f"# {r['model']} heard whole: {r['joined_whole']}",
            f"# {r['model']} heard whole, cut search: {r['joined_cut']}",
        ]
    write_results(args.out, vars(args), results, lines)


if __name__ == "__main__":
    main()
