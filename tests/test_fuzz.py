"""Fuzzing the doors input comes through: the audio reader, the client's request preparation, the
text normaliser. Whatever they are given, they answer with audio or with their one error type."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

hypothesis = pytest.importorskip("hypothesis", reason="the dev extra is not installed")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from edgeasr.audio import SAMPLE_RATE, AudioError, load_audio  # noqa: E402
from edgeasr.client import _prepare  # noqa: E402
from edgeasr.text import TextNormalizationError, is_normalized, normalize_text  # noqa: E402

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _wav(samples: np.ndarray, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


VALID = _wav((0.1 * np.sin(np.arange(8000) / 5)).astype(np.float32))


@FAST
@given(st.binary(max_size=4096))
def test_random_bytes_are_audio_or_an_audio_error(data: bytes) -> None:
    try:
        wave = load_audio(data)
    except AudioError:
        return
    assert wave.dtype == np.float32 and wave.ndim == 1


@FAST
@given(st.integers(0, len(VALID) - 1), st.binary(min_size=1, max_size=64))
def test_a_damaged_wav_is_audio_or_an_audio_error(cut: int, garbage: bytes) -> None:
    """Cut anywhere, or with bytes overwritten: refused with AudioError, or read as finite audio."""
    for data in (VALID[:cut], VALID[:cut] + garbage + VALID[cut + len(garbage) :]):
        try:
            wave = load_audio(data)
        except AudioError:
            continue
        assert wave.dtype == np.float32 and np.all(np.isfinite(wave))


@FAST
@given(
    hnp.arrays(
        st.sampled_from([np.float32, np.float64, np.int16, np.int32]),
        st.one_of(  # mono, (frames, channels), and shapes that are not audio at all
            st.tuples(st.integers(0, 8000)),
            st.tuples(st.integers(0, 4000), st.integers(1, 3)),
            st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4)),
        ),
    ),
    st.integers(-10, 10**7),
)
def test_the_client_prepares_any_array_or_refuses_it_with_an_audio_error(audio: np.ndarray, rate: int) -> None:
    try:
        pcm = _prepare(audio, rate)
    except AudioError:
        return
    assert pcm.ndim == 1 and pcm.size >= 0.05 * SAMPLE_RATE
    assert pcm.dtype in (np.int16, np.float32)
    assert np.all(np.isfinite(pcm.astype(np.float64)))


@FAST
@given(st.text(max_size=200))
def test_the_normaliser_gives_a_label_or_says_why(text: str) -> None:
    try:
        label = normalize_text(text)
    except TextNormalizationError:
        return
    assert is_normalized(label)  # a fixed point: normalising twice changes nothing
    assert set(label) <= set("abcdefghijklmnopqrstuvwxyz' ")
    assert "  " not in label and label == label.strip()
