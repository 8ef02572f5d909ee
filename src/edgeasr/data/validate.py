"""``edgeasr data validate``: schema and statistical checks of a manifest, and its reference profile.

Every row is checked; nothing stops the run, and every problem is reported against its row
(1-based line number of the manifest) with a check name, a severity and a message.

**Errors** (the row is unusable; exit code 1):

- ``invalid_json``: the line is not a JSON object;
- ``schema``: a required field (``audio_filepath`` str, ``text`` str, ``duration`` number) is
  missing or of the wrong type;
- ``missing_file`` / ``unreadable``: the audio does not exist, or libsndfile cannot read it (empty
  files, truncated headers, text files);
- ``empty_audio``: zero frames;
- ``sample_rate`` / ``channels``: not 16 kHz, not mono;
- ``non_finite``: NaN or Inf samples;
- ``silent``: no frame rises above the silence threshold (:mod:`edgeasr.data.conditioning`);
- ``duration_bounds``: shorter than ``min_duration_s`` or longer than ``max_duration_s``;
- ``charset``: the text has characters that stay outside :data:`edgeasr.text.CHARSET` even
  after normalization (no spoken form: CJK, emoji, ...);
- ``not_normalized``: the text differs from its normalized form (upper case, digits,
  punctuation: the labelling convention was not applied);
- ``empty_text``: the text is empty;
- ``conflicting_labels``: the same audio (identical samples) appears under different texts.

**Warnings** (exit code 1 only with ``fail_on_warnings``):

- ``duration_mismatch``: the manifest's duration differs from the file's by more than
  ``duration_tolerance_s``;
- ``leading_silence`` / ``trailing_silence``: longer than the configured maximum;
- ``clipping``: a run of full-scale samples (:func:`edgeasr.data.conditioning.clipping_stats`);
- ``loudness``: outside ``loudness_range_dbfs``;
- ``speaking_rate``: characters per second of speech outside ``chars_per_second_range``;
- ``duplicate_audio``: the same audio appears twice with the same text;
- ``duration_outlier``: more than ``outlier_sigma`` standard deviations from the mean duration.

The **reference profile** (``ValidationReport.profile``) summarises the usable rows for drift
checks later: quantiles, mean and a histogram of duration, loudness, leading/trailing silence,
silence ratio, speaking rate (characters and words per second) and peak; counts per voice and
engine; vocabulary size and character frequencies; the manifest's data version.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgeasr.audio import SAMPLE_RATE, AudioError
from edgeasr.data.conditioning import ConditionOptions, clipping_stats, loudness_dbfs, silence_stats
from edgeasr.manifest import compute_data_version, contained_audio_path
from edgeasr.text import CHARSET, TextNormalizationError, normalize_text, unknown_characters

__all__ = [
    "CHECKS",
    "Issue",
    "ValidateOptions",
    "ValidationReport",
    "measure_audio",
    "validate_manifest",
]

CHECKS: dict[str, str] = {
    "invalid_json": "error",
    "schema": "error",
    "missing_file": "error",
    "outside": "error",
    "unreadable": "error",
    "empty_audio": "error",
    "sample_rate": "error",
    "channels": "error",
    "non_finite": "error",
    "silent": "error",
    "duration_bounds": "error",
    "charset": "error",
    "not_normalized": "error",
    "empty_text": "error",
    "conflicting_labels": "error",
    "duration_mismatch": "warning",
    "leading_silence": "warning",
    "trailing_silence": "warning",
    "clipping": "warning",
    "loudness": "warning",
    "speaking_rate": "warning",
    "duplicate_audio": "warning",
    "duration_outlier": "warning",
}
"""Every check and its severity."""


@dataclass(frozen=True)
class ValidateOptions:
    """Thresholds of the checks (defaults fit edgeasr's 16 kHz command-and-search utterances)."""

    sample_rate: int = SAMPLE_RATE  # required sample rate (Hz)
    channels: int = 1  # required channel count
    min_duration_s: float = 0.3  # shorter clips are errors
    max_duration_s: float = 20.0  # longer clips are errors
    duration_tolerance_s: float = 0.05  # allowed |manifest duration - file duration| (s)
    max_leading_silence_s: float = 1.0  # longer leading silence is a warning
    max_trailing_silence_s: float = 1.0  # longer trailing silence is a warning
    loudness_range_dbfs: tuple[float, float] = (-45.0, -6.0)  # loudness outside is a warning
    chars_per_second_range: tuple[float, float] = (4.0, 30.0)  # speaking rate outside is a warning
    outlier_sigma: float = 4.0  # durations this many standard deviations from the mean are outliers
    allow_outside: bool = False  # read audio the manifest names outside its own folder (refused otherwise)
    fail_on_warnings: bool = False  # exit code 1 on warnings too
    condition: ConditionOptions = field(default_factory=ConditionOptions)  # silence/clipping rules


@dataclass(frozen=True)
class Issue:
    """One problem found in one row."""

    line: int  # 1-based line of the manifest (0 for problems of the whole manifest)
    check: str  # a key of CHECKS
    severity: str  # "error" or "warning"
    message: str  # what is wrong, in words
    audio_filepath: str = ""  # the row's audio path as written, when known


PROFILE_SAMPLE = 2000
"""Values of each feature a reference profile keeps for drift tests (a fixed random sample)."""


def _quantiles(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    a = np.asarray(values, dtype=np.float64)
    qs = [1, 5, 25, 50, 75, 95, 99]
    hist, edges = np.histogram(a, bins=20)
    # a fixed random sample of the values: what a drift test compares a live window with
    sample = a if a.size <= PROFILE_SAMPLE else np.random.default_rng(0).choice(a, PROFILE_SAMPLE, replace=False)
    return {
        "count": int(a.size),
        "mean": float(a.mean()),
        "std": float(a.std()),
        "min": float(a.min()),
        "max": float(a.max()),
        "quantiles": {f"p{q}": float(v) for q, v in zip(qs, np.percentile(a, qs), strict=True)},
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in hist]},
        "sample": [round(float(v), 5) for v in sample],
    }


