"""int8 quantization of an exported model with ``onnxruntime.quantization``, the frontend kept in float.

The feature frontend (STFT and mel weights) is part of the graph; quantization leaves every one of
its nodes alone (``nodes_to_exclude``), found by the module scope the exporter records per node.

:func:`store_weights_int8` shrinks the file without touching the kernels: float weights kept in
int8 and widened back to float when onnxruntime loads the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["frontend_nodes", "quantize_onnx", "store_weights_int8"]


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
            (bench/results/eval-cpu-2core-epyc/int8-ops.txt): ``("MatMul",)`` keeps what wins. On a
            2-core Xeon with VNNI (pretrained-7, 200 real-dev clips) the ``MatMul`` nodes alone ran at
            1.68x and static QDQ of the convolutions under them at 2.16x, 0.37 points worse
            (bench/results/cpu-2core-xeon-pretrained-7/int8-ops.txt): over the 0.3-point allowance, and
            the beam search, the same in both, is most of the whole path's time.
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


# the smallest weight worth storing in int8 (elements): biases and small tables stay float
_MIN_STORED_ELEMENTS = 4096
# a position table is generated in the graph only if it is this close to the sinusoids it stands for
_SINUSOID_TOLERANCE = 1e-3


def _sinusoid_rates(width: int) -> np.ndarray:
    """The angular rates of Whisper's position encodings: ``10000^(-i / (width/2 - 1))``, i < width/2."""
    return np.exp(-np.log(10000.0) / (width // 2 - 1) * np.arange(width // 2))


def _sinusoid_table(rows: int, width: int) -> np.ndarray:
    """Whisper's position encodings: sin then cos of ``position * rate`` (:func:`_sinusoid_rates`)."""
    scaled = np.arange(rows)[:, None] * _sinusoid_rates(width)[None, :]
    return np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1)


def store_weights_int8(onnx_path: Path, out_path: Path, op_types: tuple[str, ...]) -> dict:
    """Store the float weights of ``op_types`` in int8 and regenerate sinusoidal position tables.

    Each weight (an initializer read by those operators alone, outside the frontend, of at least
    4096 elements) becomes int8 with one symmetric scale per output channel, followed by ``Cast`` and
    ``Mul``. onnxruntime folds those constants when it loads the model, so the operators run the same
    float kernels as before (measured on version 8: the same speed; ``DequantizeLinear`` in their
    place is not folded and cost 30%). A float table read only by ``Slice`` that equals Whisper's
    sinusoids (``_SINUSOID_TOLERANCE``) is generated by ``Range``, ``Sin`` and ``Cos`` instead, also
    folded at load. Written by hand: onnxruntime.quantization stores weights in int8 only for
    operators it runs in int8 (or MatMul at 4 bits).

    Args:
        onnx_path: the model (float or already quantized).
        out_path: where to write the smaller model.
        op_types: the operator types whose weights are stored in int8, e.g. ("Conv",).

    Returns:
        ``{"stored_int8": [names], "generated": [names], "bytes_before": int, "bytes_after": int}``.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    frontend = set(frontend_nodes(onnx_path))
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    stored, generated, new_nodes = [], [], []
    for init in list(graph.initializer):
        users = readers.get(init.name, [])
        if init.data_type != TensorProto.FLOAT or not users or any(n.name in frontend for n in users):
            continue
        kinds = {n.op_type for n in users}
        weight = numpy_helper.to_array(init)
        name = init.name
        if kinds <= set(op_types) and weight.size >= _MIN_STORED_ELEMENTS:
            reduce = tuple(range(1, weight.ndim))
            peak = np.abs(weight).max(axis=reduce, keepdims=True)
            scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
            q = np.clip(np.round(weight / scale), -127, 127).astype(np.int8)
            graph.initializer.remove(init)
            graph.initializer.extend(
                [numpy_helper.from_array(q, f"{name}.int8"), numpy_helper.from_array(scale, f"{name}.scale")]
            )
            new_nodes += [
                helper.make_node(
                    "Cast", [f"{name}.int8"], [f"{name}.widened"], to=TensorProto.FLOAT, name=f"{name}.cast"
                ),
                helper.make_node("Mul", [f"{name}.widened", f"{name}.scale"], [name], name=f"{name}.rescale"),
            ]
            stored.append(name)
        elif kinds == {"Slice"} and weight.ndim == 2 and weight.shape[1] % 2 == 0 and weight.shape[1] >= 4:
            rows, width = weight.shape
            if np.abs(_sinusoid_table(rows, width) - weight).max() > _SINUSOID_TOLERANCE:
                continue
            inverse = _sinusoid_rates(width).astype(np.float32)
            graph.initializer.remove(init)
            graph.initializer.extend(
                [
                    numpy_helper.from_array(np.array(0.0, np.float32), f"{name}.start"),
                    numpy_helper.from_array(np.array(float(rows), np.float32), f"{name}.limit"),
                    numpy_helper.from_array(np.array(1.0, np.float32), f"{name}.step"),
                    numpy_helper.from_array(np.array([1], np.int64), f"{name}.axis"),
                    numpy_helper.from_array(inverse[None, :], f"{name}.inverse"),
                ]
            )
            new_nodes += [
                helper.make_node(
                    "Range", [f"{name}.start", f"{name}.limit", f"{name}.step"], [f"{name}.steps"], name=f"{name}.range"
                ),
                helper.make_node(
                    "Unsqueeze", [f"{name}.steps", f"{name}.axis"], [f"{name}.column"], name=f"{name}.unsqueeze"
                ),
                helper.make_node("Mul", [f"{name}.column", f"{name}.inverse"], [f"{name}.angles"], name=f"{name}.mul"),
                helper.make_node("Sin", [f"{name}.angles"], [f"{name}.sin"], name=f"{name}.sin"),
                helper.make_node("Cos", [f"{name}.angles"], [f"{name}.cos"], name=f"{name}.cos"),
                helper.make_node("Concat", [f"{name}.sin", f"{name}.cos"], [name], axis=1, name=f"{name}.concat"),
            ]
            generated.append(name)
    body = list(graph.node)
    del graph.node[:]
    graph.node.extend(new_nodes + body)  # constants first: the graph stays topologically sorted
    onnx.checker.check_model(model)
    onnx.save(model, str(out_path))
    return {
        "stored_int8": stored,
        "generated": generated,
        "bytes_before": Path(onnx_path).stat().st_size,
        "bytes_after": Path(out_path).stat().st_size,
    }
