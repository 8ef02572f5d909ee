"""``edgeasr data validate`` (edgeasr.data.validate) against the committed defective fixture."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from edgeasr.data.cli import main as data_main
from edgeasr.data.validate import CHECKS, ValidateOptions, validate_manifest
from edgeasr.text import number_to_words

FIXTURE = Path(__file__).parent / "fixtures" / "defective"


def _expected() -> dict[int, set[str]]:
    spec = importlib.util.spec_from_file_location("make_fixture", FIXTURE / "make_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.EXPECTED


def test_fixture_files_are_small() -> None:
    assert all(p.stat().st_size < 30_000 for p in FIXTURE.iterdir())


def test_every_defect_class_is_caught_on_its_line() -> None:
    report = validate_manifest(FIXTURE / "manifest.jsonl")
    found: dict[int, set[str]] = {}
    for issue in report.issues:
        found.setdefault(issue.line, set()).add(issue.check)
    for line, checks in _expected().items():
        assert checks <= found.get(line, set()), f"line {line}: expected {checks}, found {found.get(line)}"
    assert 1 not in found and 2 not in found  # the clean rows stay clean
    assert report.rows == 22
    assert report.exit_code == 1
    assert report.usable_rows == 22 - len({ln for ln, c in found.items() if any(CHECKS[x] == "error" for x in c)})


def test_table_json_profile_and_exit_code_via_cli(tmp_path: Path, capsys) -> None:
    report_path, profile_path = tmp_path / "report.json", tmp_path / "profile.json"
    code = data_main(
        [
            "validate",
            str(FIXTURE / "manifest.jsonl"),
            "--json",
            str(report_path),
            "--profile",
            str(profile_path),
            "--quiet",
        ]
    )
    assert code == 1
    table = capsys.readouterr().out
    for check in (
        "unreadable",
        "channels",
        "sample_rate",
        "non_finite",
        "clipping",
        "leading_silence",
        "charset",
        "conflicting_labels",
    ):
        assert check in table
    report = json.loads(report_path.read_text())
    assert report["errors"] > 0 and report["counts"]["unreadable"] == 3
    profile = json.loads(profile_path.read_text())
    assert profile["data_version"].startswith("dv-")
    for key in ("duration", "loudness", "silence_ratio", "chars_per_second", "leading_silence"):
        assert profile[key]["count"] == report["usable_rows"]


def _clean_corpus(tmp_path: Path, n: int = 12) -> Path:
    rows = []
    for i in range(n):
        t = np.arange(16000) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (120 + 10 * i) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
        sf.write(tmp_path / f"u{i}.wav", wave.astype(np.float32), 16000, subtype="PCM_16")
        rows.append({"audio_filepath": f"u{i}.wav", "text": f"call number {number_to_words(i)}", "duration": 1.0})
    manifest = tmp_path / "clean.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def test_clean_manifest_exits_zero_and_strict_fails_on_warnings(tmp_path: Path) -> None:
    manifest = _clean_corpus(tmp_path)
    report = validate_manifest(manifest)
    assert report.errors == 0 and report.exit_code == 0, report.table()
    shutil.copy(tmp_path / "u0.wav", tmp_path / "copy.wav")
    with open(manifest, "a") as fh:
        fh.write(json.dumps({"audio_filepath": "copy.wav", "text": "call number zero", "duration": 1.0}) + "\n")
    report = validate_manifest(manifest)
    assert report.counts.get("duplicate_audio") == 2 and report.exit_code == 0
    assert validate_manifest(manifest, ValidateOptions(fail_on_warnings=True)).exit_code == 1


def test_duration_outlier_and_speaking_rate(tmp_path: Path) -> None:
    manifest = _clean_corpus(tmp_path, 30)
    t = np.arange(16000 * 12) / 16000
    sf.write(tmp_path / "long.wav", (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000)
    with open(manifest, "a") as fh:
        fh.write(json.dumps({"audio_filepath": "long.wav", "text": "hi", "duration": 12.0}) + "\n")
    counts = validate_manifest(manifest).counts
    assert counts.get("duration_outlier") == 1
    assert counts.get("speaking_rate") == 1  # two letters in twelve seconds


def test_paths_that_leave_the_manifest_folder_are_refused_unless_allowed(tmp_path: Path) -> None:
    """/etc/passwd or ../../: not read, not measured, reported; --allow-outside reads them."""
    sample = Path(__file__).resolve().parents[1] / "samples" / "01-flite-rms.wav"
    inner = tmp_path / "data"
    inner.mkdir()
    shutil.copy(sample, tmp_path / "above.wav")
    rows = [
        {"audio_filepath": "/etc/passwd", "text": "secret", "duration": 1.0},
        {"audio_filepath": "../above.wav", "text": "is it windy in cincinnati right now", "duration": 2.72},
    ]
    manifest = inner / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = validate_manifest(manifest)
    outside = [i for i in report.to_dict()["issues"] if i["check"] == "outside"]
    assert len(outside) == 2 and all("outside the manifest's folder" in i["message"] for i in outside)
    assert not [i for i in report.to_dict()["issues"] if i["check"] == "unreadable"]  # passwd was never opened
    allowed = validate_manifest(manifest, ValidateOptions(allow_outside=True)).to_dict()["issues"]
    assert not [i for i in allowed if i["check"] == "outside"]
    assert [i for i in allowed if i["check"] == "unreadable"]  # now read: and it is not audio
