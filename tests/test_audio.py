"""Audio reading (edgeasr.audio): files and arrays to 16 kHz mono float32, and what is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edgeasr.audio import AudioError, load_audio

ROOT = Path(__file__).resolve().parents[1]


def _tone(path: Path, seconds: float, rate: int = 16000) -> Path:
    t = np.arange(int(rate * seconds)) / rate
    sf.write(path, (0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), rate, subtype="PCM_16")
    return path


def test_files_and_arrays_come_out_at_16khz_mono(tmp_path: Path) -> None:
    wave = load_audio(_tone(tmp_path / "a8k.wav", 1.0, rate=8000))
    assert wave.dtype == np.float32 and wave.shape == (16000,)
    stereo = np.stack([np.zeros(4410, np.float32), 0.5 * np.ones(4410, np.float32)], axis=1)
    out = load_audio(stereo, 44100)
    assert out.shape == (1600,) and abs(float(out[800]) - 0.25) < 0.01
    with pytest.raises(AudioError, match="needs its sample_rate"):
        load_audio(np.zeros(100, np.float32))


def test_a_file_too_long_is_refused_from_its_header_before_decoding(tmp_path: Path, monkeypatch) -> None:
    path = _tone(tmp_path / "long.wav", 3.0)
    decoded = []
    real_read = sf.read
    monkeypatch.setattr(sf, "read", lambda *a, **k: decoded.append(a) or real_read(*a, **k))
    with pytest.raises(AudioError, match=r"3\.0 s long, longer than the 2 s maximum"):
        load_audio(path, max_seconds=2.0)
    assert decoded == []  # refused from the header: nothing was decoded
    assert load_audio(path, max_seconds=5.0).shape == (48000,) and len(decoded) == 1


def test_the_recognizer_refuses_long_files_the_same_way(tmp_path: Path) -> None:
    from edgeasr.recognizer import Recognizer, RecognizerOptions

    root = Path(__file__).resolve().parents[1]
    rec = Recognizer(root / "triton_models" / "edgeasr", RecognizerOptions(max_seconds=2.0))
    with pytest.raises(AudioError, match="longer than the 2 s maximum"):
        rec.transcribe(_tone(tmp_path / "long.wav", 3.0))


def test_a_truncated_wav_is_refused_with_what_its_header_says(tmp_path: Path) -> None:
    data = (ROOT / "samples" / "01-flite-rms.wav").read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 10])
    with pytest.raises(AudioError, match=r"truncated WAV file: its header says 2\.72 s, the file holds 0\.27 s"):
        load_audio(cut)
    with pytest.raises(AudioError, match="audio bytes: truncated WAV file"):
        load_audio(data[: len(data) // 10])
    assert load_audio(data).size == 43520  # the whole file, as bytes, reads as the file does


def test_sequences_and_bytes_are_audio_and_rates_must_be_audio_rates() -> None:
    assert load_audio([0.0, 0.5, -0.5] * 1000, 16000).dtype == np.float32
    with pytest.raises(AudioError, match="needs its sample_rate"):
        load_audio([0.0] * 1600)
    with pytest.raises(AudioError, match="must be numbers"):
        load_audio(["a", "b"], 16000)
    for rate in (0, -8000, 10**9):
        with pytest.raises(AudioError, match=f"sample rate {rate} Hz is not an audio rate"):
            load_audio(np.zeros(1600, np.float32), rate)
