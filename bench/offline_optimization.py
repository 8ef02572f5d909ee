"""onnxruntime's graph optimization saved offline (``SessionOptions.optimized_model_filepath``) against the shipped.

The shipped file is optimized as it loads; the offline copy is written once with every optimization and then
loaded with none. Each round opens both (session time) and runs the same utterances through the acoustic model on
one thread (CPU time; no beam search), in turns, so drift touches both.

    python bench/offline_optimization.py --model triton_models/edgeasr/15 --manifest work/corpus/test300.jsonl \\
        --limit 60 --rounds 3 --out bench/results/eval-cpu-2core-epyc/offline-optimization-v15
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from _results import write_results  # bench/_results.py (scripts run as python bench/NAME.py)

from edgeasr.manifest import load_row_audio, read_manifest


def _session(path: Path, level: ort.GraphOptimizationLevel, save: Path | None = None):
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.graph_optimization_level = level
    options.log_severity_level = 3
    if save is not None:
        options.optimized_model_filepath = str(save)
    started = time.perf_counter()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="triton_models/edgeasr/15", help="a version folder")
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", required=True, help="output stem: writes .json and .txt")
    args = parser.parse_args()
    shipped = Path(args.model) / "model.onnx"
    waves = [load_row_audio(r, args.manifest) for r in list(read_manifest(args.manifest))[: args.limit]]
    audio_s = sum(w.size for w in waves) / 16000
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        offline = Path(tmp) / "optimized.onnx"
        _session(shipped, ort.GraphOptimizationLevel.ORT_ENABLE_ALL, save=offline)
        variants = {
            "as shipped (optimized at load)": (shipped, ort.GraphOptimizationLevel.ORT_ENABLE_ALL),
            "optimized offline (loaded as is)": (offline, ort.GraphOptimizationLevel.ORT_DISABLE_ALL),
        }
        sizes = {name: os.path.getsize(path) / 2**20 for name, (path, _) in variants.items()}
        for round_ in range(args.rounds):
            for name, (path, level) in variants.items():
                session, opened = _session(path, level)
                started = time.process_time()
                for w in waves:
                    feed = {"audio": w[None, :].astype(np.float32), "audio_length": np.array([w.size], np.int64)}
                    session.run(None, feed)
                seconds = time.process_time() - started
                rows.append({"variant": name, "round": round_, "session_s": opened, "x_realtime": audio_s / seconds})
    lines = [f"{shipped}, {len(waves)} utterances ({audio_s:.0f} s of audio), one thread, {args.rounds} rounds in turn"]
    for name, size in sizes.items():
        mine = [r for r in rows if r["variant"] == name]
        opened = ", ".join(f"{r['session_s']:.3f}" for r in mine)
        speed = ", ".join(f"{r['x_realtime']:.0f}" for r in mine)
        lines.append(f"  {name:<34} {size:6.2f} MiB  session {opened} s  acoustic model {speed}x real time")
    write_results(args.out, vars(args), rows, lines)


if __name__ == "__main__":
    main()
