"""TensorRT engines: run where TensorRT and a CUDA GPU exist, skip with the reason elsewhere."""

from __future__ import annotations

import pytest

from edgeasr.export.tensorrt import EngineProfile, unavailable_reason

REASON = unavailable_reason()


def test_profile_shapes_cover_the_server_limits() -> None:
    shapes = EngineProfile(max_batch=16, max_seconds=30).shapes()
    assert shapes["audio"][2] == (16, 480000)
    assert shapes["audio_length"] == ((1,), (8,), (16,))
    lo, mid, hi = shapes["audio"]
    assert lo <= mid <= hi


def test_unavailable_reason_is_stated_here() -> None:
    if REASON is None:
        pytest.skip(reason="TensorRT and a GPU are present: the gpu tests below run instead")
    assert "TensorRT" in REASON or "GPU" in REASON or "torch" in REASON


@pytest.mark.gpu
@pytest.mark.skipif(REASON is not None, reason=f"TensorRT path unavailable: {REASON}")
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_engine_builds_checks_and_publishes(precision, tiny_checkpoint, tiny_corpus, tmp_path) -> None:
    from edgeasr.export.pipeline import export_checkpoint
    from edgeasr.export.target import ExportTarget
    from edgeasr.modelcard import ModelCard

    target = ExportTarget(name=f"gpu-{precision}", format="tensorrt", precision=precision, max_wer_increase=1.0)
    result = export_checkpoint(tiny_checkpoint, target, check_manifest=tiny_corpus / "dev.jsonl", repository=tmp_path)
    card = ModelCard.from_json(result.path)
    card.verify(result.path)
    assert (result.path / "model.plan").is_file()
    assert card.precision == precision and card.parity["utterances"] > 0