@dataclass
class ValidationReport:
    """The result of :func:`validate_manifest`."""

    manifest: str  # the manifest validated
    rows: int  # lines that hold a row (blank lines excluded)
    usable_rows: int  # rows with no error
    hours: float  # audio hours in usable rows
    issues: list[Issue]  # every problem, in line order
    profile: dict  # the reference profile (see the module docstring)
    options: ValidateOptions  # the thresholds used

    @property
    def counts(self) -> dict[str, int]:
        """Number of issues per check (checks with none omitted)."""
        return dict(Counter(i.check for i in self.issues))

    @property
    def errors(self) -> int:
        """Number of error issues."""
        return sum(1 for i in self.issues if i.severity == "error")

    @property
    def warnings(self) -> int:
        """Number of warning issues."""
        return sum(1 for i in self.issues if i.severity == "warning")

    @property
    def exit_code(self) -> int:
        """0 when clean, 1 when there are errors (or warnings with ``fail_on_warnings``)."""
        if self.errors or (self.options.fail_on_warnings and self.warnings):
            return 1
        return 0

    def to_dict(self) -> dict:
        """The report as JSON-ready data.

        Returns:
            Summary, counts per check, every issue and the profile.
        """
        return {
            "manifest": self.manifest,
            "rows": self.rows,
            "usable_rows": self.usable_rows,
            "hours": round(self.hours, 4),
            "errors": self.errors,
            "warnings": self.warnings,
            "exit_code": self.exit_code,
            "counts": self.counts,
            "issues": [asdict(i) for i in self.issues],
            "profile": self.profile,
            "options": asdict(self.options),
        }

    def table(self, examples: int = 1) -> str:
        """A readable summary: one line per check that found something, with an example.

        Args:
            examples: how many example rows to show per check.

        Returns:
            The text table.
        """
        lines = [
            f"{self.manifest}: {self.rows} rows, {self.usable_rows} usable ({self.hours:.2f} h), "
            f"{self.errors} errors, {self.warnings} warnings",
        ]
        counts = self.counts
        if not counts:
            lines.append("all checks passed")
            return "\n".join(lines)
        width = max(len(c) for c in counts)
        lines.append(f"{'check':<{width}}  {'severity':<8}  {'count':>6}  example")
        for check in CHECKS:
            if check not in counts:
                continue
            shown = [i for i in self.issues if i.check == check][:examples]
            example = "; ".join(f"line {i.line}: {i.message}" for i in shown)
            if len(example) > 100:
                example = example[:97] + "..."
            lines.append(f"{check:<{width}}  {CHECKS[check]:<8}  {counts[check]:>6}  {example}")
        return "\n".join(lines)


