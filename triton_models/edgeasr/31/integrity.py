"""Integrity of a model version folder: the SHA-256 of every file, checked against its model card.

This is the one integrity check of edgeasr. :meth:`edgeasr.modelcard.ModelCard.verify` uses it on
the client side, and the Triton python model uses it at load time: ``edgeasr export`` copies this
file into every version folder of the python flavour as ``integrity.py`` and the model loads it
from there by path. It therefore imports only the standard library, never the rest of edgeasr.

A folder passes when it holds exactly the files its ``model_card.json`` lists, byte for byte:
no file missing, none changed, none added (the card itself and ``__pycache__`` are not listed).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "CARD_FILENAME",
    "IGNORED_NAMES",
    "MODULE_FILE",
    "IntegrityError",
    "check_files",
    "hash_directory",
    "sha256_file",
    "verify_version_dir",
]

CARD_FILENAME = "model_card.json"
"""Name of the card inside a version directory; the card does not list itself."""

IGNORED_NAMES = frozenset({CARD_FILENAME, "__pycache__"})
"""Names skipped when hashing a directory: the card itself, and the bytecode cache that Python
may write beside ``model.py`` when the python backend imports it."""

MODULE_FILE = "integrity.py"
"""The name of this file's copy in a python-flavour version folder."""

_CHUNK = 1 << 20


class IntegrityError(RuntimeError):
    """A version directory does not match its model card (changed, missing or extra files)."""


def sha256_file(path: str | os.PathLike) -> str:
    """Return the hex SHA-256 of a file's bytes.

    Args:
        path: the file to hash.

    Returns:
        64 lowercase hex digits.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_directory(directory: str | os.PathLike) -> dict[str, str]:
    """Hash every regular file below ``directory`` (recursively), skipping :data:`IGNORED_NAMES`.

    Args:
        directory: a version directory.

    Returns:
        ``{relative posix path: sha256}`` sorted by path.

    Raises:
        FileNotFoundError: ``directory`` does not exist.
    """
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory")
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_NAMES)
        for name in sorted(filenames):
            if name in IGNORED_NAMES and Path(dirpath) == root:
                continue
            path = Path(dirpath, name)
            if path.is_file():
                found[path.relative_to(root).as_posix()] = sha256_file(path)
    return dict(sorted(found.items()))


def check_files(version_dir: str | os.PathLike, listed: Mapping[str, str]) -> None:
    """Check that ``version_dir`` holds exactly the ``listed`` files, byte for byte.

    Args:
        version_dir: the directory to check.
        listed: ``{relative posix path: sha256}`` as a model card records it.

    Raises:
        IntegrityError: the directory is missing, the list is empty, a listed file is missing or
            its hash differs, or an unlisted file is present; the message names the file(s).
    """
    root = Path(version_dir)
    if not root.is_dir():
        raise IntegrityError(f"{root}: version directory is missing")
    if not listed:
        raise IntegrityError(f"{root}: the model card lists no files")
    actual = hash_directory(root)
    problems = []
    for rel, digest in sorted(listed.items()):
        if rel not in actual:
            problems.append(f"{rel} is missing")
        elif actual[rel] != digest:
            problems.append(f"{rel} does not match its sha256 in the card")
    problems += [f"{rel} is not listed in the card" for rel in sorted(set(actual) - set(listed))]
    if problems:
        raise IntegrityError(f"{root}: integrity check failed: " + "; ".join(problems))


def verify_version_dir(version_dir: str | os.PathLike) -> dict[str, Any]:
    """Read ``version_dir``'s model card and check every file against it.

    Args:
        version_dir: a version directory holding ``model_card.json``.

    Returns:
        The card as a dict.

    Raises:
        IntegrityError: the card is missing or unreadable, or the files do not match it.
    """
    card_path = Path(version_dir, CARD_FILENAME)
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
        listed = dict(card["files"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"{card_path}: model card missing or unreadable ({exc})") from None
    check_files(version_dir, listed)
    return card
