"""int8 quantization of an exported model with ``onnxruntime.quantization``, the frontend kept in float.

The feature frontend (STFT and mel weights) is part of the graph; quantization leaves every one of
its nodes alone (``nodes_to_exclude``), found by the module scope the exporter records per node.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["frontend_nodes", "quantize_onnx"]


def frontend_nodes(onnx_path: Path) -> list[str]:
    """Names of the graph nodes that compute the feature frontend (kept in float by quantization).

    The exporter records each node's module scope in its metadata (``pkg.torch.onnx.name_scopes``,
    e.g. ``['', 'frontend', 'matmul']``); node names themselves carry no module path.
    """
    import ast

    import onnx

    names = []
    for node in onnx.load(str(onnx_path)).graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        try:
            scopes = ast.literal_eval(meta.get("pkg.torch.onnx.name_scopes", "[]"))
        except (ValueError, SyntaxError):
            scopes = []
        if "frontend" in scopes or node.name.startswith("/frontend/"):
            names.append(node.name)
    return names


class _CalibrationReader:
    """Feeds calibration utterances to onnxruntime's static quantizer, one at a time."""

    def __init__(self, waves: list[np.ndarray]) -> None:
        self._items = iter(waves)

    def get_next(self) -> dict | None:
        wave = next(self._items, None)
        if wave is None:
            return None
        return {"audio": wave[None, :], "audio_length": np.array([len(wave)], np.int64)}


def quantize_onnx(
    fp32_path: Path,
    int8_path: Path,
    method: str,
    calibration: list[np.ndarray],
    op_types: tuple[str, ...] = (),
) -> Path:
    """Quantize an fp32 model to int8 with onnxruntime.quantization, keeping the frontend in float.

    Args:
        fp32_path: the checked fp32 ONNX.
        int8_path: where to write the int8 ONNX.
        method: "dynamic" (int8 weights, activations quantized at run time: slow ConvInteger
            kernels on x86, and the activation scale depends on the batch) or "static" (QDQ,
            per-channel int8 weights, uint8 activations with scales calibrated on ``calibration``:
            fast, and the same answer whatever the batch).
        calibration: waveforms for static calibration (ignored for dynamic).
        op_types: the operator types to quantize; empty: every type onnxruntime quantizes. On the
            pretrained-encoder model pretrained-3 (2-core AVX2 EPYC without VNNI, one thread, 200
            real-dev clips) dynamic int8 of every Conv and MatMul runs the acoustic model at 0.86x
            the speed of fp32 (``ConvInteger`` is slow there), of the ``MatMul`` nodes only at 1.35x
            with beam WER within 0.3 points, and static QDQ of both at 1.49x but 4 points worse
            (bench/results/eval-cpu-2core-epyc/int8-ops.txt): ``("MatMul",)`` keeps what wins.
    """
    from onnxruntime import quantization as q

    exclude = frontend_nodes(fp32_path)
    if method == "dynamic":
        q.quantize_dynamic(
            str(fp32_path),
            str(int8_path),
            weight_type=q.QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=exclude,
            op_types_to_quantize=list(op_types) or None,
        )
    elif method == "static":
        q.quantize_static(
            str(fp32_path),
            str(int8_path),
            _CalibrationReader(calibration),
            quant_format=q.QuantFormat.QDQ,
            per_channel=True,
            # unsigned activations with signed weights (U8S8): onnxruntime's fast int8 kernels on x86
            # (VNNI). Measured on the shipped model, one thread, 300 test utterances: 2.2x the speed
            # of fp32, against 1.6x with signed activations and 0.25x with dynamic quantization
            # (bench/quantization.py, bench/results/eval-cpu-2core-epyc/int8-quantization.txt).
            activation_type=q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            nodes_to_exclude=exclude,
            op_types_to_quantize=list(op_types) or None,
            calibrate_method=q.CalibrationMethod.MinMax,
        )
    else:
        raise ValueError(f"unknown quantization method {method!r} (dynamic or static)")
    # both keep the model-level metadata (the frame and context seconds: tests/test_export.py)
    return int8_path
