"""``edgeasr data import`` (edgeasr.data.importers): the four layouts, resampling, per-row rejections."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edgeasr.data.cli import main as data_main
from edgeasr.data.importers import ImportOptions, detect_layout, import_corpus, read_path_list
from edgeasr.manifest import read_manifest, resolve_audio_path

FIXTURE = Path(__file__).parent / "fixtures" / "defective"


def tone(path: Path, rate: int = 16000, seconds: float = 1.0, channels: int = 1) -> None:
    t = np.arange(int(rate * seconds)) / rate
    x = (0.3 * np.sin(2 * np.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    sf.write(path, np.stack([x] * channels, axis=1) if channels > 1 else x, rate)


def check_outputs(manifest: Path) -> list[dict]:
    rows = read_manifest(manifest)
    for row in rows:
        info = sf.info(str(resolve_audio_path(row, manifest)))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert abs(info.frames / 16000 - row["duration"]) < 1e-3
    assert (manifest.parent / (manifest.name + ".version")).read_text().startswith("dv-")
    return rows


def test_folder_layout_resamples_and_reports_missing_transcripts(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    tone(src / "a.wav", rate=44100, channels=2)
    (src / "a.txt").write_text("Turn ON the lights!\n")
    tone(src / "sub" / "b.flac", rate=8000)
    (src / "sub" / "b.txt").write_text("Call 555-0134")
    tone(src / "c.wav")  # no transcript
    assert detect_layout(src) == "folder"
    summary = import_corpus(src, tmp_path / "out", progress=False)
    assert (summary.imported, summary.rejected) == (2, 1)
    rows = check_outputs(Path(summary.manifest))
    assert sorted(r["text"] for r in rows) == [
        "call five five five zero one three four",
        "turn on the lights",
    ]
    rejected = (tmp_path / "out" / "train.rejected.jsonl").read_text()
    assert "no transcript" in rejected
    again = import_corpus(src, tmp_path / "out", progress=False)  # resumable: same result
    assert again.version == summary.version


def test_librispeech_layout(tmp_path: Path) -> None:
    chapter = tmp_path / "LibriSpeech" / "dev-clean" / "84" / "121123"
    chapter.mkdir(parents=True)
    tone(chapter / "84-121123-0000.flac")
    tone(chapter / "84-121123-0001.flac")
    (chapter / "84-121123.trans.txt").write_text(
        "84-121123-0000 GO DO YOU HEAR\n84-121123-0001 BUT IN LESS THAN FIVE MINUTES\n84-121123-0002 MISSING FILE\n"
    )
    assert detect_layout(tmp_path / "LibriSpeech") == "librispeech"
    summary = import_corpus(tmp_path / "LibriSpeech", tmp_path / "out", progress=False)
    assert (summary.imported, summary.rejected) == (2, 1)
    rows = check_outputs(Path(summary.manifest))
    assert {r["voice"] for r in rows} == {"librispeech-84"}
    assert rows[0]["text"] == "go do you hear"


def test_commonvoice_tsv(tmp_path: Path) -> None:
    (tmp_path / "clips").mkdir()
    tone(tmp_path / "clips" / "one.wav", rate=48000)
    tone(tmp_path / "clips" / "two.wav", rate=22050)
    (tmp_path / "validated.tsv").write_text(
        "client_id\tpath\tsentence\tup_votes\n"
        "abc123\tone.wav\tWhat's the time?\t2\n"
        "def456\ttwo.wav\tPlay 日本 music\t1\n"
        "abc123\tthree.wav\tNot there\t1\n"
    )
    summary = import_corpus(tmp_path / "validated.tsv", tmp_path / "out", ImportOptions(split="dev"), progress=False)
    assert (summary.imported, summary.rejected) == (1, 2)
    assert summary.reasons == {"unknown_characters": 1, "bad_source_row": 1}
    rows = check_outputs(tmp_path / "out" / "dev.jsonl")
    assert rows[0]["text"] == "what's the time" and rows[0]["split"] == "dev" and rows[0]["voice"] == "cv-abc123"
    with pytest.raises(ValueError, match="Common Voice"):
        (tmp_path / "bad.tsv").write_text("a\tb\n1\t2\n")
        import_corpus(tmp_path / "bad.tsv", tmp_path / "out2", progress=False)


def test_jsonl_import_of_the_defective_fixture_never_crashes(tmp_path: Path) -> None:
    summary = import_corpus(FIXTURE / "manifest.jsonl", tmp_path / "out", progress=False)
    assert summary.imported + summary.rejected == 22
    rejected = [json.loads(x) for x in (tmp_path / "out" / "train.rejected.jsonl").read_text().splitlines()]
    classes = {r["class"] for r in rejected}
    assert {
        "unreadable",
        "empty_audio",
        "non_finite",
        "unknown_characters",
        "bad_source_row",
        "silent",
        "empty_text",
    } <= classes
    rows = check_outputs(Path(summary.manifest))
    assert summary.clipped == 1 and sum(1 for r in rows if r.get("clipped")) == 1
    # stereo and 8 kHz sources are converted, not rejected
    assert {"stereo.flac", "rate8k.flac"} <= {r["source"] for r in rows}


def test_unknown_source(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        detect_layout(tmp_path / "nothing")
    (tmp_path / "x.csv").write_text("a")
    with pytest.raises(ValueError):
        detect_layout(tmp_path / "x.csv")


def test_only_and_exclude_lists_split_a_source_by_path(tmp_path: Path) -> None:
    """A dev list (as real-speech's dev.txt) puts the listed clips on one side and the rest on the other."""
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    rows = []
    for i, word in enumerate(["one", "two", "three", "four"]):
        tone(src / "a" / f"{i}.wav")
        rows.append({"audio_filepath": f"a/{i}.wav", "text": word})
    (src / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    dev = tmp_path / "dev.txt"
    dev.write_text("# held-out clips\na/1.wav\n\na/3.wav\n")
    listed = read_path_list(dev)
    assert listed == {"a/1.wav", "a/3.wav"}
    held = import_corpus(src / "m.jsonl", tmp_path / "dev", ImportOptions(split="dev", only=listed), progress=False)
    rest = import_corpus(src / "m.jsonl", tmp_path / "train", ImportOptions(exclude=listed), progress=False)
    assert sorted(r["text"] for r in read_manifest(held.manifest)) == ["four", "two"]
    assert sorted(r["text"] for r in read_manifest(rest.manifest)) == ["one", "three"]
    assert (
        data_main(["import", str(src / "m.jsonl"), "--out", str(tmp_path / "cli"), "--only-list", str(dev), "--quiet"])
        == 0
    )
    assert len(read_manifest(tmp_path / "cli" / "train.jsonl")) == 2
