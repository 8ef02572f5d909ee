"""Streams that start in a quiet room: WER of streamed utterances with and without a lead of room tone.

Each utterance is streamed in 160 ms chunks, as it is, and after ``--lead`` seconds of -70 dBFS
pink room tone (a device that starts listening before the talker speaks); once with the runtime's
cut of a long quiet lead (``LevelConfig()``, :func:`edgeasr.features.speech_span` applied as the
stream hears it) and once with everything fed to the model (``LevelConfig(trim=False)``).

    python bench/stream_lead.py --model triton_models/edgeasr/2 test=work/corpus/test300.jsonl \\
        --out bench/results/eval-cpu-2core-epyc/stream-lead
"""

from __future__ import annotations

import argparse

import jiwer
import numpy as np
from _results import write_results  # bench/_results.py (scripts run as python bench/NAME.py)

from edgeasr.features import LevelConfig, pink_noise
from edgeasr.manifest import load_row_audio, read_manifest
from edgeasr.recognizer import Recognizer, RecognizerOptions

CHUNK = 2560  # 160 ms at 16 kHz


def _streamed(rec: Recognizer, audio: np.ndarray) -> str:
    stream = rec.create_stream()
    for start in range(0, audio.size, CHUNK):
        stream.accept_waveform(audio[start : start + CHUNK], 16000)
    return stream.finish().text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("splits", nargs="+", help="NAME=MANIFEST")
    parser.add_argument("--model", default="triton_models/edgeasr/2", help="a version folder")
    parser.add_argument("--lead", type=float, default=2.0, help="seconds of room tone before each utterance")
    parser.add_argument("--limit", type=int, default=300, help="utterances per split")
    parser.add_argument("--out", required=True, help="output stem: writes .json and .txt")
    args = parser.parse_args()

    lead = round(args.lead * 16000)
    rows_out, lines = (
        [],
        [f"{args.model}, streamed in 160 ms chunks; WER % without / with {args.lead:g} s of room tone first"],
    )
    for spec in args.splits:
        name, manifest = spec.split("=", 1)
        rows = read_manifest(manifest)[: args.limit]
        refs = [r["text"] for r in rows]
        waves = [load_row_audio(r, manifest, allow_outside=True) for r in rows]
        tones = [pink_noise(lead, np.random.default_rng(i)) * np.float32(10 ** (-70 / 20)) for i in range(len(rows))]
        for label, level in (("cut", LevelConfig()), ("fed whole", LevelConfig(trim=False))):
            rec = Recognizer(args.model, RecognizerOptions(level=level))
            plain = [_streamed(rec, w) or "<empty>" for w in waves]
            roomy = [
                _streamed(rec, np.concatenate([t, w]).astype(np.float32)) or "<empty>"
                for t, w in zip(tones, waves, strict=True)
            ]
            row = {
                "split": name,
                "lead": label,
                "wer": round(jiwer.wer(refs, plain), 5),
                "wer_lead": round(jiwer.wer(refs, roomy), 5),
            }
            rows_out.append(row)
            lines.append(f"{name:8s} {label:10s} {100 * row['wer']:6.2f}  {100 * row['wer_lead']:6.2f}")
    write_results(args.out, vars(args), rows_out, lines)


if __name__ == "__main__":
    main()
