"""Monitoring: request records, drift of live windows against a reference profile, the command.

The "training distribution" here is a generator of utterances cut from the committed samples with
a spread of levels and pauses; the reference profile is what `data validate --profile` writes for
300 of them. Clean windows are fresh draws from the same generator; drifted windows change one
thing a device or a room would change.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("scipy", reason="drift tests use scipy.stats (the data extra)")

from edgeasr.audio import load_audio, resample
from edgeasr.manifest import read_manifest, resolve_audio_path
from edgeasr.monitor.drift import DriftOptions, detect_drift
from edgeasr.monitor.live import request_record

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "manifest.jsonl"
ROWS = read_manifest(SAMPLES)
WAVES = [load_audio(resolve_audio_path(r, SAMPLES)) for r in ROWS]


def utterance(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A sample at a level from -32 to -18 dBFS RMS, with 0.1 to 0.5 s of quiet room tone around it."""
    i = int(rng.integers(len(WAVES)))
    x = WAVES[i] / (np.sqrt(np.mean(WAVES[i] ** 2)) + 1e-9) * 10 ** (rng.uniform(-32, -18) / 20)
    pad = [np.zeros(int(rng.uniform(0.1, 0.5) * 16000), np.float32) for _ in range(2)]
    x = np.concatenate([pad[0], x, pad[1]]).astype(np.float32)
    x += (10 ** (-65 / 20) * rng.standard_normal(x.size)).astype(np.float32)
    return x, ROWS[i]["text"]


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from edgeasr.data.validate import validate_manifest

    folder = tmp_path_factory.mktemp("reference")
    rng = np.random.default_rng(0)
    rows = []
    for k in range(300):
        x, text = utterance(rng)
        sf.write(folder / f"{k}.wav", x, 16000, subtype="FLOAT")
        rows.append({"audio_filepath": f"{k}.wav", "text": text, "duration": x.size / 16000})
    (folder / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return validate_manifest(folder / "m.jsonl").profile


def window(seed: int, n: int = 120, change=None) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x, text = utterance(rng)
        if change is not None:
            x = change(x, rng)
        out.append(request_record(x, text, 0.01))
    return out


def test_a_record_holds_the_input_and_output_statistics() -> None:
    x = WAVES[0]
    logprobs = np.log(np.full((50, 29), 1 / 29, np.float32))
    r = request_record(x, "is it windy", 0.02, logprobs, vocabulary={"is", "it"})
    assert r["duration"] == pytest.approx(x.size / 16000)
    assert -40 < r["loudness"] < -5 and 0 < r["peak"] <= 1 and r["words"] == 3
    assert r["oov_rate"] == pytest.approx(1 / 3, abs=1e-4) and r["mean_confidence"] == pytest.approx(1 / 29, rel=1e-3)
    assert r["latency_ms"] == 20.0 and not r["empty"] and "audio" not in r  # no audio kept
    json.dumps(r)


def test_clean_windows_raise_no_alarm(profile: dict) -> None:
    """40 windows drawn from the reference's own distribution: at most 2 alarms (alpha 0.01, family-wise)."""
    alarms = [detect_drift(profile, window(100 + s)).drifted for s in range(40)]
    assert sum(bool(a) for a in alarms) <= 2, alarms


def _gain(db):
    return lambda x, rng: np.clip(x * 10 ** (db / 20), -1, 1).astype(np.float32)


def _noise(x, rng):
    return (x + 0.02 * rng.standard_normal(x.size)).astype(np.float32)


def _faster(x, rng):
    return resample(x, 16000, int(16000 / 1.35))  # played 1.35 times faster (and higher)


def _clipped(x, rng):
    return np.clip(x * 30, -1, 1).astype(np.float32)


def _telephone(x, rng):
    return resample(resample(x, 16000, 8000), 8000, 16000)  # an 8 kHz path, upsampled


@pytest.mark.parametrize(
    ("name", "change", "expected"),
    [
        ("louder", _gain(15), {"loudness", "peak"}),
        ("quieter", _gain(-15), {"loudness", "peak"}),
        ("noisier", _noise, {"leading_silence", "trailing_silence", "silence_ratio"}),
        ("faster", _faster, {"duration", "words_per_second", "chars_per_second"}),
        ("clipped", _clipped, {"clipping_ratio", "peak"}),
        ("8 kHz upsampled", _telephone, {"high_band_db"}),
    ],
)
def test_each_drift_is_flagged_on_its_features(profile: dict, name: str, change, expected: set[str]) -> None:
    report = detect_drift(profile, window(7, change=change))
    assert report.drift and expected <= set(report.drifted), report.table()


def test_large_windows_use_psi_and_health_alerts(profile: dict) -> None:
    from edgeasr.monitor.drift import FEATURES

    clean = window(11, n=1000)  # 1,000 values: PSI
    # the speaking rates take 8 values here (8 sample texts): deciles of so few values make PSI noisy
    audio_only = DriftOptions(features=tuple(f for f in FEATURES if not f.endswith("per_second")))
    report = detect_drift(profile, clean, audio_only)
    assert {f.test for f in report.features} == {"psi"} and not report.drifted
    silent = [{**r, "empty": True, "mean_confidence": 0.2} for r in clean]
    alerts = detect_drift(profile, silent).alerts
    assert any("empty transcripts" in a for a in alerts) and any("confidence" in a for a in alerts)


def test_monitor_command_and_the_recognizer_hook(profile: dict, tmp_path: Path) -> None:
    from edgeasr.cli import main
    from edgeasr.monitor.live import attach, read_window
    from edgeasr.recognizer import Recognizer

    rec = Recognizer(ROOT / "triton_models" / "edgeasr")
    log = attach(rec, tmp_path / "window.jsonl")
    rng = np.random.default_rng(3)
    for _ in range(40):
        rec.transcribe(utterance(rng)[0], 16000)
    records = read_window(log.path)
    assert len(records) == 40 and all("mean_confidence" in r and "oov_rate" in r for r in records)
    assert sum(r["empty"] for r in records) == 0  # the shipped model says something for each
    assert not any("audio_file" in r for r in records)  # no audio kept unless asked
    kept = Recognizer(ROOT / "triton_models" / "edgeasr")
    kept_log = attach(kept, tmp_path / "kept.jsonl", audio_dir=tmp_path / "audio")
    wave = utterance(rng)[0]
    kept.transcribe(wave, 16000)
    (record,) = read_window(kept_log.path)
    import soundfile as sf

    assert sf.info(record["audio_file"]).frames == wave.size
    reference = tmp_path / "profile.json"
    reference.write_text(json.dumps(profile))
    assert main(["monitor", "--reference", str(reference), "--window", str(log.path), "--out", str(tmp_path)]) == 0
    loud = tmp_path / "loud.jsonl"
    loud.write_text("".join(json.dumps(r) + "\n" for r in window(5, change=_gain(15))))
    assert main(["monitor", "--reference", str(reference), "--window", str(loud), "--out", str(tmp_path)]) == 1
    assert json.loads((tmp_path / "drift.json").read_text())["drift"] is True
    assert (tmp_path / "drift.png").stat().st_size > 1000
