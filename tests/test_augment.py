"""Training-time augmentation (edgeasr.data.augment)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from edgeasr.data.augment import (
    Augmenter,
    AugmentOptions,
    add_noise,
    band_limit,
    mu_law,
    pad_silence,
    pink_noise,
    reverberate,
    speed_perturb,
    synthetic_rir,
    time_stretch,
    vocode,
)

RATE = 16_000
OFF = dict(speed_prob=0.0, pitch_prob=0.0, reverb_prob=0.0, noise_prob=0.0, bandlimit_prob=0.0, gain_prob=0.0)


def voice(seconds: float = 3.0, f0: float = 140.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 10)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def dominant_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / RATE)[np.argmax(spec)])


def band_energy(x: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / RATE)
    return float(spec[(f >= lo) & (f < hi)].sum())


def test_all_off_is_identity() -> None:
    x = voice()
    y = Augmenter(AugmentOptions(**OFF))(x, np.random.default_rng(0))
    np.testing.assert_array_equal(x, y)


def test_noise_at_requested_snr() -> None:
    x = voice()
    rng = np.random.default_rng(1)
    for noise in (rng.standard_normal(x.size).astype(np.float32), pink_noise(x.size, rng)):
        y = add_noise(x, noise, 10.0)
        snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean((y - x).astype(np.float64) ** 2))
        assert snr == pytest.approx(10.0, abs=0.05)


def test_pink_noise_has_more_low_than_high_energy() -> None:
    n = pink_noise(RATE * 2, np.random.default_rng(0))
    assert band_energy(n, 100, 200) > 5 * band_energy(n, 4000, 4100)


def test_babble_from_noise_pool() -> None:
    pool = [voice(1.0, f) for f in (110, 150, 190, 230)]
    aug = Augmenter(AugmentOptions(**{**OFF, "noise_prob": 1.0, "noise_weights": (0, 0, 1)}), noise_pool=pool)
    y = aug(voice(), np.random.default_rng(0))
    assert not np.allclose(y, voice())
    assert "babble" in aug._banks
    no_pool = Augmenter(AugmentOptions(noise_weights=(0, 0, 1)))
    assert "babble" not in no_pool._banks  # its share moves to pink noise
    assert no_pool._kind_p[1] == pytest.approx(1.0)


def test_reverb_keeps_length_timing_and_rms() -> None:
    rng = np.random.default_rng(0)
    rir = synthetic_rir(rng, rt60=0.5, drr_db=3.0)
    assert rir[0] == 1.0 and rir.size == int(0.6 * RATE)
    tail = rir[1:].astype(np.float64)
    assert 10 * np.log10(1.0 / np.sum(tail**2)) == pytest.approx(3.0, abs=0.01)
    x = voice()
    y = reverberate(x, rir)
    assert y.shape == x.shape
    assert np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean(x**2)), rel=1e-3)


def test_band_limit_removes_out_of_band_energy() -> None:
    x = np.random.default_rng(0).standard_normal(RATE).astype(np.float32)
    y = band_limit(x, 300, 3400)
    assert band_energy(y, 5000, 8000) < 1e-6 * band_energy(x, 5000, 8000)
    assert band_energy(y, 0, 200) < 1e-6 * band_energy(x, 0, 200)
    assert band_energy(y, 1000, 2000) == pytest.approx(band_energy(x, 1000, 2000), rel=1e-6)


def test_speed_perturbation_changes_length_and_pitch() -> None:
    x = voice(2.0, 200.0)
    y = speed_perturb(x, 1.25)
    assert y.size == pytest.approx(x.size / 1.25, abs=2)
    assert dominant_hz(y) == pytest.approx(250.0, abs=3)


def test_pitch_shift_keeps_duration() -> None:
    x = voice(2.0, 200.0)
    aug = Augmenter(AugmentOptions(**{**OFF, "pitch_prob": 1.0, "pitch_range": (3.86, 3.86)}))  # x1.25
    y = aug(x, np.random.default_rng(0))
    assert y.size == x.size
    assert dominant_hz(y) == pytest.approx(250.0, abs=6)
    assert time_stretch(x, 2.0).size == pytest.approx(x.size / 2, abs=2)


def test_gain_never_clips() -> None:
    aug = Augmenter(AugmentOptions(**{**OFF, "gain_prob": 1.0, "gain_db_range": (20.0, 20.0)}))
    y = aug(voice(), np.random.default_rng(0))
    assert np.max(np.abs(y)) <= 1.0 + 1e-6


def test_deterministic_for_rng_and_float32() -> None:
    aug = Augmenter(AugmentOptions(speed_prob=1, pitch_prob=1, reverb_prob=1, noise_prob=1, bandlimit_prob=1))
    a = aug(voice(), np.random.default_rng(7))
    b = aug(voice(), np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and np.all(np.isfinite(a))
    assert aug(np.zeros(0, np.float32), np.random.default_rng(0)).size == 0


def test_silence_padding_adds_quiet_room_tone_at_both_ends() -> None:
    x = voice(1.0)
    aug = Augmenter(
        AugmentOptions(**{**OFF, "pad_prob": 1.0, "pad_seconds_range": (0.5, 0.5), "pad_floor_dbfs_range": (-60, -60)})
    )
    y = aug(x, np.random.default_rng(0))
    assert y.size == x.size + RATE  # half a second at each end
    for end in (y[: RATE // 2], y[-RATE // 2 :]):
        rms_db = 20 * np.log10(np.sqrt(np.mean(end.astype(np.float64) ** 2)))
        assert -63 < rms_db < -57  # room tone, not digital silence, and far below the speech
    np.testing.assert_allclose(y[RATE // 2 : RATE // 2 + x.size], x, atol=0.01)  # the speech is where it was


def test_pad_silence_lengths() -> None:
    y = pad_silence(voice(1.0), 0.25, 1.0, -70.0, np.random.default_rng(1))
    assert y.size == RATE + RATE // 4 + RATE and y.dtype == np.float32


def test_pad_silence_lays_the_tone_it_is_given() -> None:
    """The Augmenter passes a slice of its pink bank; whatever tone comes, it lies at the floor asked."""
    y = pad_silence(voice(1.0), 0.25, 0.25, -40.0, np.random.default_rng(1), lambda n, rng: np.ones(n, np.float32))
    np.testing.assert_allclose(y[: RATE // 4], 0.01, rtol=1e-5)  # -40 dBFS of the given (constant) tone


def test_mu_law_is_8_bit_telephone_coding() -> None:
    x = voice(1.0)
    y = mu_law(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert len(np.unique(y)) <= 256  # eight bits
    assert 0 < np.max(np.abs(y - x)) < 0.02  # coding noise, small against a 0.3 peak
    snr = 10 * np.log10(np.sum(x.astype(np.float64) ** 2) / np.sum((y - x).astype(np.float64) ** 2))
    assert 30 < snr < 45  # G.711 gives about 38 dB on speech-level signals
    aug = Augmenter(AugmentOptions(**{**OFF, "codec_prob": 1.0}))
    np.testing.assert_array_equal(aug(x, np.random.default_rng(0)), y)


def formants(pulses: np.ndarray) -> np.ndarray:
    """A pulse train through two formant resonators (700 and 1200 Hz), peak 0.3: a crude /a/."""
    x = pulses
    for hz, bw in ((700.0, 80.0), (1200.0, 100.0)):
        r = np.exp(-np.pi * bw / RATE)
        x = lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * hz / RATE), r * r], x)
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def vowel(seconds: float = 1.0, f0: float = 125.0) -> np.ndarray:
    """A pulse train at ``f0`` through :func:`formants`."""
    x = np.zeros(int(seconds * RATE))
    x[:: int(RATE / f0)] = 1.0
    return formants(x)


def periodicity(x: np.ndarray) -> tuple[int, float]:
    """The autocorrelation peak between 60 and 400 Hz: (lag in samples, height relative to lag 0)."""
    x = x.astype(np.float64) - np.mean(x)
    acf = np.correlate(x, x, "full")[x.size - 1 :]
    lo, hi = RATE // 400, RATE // 60
    lag = lo + int(np.argmax(acf[lo:hi]))
    return lag, float(acf[lag] / acf[0])


def test_vocode_rebuilds_pitch_and_formants_not_the_waveform() -> None:
    x = vowel()
    y = vocode(x, np.random.default_rng(0), smooth_frames=5)
    assert y.dtype == np.float32 and y.shape == x.shape and np.all(np.isfinite(y))
    rms = lambda v: float(np.sqrt(np.mean(v.astype(np.float64) ** 2)))  # noqa: E731
    assert rms(y) == pytest.approx(rms(x), rel=1e-3)
    mid = slice(RATE // 4, 3 * RATE // 4)
    lag, height = periodicity(y[mid])
    assert abs(lag - RATE / 125.0) <= 2 and height > 0.5  # the pulse train at the input's pitch
    for v in (x, y):  # the formant region keeps most of the energy, above 3 kHz almost none
        assert band_energy(v[mid], 500, 1500) > 20 * band_energy(v[mid], 3000, 8000)
    assert abs(np.corrcoef(x[mid], y[mid])[0, 1]) < 0.95  # resynthesized, not a filtered copy


def test_vocode_leaves_out_the_pulse_trains_rumble() -> None:
    x = vowel()
    share = lambda v: band_energy(v, 0, 50) / band_energy(v, 0, 8000)  # noqa: E731
    assert share(vocode(x, np.random.default_rng(0))) < 0.01  # the input holds 0.5% there
    assert share(vocode(x, np.random.default_rng(0), highpass_hz=0.0)) > 0.05  # the one-signed pulses' mean


def gliding_vowel(seconds: float = 1.0, start: float = 100.0, end: float = 200.0) -> np.ndarray:
    """A vowel whose pitch glides from ``start`` to ``end`` Hz (an octave of intonation by default)."""
    cycles = np.cumsum(np.geomspace(start, end, int(seconds * RATE)) / RATE)
    return formants((np.diff(np.floor(cycles), prepend=0.0) > 0).astype(np.float64))


def median_pitch(x: np.ndarray, start: float, stop: float) -> float:
    """The median of 32 ms frames' pitch (:func:`periodicity`) between ``start`` and ``stop`` seconds."""
    starts = range(int(start * RATE), int(stop * RATE) - 512, 256)
    return float(np.median([RATE / periodicity(x[i : i + 512])[0] for i in starts]))


