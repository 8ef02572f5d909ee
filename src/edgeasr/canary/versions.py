"""Which published versions Triton serves: the canary's edit of a model family's version policy.

Publishing (:meth:`edgeasr.export.repository.ModelRepository.publish`) adds versions; which of
them Triton loads is the canary's decision, written into every flavour's ``config.pbtxt`` as its
``version_policy`` with :mod:`edgeasr.tritonconfig`. Triton applies it on the next (re)load of the
model (``load_model`` in explicit mode, or automatically in poll mode).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from edgeasr.export.repository import ModelRepository
from edgeasr.tritonconfig import CONFIG_FILENAME, describe_version_policy, read_config, set_version_policy, write_config

__all__ = ["live_policy", "set_live"]


def set_live(
    repository: str | os.PathLike | ModelRepository,
    name: str,
    versions: Sequence[int] | None = None,
    *,
    latest_n: int | None = None,
) -> None:
    """Choose which versions Triton serves, in every flavour's ``config.pbtxt``.

    Exactly one way is used: ``versions`` (specific versions, e.g. ``[3, 4]`` for a canary,
    ``[3]`` to roll back), ``latest_n``, or neither (serve all versions).

    Args:
        repository: the model repository (a path or a :class:`ModelRepository`).
        name: base model name (every flavour ``name``, ``name_onnx``, ``name_trt`` is changed).
        versions: versions to serve; each must exist.
        latest_n: serve the highest ``latest_n`` versions.

    Raises:
        ValueError: both ways given, or a version does not exist.
    """
    repo = repository if isinstance(repository, ModelRepository) else ModelRepository(repository)
    if versions is not None and latest_n is not None:
        raise ValueError("give versions or latest_n, not both")
    for model in repo.family(name):
        path = repo.root / model / CONFIG_FILENAME
        if not path.is_file():
            continue
        config = read_config(path)
        if versions is not None:
            missing = sorted(set(map(int, versions)) - set(repo.versions(model)))
            if missing or not versions:
                raise ValueError(f"{model}: cannot serve versions {missing or '[]'}; have {repo.versions(model)}")
            set_version_policy(config, "specific", versions=versions)
        elif latest_n is not None:
            set_version_policy(config, "latest", latest_n=latest_n)
        else:
            set_version_policy(config, "all")
        write_config(path, config)


def live_policy(repository: str | os.PathLike, name: str) -> str:
    """The version policy of model ``name`` in one line (for reports), e.g. ``specific [2]``."""
    return describe_version_policy(read_config(Path(repository) / name / CONFIG_FILENAME))
