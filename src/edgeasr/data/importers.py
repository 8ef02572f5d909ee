"""``edgeasr data import``: existing corpora into edgeasr's form (16 kHz mono WAV + manifest).

Four layouts are read (``layout="auto"`` picks one from what ``source`` is):

- ``folder``: audio files (``.wav .flac .ogg .mp3 .opus``) anywhere under a folder, each with a
  ``.txt`` of the same stem holding its transcript;
- ``librispeech``: ``<root>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` whose lines are
  ``<utterance-id> <TEXT>``, audio in ``<utterance-id>.flac`` beside it (``voice`` = speaker);
- ``commonvoice``: a Common Voice ``.tsv`` (columns ``path`` and ``sentence``, optionally
  ``client_id``) with the clips in ``clips/`` beside it (or beside the TSV itself);
- ``jsonl``: an existing manifest (``audio_filepath``, ``text``; extra fields are kept).

Every utterance is decoded with libsndfile (soundfile), mixed down to mono, resampled to 16 kHz
with soxr (:func:`edgeasr.audio.load_audio`), conditioned (:mod:`edgeasr.data.conditioning`), written as
16-bit WAV under ``<out>/wavs/``, and its text normalized (:mod:`edgeasr.text`). A row that
cannot be used (unreadable, empty, NaN, silent, no transcript, unknown characters) goes to
``<out>/<split>.rejected.jsonl`` with the reason and is counted; nothing is dropped silently.
A source clipped at full scale is imported but marked ``"clipped": true`` (detected before
loudness normalisation hides it), and counted in the summary.
Re-running skips outputs that already exist and read back as valid (resumable).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeasr.audio import SAMPLE_RATE, AudioError, load_audio, valid_wav_seconds
from edgeasr.data.conditioning import ConditionOptions, clipping_stats, condition_waveform, silence_stats
from edgeasr.manifest import resolve_audio_path, write_manifest
from edgeasr.text import DEFAULT_OPTIONS, NormalizeOptions, TextNormalizationError, normalize_text

__all__ = [
    "AUDIO_EXTENSIONS",
    "ImportOptions",
    "ImportSummary",
    "SourceItem",
    "detect_layout",
    "import_corpus",
    "list_source",
    "read_path_list",
]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".opus")
"""Audio file types the ``folder`` layout looks for (all read by libsndfile)."""

LAYOUTS = ("folder", "librispeech", "commonvoice", "jsonl")


@dataclass(frozen=True)
class ImportOptions:
    """How to import."""

    layout: str = "auto"  # "auto", "folder", "librispeech", "commonvoice" or "jsonl"
    split: str = "train"  # manifest name (<split>.jsonl) and the rows' split field
    condition: ConditionOptions = field(default_factory=ConditionOptions)  # trimming and loudness
    normalize: NormalizeOptions = DEFAULT_OPTIONS  # the labelling convention
    workers: int = 1  # worker processes
    max_rows: int = 0  # import at most this many rows (0: all)
    only: frozenset[str] = frozenset()  # import only these audio paths (relative to the source's folder); empty: all
    exclude: frozenset[str] = frozenset()  # never import these audio paths (relative to the source's folder)


@dataclass(frozen=True)
class SourceItem:
    """One utterance found in the source, before decoding."""

    key: str  # a unique id within the source (becomes the WAV's stem)
    audio: str  # absolute path of the audio ("" when the source row names none)
    text: str | None  # the raw transcript (None when it could not be found)
    extra: dict  # fields kept in the manifest (voice, source path, original row fields)
    problem: str = ""  # why the item is unusable before decoding ("" when fine)


@dataclass(frozen=True)
class ImportSummary:
    """What an import produced."""

    out_dir: str  # the output folder
    manifest: str  # the manifest written
    imported: int  # rows in the manifest
    rejected: int  # rows in the rejected list
    reasons: dict  # rejected rows per reason class
    version: str  # data version of the manifest
    clipped: int = 0  # imported rows whose source was clipped (marked "clipped": true)

    def describe(self) -> str:
        """One readable line.

        Returns:
            The summary in words.
        """
        why = ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items()))
        return (
            f"{self.manifest}: {self.imported} rows imported ({self.version}, {self.clipped} clipped at the "
            f"source); {self.rejected} rejected" + (f" ({why}; see the .rejected.jsonl)" if self.rejected else "")
        )


def detect_layout(source: str | os.PathLike) -> str:
    """Guess the layout of ``source``.

    Args:
        source: a folder, a ``.tsv`` or a ``.jsonl``.

    Returns:
        One of ``folder``, ``librispeech``, ``commonvoice``, ``jsonl``.

    Raises:
        ValueError: ``source`` does not exist or is a file of another kind.
    """
    p = Path(source)
    if p.is_file():
        if p.suffix == ".jsonl":
            return "jsonl"
        if p.suffix == ".tsv":
            return "commonvoice"
        raise ValueError(f"{p}: a file source must be a .jsonl manifest or a Common Voice .tsv")
    if not p.is_dir():
        raise ValueError(f"{p}: no such file or folder")
    if next(p.rglob("*.trans.txt"), None) is not None:
        return "librispeech"
    return "folder"


def _key(*parts: str) -> str:
    raw = "-".join(parts)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in raw)[-80:]
    return f"{safe}-{hashlib.sha1(raw.encode()).hexdigest()[:8]}"


def _list_folder(root: Path) -> list[SourceItem]:
    items = []
    for audio in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()):
        rel = str(audio.relative_to(root))
        txt = audio.with_suffix(".txt")
        if not txt.is_file():
            items.append(SourceItem(_key(rel), str(audio), None, {"source": rel}, f"no transcript {txt.name}"))
            continue
        try:
            text = txt.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            items.append(SourceItem(_key(rel), str(audio), None, {"source": rel}, f"transcript unreadable: {exc}"))
            continue
        items.append(SourceItem(_key(rel), str(audio), text, {"source": rel}))
    return items


def _list_librispeech(root: Path) -> list[SourceItem]:
    items = []
    for trans in sorted(root.rglob("*.trans.txt")):
        for lineno, line in enumerate(trans.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            utt, _, text = line.strip().partition(" ")
            speaker = utt.split("-")[0]
            audio = trans.parent / f"{utt}.flac"
            rel = str(audio.relative_to(root))
            problem = "" if audio.is_file() else f"{rel} listed in {trans.name}:{lineno} does not exist"
            items.append(
                SourceItem(_key(utt), str(audio), text, {"voice": f"librispeech-{speaker}", "source": rel}, problem)
            )
    return items


def _list_commonvoice(tsv: Path) -> list[SourceItem]:
    clips = tsv.parent / "clips"
    if not clips.is_dir():
        clips = tsv.parent
    items = []
    with open(tsv, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = {"path", "sentence"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{tsv}: not a Common Voice TSV (missing columns {sorted(missing)})")
        for lineno, rec in enumerate(reader, 2):
            name = (rec.get("path") or "").strip()
            if not name:
                items.append(SourceItem(_key(str(lineno)), "", rec.get("sentence"), {}, f"line {lineno}: no path"))
                continue
            audio = clips / name
            extra = {"source": name}
            if rec.get("client_id"):
                extra["voice"] = "cv-" + rec["client_id"][:16]
            problem = "" if audio.is_file() else f"{name} does not exist in {clips}"
            items.append(SourceItem(_key(Path(name).stem), str(audio), rec.get("sentence"), extra, problem))
    return items


def _list_jsonl(manifest: Path) -> list[SourceItem]:
    items = []
    with open(manifest, encoding="utf-8", errors="replace") as fh:
        lines = list(enumerate(fh, 1))
    for i, line in lines:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            items.append(SourceItem(_key(str(i)), "", None, {"source": f"line {i}"}, f"line {i}: not JSON ({exc.msg})"))
            continue
        if not isinstance(row, dict):
            items.append(SourceItem(_key(str(i)), "", None, {"source": f"line {i}"}, f"line {i}: not a JSON object"))
            continue
        audio_field = row.get("audio_filepath")
        extra = {k: v for k, v in row.items() if k not in ("audio_filepath", "text", "duration")}
        if not isinstance(audio_field, str) or not audio_field:
            items.append(SourceItem(_key(str(i)), "", row.get("text"), extra, f"line {i}: no audio_filepath"))
            continue
        audio = resolve_audio_path(row, manifest)
        text = row.get("text")
        problem = "" if isinstance(text, str) else f"line {i}: text is not a string"
        items.append(
            SourceItem(
                _key(str(i), Path(audio_field).stem),
                str(audio),
                text if isinstance(text, str) else None,
                {**extra, "source": audio_field},
                problem,
            )
        )
    return items


def list_source(source: str | os.PathLike, layout: str = "auto") -> tuple[str, list[SourceItem]]:
    """Find every utterance of a source.

    Args:
        source: folder, LibriSpeech root, Common Voice TSV or JSONL manifest.
        layout: one of :data:`LAYOUTS` or ``auto``.

    Returns:
        The layout used and the items (problems recorded on the items, not raised).

    Raises:
        ValueError: the layout is unknown or does not fit the source.
    """
    if layout == "auto":
        layout = detect_layout(source)
    p = Path(source)
    if layout == "folder":
        if not p.is_dir():
            raise ValueError(f"{p}: the folder layout needs a folder")
        return layout, _list_folder(p)
    if layout == "librispeech":
        if not p.is_dir():
            raise ValueError(f"{p}: the librispeech layout needs a folder")
        return layout, _list_librispeech(p)
    if layout == "commonvoice":
        if not p.is_file():
            raise ValueError(f"{p}: the commonvoice layout needs a .tsv file")
        return layout, _list_commonvoice(p)
    if layout == "jsonl":
        if not p.is_file():
            raise ValueError(f"{p}: the jsonl layout needs a manifest file")
        return layout, _list_jsonl(p)
    raise ValueError(f"unknown layout {layout!r}; choose from auto, {', '.join(LAYOUTS)}")


def _import_one(args: tuple[SourceItem, str, ImportOptions]) -> dict:
    """Worker: decode, check, condition and write one item; returns a row or a rejection."""
    from edgeasr.data.synth import write_wave

    item, wav_dir, options = args
    if item.problem:
        return {"reject": item.problem, "class": "bad_source_row", "item": item}
    if item.text is None:
        return {"reject": "no transcript", "class": "no_text", "item": item}
    try:
        text = normalize_text(item.text, options.normalize)
    except TextNormalizationError as exc:
        return {"reject": str(exc), "class": "unknown_characters", "item": item}
    if not text:
        return {
            "reject": f"text {item.text!r} is empty after normalization",
            "class": "empty_text",
            "item": item,
        }
    out = Path(wav_dir) / f"{item.key}.wav"
    duration = valid_wav_seconds(out)
    if duration is None:
        try:
            wave = load_audio(item.audio)
        except AudioError as exc:
            return {"reject": str(exc), "class": "unreadable", "item": item}
        if wave.size == 0:
            return {"reject": f"{item.audio}: empty audio (0 samples)", "class": "empty_audio", "item": item}
        if not np.all(np.isfinite(wave)):
            return {"reject": f"{item.audio}: NaN or Inf samples", "class": "non_finite", "item": item}
        if not silence_stats(wave, options.condition).has_activity:
            return {
                "reject": f"{item.audio}: silent (no frame above the silence threshold)",
                "class": "silent",
                "item": item,
            }
        clipped = clipping_stats(wave, options.condition).is_clipped
        wave = condition_waveform(wave, options.condition)
        write_wave(out, wave)
        duration = wave.size / SAMPLE_RATE
    else:
        clipped = bool(item.extra.get("clipped", False))
    row = {
        "audio_filepath": f"wavs/{out.name}",
        "text": text,
        "duration": round(duration, 4),
        **{k: v for k, v in item.extra.items() if k not in ("split", "clipped")},
        "split": options.split,
    }
    if clipped:
        row["clipped"] = True  # the source was clipped (detected before loudness normalisation)
    return {"row": row}


def _selected(item: SourceItem, source: Path, options: ImportOptions) -> bool:
    """Whether ``item`` passes ``options.only`` / ``options.exclude`` (paths relative to the source's folder)."""
    base = source if source.is_dir() else source.parent
    rel = Path(os.path.relpath(item.audio, base)).as_posix() if item.audio else ""
    if options.only and rel not in options.only:
        return False
    return rel not in options.exclude


def read_path_list(path: str | os.PathLike) -> frozenset[str]:
    """A list of audio paths, one per line (blank lines and ``#`` comments skipped), e.g. a ``dev.txt``."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return frozenset(s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#"))


def import_corpus(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: ImportOptions | None = None,
    progress: bool = True,
) -> ImportSummary:
    """Import a corpus into ``out_dir`` (``wavs/``, ``<split>.jsonl`` and its ``.version``).

    Args:
        source: folder, LibriSpeech root, Common Voice TSV or JSONL manifest.
        out_dir: the output folder.
        options: layout, split name, conditioning, workers.
        progress: show a tqdm progress bar.

    Returns:
        The summary; rejected rows are listed in ``<out>/<split>.rejected.jsonl``.

    Raises:
        ValueError: the source or layout is unusable as a whole.
    """
    from tqdm import tqdm

    options = options or ImportOptions()
    _layout, items = list_source(source, options.layout)
    if options.only or options.exclude:
        items = [it for it in items if _selected(it, Path(source), options)]
    if options.max_rows > 0:
        items = items[: options.max_rows]
    out = Path(out_dir)
    wav_dir = out / "wavs"
    wav_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(it, str(wav_dir), options) for it in items]
    results: list[dict] = []
    pool_ctx = contextlib.nullcontext(None)
    if options.workers > 1 and len(jobs) > 1:
        import multiprocessing

        pool_ctx = multiprocessing.get_context("spawn").Pool(options.workers)
    with pool_ctx as pool:
        it = pool.imap(_import_one, jobs, chunksize=16) if pool else map(_import_one, jobs)
        for r in tqdm(it, total=len(jobs), disable=not progress, unit="utt", desc="import"):
            results.append(r)
    rows = [r["row"] for r in results if "row" in r]
    rejected = [r for r in results if "reject" in r]
    manifest = out / f"{options.split}.jsonl"
    version = write_manifest(rows, manifest)
    with open(out / f"{options.split}.rejected.jsonl", "w", encoding="utf-8") as fh:
        for r in rejected:
            item: SourceItem = r["item"]
            fh.write(
                json.dumps(
                    {
                        "source": item.extra.get("source", item.audio),
                        "text": item.text,
                        "reason": r["reject"],
                        "class": r["class"],
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
    return ImportSummary(
        out_dir=str(out),
        manifest=str(manifest),
        imported=len(rows),
        rejected=len(rejected),
        reasons=dict(Counter(r["class"] for r in rejected)),
        version=version,
        clipped=sum(1 for r in rows if r.get("clipped")),
    )
