"""Audio conditioning: silence trimming, loudness normalisation, clipping detection.

Every clip edgeasr writes (synthesized or imported) goes through :func:`condition_waveform` with
:class:`ConditionOptions`, and ``edgeasr data validate`` measures the same quantities with the same
functions, so the rules below are the data stage's single definition of "silence", "loudness"
and "clipped".

**Frames.** Audio (16 kHz mono float32) is cut into non-overlapping frames of ``frame_ms``
(20 ms). A frame's level is its RMS in dBFS, ``20 log10(rms)`` (a full-scale square wave reads 0 dBFS, a
full-scale sine -3 dBFS).

**Silence.** A frame is *active* when its level is at least ``max(peak_frame_level +
relative_threshold_db, absolute_threshold_dbfs)``: by default within 35 dB of the loudest frame
and above -60 dBFS. Leading silence is the time before the first active frame, trailing silence
the time after the last. Trimming keeps ``margin_s`` (default 0.15 s) of audio on each side of
the active region; where the clip has less, digital silence is added (``pad``), so every clip
starts and ends with the same documented margin. A clip with no active frame is left as it is
(it is reported, not emptied).

**Loudness.** Loudness is the RMS level (dBFS) over the active frames only, so pauses do not
lower it (a simple speech-level measure, not ITU-R BS.1770 LUFS: no K-weighting, no gating
blocks; written by hand, numpy only). Normalisation applies one gain so that the loudness becomes
``target_dbfs`` (default -23 dBFS), then lowers the gain if needed so the sample peak stays at or
below ``peak_limit_dbfs`` (default -1 dBFS); it never clips. Silent clips are left unchanged.

**Clipping.** A sample is clipped when ``|x| >= clip_level`` (default 0.999 of full scale).
A clip is *clipped* when it holds a run of at least ``clip_run`` (default 3) consecutive clipped
samples; :func:`clipping_stats` reports the count of clipped samples and of such runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeasr import features
from edgeasr.audio import SAMPLE_RATE

__all__ = [
    "ClippingStats",
    "ConditionOptions",
    "SilenceStats",
    "active_frames",
    "clipping_stats",
    "condition_waveform",
    "frame_levels_db",
    "loudness_dbfs",
    "normalize_loudness",
    "silence_stats",
    "trim_silence",
]

_EPS = 1e-10


@dataclass(frozen=True)
class ConditionOptions:
    """The conditioning rules' parameters (defaults are the house convention)."""

    trim: bool = True  # trim leading/trailing silence down to margin_s
    margin_s: float = 0.15  # silence kept before the first and after the last active frame (s)
    pad: bool = True  # when trimming, also pad with digital silence up to margin_s on each side
    frame_ms: float = 20.0  # analysis frame length (ms)
    relative_threshold_db: float = -35.0  # a frame is active within this many dB of the loudest frame
    absolute_threshold_dbfs: float = -60.0  # ...and never below this absolute level
    normalize: bool = True  # apply loudness normalisation
    target_dbfs: float = -23.0  # loudness target: RMS over active frames (dBFS)
    peak_limit_dbfs: float = -1.0  # the gain is lowered so the sample peak stays below this (dBFS)
    clip_level: float = 0.999  # |x| at or above this is a clipped sample
    clip_run: int = 3  # this many consecutive clipped samples make the clip "clipped"


DEFAULT_CONDITION = ConditionOptions()