def test_vocode_flattens_intonation_when_asked() -> None:
    x = gliding_vowel()
    ratio = lambda v: median_pitch(v, 0.7, 0.9) / median_pitch(v, 0.1, 0.3)  # noqa: E731
    assert ratio(x) == pytest.approx(2**0.6, rel=0.05)  # the glide between these stretches
    assert ratio(vocode(x, np.random.default_rng(0))) == pytest.approx(2**0.6, rel=0.05)  # kept
    flat = vocode(x, np.random.default_rng(0), pitch_scale=0.0)
    assert ratio(flat) == pytest.approx(1.0, abs=0.05)  # one pitch throughout
    assert median_pitch(flat, 0.1, 0.9) == pytest.approx(np.sqrt(100.0 * 200.0), rel=0.1)  # near the glide's median
    assert ratio(vocode(x, np.random.default_rng(0), pitch_scale=0.5)) == pytest.approx(2**0.3, rel=0.05)  # halved


def test_vocode_keeps_unvoiced_noise_aperiodic() -> None:
    x = (0.1 * np.random.default_rng(3).standard_normal(RATE)).astype(np.float32)
    y = vocode(x, np.random.default_rng(0))
    assert periodicity(y)[1] < 0.2
    assert not np.allclose(x, y)


def test_vocode_leaves_silence_and_short_clips_alone() -> None:
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(vocode(np.zeros(RATE, np.float32), rng), np.zeros(RATE, np.float32))
    short = vowel(0.02)
    np.testing.assert_array_equal(vocode(short, rng), short)


