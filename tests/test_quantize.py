"""int8 storage of float weights: a smaller file, the same float kernels once onnxruntime has loaded it."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="export needs onnx (train extra)")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgeasr.export.quantize import _sinusoid_table, store_weights_int8  # noqa: E402


def _model(path, table: np.ndarray) -> None:
    """features (1, 32, T) -> Conv (64 x 32 x 3) -> (1, T, 64) + table[:T] (a position table read by Slice)."""
    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((64, 32, 3)) * 0.1).astype(np.float32)
    inits = [
        numpy_helper.from_array(weight, "conv.weight"),
        numpy_helper.from_array((rng.standard_normal(64) * 0.1).astype(np.float32), "conv.bias"),
        numpy_helper.from_array(table.astype(np.float32), "positions"),
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], pads=[1, 1]),
        helper.make_node("Transpose", ["c"], ["t"], perm=[0, 2, 1]),
        helper.make_node("Shape", ["x"], ["frames"], start=2, end=3),
        helper.make_node("Slice", ["positions", "zero", "frames"], ["p"]),
        helper.make_node("Add", ["t", "p"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, "T"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "T", 64])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))


def _run(path, x, optimized=None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if optimized:
        options.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_conv_weights_in_int8_and_the_sinusoids_generated_run_as_before(tmp_path) -> None:
    _model(tmp_path / "float.onnx", _sinusoid_table(300, 64))
    report = store_weights_int8(tmp_path / "float.onnx", tmp_path / "small.onnx", ("Conv",))
    assert report["stored_int8"] == ["conv.weight"] and report["generated"] == ["positions"]
    assert report["bytes_after"] < 0.2 * report["bytes_before"]  # 24 KB of conv and 77 KB of table: 6 KB left
    x = np.random.default_rng(1).standard_normal((1, 32, 120)).astype(np.float32)
    before, after = _run(tmp_path / "float.onnx", x), _run(tmp_path / "small.onnx", x, tmp_path / "loaded.onnx")
    error = np.abs(after - before)  # outputs of about 1: int8 rounding of 96 products each, nothing more
    assert 0 < error.mean() < 0.01 and error.max() < 0.05
    # onnxruntime folds the widening and the table at load: the graph it runs is the float one
    loaded = {n.op_type for n in onnx.load(str(tmp_path / "loaded.onnx")).graph.node}
    assert "Conv" in loaded and not loaded & {"Cast", "DequantizeLinear", "Sin", "Cos", "Range"}


def test_a_learnt_table_and_other_operators_stay_in_float(tmp_path) -> None:
    table = np.random.default_rng(2).standard_normal((300, 64)) * 0.5  # not sinusoids: kept as it is
    _model(tmp_path / "float.onnx", table)
    report = store_weights_int8(tmp_path / "float.onnx", tmp_path / "small.onnx", ("MatMul",))
    assert report == {**report, "stored_int8": [], "generated": []}
    x = np.ones((1, 32, 50), np.float32)
    assert np.array_equal(_run(tmp_path / "float.onnx", x), _run(tmp_path / "small.onnx", x))
