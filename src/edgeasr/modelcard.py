"""Model cards: what a published model version is, where it came from, and which files make it.

Every version directory of the model repository holds a ``model_card.json`` next to the model
files. The card records provenance (checkpoint, data version, export time), quality (parity with
the training graph, evaluation metrics) and an integrity list: the SHA-256 of every file in the
directory. :meth:`ModelCard.verify` checks a directory against that list with
:mod:`edgeasr.integrity`, the check that the Triton python model runs at load time from its own
copy, so a model whose files were changed, truncated or mixed between versions is never served.

Only the standard library, :mod:`edgeasr.decoding` and :mod:`edgeasr.integrity` are used.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgeasr.decoding import TOKENS
from edgeasr.files import write_atomic
from edgeasr.integrity import CARD_FILENAME, IGNORED_NAMES, IntegrityError, check_files, hash_directory, sha256_file

__all__ = [
    "CARD_FILENAME",
    "IGNORED_NAMES",
    "PRECISIONS",
    "IntegrityError",
    "ModelCard",
    "hash_directory",
    "sha256_file",
]

PRECISIONS = ("fp32", "fp16", "int8")
"""Allowed values of :attr:`ModelCard.precision`."""


def _now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class ModelCard:
    """Provenance, quality and integrity record of one published model version."""

    name: str  # Triton model name of this flavour, e.g. "edgeasr" or "edgeasr_onnx"
    version: int  # Triton version number (the directory name)
    created: str = field(default_factory=_now_iso)  # ISO-8601 UTC time the version was written
    source_checkpoint: str = ""  # training checkpoint the model was exported from (path or URI)
    data_version: str = ""  # version / hash of the training data manifest
    precision: str = "fp32"  # numeric precision of the weights: one of PRECISIONS
    parity: dict = field(default_factory=dict)  # export parity vs the training graph, e.g. {"max_abs": 1e-5}
    metrics: dict = field(default_factory=dict)  # evaluation results, e.g. {"wer": 0.12, "test_set": "..."}
    params: int = 0  # number of model parameters
    size_bytes: int = 0  # total size of the listed files
    export_seconds: float = 0.0  # wall time the export took
    files: dict = field(default_factory=dict)  # {relative path: sha256} of every file in the version dir
    tokens: tuple[str, ...] = TOKENS  # output vocabulary, index 0 = CTC blank
    extra: dict = field(default_factory=dict)  # free-form details (flavour, exporter version, ...)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if int(self.version) < 1:
            raise ValueError(f"version must be a positive integer, got {self.version!r}")
        object.__setattr__(self, "version", int(self.version))
        object.__setattr__(self, "tokens", tuple(self.tokens))

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def for_files(cls, version_dir: str | os.PathLike, **fields: Any) -> ModelCard:
        """Build a card for the files now in ``version_dir`` (hashes and total size computed).

        Args:
            version_dir: the directory whose files the card lists (the card itself excluded).
            **fields: any other :class:`ModelCard` field (``name`` and ``version`` are required).

        Returns:
            The card; it is not written (use :meth:`to_json`).

        Raises:
            FileNotFoundError: ``version_dir`` does not exist.
            TypeError: an unknown field was given, or ``name``/``version`` is missing.
        """
        root = Path(version_dir)
        files = hash_directory(root)
        size = sum((root / rel).stat().st_size for rel in files)
        return cls(**{**fields, "files": files, "size_bytes": size})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        """Build a card from a mapping (as read from JSON); unknown keys go to ``extra``.

        Args:
            data: the card's fields.

        Returns:
            The card.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        unknown = {k: v for k, v in data.items() if k not in names}
        if unknown:
            known["extra"] = {**dict(known.get("extra") or {}), **unknown}
        return cls(**known)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> ModelCard:
        """Read a card; ``path`` may be the card file or its version directory.

        Args:
            path: ``.../N/model_card.json`` or ``.../N``.

        Returns:
            The card.

        Raises:
            IntegrityError: there is no card, or it is not valid JSON / not a card.
        """
        path = Path(path)
        if path.is_dir():
            path = path / CARD_FILENAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise IntegrityError(f"{path}: model card is missing") from None
        except (OSError, ValueError) as exc:
            raise IntegrityError(f"{path}: model card is unreadable ({exc})") from None
        if not isinstance(data, dict):
            raise IntegrityError(f"{path}: model card is not a JSON object")
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise IntegrityError(f"{path}: not a valid model card ({exc})") from None

    # -- output ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return the card as a JSON-ready dict (tokens as a list)."""
        data = dataclasses.asdict(self)
        data["tokens"] = list(self.tokens)
        return data

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write the card as pretty JSON, durably (temp file, fsync, rename).

        Args:
            path: the card file, or a directory (then ``model_card.json`` inside it).

        Returns:
            The path written.
        """
        path = Path(path)
        if path.is_dir():
            path = path / CARD_FILENAME
        return write_atomic(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    # -- integrity ------------------------------------------------------------------------------

    def verify(self, version_dir: str | os.PathLike) -> None:
        """Check that ``version_dir`` holds exactly the card's files, byte for byte.

        Args:
            version_dir: the directory to check.

        Raises:
            IntegrityError: a listed file is missing or its hash differs, or an unlisted file is
                present; the message names the file(s).
        """
        check_files(version_dir, self.files)
