"""Canary version control: which published versions Triton serves, edited in every flavour's config."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from edgeasr.canary.versions import live_policy, set_live
from edgeasr.export.repository import ModelRepository


def parse_config(path: Path) -> model_config_pb2.ModelConfig:
    """Parse with Triton's own ModelConfig schema (raises on any unknown field)."""
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def test_set_live_rewrites_the_version_policy(tmp_path: Path, asr_onnx: Path) -> None:
    repo = ModelRepository(tmp_path)
    for _ in range(3):
        repo.publish("edgeasr", asr_onnx, card_fields={})
    set_live(repo, "edgeasr", [2, 3])
    for model in ("edgeasr", "edgeasr_onnx"):
        assert list(parse_config(tmp_path / model / "config.pbtxt").version_policy.specific.versions) == [2, 3]
    assert live_policy(tmp_path, "edgeasr") == "specific [2, 3]"
    set_live(tmp_path, "edgeasr", latest_n=1)
    assert parse_config(tmp_path / "edgeasr" / "config.pbtxt").version_policy.latest.num_versions == 1
    assert live_policy(tmp_path, "edgeasr_onnx") == "latest 1"
    set_live(repo, "edgeasr")
    assert parse_config(tmp_path / "edgeasr" / "config.pbtxt").version_policy.HasField("all")
    with pytest.raises(ValueError, match="cannot serve"):
        set_live(repo, "edgeasr", [7])
    with pytest.raises(ValueError, match="not both"):
        set_live(repo, "edgeasr", [2], latest_n=1)
    # the rest of each config is kept: only the policy changed
    config = parse_config(tmp_path / "edgeasr" / "config.pbtxt")
    assert config.backend == "python" and [i.name for i in config.input][:1] == ["AUDIO"]
    repo.remove_version("edgeasr", 1)
    assert repo.versions("edgeasr") == repo.versions("edgeasr_onnx") == [2, 3]
