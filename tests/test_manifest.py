"""Manifests: data versions and merging corpora without leaking held-out sentences or voices."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edgeasr.manifest import data_version, merge_manifests, read_manifest, resolve_audio_path, write_manifest


def _corpus(root: Path, rows: list[tuple[str, str]]) -> Path:
    """A corpus folder with one short WAV per (text, voice) row and its train manifest."""
    (root / "wavs").mkdir(parents=True)
    out = []
    for i, (text, voice) in enumerate(rows):
        sf.write(root / "wavs" / f"{i}.wav", np.full(1600, 0.01 * (i + 1), np.float32), 16000)
        out.append({"audio_filepath": f"wavs/{i}.wav", "text": text, "duration": 0.1, "voice": voice})
    write_manifest(out, root / "train.jsonl")
    return root / "train.jsonl"


def test_data_version_follows_the_audio_bytes(tmp_path: Path) -> None:
    manifest = _corpus(tmp_path / "a", [("call mom", "v1")])
    before = data_version(manifest)
    assert (tmp_path / "a" / "train.jsonl.version").read_text().strip() == before
    sf.write(tmp_path / "a" / "wavs" / "0.wav", np.zeros(1600, np.float32), 16000)
    assert data_version(manifest) != before


def test_merge_drops_held_out_sentences_and_voices(tmp_path: Path) -> None:
    a = _corpus(tmp_path / "a", [("call mom", "v1"), ("play music", "v2")])
    b = _corpus(tmp_path / "b", [("play music", "v3"), ("what time is it", "v9"), ("set a timer", "v3")])
    held = tmp_path / "test.jsonl"
    write_manifest(
        [{"audio_filepath": "x.wav", "text": "what time is it", "duration": 1.0, "voice": "v2"}], held
    )  # fmt: skip
    out = tmp_path / "merged" / "train.jsonl"
    version, counts = merge_manifests([a, b, a], out, hold_out=[held])
    assert counts == {"kept": 3, "held_out_text": 1, "held_out_voice": 2, "duplicates": 1, "not_selected": 0}
    rows = read_manifest(out)
    assert [(r["text"], r["voice"]) for r in rows] == [("call mom", "v1"), ("play music", "v3"), ("set a timer", "v3")]
    # audio stays where it is; paths resolve from the merged manifest's folder
    assert resolve_audio_path(rows[0], out).resolve() == (tmp_path / "a" / "wavs" / "0.wav").resolve()
    assert resolve_audio_path(rows[2], out).resolve() == (tmp_path / "b" / "wavs" / "2.wav").resolve()
    assert version == data_version(out)


def test_merge_can_select_the_held_out_sentences_spoken_by_training_voices(tmp_path: Path) -> None:
    a = _corpus(tmp_path / "a", [("call mom", "v1"), ("play music", "v2"), ("play music", "v7")])
    test = tmp_path / "test.jsonl"
    write_manifest([{"audio_filepath": "x.wav", "text": "play music", "duration": 1.0, "voice": "v7"}], test)
    _, counts = merge_manifests([a], tmp_path / "seen.jsonl", hold_out=[test], only_sentences_of=[test])
    # the test voice v7 stays out even when its sentence is selected
    assert counts == {"kept": 1, "held_out_text": 0, "held_out_voice": 1, "duplicates": 0, "not_selected": 1}
    assert [r["voice"] for r in read_manifest(tmp_path / "seen.jsonl")] == ["v2"]


def test_merge_command(tmp_path: Path) -> None:
    a = _corpus(tmp_path / "a", [("call mom", "v1"), ("play music", "v2")])
    held = tmp_path / "dev.jsonl"
    write_manifest([{"audio_filepath": "x.wav", "text": "call mom", "duration": 1.0}], held)
    out = tmp_path / "m.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "edgeasr", "data", "merge", str(a), "--out", str(out), "--hold-out", str(held)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "1 rows" in proc.stdout and "dropped 1 with a held-out sentence" in proc.stdout
    assert [json.loads(line)["text"] for line in out.read_text().splitlines()] == ["play music"]
    missing = subprocess.run(
        [sys.executable, "-m", "edgeasr", "data", "merge", str(tmp_path / "nope.jsonl"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "nope.jsonl" in missing.stderr


def test_split_keeps_each_speaker_on_one_side(tmp_path: Path) -> None:
    from edgeasr.manifest import split_manifest

    rows = [{"audio_filepath": f"a/{i}.wav", "text": "yes", "speaker": f"s{i % 40}", "id": i} for i in range(400)]
    src = tmp_path / "src" / "all.jsonl"
    write_manifest(rows, src)
    counts = split_manifest(src, tmp_path / "fit.jsonl", tmp_path / "check" / "check.jsonl", by="speaker", fraction=0.2)
    fit, check = read_manifest(tmp_path / "fit.jsonl"), read_manifest(tmp_path / "check" / "check.jsonl")
    assert counts == {"kept": len(fit), "held_out": len(check)} and len(fit) + len(check) == 400
    assert 0 < len(check) < 200
    assert not {r["speaker"] for r in fit} & {r["speaker"] for r in check}
    # paths still point at the same audio from the new folders
    for row, manifest in ((check[0], tmp_path / "check" / "check.jsonl"), (fit[0], tmp_path / "fit.jsonl")):
        assert resolve_audio_path(row, manifest).resolve() == (src.parent / "a" / f"{row['id']}.wav").resolve()
    again = split_manifest(src, tmp_path / "fit2.jsonl", tmp_path / "check2.jsonl", by="speaker", fraction=0.2)
    assert again == counts  # deterministic
    with pytest.raises(ValueError, match="fraction"):
        split_manifest(src, tmp_path / "a.jsonl", tmp_path / "b.jsonl", fraction=1.0)
