"""Listening conditions of ``edgeasr eval --conditions`` (edgeasr.training.conditions)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeasr.training.conditions import DEFAULT_SWEEP, NOISE_SEED, parse_conditions


@pytest.fixture
def speechlike() -> np.ndarray:
    """1 s of a 200 Hz buzz with harmonics up to 6 kHz, amplitude-modulated like syllables."""
    t = np.arange(16000) / 16000
    harmonics = sum(np.sin(2 * np.pi * 200 * k * t) / k for k in range(1, 31))
    return (0.2 * harmonics * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)


def one(spec: str):
    (condition,) = parse_conditions(spec)
    return condition


def rng() -> np.random.Generator:
    return np.random.default_rng(NOISE_SEED)


def band_energy(x: np.ndarray, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / 16000)
    return float(spectrum[(freqs >= lo) & (freqs < hi)].sum())


@pytest.mark.parametrize("dbfs", [-45.0, -20.0, -6.0])
def test_level_sets_the_peak(speechlike: np.ndarray, dbfs: float) -> None:
    out = one(f"level={dbfs:g}").apply(speechlike, rng())
    assert 20 * np.log10(np.abs(out).max()) == pytest.approx(dbfs, abs=0.01)


def test_silence_pads_both_ends_with_quiet_room_tone(speechlike: np.ndarray) -> None:
    out = one("silence=2").apply(speechlike, rng())
    assert out.size == speechlike.size + 2 * 32000
    lead = out[:32000]
    assert 20 * np.log10(np.sqrt(np.mean(lead**2))) == pytest.approx(-70, abs=1)
    np.testing.assert_array_equal(out[32000:-32000], speechlike)


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_tempo_changes_duration_not_pitch(speechlike: np.ndarray, rate: float) -> None:
    out = one(f"tempo={rate:g}").apply(speechlike, rng())
    assert out.size == pytest.approx(speechlike.size / rate, rel=0.05)
    peak = np.fft.rfftfreq(out.size, 1 / 16000)[np.argmax(np.abs(np.fft.rfft(out)))]
    assert peak == pytest.approx(200, abs=10)


def test_telephone_removes_the_high_band(speechlike: np.ndarray) -> None:
    out = one("telephone").apply(speechlike, rng())
    assert out.size == pytest.approx(speechlike.size, abs=20)
    assert band_energy(out, 4500, 8000) < 1e-3 * band_energy(speechlike, 4500, 8000)
    assert band_energy(out, 500, 3000) > 0.5 * band_energy(speechlike, 500, 3000)


def test_reverb_and_noise_are_seeded_and_do_what_they_say(speechlike: np.ndarray) -> None:
    wet = one("reverb=0.6").apply(speechlike, rng())
    assert wet.shape == speechlike.shape and not np.allclose(wet, speechlike)
    np.testing.assert_array_equal(wet, one("reverb=0.6").apply(speechlike, rng()))  # same seed, same room
    noisy = one("noise=10").apply(speechlike, rng())
    snr = 10 * np.log10(np.sum(speechlike**2) / np.sum((noisy - speechlike) ** 2))
    assert snr == pytest.approx(10, abs=0.5)


def test_vocoder_resynthesizes_at_the_same_pitch_and_level(speechlike: np.ndarray) -> None:
    vocoded = one("vocoder=5").apply(speechlike, rng())
    assert one("vocoder=5").name == "vocoder5" and vocoded.shape == speechlike.shape
    np.testing.assert_array_equal(vocoded, one("vocoder=5").apply(speechlike, rng()))  # seeded: runs compare
    assert np.sqrt(np.mean(vocoded**2)) == pytest.approx(np.sqrt(np.mean(speechlike**2)), rel=1e-3)
    assert abs(np.corrcoef(vocoded, speechlike)[0, 1]) < 0.95  # rebuilt, not copied
    spectrum = np.abs(np.fft.rfft(vocoded * np.hanning(vocoded.size)))
    assert abs(np.fft.rfftfreq(vocoded.size, 1 / 16000)[np.argmax(spectrum)] - 200) < 5  # the 200 Hz buzz still


def test_parsing() -> None:
    names = [c.name for c in parse_conditions("level=-40,-20;silence=0.5;telephone;tempo=1.25;noise=5")]
    assert names == ["level-40dBFS", "level-20dBFS", "silence0.5s", "telephone", "tempo1.25", "5dB"]
    assert [c.name for c in parse_conditions("default")] == [c.name for c in parse_conditions(DEFAULT_SWEEP)]
    assert parse_conditions("") == []
    for bad, message in [
        ("loud=3", "unknown condition"),
        ("level", "needs values"),
        ("telephone=1", "no value"),
        ("level=3", "out of range"),
        ("tempo=0", "out of range"),
        ("vocoder=2.5", "out of range"),
        ("vocoder=0", "out of range"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_conditions(bad)
