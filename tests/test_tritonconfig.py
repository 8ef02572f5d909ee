"""Triton configs read, written and edited through Triton's ModelConfig message (edgeasr.tritonconfig)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeasr.tritonconfig import (
    config_text,
    describe_version_policy,
    parse_config,
    read_config,
    set_parameters,
    set_version_policy,
    write_config,
)

SHIPPED = Path(__file__).resolve().parents[1] / "triton_models"


def test_reads_the_shipped_configs() -> None:
    python = read_config(SHIPPED / "edgeasr")
    assert (python.name, python.backend, python.platform) == ("edgeasr", "python", "")
    assert [i.name for i in python.input] == ["AUDIO", "AUDIO_INT16", "SAMPLE_RATE"]
    assert python.parameters["max_audio_seconds"].string_value == "30"
    native = read_config(SHIPPED / "edgeasr_onnx" / "config.pbtxt")
    assert (native.platform, native.backend) == ("onnxruntime_onnx", "")


def test_write_then_read_round_trips_and_edits_keep_the_rest(tmp_path: Path) -> None:
    config = read_config(SHIPPED / "edgeasr")
    set_version_policy(config, "specific", versions=[3, 2, 3])
    set_parameters(config, {"intra_op_threads": 2})
    path = write_config(tmp_path / "config.pbtxt", config)
    again = read_config(path)
    assert again == config
    assert list(again.version_policy.specific.versions) == [2, 3]
    assert describe_version_policy(again) == "specific [2, 3]"
    assert again.parameters["intra_op_threads"].string_value == "2"
    assert not list(tmp_path.glob(".*"))  # the temp file was renamed into place
    assert parse_config(config_text(again)) == again


@pytest.mark.parametrize(
    ("policy", "kwargs", "described"),
    [("all", {}, "all"), ("latest", {"latest_n": 2}, "latest 2"), ("specific", {"versions": [1]}, "specific [1]")],
)
def test_version_policies(policy: str, kwargs: dict, described: str) -> None:
    config = parse_config('name: "m" backend: "python"')
    assert describe_version_policy(config) == "latest 1"  # Triton's default
    assert describe_version_policy(set_version_policy(config, policy, **kwargs)) == described


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a Triton model config"):
        parse_config('name: "m" no_such_field: 1')
    (tmp_path / "config.pbtxt").write_text("backend: python")  # unquoted string
    with pytest.raises(ValueError, match=r"config\.pbtxt: not a Triton model config"):
        read_config(tmp_path)
    with pytest.raises(ValueError, match="unknown version policy"):
        set_version_policy(parse_config(""), "newest")
    with pytest.raises(ValueError, match="at least one version"):
        set_version_policy(parse_config(""), "specific", versions=[])
