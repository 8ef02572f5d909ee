"""The labelling convention (edgeasr.text): one test per rule of the module docstring."""

from __future__ import annotations

import pytest

from edgeasr.decoding import TOKENS
from edgeasr.text import (
    CHARSET,
    NormalizeOptions,
    TextNormalizationError,
    digits_to_words,
    is_normalized,
    normalize_text,
    number_to_words,
    ordinal_to_words,
    unknown_characters,
)


def test_charset_is_the_models_token_set() -> None:
    assert set(CHARSET) == set(TOKENS[1:])


@pytest.mark.parametrize(
    "raw", ["Um, today's weather", "Um... today's weather", "Today's weather", "uh TODAY'S  weather!"]
)
def test_issue_example_fillers_removed_consistently(raw: str) -> None:
    assert normalize_text(raw) == "today's weather"


def test_fillers_keep_as_canonical_token() -> None:
    keep = NormalizeOptions(fillers="keep")
    assert normalize_text("Umm, uhh... erm hmmm ok", keep) == "um uh er hmm ok"
    assert normalize_text("Um, today's weather", keep) == normalize_text("Um... today's weather", keep)


def test_case_and_whitespace() -> None:
    assert normalize_text("  Turn\tON\n the   LIGHTS ") == "turn on the lights"


def test_punctuation_and_hyphens_are_word_breaks() -> None:
    assert normalize_text("Hello, world! (really?)") == "hello world really"
    assert normalize_text("a well-known hands-free set-up") == "a well known hands free set up"
    assert normalize_text("U.S.A.") == "u s a"


def test_apostrophes_inside_words_kept_edges_removed() -> None:
    assert normalize_text("don't stop, it's o'clock") == "don't stop it's o'clock"
    assert normalize_text("'quoted' dogs' bowls") == "quoted dogs bowls"
    assert normalize_text("it’s ‘fine’") == "it's fine"  # typographic apostrophes


def test_unicode_accents_stripped() -> None:
    assert normalize_text("Café Zürich") == "cafe zurich"


def test_cardinals() -> None:
    assert number_to_words(0) == "zero"
    assert number_to_words(15) == "fifteen"
    assert number_to_words(40) == "forty"
    assert number_to_words(101) == "one hundred one"
    assert number_to_words(1_500) == "one thousand five hundred"
    assert number_to_words(2_000_019) == "two million nineteen"
    assert number_to_words(-7) == "minus seven"
    assert normalize_text("1,500 people") == "one thousand five hundred people"
    assert normalize_text("-3 degrees") == "minus three degrees"
    assert normalize_text("2000 steps") == "two thousand steps"


def test_ordinals() -> None:
    assert ordinal_to_words(1) == "first"
    assert ordinal_to_words(12) == "twelfth"
    assert ordinal_to_words(20) == "twentieth"
    assert ordinal_to_words(23) == "twenty third"
    assert normalize_text("the 1st and the 42nd") == "the first and the forty second"


def test_digit_strings_read_digit_by_digit() -> None:
    assert digits_to_words("0134") == "zero one three four"
    assert normalize_text("call 555-0134") == "call five five five zero one three four"
    assert normalize_text("my pin is 0420") == "my pin is zero four two zero"
    assert normalize_text("code 12345") == "code one two three four five"
    assert normalize_text("code 12345", NormalizeOptions(digit_string_min_length=6)) == (
        "code twelve thousand three hundred forty five"
    )


def test_a_number_past_the_named_scales_is_read_digit_by_digit() -> None:
    # 2**64 with thousands separators: a cardinal with no scale word left to say it (fortune's files hold it).
    assert normalize_text("2^64 = 18,446,744,073,709,551,616") == (
        "two sixty four equals one eight four four six seven four four zero seven three seven zero nine five five "
        "one six one six"
    )
    assert normalize_text("999,999,999,999,999,999") == (
        "nine hundred ninety nine quadrillion nine hundred ninety nine trillion nine hundred ninety nine billion "
        "nine hundred ninety nine million nine hundred ninety nine thousand nine hundred ninety nine"
    )


def test_ranges() -> None:
    assert normalize_text("pages 5-10") == "pages five to ten"


