"""Reading and checking audio: the one door every waveform comes through.

Everything downstream (training, the recognizer, the Triton client, validation) works on
16 kHz mono float32 in [-1, 1]. This module turns files and arrays into that form, or raises
:class:`AudioError` with a message that names the input and says what is wrong with it.
Only numpy, soundfile and soxr are used, so it is safe on the inference path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "SAMPLE_RATE",
    "AudioError",
    "AudioLimits",
    "check_waveform",
    "load_audio",
    "resample",
    "to_mono_float",
    "valid_wav_seconds",
]

SAMPLE_RATE = 16_000
"""The sample rate of every model in edgeasr (Hz)."""


class AudioError(ValueError):
    """Raised when an input cannot be turned into usable 16 kHz mono audio."""


@dataclass(frozen=True)
class AudioLimits:
    """What the recognizer accepts; anything outside is an :class:`AudioError`."""

    min_seconds: float = 0.05  # shorter than this carries no speech (one CTC frame is 20 ms)
    max_seconds: float = 30.0  # longer requests must be chunked by the caller (Recognizer does)
    allow_silence: bool = True  # all-zero input is valid audio; it simply transcribes to ""


def to_mono_float(samples: np.ndarray, *, name: str = "audio") -> np.ndarray:
    """Convert int16/int32/float arrays of shape (n,) or (n, channels) to mono float32 in [-1, 1]."""
    arr = np.asarray(samples)
    if arr.ndim == 2:
        # soundfile layout: (frames, channels). Average the channels.
        arr = arr.astype(np.float64).mean(axis=1) if arr.shape[1] > 1 else arr[:, 0]
    elif arr.ndim != 1:
        raise AudioError(f"{name}: expected a 1-D waveform or (frames, channels), got shape {arr.shape}")
    if arr.dtype == np.int16:
        return (arr.astype(np.float32) / 32768.0).astype(np.float32)
    if arr.dtype == np.int32:
        return (arr.astype(np.float64) / 2147483648.0).astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float32, copy=False)
    raise AudioError(f"{name}: unsupported sample type {arr.dtype} (use int16, int32 or float)")


def resample(samples: np.ndarray, source_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono float32 audio with soxr (high quality)."""
    if source_rate == target_rate:
        return samples
    if source_rate <= 0:
        raise AudioError(f"sample rate must be positive, got {source_rate}")
    import soxr

    return soxr.resample(samples, source_rate, target_rate, quality="HQ").astype(np.float32)


def check_waveform(samples: np.ndarray, *, name: str = "audio", limits: AudioLimits | None = None) -> None:
    """Raise :class:`AudioError` if ``samples`` (16 kHz mono float32) is empty, non-finite or too long."""
    limits = limits or AudioLimits()
    if samples.size == 0:
        raise AudioError(f"{name}: empty audio (0 samples)")
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"{name}: audio contains NaN or Inf samples")
    seconds = samples.size / SAMPLE_RATE
    if seconds < limits.min_seconds:
        raise AudioError(
            f"{name}: audio is {seconds * 1000:.0f} ms long, shorter than {limits.min_seconds * 1000:.0f} ms"
        )
    if seconds > limits.max_seconds:
        raise AudioError(f"{name}: audio is {seconds:.1f} s long, longer than the {limits.max_seconds:.0f} s maximum")
    if not limits.allow_silence and not np.any(samples):
        raise AudioError(f"{name}: audio is entirely silent")


def load_audio(
    source: str | os.PathLike | np.ndarray,
    sample_rate: int | None = None,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Return 16 kHz mono float32 audio from a file path or an array.

    Args:
        source: a path to any file libsndfile reads (WAV, FLAC, OGG, ...), or an array of samples.
        sample_rate: the rate of ``source`` when it is an array (required then); ignored for files.
        max_seconds: refuse a file whose header says it is longer, before decoding any of it.

    Raises:
        AudioError: the file is missing, unreadable, not audio, longer than ``max_seconds``, or
            the array is malformed.
    """
    if isinstance(source, np.ndarray):
        if sample_rate is None:
            raise AudioError("an array of samples needs its sample_rate")
        return resample(to_mono_float(source), int(sample_rate))
    path = Path(source)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    import soundfile as sf

    if max_seconds is not None:
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            raise AudioError(f"{path}: not a readable audio file ({exc})") from None
        if info.samplerate > 0 and info.frames / info.samplerate > max_seconds:
            raise AudioError(
                f"{path}: {info.frames / info.samplerate:.1f} s long, longer than the {max_seconds:g} s maximum"
            )
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"{path}: not a readable audio file ({exc})") from None
    return resample(to_mono_float(data, name=str(path)), int(rate))


def valid_wav_seconds(path: str | os.PathLike) -> float | None:
    """Duration of an existing, readable, non-empty 16 kHz mono audio file, else None.

    Used by corpus writers to resume: a file that passes is kept, anything else is made again.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        return None
    try:
        info = sf.info(str(path))
    except Exception:  # any unreadable file is simply "not valid"
        return None
    if info.frames <= 0 or info.samplerate != SAMPLE_RATE or info.channels != 1:
        return None
    return info.frames / SAMPLE_RATE