def _read_lines(path: Path) -> list[tuple[int, dict | None, str]]:
    out = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                out.append((lineno, None, f"not JSON ({exc.msg})"))
                continue
            if not isinstance(row, dict):
                out.append((lineno, None, "not a JSON object"))
                continue
            out.append((lineno, row, ""))
    return out


def measure_audio(wave: np.ndarray, rate: int = SAMPLE_RATE, condition: ConditionOptions | None = None) -> dict:
    """What a clip's audio says about how it was recorded (one implementation: validation and monitoring).

    Returns:
        ``duration``, ``leading_silence``, ``trailing_silence`` (s), ``silence_ratio``, ``peak``,
        ``clipped_samples``, ``clipped_runs``, ``clipping_ratio``, ``speech_seconds``,
        ``high_band_db`` (the share of energy above 4 kHz, dB), and ``loudness`` (dBFS of the
        active frames) when any frame is active; ``_active`` says whether one is.
    """
    condition = condition or ConditionOptions()
    duration = wave.size / rate
    sil = silence_stats(wave, condition, rate)
    clip = clipping_stats(wave, condition)
    m: dict = {
        "duration": duration,
        "leading_silence": sil.leading_s,
        "trailing_silence": sil.trailing_s,
        "silence_ratio": 1.0 - sil.active_ratio,
        "peak": clip.peak,
        "clipped_samples": clip.clipped_samples,
        "clipped_runs": clip.clipped_runs,
        "clipping_ratio": clip.clipped_samples / max(wave.size, 1),
        "speech_seconds": max(duration - sil.leading_s - sil.trailing_s, 1e-3),
        "_active": sil.has_activity,
    }
    if sil.has_activity:
        m["loudness"] = loudness_dbfs(wave, condition, rate)
    spectrum = np.abs(np.fft.rfft(wave.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(wave.size, 1.0 / rate)
    total = float(spectrum.sum())
    if total > 0:  # a telephone or 8 kHz path leaves nothing above 4 kHz
        m["high_band_db"] = 10.0 * np.log10(float(spectrum[freqs >= 4000.0].sum()) / total + 1e-10)
    return m


def _check_audio(path: Path, options: ValidateOptions) -> tuple[list[tuple[str, str]], dict]:
    """Read one file and measure it; returns (problems as (check, message), measurements)."""
    import soundfile as sf

    problems: list[tuple[str, str]] = []
    if not path.is_file():
        return [("missing_file", f"{path} does not exist")], {}
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        size = path.stat().st_size
        return [("unreadable", f"not readable as audio ({size} bytes): {str(exc).splitlines()[0][:120]}")], {}
    frames, channels = data.shape
    if frames == 0:
        return [("empty_audio", "the file holds 0 samples")], {}
    if rate != options.sample_rate:
        problems.append(("sample_rate", f"{rate} Hz, expected {options.sample_rate} Hz"))
    if channels != options.channels:
        problems.append(("channels", f"{channels} channels, expected {options.channels}"))
    if not np.all(np.isfinite(data)):
        bad = int(np.sum(~np.isfinite(data)))
        problems.append(("non_finite", f"{bad} NaN/Inf samples"))
        return problems, {"duration": frames / rate}
    wave = data.mean(axis=1) if channels > 1 else data[:, 0]
    m = measure_audio(wave, rate, options.condition)
    sil_active = m.pop("_active")
    pcm = np.round(np.clip(wave, -1, 1) * 32767).astype(np.int16)
    m["hash"] = hashlib.sha1(pcm.tobytes() + str(rate).encode()).hexdigest()
    if not sil_active:
        problems.append(("silent", "no frame above the silence threshold"))
        return problems, m
    if m["clipped_runs"]:
        problems.append(("clipping", f"{m['clipped_runs']} runs of clipped samples ({m['clipped_samples']} samples)"))
    if m["leading_silence"] > options.max_leading_silence_s:
        problems.append(
            (
                "leading_silence",
                f"{m['leading_silence']:.2f} s of leading silence (max {options.max_leading_silence_s:.2f} s)",
            )
        )
    if m["trailing_silence"] > options.max_trailing_silence_s:
        problems.append(
            (
                "trailing_silence",
                f"{m['trailing_silence']:.2f} s of trailing silence (max {options.max_trailing_silence_s:.2f} s)",
            )
        )
    lo, hi = options.loudness_range_dbfs
    if not lo <= m["loudness"] <= hi:
        problems.append(("loudness", f"loudness {m['loudness']:.1f} dBFS outside [{lo:g}, {hi:g}]"))
    return problems, m


def _check_text(text: str) -> list[tuple[str, str]]:
    if not text.strip():
        return [("empty_text", "the text is empty")]
    try:
        normalized = normalize_text(text)
    except TextNormalizationError as exc:
        shown = ", ".join(f"{c!r}" for c in exc.characters[:10])
        return [("charset", f"characters with no spoken form in {CHARSET!r} even after normalization: {shown}")]
    if normalized != text:
        outside = unknown_characters(text)
        extra = f" (characters outside the set: {''.join(outside)!r})" if outside else ""
        return [("not_normalized", f"{text!r} should be {normalized!r}{extra}")]
    return []


def validate_manifest(
    manifest: str | os.PathLike, options: ValidateOptions | None = None, progress: bool = False
) -> ValidationReport:
    """Validate every row of a manifest and build its reference profile.

    Args:
        manifest: a JSONL manifest (relative audio paths resolved against its folder).
        options: thresholds.
        progress: show a tqdm progress bar.

    Returns:
        The report (use ``report.exit_code`` to gate CI).

    Raises:
        OSError: the manifest itself cannot be opened.
    """
    from tqdm import tqdm

    options = options or ValidateOptions()
    path = Path(manifest)
    entries = _read_lines(path)
    issues: list[Issue] = []
    measures: list[tuple[int, dict, dict]] = []  # (line, row, measurements) of rows without errors
    hashes: dict[str, list[tuple[int, str, str]]] = {}
    bad_lines: set[int] = set()

    def add(line: int, check: str, message: str, audio: str = "") -> None:
        issues.append(Issue(line, check, CHECKS[check], message, audio))
        if CHECKS[check] == "error":
            bad_lines.add(line)

    for lineno, row, err in tqdm(entries, disable=not progress, unit="row", desc="validate"):
        if row is None:
            add(lineno, "invalid_json", err)
            continue
        audio_field = row.get("audio_filepath")
        text = row.get("text")
        duration = row.get("duration")
        schema = []
        if not isinstance(audio_field, str) or not audio_field:
            schema.append("audio_filepath must be a non-empty string")
        if not isinstance(text, str):
            schema.append("text must be a string")
        if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not math.isfinite(duration):
            schema.append("duration must be a finite number")
        audio_str = audio_field if isinstance(audio_field, str) else ""
        if schema:
            add(lineno, "schema", "; ".join(schema), audio_str)
        if isinstance(text, str):
            for check, message in _check_text(text):
                add(lineno, check, message, audio_str)
        if not audio_str:
            continue
        try:
            audio_path = contained_audio_path(row, path, options.allow_outside)
        except AudioError as exc:  # e.g. /etc/passwd or ../../: not read, not measured
            add(lineno, "outside", str(exc), audio_str)
            continue
        problems, m = _check_audio(audio_path, options)
        for check, message in problems:
            add(lineno, check, message, audio_str)
        if "duration" in m:
            d = m["duration"]
            if not options.min_duration_s <= d <= options.max_duration_s:
                add(
                    lineno,
                    "duration_bounds",
                    f"{d:.3f} s outside [{options.min_duration_s:g}, {options.max_duration_s:g}] s",
                    audio_str,
                )
            if (
                isinstance(duration, (int, float))
                and not isinstance(duration, bool)
                and abs(float(duration) - d) > options.duration_tolerance_s
            ):
                add(
                    lineno,
                    "duration_mismatch",
                    f"manifest says {duration} s, the file is {d:.3f} s",
                    audio_str,
                )
        if "hash" in m:
            hashes.setdefault(m["hash"], []).append((lineno, text if isinstance(text, str) else "", audio_str))
        if lineno not in bad_lines and "loudness" in m and isinstance(text, str):
            m["chars_per_second"] = len(text.replace(" ", "")) / m["speech_seconds"]
            m["words_per_second"] = len(text.split()) / m["speech_seconds"]
            lo, hi = options.chars_per_second_range
            if not lo <= m["chars_per_second"] <= hi:
                add(
                    lineno,
                    "speaking_rate",
                    f"{m['chars_per_second']:.1f} characters per second of speech outside [{lo:g}, {hi:g}]",
                    audio_str,
                )
            measures.append((lineno, row, m))

    for group in hashes.values():
        if len(group) < 2:
            continue
        texts = {t for _, t, _ in group}
        lines = ", ".join(str(ln) for ln, _, _ in group)
        for ln, _, audio in group:
            if len(texts) > 1:
                add(
                    ln,
                    "conflicting_labels",
                    f"same audio as lines {lines} under {len(texts)} different texts",
                    audio,
                )
            else:
                add(ln, "duplicate_audio", f"same audio and text as lines {lines}", audio)

    usable = [(ln, row, m) for ln, row, m in measures if ln not in bad_lines]
    durations = [m["duration"] for _, _, m in usable]
    if len(durations) >= 10:
        mean, std = float(np.mean(durations)), float(np.std(durations))
        if std > 0:
            for ln, row, m in usable:
                z = (m["duration"] - mean) / std
                if abs(z) > options.outlier_sigma:
                    add(
                        ln,
                        "duration_outlier",
                        f"{m['duration']:.2f} s is {z:+.1f} standard deviations from the mean {mean:.2f} s",
                        str(row.get("audio_filepath", "")),
                    )
    issues.sort(key=lambda i: (i.line, list(CHECKS).index(i.check)))
    profile = _profile(path, entries, usable)
    return ValidationReport(
        manifest=str(path),
        rows=len(entries),
        usable_rows=len(usable),
        hours=sum(durations) / 3600.0,
        issues=issues,
        profile=profile,
        options=options,
    )


def _profile(path: Path, entries: list[tuple[int, dict | None, str]], usable: list[tuple[int, dict, dict]]) -> dict:
    rows = [row for _, row, _ in usable]
    texts = [str(r.get("text", "")) for r in rows]
    chars = Counter(c for t in texts for c in t)
    words = Counter(w for t in texts for w in t.split())
    try:
        version = compute_data_version([row for _, row, _ in entries if row is not None], path)
    except Exception as exc:  # a data version is informative here, never a reason to fail
        version = f"unavailable ({exc})"
    profile = {
        "manifest": str(path),
        "data_version": version,
        "rows": len(usable),
        "hours": sum(m["duration"] for _, _, m in usable) / 3600.0,
        "vocabulary_size": len(words),
        "characters": dict(sorted(chars.items())),
        "voices": dict(Counter(str(r.get("voice", "")) for r in rows if "voice" in r).most_common()),
        "engines": dict(Counter(str(r.get("engine", "")) for r in rows if "engine" in r).most_common()),
    }
    for key in (
        "duration",
        "loudness",
        "leading_silence",
        "trailing_silence",
        "silence_ratio",
        "chars_per_second",
        "words_per_second",
        "peak",
        "clipping_ratio",
        "high_band_db",
    ):
        profile[key] = _quantiles([float(m[key]) for _, _, m in usable if key in m])
    return profile