def test_years() -> None:
    assert normalize_text("in 2024") == "in twenty twenty four"
    assert normalize_text("in 1905") == "in nineteen oh five"
    assert normalize_text("in 2005") == "in two thousand five"
    assert normalize_text("in 1900") == "in nineteen hundred"
    assert normalize_text("in 2024", NormalizeOptions(years_as_pairs=False)) == "in two thousand twenty four"


def test_times_and_am_pm() -> None:
    assert normalize_text("7:30") == "seven thirty"
    assert normalize_text("7:05 pm") == "seven oh five p m"
    assert normalize_text("7:00") == "seven o'clock"
    assert normalize_text("at 7:00 a.m.") == "at seven a m"
    assert normalize_text("at 9pm") == "at nine p m"
    assert normalize_text("I am here") == "i am here"


def test_decimals_currency_percent_symbols() -> None:
    assert normalize_text("3.5") == "three point five"
    assert normalize_text("$5.50") == "five dollars fifty cents"
    assert normalize_text("$1") == "one dollar"
    assert normalize_text("€20") == "twenty euros"
    assert normalize_text("50%") == "fifty percent"
    assert normalize_text("rock & roll") == "rock and roll"
    assert normalize_text("#5") == "number five"


def test_units_after_numbers() -> None:
    assert normalize_text("5km") == "five kilometers"
    assert normalize_text("12 mi away") == "twelve miles away"
    assert normalize_text("20°C") == "twenty degrees celsius"
    assert normalize_text("km and m alone") == "km and m alone"


def test_unknown_characters_raise_or_drop() -> None:
    with pytest.raises(TextNormalizationError) as info:
        normalize_text("play 日本 music")
    assert info.value.characters == ["日", "本"]
    assert normalize_text("play 日本 music", NormalizeOptions(unknown="drop")) == "play music"
    assert unknown_characters("Hi!") == ["H", "!"]


def test_idempotent_on_its_output() -> None:
    for raw in ["Set an alarm for 7:30 am!", "Call 555-0134", "Um, it's 20°C in 2024", "the 3rd of May"]:
        once = normalize_text(raw)
        assert normalize_text(once) == once
        assert is_normalized(once)
        assert set(once) <= set(CHARSET)
    assert not is_normalized("Hello")


def test_bad_options_and_input() -> None:
    with pytest.raises(ValueError):
        NormalizeOptions(fillers="sometimes")
    with pytest.raises(TypeError):
        normalize_text(None)  # type: ignore[arg-type]
    assert normalize_text("...!?") == ""


def test_cli_normalize_text_file_and_manifest(tmp_path, capsys) -> None:
    import json

    from edgeasr.data.cli import main as data_main

    assert data_main(["normalize", "--text", "Um... Today's weather!"]) == 0
    assert capsys.readouterr().out.strip() == "today's weather"
    assert data_main(["normalize", "--text", "Umm ok", "--fillers", "keep"]) == 0
    assert capsys.readouterr().out.strip() == "um ok"
    lines = tmp_path / "lines.txt"
    lines.write_text("Call 555-0134\nplay 日本 music\n", encoding="utf-8")
    assert data_main(["normalize", str(lines), "--out", str(tmp_path / "out.txt")]) == 1  # one bad line
    assert (tmp_path / "out.txt").read_text().splitlines()[0] == "call five five five zero one three four"
    assert "line" not in capsys.readouterr().out
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": "a.wav", "text": "Set a timer, 5 min", "duration": 1.0}) + "\n")
    assert data_main(["normalize", str(manifest)]) == 0
    row = json.loads(manifest.read_text())
    assert row["text"] == "set a timer five minutes"
    assert (tmp_path / "m.jsonl.version").read_text().startswith("dv-")


def test_decades_and_abbreviations() -> None:
    assert normalize_text("the 1990s") == "the nineteen nineties"
    assert normalize_text("80's music") == "eighties music"
    assert normalize_text("the 2000s") == "the two thousands"
    assert normalize_text("Dr. Smith vs. Mr. Jones") == "doctor smith versus mister jones"
    assert normalize_text("Main St.") == "main st"
