"""One version on held-out speech changed at test time (tempo, pitch, band, tilt): which mismatch costs it the most.

Each clip of each split goes through sox with one change (speed: tempo and pitch together; tempo alone, WSOLA;
pitch alone; a 3.8 kHz low-pass; 6 dB of bass or treble) and is read with the version's search and greedily. A change
that reads an engine better points at what the model misses in it (its speaking rate, its pitch, its spectral
balance); none does for issue 15's held-out engines (MODEL_CARD.md, "What was tried and not shipped").

    python bench/heldout_transforms.py triton_models/edgeasr/23 heldout=work/heldout/train.jsonl \\
        heldout-mbrola=work/heldout-mbrola/train.jsonl check3=work/real/check3.jsonl --limit 150
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import jiwer
import soundfile as sf

from edgeasr import Recognizer
from edgeasr.decoding import greedy_decode
from edgeasr.manifest import read_manifest, resolve_audio_path

CHANGES: dict[str, list[str]] = {
    "none": [],
    "speed 0.9": ["speed", "0.9"],
    "speed 1.1": ["speed", "1.1"],
    "tempo 0.85": ["tempo", "-s", "0.85"],
    "tempo 0.92": ["tempo", "-s", "0.92"],
    "tempo 1.08": ["tempo", "-s", "1.08"],
    "pitch -3 st": ["pitch", "-300"],
    "pitch +3 st": ["pitch", "300"],
    "low-pass 3.8 kHz": ["sinc", "-3800"],
    "bass +6 dB": ["bass", "6"],
    "treble +6 dB": ["treble", "6"],
}
"""sox effects per change (applied after reading the clip as 16 kHz mono, resampled back to 16 kHz after)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a version folder")
    parser.add_argument("splits", nargs="+", help="NAME=MANIFEST")
    parser.add_argument("--limit", type=int, default=150, help="the first N clips of each split")
    args = parser.parse_args(argv)
    rec = Recognizer(args.model)
    print(f"{args.model} (version {rec.version}); the first {args.limit} clips of each split")
    print(f"{'split':14s} {'change':18s} {'beam WER':>9s} {'CER':>7s} {'greedy WER':>11s} {'CER':>7s}")
    with tempfile.TemporaryDirectory() as tmp:
        changed = Path(tmp) / "changed.wav"
        for pair in args.splits:
            name, manifest = pair.split("=", 1)
            rows = read_manifest(manifest)[: args.limit]
            for change, effects in CHANGES.items():
                refs, beam, greedy = [], [], []
                for row in rows:
                    source = resolve_audio_path(row, manifest)
                    command = ["sox", str(source), "-r", "16000", "-c", "1", "-b", "16", str(changed), *effects]
                    subprocess.run([*command, "rate", "16000"], check=True, capture_output=True)
                    wave, rate = sf.read(changed, dtype="float32")
                    refs.append(row["text"])
                    beam.append(rec.transcribe(wave, rate).text)
                    greedy.append(greedy_decode(rec.logprobs(wave, rate), rec.tokens).text)
                print(
                    f"{name:14s} {change:18s} {100 * jiwer.wer(refs, beam):8.2f}% {100 * jiwer.cer(refs, beam):6.2f}% "
                    f"{100 * jiwer.wer(refs, greedy):10.2f}% {100 * jiwer.cer(refs, greedy):6.2f}%",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
