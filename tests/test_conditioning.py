"""Silence trimming, loudness normalisation and clipping detection (edgeasr.data.conditioning)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeasr.data.conditioning import (
    ConditionOptions,
    clipping_stats,
    condition_waveform,
    loudness_dbfs,
    normalize_loudness,
    silence_stats,
    trim_silence,
)

RATE = 16_000


def tone(seconds: float, amp: float = 0.3, f: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amp * np.sin(2 * np.pi * f * t)).astype(np.float32)


def with_silence(lead: float, body: float, trail: float) -> np.ndarray:
    z = lambda s: np.zeros(int(s * RATE), np.float32)  # noqa: E731
    return np.concatenate([z(lead), tone(body), z(trail)])


def test_silence_stats_measure_leading_and_trailing() -> None:
    s = silence_stats(with_silence(0.5, 1.0, 0.3))
    assert s.leading_s == pytest.approx(0.5, abs=0.021)
    assert s.trailing_s == pytest.approx(0.3, abs=0.021)
    assert s.has_activity
    assert not silence_stats(np.zeros(RATE, np.float32)).has_activity


def test_trim_keeps_exactly_the_margin_and_pads_when_short() -> None:
    opts = ConditionOptions(margin_s=0.1)
    out = trim_silence(with_silence(0.8, 1.0, 0.6), opts)
    assert out.size / RATE == pytest.approx(1.2, abs=0.021)
    padded = trim_silence(with_silence(0.0, 1.0, 0.02), opts)
    assert padded.size / RATE == pytest.approx(1.2, abs=0.021)
    assert not padded[:1000].any()
    unpadded = trim_silence(with_silence(0.0, 1.0, 0.0), ConditionOptions(margin_s=0.1, pad=False))
    assert unpadded.size == RATE
    silent = np.zeros(RATE, np.float32)
    assert trim_silence(silent).size == RATE  # nothing active: left as it is


def test_threshold_is_an_option() -> None:
    quiet_tail = np.concatenate([tone(1.0, 0.5), tone(1.0, 0.5 * 10 ** (-30 / 20))])  # 30 dB lower
    assert trim_silence(quiet_tail, ConditionOptions(relative_threshold_db=-35, margin_s=0)).size == 2 * RATE
    assert trim_silence(quiet_tail, ConditionOptions(relative_threshold_db=-20, margin_s=0)).size == RATE


def test_loudness_normalised_to_target_over_speech_only() -> None:
    x = with_silence(1.0, 1.0, 1.0)
    assert loudness_dbfs(x) == pytest.approx(20 * np.log10(0.3 / np.sqrt(2)), abs=0.2)
    y = normalize_loudness(x, ConditionOptions(target_dbfs=-23))
    assert loudness_dbfs(y) == pytest.approx(-23, abs=0.05)
    assert loudness_dbfs(np.zeros(100, np.float32)) == float("-inf")


def test_loudness_gain_respects_peak_limit() -> None:
    spiky = tone(1.0, 0.01)
    spiky[100] = 0.9
    y = normalize_loudness(spiky, ConditionOptions(target_dbfs=-10, peak_limit_dbfs=-1))
    assert np.max(np.abs(y)) == pytest.approx(10 ** (-1 / 20), rel=1e-3)


def test_clipping_detection_needs_a_run() -> None:
    clean = tone(0.5, 0.5)
    assert not clipping_stats(clean).is_clipped
    clipped = np.clip(tone(0.5, 3.0), -1, 1)
    stats = clipping_stats(clipped)
    assert stats.is_clipped and stats.clipped_runs > 10
    single = clean.copy()
    single[10] = 1.0
    assert clipping_stats(single).clipped_samples == 1 and not clipping_stats(single).is_clipped


def test_condition_waveform_combines_steps() -> None:
    out = condition_waveform(with_silence(1.0, 1.0, 1.0), ConditionOptions(margin_s=0.15, target_dbfs=-20))
    assert out.dtype == np.float32
    assert out.size / RATE == pytest.approx(1.3, abs=0.021)
    assert loudness_dbfs(out) == pytest.approx(-20, abs=0.1)