def test_augmenter_vocodes_when_asked() -> None:
    x = vowel()
    aug = Augmenter(AugmentOptions(**{**OFF, "vocode_prob": 1.0, "vocode_smooth_frames": (3, 3)}))
    y = aug(x, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    rng.random()  # the draw that decides to vocode
    rng.integers(3, 4)  # the smoothing width
    np.testing.assert_array_equal(y, vocode(x, rng, smooth_frames=3))
    with pytest.raises(ValueError):
        AugmentOptions(vocode_smooth_frames=(0, 3))
    with pytest.raises(ValueError):
        AugmentOptions(vocode_prob=1.2)
    with pytest.raises(ValueError):
        AugmentOptions(vocode_highpass_hz=-1.0)
    with pytest.raises(ValueError):
        AugmentOptions(vocode_pitch_scale=(-0.5, 1.0))
    with pytest.raises(ValueError):
        AugmentOptions(vocode_pitch_scale=(1.0, 0.5))


def test_augmenter_draws_the_vocoders_pitch_scale() -> None:
    x = gliding_vowel()
    aug = Augmenter(
        AugmentOptions(**{**OFF, "vocode_prob": 1.0, "vocode_smooth_frames": (2, 2), "vocode_pitch_scale": (0.0, 0.5)})
    )
    y = aug(x, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    rng.random()  # the draw that decides to vocode
    rng.integers(2, 3)  # the smoothing width
    scale = rng.uniform(0.0, 0.5)
    np.testing.assert_array_equal(y, vocode(x, rng, smooth_frames=2, pitch_scale=scale))
    assert not np.array_equal(y, vocode(x, np.random.default_rng(7), smooth_frames=2))


def test_options_are_checked() -> None:
    with pytest.raises(ValueError):
        AugmentOptions(noise_prob=1.5)
    with pytest.raises(ValueError):
        AugmentOptions(snr_db_range=(30, 5))
    with pytest.raises(ValueError):
        AugmentOptions(pad_prob=2.0)
    with pytest.raises(ValueError):
        AugmentOptions(pad_seconds_range=(-1.0, 1.0))
