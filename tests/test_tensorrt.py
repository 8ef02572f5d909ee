"""TensorRT engines: run where TensorRT and a CUDA GPU exist, skip with the reason elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeasr.export.tensorrt import EngineProfile, unavailable_reason

REASON = unavailable_reason()
ROOT = Path(__file__).resolve().parents[1]


def test_profile_shapes_cover_the_server_limits() -> None:
    shapes = EngineProfile(max_batch=16, max_seconds=30).shapes()
    assert shapes["audio"][2] == (16, 480000)
    assert shapes["audio_length"] == ((1,), (8,), (16,))
    lo, mid, hi = shapes["audio"]
    assert lo <= mid <= hi


def test_engine_gate_checks_both_limits() -> None:
    from edgeasr.export.pipeline import check_engine
    from edgeasr.export.target import ExportCheckError, ExportTarget

    target = ExportTarget.from_toml(ROOT / "export" / "gpu-fp16.toml")
    assert target.max_wer_increase == 0.005  # the WER gate is on for GPU targets
    good = {"max_abs_diff": 0.1, "wer": 0.101, "wer_fp32_onnx": 0.1}
    check_engine(good, target)
    with pytest.raises(ExportCheckError, match="differ from torch"):
        check_engine({**good, "max_abs_diff": 0.6}, target)
    with pytest.raises(ExportCheckError, match="exceeds fp32"):
        check_engine({**good, "wer": 0.11}, target)


def test_unavailable_reason_is_stated_here() -> None:
    if REASON is None:
        pytest.skip(reason="TensorRT and a GPU are present: the gpu tests below run instead")
    assert "TensorRT" in REASON or "GPU" in REASON or "torch" in REASON


@pytest.mark.gpu
@pytest.mark.skipif(REASON is not None, reason=f"TensorRT path unavailable: {REASON}")
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_engine_builds_checks_and_publishes(precision, tmp_path) -> None:
    """The shipped checkpoint (a model that transcribes) through the target file's own gates."""
    from edgeasr.bench.suite import find_precision_versions
    from edgeasr.export.pipeline import export_checkpoint
    from edgeasr.export.target import ExportTarget
    from edgeasr.modelcard import ModelCard

    checkpoint = ROOT / "recipes" / "checkpoints" / "default.pt"
    target = ExportTarget.from_toml(ROOT / "export" / f"gpu-{precision}.toml")
    result = export_checkpoint(
        checkpoint, target, check_manifest=ROOT / "samples" / "manifest.jsonl", repository=tmp_path
    )
    card = ModelCard.from_json(result.path)
    card.verify(result.path)
    assert (result.path / "model.plan").is_file()
    assert card.precision == precision and card.parity["utterances"] == 8
    assert card.source_checkpoint == str(checkpoint)
    assert card.parity["wer"] < 0.5  # the shipped model transcribes the samples
    python_card = ModelCard.from_json(tmp_path / "edgeasr" / str(result.version))
    assert python_card.precision == "fp32"  # the python flavour carries the fp32 ONNX
    assert find_precision_versions(tmp_path, "edgeasr") == {"fp32": result.version}
