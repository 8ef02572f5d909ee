"""General English text sources (edgeasr.data.text_sources) and `edgeasr data sentences`."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from edgeasr.data import text_sources
from edgeasr.data.prompts import load_text_list
from edgeasr.data.text_sources import TEXT_SOURCES, source_sentences, wordnet_examples

needs_bible = pytest.mark.skipif(
    shutil.which("diatheke") is None, reason="diatheke and sword-text-web are not installed (./run setup installs them)"
)


@pytest.fixture
def genesis(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read three chapters, not the whole book (about 15 s)."""
    monkeypatch.setattr(text_sources, "BIBLE_RANGE", "Genesis 1-3")


@needs_bible
def test_bible_sentences_keep_the_space_between_marked_up_words(genesis: None) -> None:
    sentences = source_sentences("bible")
    # diatheke's plain rendering gives "In the beginning, Godcreated the heavens and the earth."
    assert "in the beginning god created the heavens and the earth" in sentences
    assert not any("godcreated" in s for s in sentences)
    assert len(sentences) > 50
    assert all(4 <= len(s.split()) <= 20 for s in sentences)
    assert all(s == s.lower() and "," not in s and "." not in s for s in sentences)


@needs_bible
def test_sampling_is_seeded_and_bounded(genesis: None) -> None:
    a = source_sentences("bible", 20, seed=1)
    assert a == source_sentences("bible", 20, seed=1)
    assert a != source_sentences("bible", 20, seed=2)
    assert len(a) == len(set(a)) == 20
    short = source_sentences("bible", None, min_words=2, max_words=5)
    assert short and all(2 <= len(s.split()) <= 5 for s in short)


def test_chatterbot_conversations() -> None:
    pytest.importorskip("chatterbot_corpus", reason="chatterbot-corpus is not installed (extra `data`)")
    lines = source_sentences("chatterbot", min_words=2)
    assert len(lines) > 1500
    assert "what is your shoe size" in lines
    assert not any(line.endswith(":") or line.startswith(("conversations", "categories")) for line in lines)


def test_home_assistant_commands() -> None:
    pytest.importorskip("hassil", reason="hassil is not installed (extra `data`)")
    pytest.importorskip("home_assistant_intents", reason="home-assistant-intents is not installed (extra `data`)")
    commands = source_sentences("hass", min_words=1)
    assert len(commands) > 5000  # 862 templates, up to 12 realisations each, duplicates merged
    assert commands == source_sentences("hass", min_words=1)  # seeded realisations, seeded sample
    # slots filled from edgeasr's word lists, numbers spoken, optional plurals joined to their word
    assert any(c.startswith("turn on ") for c in commands) and any("ceiling fan" in c for c in commands)
    assert not any("floor floor" in c for c in commands)
    assert any(c.startswith("add ") and c.endswith(" shopping list") for c in commands)  # a wildcard, filled
    assert any("minutes" in c.split() for c in commands)
    assert not any({"s", "es"} & set(c.split()) or any(ch.isdigit() for ch in c) for c in commands)
    assert not set(commands) & set(wordnet_examples(300))


def test_wordnet_is_the_held_out_source_and_no_training_source_shares_its_sentences() -> None:
    pytest.importorskip("chatterbot_corpus", reason="chatterbot-corpus is not installed (extra `data`)")
    assert [name for name, src in TEXT_SOURCES.items() if src.held_out] == ["wordnet"]
    held_out = source_sentences("wordnet", 300, min_words=5, max_words=16)
    assert held_out == wordnet_examples(300) and len(held_out) == 300
    assert not set(held_out) & set(source_sentences("chatterbot", min_words=2))


def test_fortunes_are_quotations_without_attributions_or_held_out_sentences(tmp_path) -> None:
    fortunes, wordnet = tmp_path / "fortunes", tmp_path / "wordnet"
    fortunes.mkdir(), wordnet.mkdir()
    (fortunes / "literature").write_text(
        "A banker is a fellow who lends you his umbrella when the sun is shining\n"
        "and wants it back the minute it begins to rain.\n\t\t-- Mark Twain\n%\n"
        "Necessity is the mother of invention.\n%\n"
        "2^64 = 18,446,744,073,709,551,616. Remember it well.\n"
    )
    (fortunes / "literature.dat").write_bytes(b"\x00\x02binary index")  # fortune's index, not text
    (fortunes / "ascii-art").write_text("  /\\_/\\  the cat sits here\n%\n")
    (wordnet / "data.noun").write_text(
        "  1 licence header\n05000000 04 n 01 necessity 0 000 | the condition of being essential; "
        '"necessity is the mother of invention"\n'
    )
    where = {"fortunes_dir": fortunes, "wordnet_dir": wordnet}
    sentences = source_sentences("fortunes", min_words=2, max_words=40, **where)
    assert sorted(sentences) == [
        "a banker is a fellow who lends you his umbrella when the sun is shining and wants it back the minute it "
        "begins to rain",
        "remember it well",
        "two sixty four equals one eight four four six seven four four zero seven three seven zero nine five five "
        "one six one six",
    ]
    assert not TEXT_SOURCES["fortunes"].held_out
    with pytest.raises(FileNotFoundError, match="fortunes-min"):
        source_sentences("fortunes", fortunes_dir=tmp_path / "none")


