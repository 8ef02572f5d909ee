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
    "check_rate",
    "check_waveform",
    "load_audio",
    "resample",
    "to_mono_float",
    "valid_wav_seconds",
]

SAMPLE_RATE = 16_000
"""The sample rate of every model in edgeasr (Hz)."""
MIN_INPUT_RATE, MAX_INPUT_RATE = 1_000, 384_000
"""Input sample rates accepted (Hz): anything else is not an audio rate, and is refused."""


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
        with np.errstate(over="ignore"):  # out-of-range values become Inf, which check_waveform refuses
            return arr.astype(np.float32, copy=False)
    raise AudioError(f"{name}: unsupported sample type {arr.dtype} (use int16, int32 or float)")


def check_rate(sample_rate: int) -> int:
    """Return ``sample_rate`` as an int, or raise :class:`AudioError` if it is not an audio rate."""
    rate = int(sample_rate)
    if not MIN_INPUT_RATE <= rate <= MAX_INPUT_RATE:
        raise AudioError(f"sample rate {rate} Hz is not an audio rate ({MIN_INPUT_RATE} to {MAX_INPUT_RATE} Hz)")
    return rate


def resample(samples: np.ndarray, source_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono float32 audio with soxr (high quality).

    Raises:
        AudioError: ``source_rate`` is not an audio rate (:func:`check_rate`).
    """
    source_rate = check_rate(source_rate)
    if source_rate == target_rate:
        return samples
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


def _wav_truncation(head: bytes, size: int) -> tuple[float, float] | None:
    """(seconds the header declares, seconds present) of a RIFF/WAVE file cut short, else None.

    ``head`` is the start of the file (the chunks before the data), ``size`` its length in bytes.
    A data size of 0 or 0xFFFFFFFF (a stream written without a final size) declares nothing.
    """
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, byte_rate = 12, 0
    while pos + 8 <= len(head):
        chunk, length = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        if chunk == b"fmt " and pos + 16 <= len(head):
            byte_rate = int.from_bytes(head[pos + 16 : pos + 20], "little")
        if chunk == b"data":
            present = size - (pos + 8)
            if length in (0, 0xFFFFFFFF) or present >= length or byte_rate <= 0:
                return None
            return length / byte_rate, max(present, 0) / byte_rate
        pos += 8 + length + (length & 1)
    return None


def load_audio(
    source: str | os.PathLike | np.ndarray | bytes | list | tuple,
    sample_rate: int | None = None,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Return 16 kHz mono float32 audio from a file path, the bytes of a file, or samples.

    Args:
        source: a path to any file libsndfile reads (WAV, FLAC, OGG, ...), the bytes of such a
            file, or samples (a numpy array, list or tuple).
        sample_rate: the rate of ``source`` when it is samples (required then); ignored for files.
        max_seconds: refuse a file whose header says it is longer, before decoding any of it.

    Raises:
        AudioError: the file is missing, unreadable, not audio, truncated (a WAV whose data is
            shorter than its header says), longer than ``max_seconds``, at a rate that is not an
            audio rate, or the samples are malformed.
    """
    if isinstance(source, list | tuple):
        try:
            source = np.asarray(source, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise AudioError(f"audio samples must be numbers ({exc})") from None
    if isinstance(source, np.ndarray):
        if sample_rate is None:
            raise AudioError("an array of samples needs its sample_rate")
        return resample(to_mono_float(source), int(sample_rate))
    if isinstance(source, bytes | bytearray | memoryview):
        return _decode(bytes(source), "audio bytes", max_seconds)
    path = Path(source)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError as exc:
        raise AudioError(f"{path}: cannot be read ({exc.strerror})") from None
    return _decode(str(path), str(path), max_seconds, head=head, size=path.stat().st_size)


def _decode(
    source: str | bytes, name: str, max_seconds: float | None, *, head: bytes | None = None, size: int = 0
) -> np.ndarray:
    """Decode a file (path) or its bytes with soundfile: the checks, then 16 kHz mono float32."""
    import io

    import soundfile as sf

    if isinstance(source, bytes):
        head, size = source[: 1 << 16], len(source)
    cut = _wav_truncation(head or b"", size)
    if cut is not None:
        raise AudioError(f"{name}: truncated WAV file: its header says {cut[0]:.2f} s, the file holds {cut[1]:.2f} s")

    def opened():
        return io.BytesIO(source) if isinstance(source, bytes) else source

    if max_seconds is not None:
        try:
            info = sf.info(opened())
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            raise AudioError(f"{name}: not a readable audio file ({exc})") from None
        if info.samplerate > 0 and info.frames / info.samplerate > max_seconds:
            raise AudioError(
                f"{name}: {info.frames / info.samplerate:.1f} s long, longer than the {max_seconds:g} s maximum"
            )
    try:
        data, rate = sf.read(opened(), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"{name}: not a readable audio file ({exc})") from None
    return resample(to_mono_float(data, name=name), int(rate))


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
