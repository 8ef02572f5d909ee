"""NeMo-style JSONL manifests and their data version.

One utterance per line: ``{"audio_filepath": ..., "text": ..., "duration": ..., ...}``. Relative
``audio_filepath`` values are resolved against the manifest's folder, so a corpus folder can be
moved as a whole. The *data version* is a content hash of every row (text, duration, voice and the
bytes of each audio file), written beside the manifest as ``<name>.version`` and recorded by every
model trained on it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = [
    "REQUIRED_FIELDS",
    "compute_data_version",
    "contained_audio_path",
    "data_version",
    "load_row_audio",
    "merge_manifests",
    "read_manifest",
    "resolve_audio_path",
    "split_manifest",
    "write_manifest",
]

REQUIRED_FIELDS = ("audio_filepath", "text", "duration")


def resolve_audio_path(row: dict, manifest_path: str | os.PathLike) -> Path:
    """Absolute path of a row's audio, relative paths taken against the manifest's folder."""
    p = Path(row["audio_filepath"])
    return p if p.is_absolute() else Path(manifest_path).resolve().parent / p


def contained_audio_path(row: dict, manifest_path: str | os.PathLike, allow_outside: bool = False) -> Path:
    """A row's audio path, refused when it leaves the manifest's folder (unless ``allow_outside``).

    A manifest from elsewhere could name any readable file (``/etc/passwd``, ``../../secret``);
    only paths inside the manifest's own folder are read unless the caller allows others
    (``--allow-outside`` on the command line; training recipes and merged manifests, which refer
    to the corpora they merge, allow them).

    Raises:
        AudioError: the path leaves the manifest's folder.
    """
    from edgeasr.audio import AudioError

    path = resolve_audio_path(row, manifest_path)
    if not allow_outside:
        base = Path(manifest_path).resolve().parent
        if not path.resolve().is_relative_to(base):
            raise AudioError(
                f"{row.get('audio_filepath')}: outside the manifest's folder {base} (refused; --allow-outside reads it)"
            )
    return path


def load_row_audio(
    row: dict, manifest_path: str | os.PathLike, max_seconds: float | None = None, *, allow_outside: bool = False
) -> np.ndarray:
    """The one reading of a manifest row's audio (eval, bench, export checks, canary replay, training).

    The path is taken against the manifest's folder and must stay inside it unless
    ``allow_outside`` (:func:`contained_audio_path`); a row that states its ``sample_rate`` must
    match the file's header; the audio comes back as 16 kHz mono float32.

    Raises:
        AudioError: the path leaves the manifest's folder, or the file is missing, unreadable,
            truncated, longer than ``max_seconds``, or at another rate than the row says (the
            message names the file).
    """
    from edgeasr.audio import AudioError, load_audio

    path = contained_audio_path(row, manifest_path, allow_outside)
    stated = row.get("sample_rate")
    if stated is not None and path.is_file():
        import soundfile as sf

        try:
            actual = sf.info(str(path)).samplerate
        except Exception:  # unreadable: load_audio below says why
            actual = None
        if actual is not None and int(stated) != int(actual):
            raise AudioError(f"{path}: the manifest says {int(stated)} Hz, the file's header {actual} Hz")
    return load_audio(path, max_seconds=max_seconds)


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """Read every row of a JSONL manifest; blank lines are skipped.

    Raises:
        ValueError: a line is not a JSON object (the message names the line).
    """
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object")
            rows.append(row)
    return rows


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def compute_data_version(rows: Iterable[dict], manifest_path: str | os.PathLike) -> str:
    """Content hash of a manifest: its rows in order, and the bytes of each row's audio file.

    A missing audio file hashes as the string "missing", so the version still changes when it
    appears. Returns the first 16 hex digits of a sha256 (prefixed ``dv-``).
    """
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode())
        audio = resolve_audio_path(row, manifest_path)
        h.update((_file_sha256(audio) if audio.is_file() else "missing").encode())
    return "dv-" + h.hexdigest()[:16]


def _version_path(manifest_path: str | os.PathLike) -> Path:
    p = Path(manifest_path)
    return p.with_name(p.name + ".version")


def write_manifest(rows: Iterable[dict], path: str | os.PathLike) -> str:
    """Write rows as JSONL (atomically) plus the ``.version`` sidecar; return the data version."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = list(rows)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    version = compute_data_version(rows, path)
    _version_path(path).write_text(version + "\n")
    return version


