"""The cold start of the on-device path, timed in fresh processes (edgeasr.bench.coldstart)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeasr.bench.coldstart import cold_start_env, measure_cold_start

ROOT = Path(__file__).resolve().parents[1]


def test_a_cold_start_reads_the_sample_in_fresh_processes_with_bytecode_caches(monkeypatch) -> None:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    assert "PYTHONDONTWRITEBYTECODE" not in cold_start_env("cached")
    assert cold_start_env("off")["PYTHONDONTWRITEBYTECODE"] == "1"
    audio = str(ROOT / "samples" / "01-flite-rms.wav")
    cold = measure_cold_start(str(ROOT / "triton_models" / "edgeasr" / "2"), audio, runs=2)
    assert cold["text"] == "is it windy in cincinnati right now"
    assert [r["command_text"].endswith("is it windy in cincinnati right now") for r in cold["rows"]] == [True, True]
    lo, hi = cold["in_process_min_max_s"]
    assert 0 < lo <= cold["cold_start_s"] <= hi and cold["command_min_max_s"][0] > 0


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        measure_cold_start("triton_models/edgeasr", "samples/01-flite-rms.wav", runs=0)
    with pytest.raises(ValueError, match="cached"):
        cold_start_env("sometimes")
