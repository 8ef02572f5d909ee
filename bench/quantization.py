"""int8 variants of one fp32 model side by side: acoustic speed on one thread, greedy and beam WER, size.

Backs the choice of static QDQ quantization with uint8 activations (``edgeasr.export.quantize``)
and its calibration mix (``edgeasr.export.pipeline._calibration``) for the convolutional models, and
of dynamic int8 of the ``MatMul`` nodes only (export target ``quantize_ops``) for the models on a
pretrained attention encoder. Each variant is quantized here
with ``onnxruntime.quantization`` exactly as the export does (frontend nodes kept in float), then
every model runs the same utterances in turns (``--rounds``; the fastest round counts), so that the
drift of a shared machine touches all of them alike.

    python bench/quantization.py --fp32 triton_models/edgeasr/2/model.onnx \\
        --decoder triton_models/edgeasr/1 --manifest work/corpus/test.jsonl \\
        --calibration work/corpus/dev.jsonl --out bench/results/eval-cpu-2core-epyc/int8-quantization
    python bench/quantization.py --fp32 work/bundles/pretrained-3/model.onnx --decoder work/bundles/pretrained-3 \\
        --manifest work/real/dev.jsonl --calibration work/real/check3.jsonl --limit 200 \\
        --calibration-utterances 64 --rounds 2 --out bench/results/eval-cpu-2core-epyc/int8-ops
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import jiwer
import numpy as np
import onnxruntime as ort
from _results import write_results  # bench/_results.py (scripts run as python bench/NAME.py)
from onnxruntime import quantization as q

from edgeasr.decoding import TOKENS, BeamSearchDecoder, BeamSearchOptions, find_lm, greedy_decode
from edgeasr.export.quantize import _CalibrationReader, frontend_nodes, quantize_onnx
from edgeasr.export.tuning import noisy_copies
from edgeasr.manifest import load_row_audio, read_manifest


def _load(manifest: str, limit: int) -> tuple[list[np.ndarray], list[str]]:
    rows = read_manifest(manifest)[:limit]
    return [load_row_audio(r, manifest, allow_outside=True) for r in rows], [r["text"] for r in rows]


def _static_s8s8(src: str, out: Path, calibration: list[np.ndarray]) -> Path:
    """Static QDQ as the export quantizes, but with signed int8 activations (the export uses uint8)."""
    q.quantize_static(
        src,
        str(out),
        _CalibrationReader(calibration),
        quant_format=q.QuantFormat.QDQ,
        per_channel=True,
        activation_type=q.QuantType.QInt8,
        weight_type=q.QuantType.QInt8,
        nodes_to_exclude=frontend_nodes(Path(src)),
        calibrate_method=q.CalibrationMethod.MinMax,
    )
    return out


def _static_conv_dynamic_matmul(fp32: Path, tmp: Path, calibration: list[np.ndarray]) -> Path:
    """Static QDQ (u8s8, per channel) of the convolutions, then dynamic int8 of the MatMul nodes on top."""
    conv = quantize_onnx(fp32, tmp / "sconv.onnx", "static", calibration, ("Conv",))
    out = tmp / "sconv-dmm.onnx"
    q.quantize_dynamic(
        str(conv),
        str(out),
        weight_type=q.QuantType.QInt8,
        per_channel=True,
        nodes_to_exclude=frontend_nodes(fp32),
        op_types_to_quantize=["MatMul"],
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fp32", required=True, help="the fp32 model.onnx")
    parser.add_argument("--decoder", required=True, help="a version folder with lm.arpa and decoder.json")
    parser.add_argument("--manifest", required=True, help="utterances to measure")
    parser.add_argument("--calibration", required=True, help="utterances to calibrate on (not the measured ones)")
    parser.add_argument("--limit", type=int, default=300, help="utterances measured")
    parser.add_argument("--calibration-utterances", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--only",
        default="",
        help="variant names to run, separated by ';' (fp32 always runs); empty: every variant",
    )
    parser.add_argument("--out", required=True, help="output stem: writes .json and .txt")
    args = parser.parse_args()

    waves, refs = _load(args.manifest, args.limit)
    noisy = noisy_copies(waves, 10.0)
    cal, _ = _load(args.calibration, args.calibration_utterances)
    half = cal[: len(cal) // 2]
    options = BeamSearchOptions.from_json(Path(args.decoder) / "decoder.json")
    beam = BeamSearchDecoder(find_lm(args.decoder), list(TOKENS), options)

    with tempfile.TemporaryDirectory() as tmp:
        variants = {"fp32": Path(args.fp32)}
        fp32 = Path(args.fp32)
        mix = half + noisy_copies(half, 10.0)
        makers = {
            "dynamic (ConvInteger)": lambda: quantize_onnx(fp32, Path(tmp) / "dynamic.onnx", "dynamic", []),
            # int8 where it wins (export target quantize_ops): the linear layers of a pretrained encoder
            "dynamic, MatMul only": lambda: quantize_onnx(fp32, Path(tmp) / "dmm.onnx", "dynamic", [], ("MatMul",)),
            "static u8s8, MatMul only": lambda: quantize_onnx(fp32, Path(tmp) / "smm.onnx", "static", mix, ("MatMul",)),
            # the convolutions in static QDQ (fast int8 convolution kernels where the CPU has VNNI), the linear
            # layers in dynamic int8 as the shipped default has them
            "static u8s8 Conv, dynamic MatMul": lambda: _static_conv_dynamic_matmul(fp32, Path(tmp), mix),
            # signed activations: the one variant the export does not offer
            "static s8s8, clean calibration": lambda: _static_s8s8(args.fp32, Path(tmp) / "s8.onnx", cal),
            "static u8s8, clean calibration": lambda: quantize_onnx(fp32, Path(tmp) / "u8.onnx", "static", cal),
            "static u8s8, clean + 10 dB calibration (shipped)": lambda: quantize_onnx(
                fp32, Path(tmp) / "u8mix.onnx", "static", mix
            ),
        }
        only = [name.strip() for name in args.only.split(";") if name.strip()]
        unknown = [name for name in only if name not in makers and name != "fp32"]
        if unknown:
            parser.error(f"unknown variants {unknown}; choose from {sorted(makers)}")
        for name, make in makers.items():
            if not only or name in only:
                variants[name] = make()
        sessions = {}
        for name, path in variants.items():
            so = ort.SessionOptions()
            so.intra_op_num_threads = so.inter_op_num_threads = 1
            sessions[name] = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

        def run(session: ort.InferenceSession, wave: np.ndarray) -> np.ndarray:
            feed = {"audio": wave[None, :], "audio_length": np.array([wave.size], np.int64)}
            return session.run(None, feed)[0][0]

        seconds = {name: [] for name in sessions}
        for _ in range(args.rounds):
            for name, session in sessions.items():
                started = time.perf_counter()
                for wave in waves:
                    run(session, wave)
                seconds[name].append(time.perf_counter() - started)
        audio_s = sum(w.size for w in waves) / 16000.0
        rows = []
        for name, session in sessions.items():
            clean = [run(session, w) for w in waves]
            loud = [run(session, w) for w in noisy]
            rows.append(
                {
                    "variant": name,
                    "size_mb": round(variants[name].stat().st_size / 2**20, 3),
                    "acoustic_x_realtime": round(audio_s / min(seconds[name]), 1),
                    "speed_vs_fp32": round(min(seconds["fp32"]) / min(seconds[name]), 3),
                    "greedy_wer": round(jiwer.wer(refs, [greedy_decode(lp).text for lp in clean]), 5),
                    "beam_wer": round(jiwer.wer(refs, [" ".join(w for w, _, _ in beam.search(lp)) for lp in clean]), 5),
                    "beam_wer_10dB": round(
                        jiwer.wer(refs, [" ".join(w for w, _, _ in beam.search(lp)) for lp in loud]), 5
                    ),
                }
            )
    lines = [
        f"{len(waves)} utterances of {args.manifest} ({audio_s:.0f} s), one thread, fastest of {args.rounds} rounds; "
        f"beam search of {args.decoder}",
        f"{'variant':50s} {'MB':>6s} {'x RT':>7s} {'vs fp32':>8s} {'greedy':>7s} {'beam':>7s} {'@10dB':>7s}",
    ]
    for r in rows:
        lines.append(
            f"{r['variant']:50s} {r['size_mb']:6.2f} {r['acoustic_x_realtime']:7.0f} {r['speed_vs_fp32']:8.2f} "
            f"{100 * r['greedy_wer']:6.2f}% {100 * r['beam_wer']:6.2f}% {100 * r['beam_wer_10dB']:6.2f}%"
        )
    write_results(args.out, vars(args), rows, lines)


if __name__ == "__main__":
    main()
