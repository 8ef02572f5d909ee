"""recipes/carry.py: manifests packed into Ogg Opus streams for a lent GPU machine, and back."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sf = pytest.importorskip("soundfile", reason="carry.py reads and writes audio with soundfile")
if "OPUS" not in sf.available_subtypes("OGG"):
    pytest.skip("this libsndfile has no Ogg Opus (1.1 or later has it)", allow_module_level=True)

_spec = importlib.util.spec_from_file_location("carry", Path(__file__).parents[1] / "recipes" / "carry.py")
carry = importlib.util.module_from_spec(_spec)
sys.modules["carry"] = carry  # its process pool pickles carry's functions by module name
_spec.loader.exec_module(carry)

RATE = 16000


def _voice(seconds: float, f0: float, seed: int) -> np.ndarray:
    """A harmonic tone with a syllable-rate envelope and a little noise: speech-like enough for Opus."""
    t = np.arange(int(seconds * RATE)) / RATE
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    wave *= 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    wave += 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    return (0.2 * wave / np.max(np.abs(wave))).astype(np.float32)


def _gz_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt") as f:
        return f.read().splitlines()


def _manifest(folder: Path, name: str, clips: dict[str, np.ndarray]) -> Path:
    (folder / "wavs").mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.jsonl"
    with open(path, "w") as f:
        for clip, wave in clips.items():
            sf.write(folder / "wavs" / f"{clip}.wav", wave, RATE, subtype="PCM_16")
            row = {"audio_filepath": f"wavs/{clip}.wav", "text": f"clip {clip}", "duration": wave.size / RATE}
            f.write(json.dumps(row) + "\n")
    return path


def test_a_pack_unpacks_every_row_at_its_length_and_stores_a_shared_clip_once(tmp_path: Path) -> None:
    waves = {c: _voice(0.6 + 0.37 * i, 110 + 30 * i, i) for i, c in enumerate("abcde")}
    first = _manifest(tmp_path / "src", "first", {c: waves[c] for c in "abc"})
    second = _manifest(tmp_path / "src", "second", {c: waves[c] for c in "cde"})  # "c" is in both
    summary = carry.pack([f"one={first}", f"two={second}"], tmp_path / "pack", level=0.9, seed=0, workers=1)
    assert summary["manifests"]["one"]["stored_clips"] == 3
    assert summary["manifests"]["two"]["stored_clips"] == 2  # "c" is not stored again
    assert sorted(p.name for p in (tmp_path / "pack").iterdir()) == [
        "carry.json", "one.jsonl.gz", "one.ogg", "two.jsonl.gz", "two.ogg"
    ]  # fmt: skip
    index = [json.loads(line) for line in _gz_lines(tmp_path / "pack" / "two.jsonl.gz")]
    assert index[0]["_stream"] == "one" and "audio_filepath" not in index[0]

    written = carry.unpack(tmp_path / "pack", tmp_path / "out", workers=1)
    assert written == {"one": 3, "two": 2}
    for name, clips in (("one", "abc"), ("two", "cde")):
        rows = [json.loads(line) for line in (tmp_path / "out" / f"{name}.jsonl").read_text().splitlines()]
        assert [r["text"] for r in rows] == [f"clip {c}" for c in clips]  # rows in order, fields kept
        for row, clip in zip(rows, clips, strict=True):
            audio, rate = sf.read(tmp_path / "out" / row["audio_filepath"], dtype="float32")
            assert rate == RATE and audio.size == waves[clip].size  # exactly the clip's samples
            assert np.corrcoef(audio, waves[clip])[0, 1] > 0.9  # lossy, but the same sound
    shared = [json.loads(line)["audio_filepath"] for line in (tmp_path / "out" / "two.jsonl").read_text().splitlines()]
    assert shared[0].startswith("wavs/one/")  # the second manifest reads the first one's copy


def test_hours_take_a_seeded_subset_and_a_bad_spec_is_refused(tmp_path: Path) -> None:
    waves = {f"c{i}": _voice(1.0, 150, i) for i in range(12)}
    manifest = _manifest(tmp_path / "src", "m", waves)
    a = carry.pack([f"m={manifest}@0.001"], tmp_path / "a", level=0.9, seed=3, workers=1)  # 3.6 s
    b = carry.pack([f"m={manifest}@0.001"], tmp_path / "b", level=0.9, seed=3, workers=1)
    assert a["manifests"]["m"]["rows"] == b["manifests"]["m"]["rows"] == 4  # whole rows up to the hours asked
    rows = [_gz_lines(d / "m.jsonl.gz") for d in (tmp_path / "a", tmp_path / "b")]
    assert rows[0] == rows[1]  # the same seed, the same rows
    with pytest.raises(SystemExit, match="NAME=MANIFEST"):
        carry.pack([str(manifest)], tmp_path / "c", level=0.9, seed=0, workers=1)
