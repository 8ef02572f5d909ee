"""edgeasr eval: corpus WER/CER per split, noisy copies, per-engine breakdown, unreadable rows counted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edgeasr.decoding import Transcript
from edgeasr.manifest import data_version
from edgeasr.training.evaluate import evaluate_split

ROOT = Path(__file__).resolve().parent.parent


class _ScriptedRecognizer:
    """Answers from a table keyed by the first sample value, so each row gets a known hypothesis."""

    def __init__(self, answers: dict[int, str]) -> None:
        self.answers, self.seen = answers, []

    def transcribe(self, wave: np.ndarray, sample_rate: int) -> Transcript:
        self.seen.append(wave.copy())
        return Transcript(text=self.answers[round(float(wave[0]) * 100)], latency_s=0.002)


@pytest.fixture()
def manifest(tmp_path: Path) -> Path:
    rows = [
        ("a.wav", "turn on the lights", "espeak-ng", 1),
        ("b.wav", "set a timer", "espeak-ng", 2),
        ("c.wav", "what time is it", "flite", 3),
    ]
    with open(tmp_path / "m.jsonl", "w") as fh:
        for name, text, engine, mark in rows:
            wave = np.full(8000, 0.001, dtype=np.float32)
            wave[0] = mark / 100
            sf.write(tmp_path / name, wave, 16000)
            fh.write(json.dumps({"audio_filepath": name, "text": text, "duration": 0.5, "engine": engine}) + "\n")
        (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00not audio")
        broken = {"audio_filepath": "broken.wav", "text": "lost", "duration": 0.5, "engine": "flite"}
        fh.write(json.dumps(broken) + "\n")
    return tmp_path / "m.jsonl"


def test_split_scores_counts_failures_and_breaks_down_by_engine(manifest: Path) -> None:
    rec = _ScriptedRecognizer({1: "turn on the light", 2: "set a timer", 3: "what time is it"})
    result = evaluate_split(rec, manifest, "test", worst=2)
    assert result.utterances == 3 and result.failed == 1  # the unreadable row is counted, not dropped
    assert result.wer == pytest.approx(1 / 11)
    assert result.groups["espeak-ng"]["utterances"] == 2
    assert result.groups["espeak-ng"]["wer"] == pytest.approx(1 / 7)
    assert result.groups["flite"]["wer"] == 0.0
    assert [w["reference"] for w in result.worst] == ["turn on the lights", "set a timer"]


def test_split_records_the_data_version_of_what_it_scored(manifest: Path) -> None:
    rec = _ScriptedRecognizer({1: "turn on the light", 2: "set a timer", 3: "what time is it"})
    before = evaluate_split(rec, manifest, "test").data_version
    assert before == data_version(manifest) and before.startswith("dv-")
    wave, rate = sf.read(manifest.parent / "a.wav")
    wave[-1] = 0.25
    sf.write(manifest.parent / "a.wav", wave, rate)  # the same labels, other audio: another version
    assert evaluate_split(rec, manifest, "test").data_version not in ("", before)


def test_group_by_a_field_prefix_scores_each_corpus(manifest: Path) -> None:
    # "engine:-" groups "espeak-ng" under "espeak" and leaves "flite" whole: the real-speech dev split
    # groups its speakers ("cathy-0", "fsdd-jackson") per corpus the same way ("speaker:-").
    rec = _ScriptedRecognizer({1: "turn on the light", 2: "set a timer", 3: "what time is it"})
    result = evaluate_split(rec, manifest, "test", group_by="engine:-")
    assert set(result.groups) == {"espeak", "flite"}
    assert result.groups["espeak"]["utterances"] == 2
    assert result.groups["espeak"]["wer"] == pytest.approx(1 / 7)


def test_noisy_copies_are_noisy_and_repeatable(manifest: Path) -> None:
    rec = _ScriptedRecognizer({1: "", 2: "", 3: ""})
    evaluate_split(rec, manifest, "clean", group_by=None)
    clean = rec.seen[1]
    rec.seen.clear()
    result = evaluate_split(rec, manifest, "test@5dB", snr_db=5.0, group_by=None)
    first = rec.seen[1]
    rec.seen.clear()
    evaluate_split(rec, manifest, "test@5dB", snr_db=5.0, group_by=None)
    assert result.groups == {}
    assert np.array_equal(first, rec.seen[1])  # seeded noise: runs compare
    noise = first - clean
    snr = 10 * np.log10(np.mean(clean**2) / np.mean(noise**2))
    assert snr == pytest.approx(5.0, abs=0.5)


def test_eval_command_on_the_shipped_model(tmp_path: Path) -> None:
    from edgeasr.cli import main

    out = tmp_path / "eval.json"
    samples = str(ROOT / "samples" / "manifest.jsonl")
    code = main(["eval", samples, "--noise-snr", "10", "--worst", "2", "--out", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    names = [s["name"] for s in report["splits"]]
    assert names == ["manifest", "manifest@10dB"]
    clean = report["splits"][0]
    assert clean["utterances"] == 8 and clean["failed"] == 0
    assert clean["wer"] <= 0.15  # the shipped model on its own samples (5.1% when shipped)
    assert set(clean["groups"]) >= {"flite", "festival"}
    assert report["decoder"] == "beam"


def test_eval_scores_conditions_and_peers_in_the_same_run(tmp_path: Path, capsys) -> None:
    pytest.importorskip("pocketsphinx", reason="the peers extra is not installed")
    from edgeasr.cli import main

    out = tmp_path / "eval.json"
    samples = f"samples={ROOT / 'samples' / 'manifest.jsonl'}"
    args = ["eval", samples, "--noise-snr", "", "--conditions", "level=-40;silence=1", "--peers", "pocketsphinx"]
    assert main([*args, "--worst", "0", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    names = [s["name"] for s in report["splits"]]
    assert names == ["samples", "samples@level-40dBFS", "samples@silence1s"]
    peer = report["peers"]["pocketsphinx"]
    assert [s["name"] for s in peer["splits"]] == names and peer["version"].startswith("pocketsphinx")
    assert all(0.0 <= s["wer"] < 1.0 for s in peer["splits"])  # it transcribes: a real reference
    printed = capsys.readouterr().out
    assert "pocketsphinx WER %" in printed
    # the per-engine table has the peer's WER beside edgeasr's, engine by engine
    per_engine = printed.split("per engine:", 1)[1].split("\n\n", 1)[0]
    flite = next(line for line in per_engine.splitlines() if "samples / flite" in line).split()
    peer_flite = peer["splits"][0]["groups"]["flite"]["wer"]
    assert float(flite[-1]) == pytest.approx(100 * peer_flite, abs=0.01)
    assert main(["eval", samples, "--conditions", "loud=3"]) == 2  # a clear error, not a traceback
    assert main(["eval", samples, "--peers", "siri"]) == 2


def test_eval_fails_when_rows_cannot_be_read_and_checks_stated_rates(tmp_path: Path, capsys) -> None:
    """3 of 5 rows unreadable (missing, not audio, rate other than the row says): exit 1, the rest scored."""
    import shutil

    from edgeasr.cli import main

    for name in ("01-flite-rms.wav", "02-flite-rms.wav", "03-festival-kal_diphone.wav"):
        shutil.copy(ROOT / "samples" / name, tmp_path / name)
    (tmp_path / "notes.wav").write_text("not audio")
    rows = [
        {"audio_filepath": "01-flite-rms.wav", "text": "is it windy in cincinnati right now", "sample_rate": 16000},
        {"audio_filepath": "02-flite-rms.wav", "text": "when does the sun set in prague"},
        {"audio_filepath": "missing.wav", "text": "gone"},
        {"audio_filepath": "notes.wav", "text": "text"},
        {"audio_filepath": "03-festival-kal_diphone.wav", "text": "turn the volume up", "sample_rate": 8000},
    ]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "eval.json"
    assert main(["eval", str(manifest), "--noise-snr", "", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "3 of 5 rows could not be read" in err
    assert "the manifest says 8000 Hz, the file's header 16000 Hz" in err and "no such file" in err
    split = json.loads(out.read_text())["splits"][0]
    assert split["utterances"] == 2 and split["failed"] == 3 and split["wer"] < 0.2


def test_eval_refuses_audio_outside_the_manifest_folder_unless_allowed(tmp_path: Path, capsys) -> None:
    import shutil

    from edgeasr.cli import main

    shutil.copy(ROOT / "samples" / "01-flite-rms.wav", tmp_path / "above.wav")
    (tmp_path / "data").mkdir()
    manifest = tmp_path / "data" / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": "../above.wav", "text": "is it windy in cincinnati right now"}))
    assert main(["eval", str(manifest), "--noise-snr", ""]) == 1
    assert "outside the manifest's folder" in capsys.readouterr().err
    assert main(["eval", str(manifest), "--noise-snr", "", "--allow-outside"]) == 0
