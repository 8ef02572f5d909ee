"""What cutting a whole-input model's recordings at pauses does to each evaluation split.

A whole-input model (``Recognizer.whole_input``) hears a recording in pieces cut where the words
leave ``--pause`` seconds or more of non-speech (:func:`edgeasr.features.speech_segments`). A clip
without such a pause is one piece, exactly the input it had before, so only the clips that the
rule cuts can read differently: this counts them per split and scores them both ways, heard whole
(``pause_seconds=0``) and in pieces, with the shipped decoder on one thread. The split's WER
changes by the difference of errors over the split's words (the last column).

    python bench/pause_pieces.py --model triton_models/edgeasr/4 test=work/corpus/test300.jsonl \\
        real-dev=work/real/dev.jsonl --out bench/results/eval-cpu-2core-epyc/pause-pieces
"""

from __future__ import annotations

import argparse

import jiwer
from _results import write_results  # bench/_results.py (scripts run as python bench/NAME.py)

from edgeasr.features import apply_gain, level_gain_db, speech_segments
from edgeasr.manifest import load_row_audio, read_manifest
from edgeasr.recognizer import Recognizer, RecognizerOptions


def _errors(ref: str, hyp: str) -> int:
    out = jiwer.process_words(ref, hyp)
    return out.substitutions + out.deletions + out.insertions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("splits", nargs="+", help="NAME=MANIFEST")
    parser.add_argument("--model", required=True, help="a whole-input model (dir or version dir)")
    parser.add_argument("--pause", type=float, default=None, help="seconds (default: features.PAUSE_SECONDS)")
    parser.add_argument("--out", required=True, help="output stem: writes .json and .txt")
    args = parser.parse_args()

    cut = (
        Recognizer(args.model)
        if args.pause is None
        else Recognizer(args.model, RecognizerOptions(pause_seconds=args.pause))
    )
    whole = Recognizer(args.model, RecognizerOptions(pause_seconds=0.0))
    if not cut.whole_input:
        parser.error(f"{args.model}: not a whole-input model (its recordings are heard whole)")
    pause = cut.options.pause_seconds
    rows_out, examples = [], []
    for spec in args.splits:
        name, _, manifest = spec.partition("=")
        rows = read_manifest(manifest)
        words = cut_rows = err_whole = err_cut = 0
        for row in rows:
            words += len(row["text"].split())
            wave = load_row_audio(row, manifest, allow_outside=True)
            leveled = apply_gain(wave, level_gain_db(wave, cut.options.level))
            if len(speech_segments(leveled, cut.options.level, pause)) < 2:
                continue
            cut_rows += 1
            a, b = whole.transcribe(wave, 16000).text, cut.transcribe(wave, 16000).text
            err_whole += _errors(row["text"], a)
            err_cut += _errors(row["text"], b)
            if a != b and len(examples) < 12:
                examples.append(f"# {name}: ref: {row['text']} | whole: {a} | pieces: {b}")
        rows_out.append(
            {
                "split": name,
                "utterances": len(rows),
                "words": words,
                "cut": cut_rows,
                "errors_whole": err_whole,
                "errors_pieces": err_cut,
                "split_wer_change": (err_cut - err_whole) / max(words, 1),
            }
        )
    lines = [
        f"# python bench/pause_pieces.py --model {args.model} {' '.join(args.splits)} (pause {pause} s, version "
        f"{cut.version}, {cut.decoder_name} decoder, one thread)",
        f"{'split':<16} {'clips':>6} {'cut':>5} {'errors whole':>12} {'in pieces':>10} {'split WER change':>17}",
    ]
    for r in rows_out:
        lines.append(
            f"{r['split']:<16} {r['utterances']:>6} {r['cut']:>5} {r['errors_whole']:>12} {r['errors_pieces']:>10} "
            f"{100 * r['split_wer_change']:+16.2f} pt"
        )
    write_results(args.out, vars(args), rows_out, lines + examples)


if __name__ == "__main__":
    main()