def data_version(path: str | os.PathLike) -> str:
    """The data version of a manifest, computed from its current content (never trusted from the sidecar)."""
    return compute_data_version(read_manifest(path), path)


def merge_manifests(
    sources: Iterable[str | os.PathLike],
    out: str | os.PathLike,
    hold_out: Iterable[str | os.PathLike] = (),
    only_sentences_of: Iterable[str | os.PathLike] = (),
) -> tuple[str, dict]:
    """Concatenate manifests into ``out``, dropping rows that would leak held-out material.

    Rows keep every field; ``audio_filepath`` is rewritten relative to ``out``'s folder so the
    merged manifest points at the original audio without copying it. A row is dropped when its
    text or its voice occurs in any ``hold_out`` manifest (typically the dev and test manifests of
    the corpus a model is scored on), so corpora synthesized with different seeds or splits can be
    combined without training on a held-out sentence or voice. Exact duplicates (same audio file)
    are kept once.

    ``only_sentences_of`` turns the filter around for building evaluation splits: only rows whose
    sentence occurs in those manifests are kept (for example the test sentences spoken by training
    voices, a "seen voices, unseen sentences" split); ``hold_out`` then removes voices only.

    Args:
        sources: manifests to combine, in order.
        out: the merged manifest (written with its ``.version`` sidecar).
        hold_out: manifests whose sentences and voices must not appear in ``out``.
        only_sentences_of: when given, manifests whose sentences are the only ones kept.

    Returns:
        The data version of ``out`` and counts: ``{"kept", "held_out_text", "held_out_voice",
        "duplicates", "not_selected"}``.
    """
    out = Path(out)
    held_text, held_voice = set(), set()
    for path in hold_out:
        for row in read_manifest(path):
            held_text.add(row.get("text", ""))
            if row.get("voice"):
                held_voice.add(row["voice"])
    selected = {row.get("text", "") for path in only_sentences_of for row in read_manifest(path)}
    counts = {"kept": 0, "held_out_text": 0, "held_out_voice": 0, "duplicates": 0, "not_selected": 0}
    seen: set[Path] = set()
    merged = []
    base = out.resolve().parent
    for src in sources:
        for row in read_manifest(src):
            audio = resolve_audio_path(row, src)
            if selected and row.get("text", "") not in selected:
                counts["not_selected"] += 1
            elif not selected and row.get("text", "") in held_text:
                counts["held_out_text"] += 1
            elif row.get("voice") and row["voice"] in held_voice:
                counts["held_out_voice"] += 1
            elif audio in seen:
                counts["duplicates"] += 1
            else:
                seen.add(audio)
                merged.append({**row, "audio_filepath": os.path.relpath(audio, base)})
                counts["kept"] += 1
    return write_manifest(merged, out), counts


def split_manifest(
    source: str | os.PathLike,
    out: str | os.PathLike,
    held_out: str | os.PathLike,
    by: str = "speaker",
    fraction: float = 0.05,
) -> dict[str, int]:
    """Split a manifest in two by a field, so that no value of it is on both sides.

    A row goes to ``held_out`` when the md5 of its ``by`` value (``speaker``, ``voice``, ``text``
    ...; rows without it use their audio path) falls in the lowest ``fraction`` of the hash
    range: the same rows every time, and every row of one speaker on the same side. Typical use:
    carve a checkpoint-selection set of unseen speakers out of a training side, leaving the real
    dev split for scoring alone.

    Args:
        source: the manifest to split.
        out: the rows that stay (written with its ``.version`` sidecar).
        held_out: the rows held out.
        by: the field whose values must not be shared between the two sides.
        fraction: the share of values held out, in (0, 1).

    Returns:
        ``{"kept": n, "held_out": m}``.

    Raises:
        ValueError: ``fraction`` out of range.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    kept, held = [], []
    kept_base, held_base = Path(out).resolve().parent, Path(held_out).resolve().parent
    for row in read_manifest(source):
        key = str(row.get(by) or row["audio_filepath"])
        is_held = int(hashlib.md5(key.encode("utf-8")).hexdigest(), 16) % 10_000 < fraction * 10_000
        side, base = (held, held_base) if is_held else (kept, kept_base)
        side.append({**row, "audio_filepath": os.path.relpath(resolve_audio_path(row, source), base)})
    write_manifest(kept, out)
    write_manifest(held, held_out)
    return {"kept": len(kept), "held_out": len(held)}