def frame_levels_db(
    wave: np.ndarray, options: ConditionOptions = DEFAULT_CONDITION, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """RMS level of each frame in dBFS (a final partial frame counts as a frame).

    Args:
        wave: mono float audio.
        options: supplies ``frame_ms``.
        sample_rate: the rate of ``wave``.

    Returns:
        One level per frame (empty for empty audio); -200 dBFS for digital silence. The runtime
        measures frames with the same function (:func:`edgeasr.features.frame_levels_db`).
    """
    return features.frame_levels_db(wave, max(1, round(sample_rate * options.frame_ms / 1000)))


def active_frames(
    wave: np.ndarray, options: ConditionOptions = DEFAULT_CONDITION, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Boolean mask of active (non-silent) frames, per the silence rule of the module docstring.

    Args:
        wave: mono float audio.
        options: thresholds and frame length.
        sample_rate: the rate of ``wave``.

    Returns:
        One bool per frame.
    """
    levels = frame_levels_db(wave, options, sample_rate)
    if levels.size == 0:
        return np.zeros(0, dtype=bool)
    threshold = max(float(levels.max()) + options.relative_threshold_db, options.absolute_threshold_dbfs)
    return levels >= threshold


@dataclass(frozen=True)
class SilenceStats:
    """Where the speech lies in a clip."""

    leading_s: float  # silence before the first active frame (s); the whole clip when none is active
    trailing_s: float  # silence after the last active frame (s)
    active_ratio: float  # share of frames that are active (0..1)
    has_activity: bool  # False when no frame reaches the threshold


def silence_stats(
    wave: np.ndarray, options: ConditionOptions = DEFAULT_CONDITION, sample_rate: int = SAMPLE_RATE
) -> SilenceStats:
    """Measure leading/trailing silence and the active share of a clip.

    Args:
        wave: mono float audio.
        options: thresholds and frame length.
        sample_rate: the rate of ``wave``.

    Returns:
        The silence statistics.
    """
    mask = active_frames(wave, options, sample_rate)
    total = wave.size / sample_rate
    if not mask.any():
        return SilenceStats(total, total, 0.0, False)
    hop = max(1, round(sample_rate * options.frame_ms / 1000))
    idx = np.flatnonzero(mask)
    lead = idx[0] * hop / sample_rate
    trail = max(0.0, total - (idx[-1] + 1) * hop / sample_rate)
    return SilenceStats(lead, trail, float(mask.mean()), True)


def trim_silence(
    wave: np.ndarray, options: ConditionOptions = DEFAULT_CONDITION, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Cut leading and trailing silence down to ``options.margin_s``.

    Args:
        wave: mono float audio.
        options: thresholds, frame length and margin.
        sample_rate: the rate of ``wave``.

    Returns:
        A view of ``wave``, or a padded copy when ``options.pad`` and an end had less than the
        margin (``wave`` itself when no frame is active).
    """
    mask = active_frames(wave, options, sample_rate)
    if not mask.any():
        return wave
    hop = max(1, round(sample_rate * options.frame_ms / 1000))
    idx = np.flatnonzero(mask)
    margin = round(options.margin_s * sample_rate)
    first, last = idx[0] * hop, min(wave.size, (idx[-1] + 1) * hop)
    start = max(0, first - margin)
    end = min(wave.size, last + margin)
    out = wave[start:end]
    if options.pad and (first - start < margin or end - last < margin):
        out = np.concatenate(
            [
                np.zeros(margin - (first - start), dtype=wave.dtype),
                out,
                np.zeros(margin - (end - last), dtype=wave.dtype),
            ]
        )
    return out


def loudness_dbfs(
    wave: np.ndarray, options: ConditionOptions = DEFAULT_CONDITION, sample_rate: int = SAMPLE_RATE
) -> float:
    """Loudness: RMS level over the active frames (dBFS); -inf for silent or empty audio.

    Args:
        wave: mono float audio.
        options: thresholds and frame length.
        sample_rate: the rate of ``wave``.

    Returns:
        The loudness in dBFS.
    """
    levels = frame_levels_db(wave, options, sample_rate)
    if levels.size == 0 or float(levels.max()) < options.absolute_threshold_dbfs:
        return float("-inf")
    mask = active_frames(wave, options, sample_rate)
    power = np.mean(10.0 ** (levels[mask] / 10.0))
    return float(10.0 * np.log10(max(power, 1e-20)))


def normalize_loudness(
    wave: np.ndarray, options: ConditionOptions = DEFAULT_CONDITION, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Scale a clip to ``options.target_dbfs`` loudness, peak kept below ``peak_limit_dbfs``.

    Args:
        wave: mono float audio.
        options: target and peak limit.
        sample_rate: the rate of ``wave``.

    Returns:
        A new float32 array (``wave`` itself when it is silent).
    """
    loud = loudness_dbfs(wave, options, sample_rate)
    if not np.isfinite(loud):
        return wave
    gain = 10.0 ** ((options.target_dbfs - loud) / 20.0)
    peak = float(np.max(np.abs(wave))) * gain
    limit = 10.0 ** (options.peak_limit_dbfs / 20.0)
    if peak > limit:
        gain *= limit / peak
    return (wave * gain).astype(np.float32)


@dataclass(frozen=True)
class ClippingStats:
    """How much of a clip sits at full scale."""

    clipped_samples: int  # samples with |x| >= clip_level
    clipped_runs: int  # runs of at least clip_run consecutive clipped samples
    peak: float  # the largest |x|

    @property
    def is_clipped(self) -> bool:
        """True when at least one run of clipped samples was found."""
        return self.clipped_runs > 0


def clipping_stats(wave: np.ndarray, options: ConditionOptions = DEFAULT_CONDITION) -> ClippingStats:
    """Count clipped samples and runs of them.

    Args:
        wave: mono float audio in [-1, 1].
        options: ``clip_level`` and ``clip_run``.

    Returns:
        The clipping statistics.
    """
    if wave.size == 0:
        return ClippingStats(0, 0, 0.0)
    hot = np.abs(wave) >= options.clip_level
    n_hot = int(hot.sum())
    runs = 0
    if n_hot:
        edges = np.diff(np.concatenate(([0], hot.astype(np.int8), [0])))
        starts = np.flatnonzero(edges == 1)
        ends = np.flatnonzero(edges == -1)
        runs = int(np.sum((ends - starts) >= options.clip_run))
    return ClippingStats(n_hot, runs, float(np.max(np.abs(wave))))


def condition_waveform(
    wave: np.ndarray, options: ConditionOptions = DEFAULT_CONDITION, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Apply the conditioning rules: trim silence to the margin, then normalise loudness.

    Args:
        wave: mono float audio.
        options: which steps and their parameters.
        sample_rate: the rate of ``wave``.

    Returns:
        Conditioned float32 audio.
    """
    out = np.asarray(wave, dtype=np.float32)
    if options.trim:
        out = trim_silence(out, options, sample_rate)
    if options.normalize:
        out = normalize_loudness(out, options, sample_rate)
    return np.ascontiguousarray(out, dtype=np.float32)
