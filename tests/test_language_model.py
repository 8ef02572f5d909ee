"""The word n-gram: Kneser-Ney estimation, ARPA output that KenLM reads, and ``edgeasr lm``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgeasr.training.language_model import EOS, UNK, NGramModel

SENTENCES = [
    "play music",
    "play some music",
    "play the news",
    "call mom",
    "call my mom",
    "set a timer for five minutes",
    "set an alarm for five a m",
    "play music in the kitchen",
]


@pytest.fixture(scope="module")
def model() -> NGramModel:
    return NGramModel.estimate(SENTENCES, order=3)


@pytest.mark.parametrize("context", [(), ("play",), ("<s>", "play"), ("set", "a"), ("never", "seen"), ("for",)])
def test_each_context_is_a_probability_distribution(model: NGramModel, context: tuple[str, ...]) -> None:
    words = [*model.vocabulary, EOS, UNK]
    total = sum(10 ** model.log10_prob((*context, w)) for w in words)
    assert total == pytest.approx(1.0, abs=1e-9)


def test_seen_continuations_beat_unseen_ones(model: NGramModel) -> None:
    assert model.log10_prob(("play", "music")) > model.log10_prob(("play", "mom"))
    assert model.log10_prob(("call", "my", "mom")) > model.log10_prob(("call", "my", "music"))
    assert model.vocabulary == sorted({w for s in SENTENCES for w in s.split()})


def test_kenlm_reads_the_arpa_and_agrees(model: NGramModel, tmp_path: Path) -> None:
    pytest.importorskip("flashlight.lib.text.decoder", reason="flashlight-text is not installed")
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    arpa = model.write_arpa(tmp_path / "lm.arpa")
    words = Dictionary()
    for w in [*model.vocabulary, UNK]:
        words.add_entry(w)
    words.set_default_index(words.get_index(UNK))
    lm = KenLM(str(arpa), words)
    state = lm.start(False)
    history = ("<s>",)
    for w in ["play", "music", "in", "the", "news"]:  # "the news" after "in" backs off
        state, score = lm.score(state, words.get_index(w))
        history = (*history, w)
        assert score == pytest.approx(model.log10_prob(history[-3:]), abs=1e-4)  # KenLM scores in log10
    _, end = lm.finish(state)
    assert end == pytest.approx(model.log10_prob((*history[-2:], EOS)), abs=1e-4)


def test_arpa_is_reproducible_and_counts_match(model: NGramModel, tmp_path: Path) -> None:
    a = model.write_arpa(tmp_path / "a.arpa").read_text()
    b = NGramModel.estimate(SENTENCES, order=3).write_arpa(tmp_path / "b.arpa").read_text()
    assert a == b
    header = [line for line in a.splitlines() if line.startswith("ngram ")]
    assert header == [f"ngram {n}={len(t)}" for n, t in enumerate(model.entries, 1)]
    assert a.rstrip().endswith("\\end\\")


def test_a_compressed_arpa_is_the_same_model_in_fewer_bytes(model: NGramModel, tmp_path: Path) -> None:
    pytest.importorskip("flashlight.lib.text.decoder", reason="flashlight-text is not installed")
    import gzip
    import shutil

    from ctc_emissions import spell
    from edgeasr.decoding import TOKENS, BeamSearchDecoder, open_arpa
    from edgeasr.export.tuning import _arpa_order

    plain = model.write_arpa(tmp_path / "lm.arpa")
    packed = model.write_arpa(tmp_path / "lm.arpa.gz")
    again = NGramModel.estimate(SENTENCES, order=3).write_arpa(tmp_path / "again.arpa.gz")
    assert packed.read_bytes() == again.read_bytes()  # reproducible: no name or time in the header
    assert packed.stat().st_size < plain.stat().st_size / 2
    assert gzip.decompress(packed.read_bytes()).decode() == plain.read_text()
    shipped = tmp_path / "version" / "lm.arpa"  # as a version folder ships it: compressed under the plain name
    shipped.parent.mkdir()
    shutil.copyfile(packed, shipped)
    with open_arpa(shipped) as fh:
        assert fh.read() == plain.read_text()
    assert _arpa_order(shipped) == 3
    logp = spell("call my mom", doubtful={6: {"y": 0.5, "i": 0.4}})
    text = BeamSearchDecoder(plain, list(TOKENS)).search(logp)
    from_gzip = BeamSearchDecoder(shipped, list(TOKENS))  # KenLM and the lexicon reader both read it
    assert from_gzip.vocabulary == model.vocabulary
    assert from_gzip.search(logp) == text and [w for w, _, _ in text] == ["call", "my", "mom"]


def test_no_words_is_an_error() -> None:
    with pytest.raises(ValueError, match="no words"):
        NGramModel.estimate(["", "   "])
    with pytest.raises(ValueError, match="order"):
        NGramModel.estimate(SENTENCES, order=0)


def test_lm_command_drops_held_out_sentences(tmp_path: Path) -> None:
    from edgeasr.manifest import write_manifest

    rows = [{"audio_filepath": f"{i}.wav", "text": s, "duration": 1.0} for i, s in enumerate(SENTENCES)]
    write_manifest(rows, tmp_path / "train.jsonl")
    write_manifest([{"audio_filepath": "x.wav", "text": "call my mom", "duration": 1.0}], tmp_path / "test.jsonl")
    (tmp_path / "mine.txt").write_text("Call Grandpa\n\n")
    out = tmp_path / "lm.arpa"
    proc = subprocess.run(
        [sys.executable, "-m", "edgeasr", "lm", str(tmp_path / "train.jsonl"), "--text", str(tmp_path / "mine.txt"),
         "--hold-out", str(tmp_path / "test.jsonl"), "--order", "3", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "1 held-out sentences dropped" in proc.stdout
    unigrams = {line.split("\t")[1] for line in out.read_text().split("\\2-grams:")[0].splitlines() if "\t" in line}
    assert "grandpa" in unigrams  # the user's own sentence, normalized
    assert "my" not in unigrams  # only the held-out sentence had it


def test_lm_command_without_text_is_a_clear_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "edgeasr", "lm", "--out", str(tmp_path / "lm.arpa")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "no words" in proc.stderr
    assert not (tmp_path / "lm.arpa").exists()


BACKGROUND = {"hello": 0.5, "world": 0.3, "music": 0.2}  # "music" is also in-domain


@pytest.mark.parametrize("context", [(), ("play",), ("<s>", "play"), ("play", "hello")])
def test_a_background_vocabulary_keeps_every_context_a_distribution(context: tuple[str, ...]) -> None:
    mixed = NGramModel.estimate(SENTENCES, order=3, background=BACKGROUND, background_weight=0.2)
    assert {"hello", "world"} <= set(mixed.vocabulary)  # open vocabulary: new words can be said
    words = [*mixed.vocabulary, EOS, UNK]
    assert sum(10 ** mixed.log10_prob((*context, w)) for w in words) == pytest.approx(1.0, abs=1e-9)


def test_the_background_weight_moves_mass_and_zero_changes_nothing(model: NGramModel) -> None:
    light = NGramModel.estimate(SENTENCES, order=3, background=BACKGROUND, background_weight=0.05)
    heavy = NGramModel.estimate(SENTENCES, order=3, background=BACKGROUND, background_weight=0.5)
    assert heavy.log10_prob(("hello",)) > light.log10_prob(("hello",))
    assert heavy.log10_prob(("play", "music")) > heavy.log10_prob(("play", "world"))  # context still wins
    none = NGramModel.estimate(SENTENCES, order=3, background=BACKGROUND, background_weight=0.0)
    assert none.entries == model.entries
    with pytest.raises(ValueError, match="background_weight"):
        NGramModel.estimate(SENTENCES, background=BACKGROUND, background_weight=1.0)


def test_general_english_unigrams_follow_the_labelling_convention() -> None:
    pytest.importorskip("wordfreq", reason="wordfreq is part of the train extra")
    from edgeasr.training.language_model import general_english_unigrams

    words = general_english_unigrams(2000)
    assert len(words) == 2000 and sum(words.values()) == pytest.approx(1.0)
    assert {"the", "yes", "no", "go", "have", "your", "don't"} <= set(words)
    assert all(w.replace("'", "").isalpha() and w == w.lower() for w in words)
    assert words["the"] > words["have"]


@pytest.mark.parametrize("context", [(), ("play",), ("<s>", "play"), ("set", "a"), ("call", "my"), ("for",)])
def test_a_pruned_model_keeps_each_context_a_distribution(model: NGramModel, context: tuple[str, ...]) -> None:
    """Singletons dropped from the bigrams up: fewer n-grams, and back-off weights computed again over what is left."""
    pruned = NGramModel.estimate(SENTENCES, order=3, prune=(0, 1))  # the last cut-off repeats for the trigrams
    words = [*pruned.vocabulary, EOS, UNK]
    assert pruned.vocabulary == model.vocabulary  # unigrams are never pruned
    assert len(pruned.entries[1]) < len(model.entries[1]) and len(pruned.entries[2]) < len(model.entries[2])
    assert ("play", "music") in pruned.entries[1] and ("call", "my") not in pruned.entries[1]  # seen 3 times, once
    total = sum(10 ** pruned.log10_prob((*context, w)) for w in words)
    assert total == pytest.approx(1.0, abs=1e-9)
    assert pruned.log10_prob(("play", "music")) == model.log10_prob(("play", "music"))  # a kept n-gram keeps its p


def test_pruning_refuses_cutoffs_that_break_the_format() -> None:
    for bad in [(1, 1, 1), (0, 2, 1), (0, -1)]:
        with pytest.raises(ValueError, match="prune"):
            NGramModel.estimate(SENTENCES, order=3, prune=bad)


def test_kenlm_reads_a_pruned_model(tmp_path: Path) -> None:
    pytest.importorskip("flashlight.lib.text.decoder", reason="flashlight-text is not installed")
    from ctc_emissions import spell
    from edgeasr.decoding import TOKENS, BeamSearchDecoder

    path = NGramModel.estimate(SENTENCES, order=3, prune=(0, 1)).write_arpa(tmp_path / "pruned.arpa")
    decoder = BeamSearchDecoder(path, list(TOKENS))
    logp = spell("call my mom", doubtful={6: {"y": 0.5, "i": 0.4}})
    assert [w for w, _, _ in decoder.search(logp)] == ["call", "my", "mom"]
