"""What the acoustic model of a pretrained-encoder recipe costs per kept encoder block, and per second of room.

Speed does not depend on the weights, so each variant is the recipe's model, untrained above the
encoder, with ``model.pretrained_blocks`` set to each value asked for. Each is exported to ONNX as
``edgeasr export`` writes it, and in int8 of its ``MatMul`` nodes only (export target
``quantize_ops``). Each runs the same utterances on one thread, fastest of ``--rounds`` rounds:
as they are, and with ``--pad`` seconds of silence before and after each, as the runtime lays the
room tone a model asks for (``model.input_pad_seconds``) before the acoustic model. No beam search
runs here; ``bench/beam_pruning.py`` measures that.

    python bench/encoder_blocks.py --recipe recipes/pretrained-3.toml --manifest work/corpus/test300.jsonl \\
        --blocks 2,1 --pad 0.5 --out bench/results/eval-cpu-2core-epyc/encoder-blocks
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from _results import write_results  # bench/_results.py (scripts run as python bench/NAME.py)

from edgeasr.export.onnx import export_onnx
from edgeasr.export.quantize import quantize_onnx
from edgeasr.manifest import load_row_audio, read_manifest
from edgeasr.training.model import CTCModel
from edgeasr.training.recipe import TrainRecipe


def _seconds(path: Path, waves: list[np.ndarray], rounds: int) -> float:
    """Fastest of ``rounds`` passes over ``waves`` on one onnxruntime thread."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for w in waves:
            session.run(None, {"audio": w[None, :], "audio_length": np.array([w.size], np.int64)})
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", required=True, help="a recipe with model.pretrained")
    parser.add_argument("--manifest", required=True, help="utterances to time")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--blocks", default="2,1", help="model.pretrained_blocks values")
    parser.add_argument("--pad", type=float, default=0.5, help="seconds of silence laid before and after")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", required=True, help="output stem: writes .json and .txt")
    args = parser.parse_args()

    rows = read_manifest(args.manifest)[: args.limit]
    waves = [load_row_audio(r, args.manifest, allow_outside=True) for r in rows]
    room = np.zeros(round(args.pad * 16000), np.float32)
    padded = [np.concatenate([room, w, room]) for w in waves]
    audio_s = sum(w.size for w in waves) / 16000.0  # speed is of the speech itself, padded or not
    base = TrainRecipe.from_toml(args.recipe).model
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for blocks in (int(b) for b in args.blocks.split(",")):
            model = CTCModel(dataclasses.replace(base, pretrained_blocks=blocks, pretrained_trainable=0)).eval()
            fp32 = export_onnx(model, Path(tmp) / f"b{blocks}.onnx")
            int8 = quantize_onnx(fp32, Path(tmp) / f"b{blocks}-int8.onnx", "dynamic", [], ("MatMul",))
            for precision, path in (("fp32", fp32), ("int8 MatMul", int8)):
                for pad, batch in ((0.0, waves), (args.pad, padded)):
                    s = _seconds(path, batch, args.rounds)
                    results.append(
                        {
                            "blocks": blocks,
                            "parameters": model.num_parameters(),
                            "precision": precision,
                            "pad_s": pad,
                            "x_realtime": round(audio_s / s, 1),
                            "ms_per_audio_s": round(1000 * s / audio_s, 3),
                        }
                    )
    lines = [
        f"{len(waves)} utterances of {args.manifest} ({audio_s:.0f} s of speech), one thread, fastest of "
        f"{args.rounds}; the acoustic model alone (no search), {args.recipe} at each number of encoder blocks",
        f"{'blocks':>6s} {'params':>10s} {'precision':>12s} {'pad s':>6s} {'x RT':>7s} {'ms/audio s':>11s}",
    ]
    for r in results:
        lines.append(
            f"{r['blocks']:>6d} {r['parameters']:>10,d} {r['precision']:>12s} {r['pad_s']:>6.2f} "
            f"{r['x_realtime']:>7.0f} {r['ms_per_audio_s']:>11.2f}"
        )
    write_results(args.out, vars(args), results, lines)


if __name__ == "__main__":
    main()