needs_r_text = pytest.mark.skipif(
    not all(
        any((Path(d).expanduser() / pkg / "data" / "Rdata.rdb").is_file() for d in text_sources.R_LIBRARY_DIRS)
        for pkg in ("janeaustenr", "tokenizers")
    ),
    reason="Debian's r-cran-janeaustenr and r-cran-tokenizers are not unpacked (./run setup unpacks them)",
)


@needs_r_text
def test_novels_are_read_from_r_data_without_r_and_without_gutenberg_s_licence() -> None:
    austen = source_sentences("austen", min_words=2, max_words=40)
    assert 40_000 < len(austen) < 45_000
    assert (
        "it is a truth universally acknowledged that a single man in possession of a good fortune must be in want "
        "of a wife" in austen
    )
    moby = source_sentences("mobydick", min_words=2, max_words=40)
    assert "call me ishmael" in moby and 12_000 < len(moby) < 13_000
    assert not [s for s in moby if "gutenberg" in s]
    sample = source_sentences("austen", 5, seed=3)
    assert sample == source_sentences("austen", 5, seed=3) != source_sentences("austen", 5)
    assert not any(TEXT_SOURCES[name].held_out for name in ("austen", "mobydick", "wikipedia"))


def test_r_data_that_is_not_a_character_vector_is_a_clear_error(tmp_path) -> None:
    def stored(serialized: bytes) -> bytes:  # a lazy-load database object: its length, then zlib
        return struct.pack(">I", len(serialized)) + zlib.compress(serialized)

    bad = tmp_path / "not-r.rdb"
    bad.write_bytes(stored(b"PK\x03\x04 a zip file"))
    with pytest.raises(ValueError, match="not R's XDR serialization"):
        text_sources._r_character_vectors(bad)
    header = b"X\n" + struct.pack(">iii", 3, 0x040201, 0x030500) + struct.pack(">i", 5) + b"UTF-8"
    numbers = tmp_path / "numbers.rdb"  # an integer vector (type 13) of one element
    numbers.write_bytes(stored(header + struct.pack(">iii", 13, 1, 42)))
    with pytest.raises(ValueError, match="R type 13, not a character vector"):
        text_sources._r_character_vectors(numbers)
    words = tmp_path / "words.rdb"  # two objects: c("Call me", NA), c("Ishmael.")
    call_me = struct.pack(">ii", 0x40009, 7) + b"Call me"  # a CHARSXP: flags (UTF-8), byte length, bytes
    na = struct.pack(">ii", 9, -1)
    ishmael = struct.pack(">ii", 0x40009, 8) + b"Ishmael."
    words.write_bytes(
        stored(header + struct.pack(">ii", 16, 2) + call_me + na) + stored(header + struct.pack(">ii", 16, 1) + ishmael)
    )
    assert text_sources._r_character_vectors(words) == [["Call me", ""], ["Ishmael."]]
    with pytest.raises(FileNotFoundError, match="janeaustenr"):
        source_sentences("austen", library_dirs=(str(tmp_path),))


def test_wikipedia_walks_follow_the_chain_and_stop_at_its_size() -> None:
    chain = {
        "The cat": {"left": "The", "right": "cat", "total": 3, "transitions": ["sat", "ran"], "weights": [0.5, 0.5]},
        "cat sat": {"left": "cat", "right": "sat", "total": 1, "transitions": ["down."], "weights": [1.0]},
        "cat ran": {"left": "cat", "right": "ran", "total": 1, "transitions": ["away"], "weights": [1.0]},
        "the dog": {"left": "the", "right": "dog", "total": 2, "transitions": ["barked."], "weights": [1.0]},
    }
    # 7 trigrams counted; "ran away" leads nowhere and "the dog" starts no walk (lower case)
    walked = text_sources._wikipedia_walk(seed=5, chain=chain)
    assert walked == ["The cat sat down.", "The cat sat down."]
    pytest.importorskip("essential_generators", reason="essential-generators is not installed (extra `data`)")
    sentences = source_sentences("wikipedia", 20, seed=1, min_words=3, max_words=40)
    assert len(sentences) == 20 and all(load_text_list_ok(s) for s in sentences)


def load_text_list_ok(sentence: str) -> bool:
    """A label of the labelling convention: lower-case words of letters and apostrophes."""
    return bool(sentence) and all(w.replace("'", "").isalpha() and w.islower() for w in sentence.split())


def test_unknown_source() -> None:
    with pytest.raises(ValueError, match="unknown text source 'gutenberg'"):
        source_sentences("gutenberg")


def test_cli_writes_the_sentences(tmp_path) -> None:
    pytest.importorskip("chatterbot_corpus", reason="chatterbot-corpus is not installed (extra `data`)")
    out = tmp_path / "chat.txt"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgeasr",
            "data",
            "sentences",
            "--source",
            "chatterbot",
            "--num",
            "25",
            "--seed",
            "3",
            "--min-words",
            "2",
            "--max-words",
            "20",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[1:] == source_sentences("chatterbot", 25, seed=3, min_words=2)
    # the first line names the source and its licence, and is not a sentence to any reader of text lists
    listed = load_text_list(out)
    assert listed.sentences == lines[1:]
    assert listed.sources == [{"source": "chatterbot, " + TEXT_SOURCES["chatterbot"].kind, "licence": "BSD-3-Clause"}]
    assert "25 sentences from chatterbot" in done.stdout and "BSD-3-Clause" in done.stdout
