"""Triton model configurations (``config.pbtxt``): the one way edgeasr reads, writes and edits them.

A config is Triton's ``ModelConfig`` protobuf message (``tritonclient.grpc.model_config_pb2``) in
protobuf text format (``google.protobuf.text_format``): the export writes it
(:mod:`edgeasr.export.repository`), the server reads which backend a model needs
(:mod:`edgeasr.serving.server`), the bench suite stages a copy without dynamic batching and the
canary edits which versions are live. Nobody formats or parses the text by hand, so every config
edgeasr writes is one Triton accepts, and an unknown field is an error here, not at server start.

    config = read_config("triton_models/edgeasr/config.pbtxt")
    set_version_policy(config, "specific", versions=[2])
    write_config("triton_models/edgeasr/config.pbtxt", config)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from edgeasr.files import write_atomic

__all__ = [
    "CONFIG_FILENAME",
    "ModelConfig",
    "config_text",
    "describe_version_policy",
    "parse_config",
    "read_config",
    "set_parameters",
    "set_version_policy",
    "write_config",
]

CONFIG_FILENAME = "config.pbtxt"
"""A model folder's config file name."""

ModelConfig = pb.ModelConfig
"""Triton's model configuration message."""


def parse_config(text: str) -> pb.ModelConfig:
    """Parse protobuf text format into a :data:`ModelConfig`.

    Raises:
        ValueError: the text is not a valid ``ModelConfig`` (the message names the line).
    """
    try:
        return text_format.Parse(text, pb.ModelConfig())
    except text_format.ParseError as exc:
        raise ValueError(f"not a Triton model config: {exc}") from None


def read_config(path: str | os.PathLike) -> pb.ModelConfig:
    """Read a ``config.pbtxt`` (or the one inside a model folder).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a valid ``ModelConfig``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_FILENAME
    try:
        return parse_config(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def config_text(config: pb.ModelConfig) -> str:
    """The config in protobuf text format, as written to ``config.pbtxt``."""
    return text_format.MessageToString(config)


def write_config(path: str | os.PathLike, config: pb.ModelConfig) -> Path:
    """Write ``config`` atomically (temp file, fsync, rename) to ``path`` or ``path/config.pbtxt``.

    Returns:
        The written file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_FILENAME
    return write_atomic(path, config_text(config))


def set_version_policy(
    config: pb.ModelConfig, policy: str, *, latest_n: int = 1, versions: Sequence[int] = ()
) -> pb.ModelConfig:
    """Set which versions Triton serves: ``"all"``, ``"latest"`` (``latest_n``) or ``"specific"`` (``versions``).

    Returns:
        ``config``, changed in place.

    Raises:
        ValueError: an unknown policy, or ``specific`` with no versions.
    """
    config.ClearField("version_policy")
    if policy == "all":
        config.version_policy.all.SetInParent()
    elif policy == "latest":
        config.version_policy.latest.num_versions = int(latest_n)
    elif policy == "specific":
        if not versions:
            raise ValueError("a specific version policy needs at least one version")
        config.version_policy.specific.versions.extend(sorted({int(v) for v in versions}))
    else:
        raise ValueError(f"unknown version policy {policy!r} (all, latest or specific)")
    return config


def describe_version_policy(config: pb.ModelConfig) -> str:
    """The version policy in one line, e.g. ``specific [2, 3]``, ``latest 1`` or ``all``."""
    which = config.version_policy.WhichOneof("policy_choice")
    if which == "specific":
        return f"specific {list(config.version_policy.specific.versions)}"
    if which == "latest":
        return f"latest {config.version_policy.latest.num_versions}"
    if which == "all":
        return "all"
    return "latest 1"  # Triton's default when the config names no policy


def set_parameters(config: pb.ModelConfig, params: Mapping[str, object]) -> pb.ModelConfig:
    """Set string ``parameters`` (what the python backend model reads at ``initialize``)."""
    for key, value in params.items():
        config.parameters[key].string_value = str(value)
    return config
