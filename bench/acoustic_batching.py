"""The acoustic model on CPU, one row at a time against zero-padded batches: seconds per audio second.

Why the Triton python model runs each row of a batch on its own (``serving/triton_model.py``):
every version's ONNX model runs the first ``--limit`` utterances of a manifest on one thread, as
single unpadded rows and as padded batches of ``--batch`` (in manifest order, as Triton's dynamic
batcher forms them), fastest of ``--rounds``; the padding factor is the padded samples over the
real ones.

    python bench/acoustic_batching.py --manifest work/corpus/test.jsonl \\
        --out bench/results/eval-cpu-2core-epyc/acoustic-batching
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from _results import write_results  # bench/_results.py (scripts run as python bench/NAME.py)

from edgeasr.manifest import load_row_audio, read_manifest


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run(session: ort.InferenceSession, waves: list[np.ndarray]) -> None:
    lengths = np.array([w.size for w in waves], np.int64)
    batch = np.zeros((len(waves), int(lengths.max())), np.float32)
    for i, w in enumerate(waves):
        batch[i, : w.size] = w
    session.run(None, {"audio": batch, "audio_length": lengths})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--repository", default="triton_models/edgeasr", help="a model folder with numbered versions")
    parser.add_argument("--limit", type=int, default=160)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", required=True, help="output stem: writes .json and .txt")
    args = parser.parse_args()
    rows = read_manifest(args.manifest)[: args.limit]
    waves = [load_row_audio(r, args.manifest) for r in rows]
    audio_s = sum(w.size for w in waves) / 16000.0
    groups = {
        1: [[w] for w in waves],
        args.batch: [waves[i : i + args.batch] for i in range(0, len(waves), args.batch)],
    }
    results, lines = (
        [],
        [f"{len(waves)} utterances of {args.manifest} ({audio_s:.0f} s), one thread, fastest of {args.rounds}"],
    )
    lines.append(f"{'version':>8} {'batch':>6} {'padding':>8} {'ms per audio s':>15} {'x real time':>12}")
    for version in sorted(p for p in Path(args.repository).iterdir() if (p / "model.onnx").is_file()):
        session = _session(version / "model.onnx")
        for size, batches in groups.items():
            padding = sum(max(w.size for w in b) * len(b) for b in batches) / sum(w.size for w in waves)
            _run(session, batches[0])
            best = float("inf")
            for _ in range(args.rounds):
                started = time.perf_counter()
                for b in batches:
                    _run(session, b)
                best = min(best, time.perf_counter() - started)
            row = {
                "version": version.name,
                "batch": size,
                "padding": round(padding, 3),
                "ms_per_audio_s": 1000 * best / audio_s,
            }
            results.append(row)
            lines.append(
                f"{version.name:>8} {size:>6} {padding:>8.2f} {row['ms_per_audio_s']:>15.3f} {audio_s / best:>12.0f}"
            )
    write_results(args.out, vars(args), results, lines)


if __name__ == "__main__":
    main()
