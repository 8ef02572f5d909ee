"""WER per source of one manifest with the room tone around each utterance set by hand: does the pad matter, and where?

A version's model file says how much quiet room tone the runtime lays before and after each utterance
(``edgeasr.input_pad_seconds``; the Recognizer's ``pad_seconds``). This decodes every clip of a manifest with the
version's own search once per pad in ``--pads``, in full (``Recognizer.transcribe``: level, cut, pieces, both
searches), and prints the WER over all of it and per source (the part of ``speaker`` before its first ``-``: an4,
cathy, fleurs, fsdd, sc in the real-speech dev side), sources of at least ``--min-clips`` clips.

    python bench/pad_by_source.py --model triton_models/edgeasr/19 --pads 0.15,0.25,0.5 work/real/dev.jsonl
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import jiwer

from edgeasr.manifest import load_row_audio, read_manifest
from edgeasr.recognizer import Recognizer, RecognizerOptions


def source_of(row: dict) -> str:
    """The source of a manifest row: its ``speaker`` up to the first ``-`` ("?" when it has none)."""
    return str(row.get("speaker", "?")).split("-")[0]


def wer_by_source(refs: list[str], hyps: list[str], sources: list[str], min_clips: int) -> dict[str, tuple[float, int]]:
    """``{"all": (wer, n), source: (wer, n), ...}``, sources of fewer than ``min_clips`` clips left out."""
    groups: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for source, ref, hyp in zip(sources, refs, hyps, strict=True):
        groups[source][0].append(ref)
        groups[source][1].append(hyp)
    out = {"all": (float(jiwer.wer(refs, hyps)), len(refs))}
    for source in sorted(groups):
        r, h = groups[source]
        if len(r) >= min_clips:
            out[source] = (float(jiwer.wer(r, h)), len(r))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", help="NeMo-style JSONL manifest")
    parser.add_argument("--model", default="triton_models/edgeasr", help="version folder (or repository)")
    parser.add_argument("--pads", default="0.15,0.25,0.5", help="room tone each side (s), comma-separated")
    parser.add_argument("--min-clips", type=int, default=10, help="smallest source reported on its own")
    args = parser.parse_args()
    rows = read_manifest(args.manifest)
    waves = [load_row_audio(row, args.manifest) for row in rows]
    refs, sources = [row["text"] for row in rows], [source_of(row) for row in rows]
    rec = Recognizer(args.model, RecognizerOptions(threads=1))
    print(f"{args.model} (version {rec.version}, its file asks for {rec.pad_seconds} s), {len(rows)} clips")
    for pad in (float(p) for p in args.pads.split(",")):
        rec.pad_seconds = pad  # what the model file would say; the search is the version's own
        hyps = [rec.transcribe(wave, 16000).text for wave in waves]
        cells = [
            f"{name} {100 * wer:.2f}% ({n})"
            for name, (wer, n) in wer_by_source(refs, hyps, sources, args.min_clips).items()
        ]
        print(f"pad {pad:g} s: " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
