"""The labelling convention: how every transcript in edgeasr is written.

Every writer of manifests (``edgeasr data synth``, ``edgeasr data import``, ``edgeasr data
normalize``) passes its text through :func:`normalize_text`, and ``edgeasr data validate`` checks
that labels are already in this form. The output uses only :data:`CHARSET` (space, apostrophe,
a-z), the model's characters (``TOKENS`` in :mod:`edgeasr.decoding`).

The rules, applied in this order:

1. **Unicode.** NFKC, then typographic apostrophes and quotes (’ ‘ ʼ ′ `) become ``'``; accented
   Latin letters lose their accents (``café`` -> ``cafe``).
2. **Abbreviations and symbols with a spoken form** become words: ``Mr.`` -> "mister",
   ``Dr.`` -> "doctor" (see ``ABBREVIATIONS``; others keep their letters: "St." -> "st");
   ``%`` -> "percent", ``&`` -> "and", ``+`` -> "plus", ``@`` -> "at", ``=`` -> "equals",
   ``#5`` -> "number five", ``°`` -> "degrees";
   currency before a number is said after it: ``$5`` -> "five dollars", ``$5.50`` -> "five
   dollars fifty cents" (``£`` pounds, ``€`` euros).
3. **Numbers are spelled as words** (:func:`number_to_words`), recognised in this order:

   - times ``H:MM`` -> "seven thirty", ``7:05`` -> "seven oh five", ``7:00`` -> "seven o'clock"
     (just "seven" when "am"/"pm" follows); ``am``/``a.m.``/``pm``/``p.m.`` after a number ->
     "a m" / "p m" (spelled letters, so "I am" is never touched);
   - digit groups joined by hyphens (``555-0134``): read digit by digit ("five five five zero one
     three four") when they hold at least ``digit_string_min_length`` digits in all, otherwise a
     range ("5-10" -> "five to ten");
   - ordinals ``1st 2nd 3rd 4th`` -> "first second third fourth";
   - decades ``1990s`` / ``90s`` / ``80's`` -> "nineteen nineties" / "nineties" / "eighties";
   - decimals ``3.5`` -> "three point five" (digits after the point one by one);
   - a number with a leading zero or at least ``digit_string_min_length`` digits and no
     thousands separators is a *digit string* (codes, phone numbers, PINs): digit by digit,
     0 as "zero";
   - four-digit numbers 1100-2099 that are not whole thousands are read as years when
     ``years_as_pairs`` ("2024" -> "twenty twenty four", "1905" -> "nineteen oh five",
     "2005" -> "two thousand five");
   - anything else is a cardinal ("1,500" -> "one thousand five hundred"; "-3" -> "minus three"),
     except one too large for the named scales (19 digits or more, e.g. "18,446,744,073,709,551,616"),
     which is read digit by digit;
   - a unit right after a number is spelled out (``5km`` / ``5 km`` -> "five kilometers"; see
     ``UNITS``).
4. **Case**: everything is lower case.
5. **Hyphens and other punctuation** become word breaks ("well-known" -> "well known",
   "hello, world!" -> "hello world"); periods inside abbreviations too ("u.s." -> "u s").
6. **Apostrophes** are kept inside a word ("today's", "don't", "o'clock") and removed at the start
   or end of a word (quotes; "dogs'" -> "dogs").
7. **Fillers** ("um", "umm", "uh", "uhh", "er", "erm", "hmm") are *removed* by default
   (``fillers="remove"``); with ``fillers="keep"`` each is kept as one canonical token ("um",
   "uh", "er", "hmm") so that "umm" and "um" label the same sound the same way. Thus "Um, today's
   weather", "Um... today's weather" and "Today's weather" all become "today's weather".
8. **Whitespace** is collapsed to single spaces, with none at either end.
9. **Unknown characters** (anything left outside :data:`CHARSET`, e.g. CJK or emoji) raise
   :class:`TextNormalizationError` naming them (``unknown="error"``, the default: a writer of
   manifests reports the row, it never silently drops it), or are deleted (``unknown="drop"``).

Number-to-words is written here by hand (no package may be assumed on the data path).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "ABBREVIATIONS",
    "CHARSET",
    "DEFAULT_OPTIONS",
    "FILLERS",
    "UNITS",
    "NormalizeOptions",
    "TextNormalizationError",
    "digits_to_words",
    "is_normalized",
    "normalize_text",
    "number_to_words",
    "ordinal_to_words",
    "unknown_characters",
]

CHARSET = " 'abcdefghijklmnopqrstuvwxyz"
"""Every character a normalized transcript may contain (the model's non-blank tokens)."""

_CHARSET_SET = frozenset(CHARSET)

FILLERS: dict[str, str] = {
    "um": "um",
    "umm": "um",
    "ummm": "um",
    "uh": "uh",
    "uhh": "uh",
    "uhhh": "uh",
    "er": "er",
    "erm": "er",
    "hmm": "hmm",
    "hmmm": "hmm",
}
"""Filler words and the canonical token each becomes when ``fillers="keep"``."""

UNITS: dict[str, str] = {
    "km": "kilometers",
    "kms": "kilometers",
    "m": "meters",
    "mi": "miles",
    "ft": "feet",
    "mph": "miles per hour",
    "kph": "kilometers per hour",
    "kmh": "kilometers per hour",
    "km/h": "kilometers per hour",
    "kg": "kilograms",
    "g": "grams",
    "lb": "pounds",
    "lbs": "pounds",
    "oz": "ounces",
    "l": "liters",
    "ml": "milliliters",
    "min": "minutes",
    "mins": "minutes",
    "hr": "hours",
    "hrs": "hours",
    "h": "hours",
    "sec": "seconds",
    "secs": "seconds",
    "°c": "degrees celsius",
    "°f": "degrees fahrenheit",
    "c": "celsius",
    "f": "fahrenheit",
    "%": "percent",
}
"""Units spelled out when they directly follow a number (``5km``, ``5 km``, ``20°C``)."""


class TextNormalizationError(ValueError):
    """Raised when text contains characters the labelling convention cannot express."""

    def __init__(self, text: str, characters: list[str]):
        self.text = text
        self.characters = characters
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in characters)
        super().__init__(f"unknown characters {shown} in {text!r}")


@dataclass(frozen=True)
class NormalizeOptions:
    """Choices of the labelling convention that may be changed (defaults are the house convention)."""

    fillers: str = "remove"  # "remove": drop um/uh/er/hmm; "keep": keep each as one canonical token
    unknown: str = "error"  # "error": raise TextNormalizationError; "drop": delete unknown characters
    digit_string_min_length: int = 5  # digits in a run (or hyphenated groups) read one by one from here
    years_as_pairs: bool = True  # read 1100-2099 (not whole thousands) as years: "twenty twenty four"
    spell_units: bool = True  # "5 km" -> "five kilometers" (units only right after a number)

    def __post_init__(self) -> None:
        if self.fillers not in ("remove", "keep"):
            raise ValueError(f"fillers must be 'remove' or 'keep', got {self.fillers!r}")
        if self.unknown not in ("error", "drop"):
            raise ValueError(f"unknown must be 'error' or 'drop', got {self.unknown!r}")
        if self.digit_string_min_length < 2:
            raise ValueError("digit_string_min_length must be at least 2")


DEFAULT_OPTIONS = NormalizeOptions()
"""The house labelling convention."""

# ----------------------------------------------------------------------------------------------
# Numbers
# ----------------------------------------------------------------------------------------------

_ONES = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
    "eighteen", "nineteen",
]  # fmt: skip
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ["", "thousand", "million", "billion", "trillion", "quadrillion"]
_SPELLABLE = 10 ** (3 * len(_SCALES))  # the first integer number_to_words cannot say (19 digits)
_ORDINAL_WORDS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def _below_thousand(n: int) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words += [_ONES[hundreds], "hundred"]
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(_TENS[tens])
        if ones:
            words.append(_ONES[ones])
    elif rest or not words:
        words.append(_ONES[rest])
    return words


def number_to_words(n: int) -> str:
    """Spell an integer as English words (cardinal, American style, no "and").

    Args:
        n: any integer with fewer than 19 digits; negative numbers get "minus".

    Returns:
        The words, e.g. ``1500`` -> "one thousand five hundred".

    Raises:
        ValueError: ``n`` has 19 digits or more.
    """
    if n < 0:
        return "minus " + number_to_words(-n)
    if n >= _SPELLABLE:
        raise ValueError(f"{n} is too large to spell")
    if n < 1000:
        return " ".join(_below_thousand(n))
    groups: list[int] = []
    while n:
        n, g = divmod(n, 1000)
        groups.append(g)
    words: list[str] = []
    for scale in range(len(groups) - 1, -1, -1):
        g = groups[scale]
        if g:
            words += _below_thousand(g)
            if _SCALES[scale]:
                words.append(_SCALES[scale])
    return " ".join(words)


def ordinal_to_words(n: int) -> str:
    """Spell an integer as an ordinal: 1 -> "first", 23 -> "twenty third", 100 -> "one hundredth".

    Args:
        n: a non-negative integer.

    Returns:
        The ordinal in words.
    """
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORDINAL_WORDS:
        words[-1] = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def digits_to_words(digits: str) -> str:
    """Read a string of digits one by one: "0134" -> "zero one three four".

    Args:
        digits: characters 0-9 (anything else is skipped).

    Returns:
        The digit names separated by spaces.
    """
    return " ".join(_ONES[int(d)] for d in digits if d.isdigit())


def _year_to_words(n: int) -> str:
    hi, lo = divmod(n, 100)
    if lo == 0:
        return f"{number_to_words(hi)} hundred"
    if lo < 10:
        if hi % 10 == 0:  # 2005 -> two thousand five
            return number_to_words(n)
        return f"{number_to_words(hi)} oh {_ONES[lo]}"
    return f"{number_to_words(hi)} {number_to_words(lo)}"


def _integer_words(digits: str, options: NormalizeOptions, *, grouped: bool = False) -> str:
    """Spell an integer written as ``digits`` (no separators) following the rules of rule 3."""
    if not grouped and len(digits) > 1 and (digits.startswith("0") or len(digits) >= options.digit_string_min_length):
        return digits_to_words(digits)
    value = int(digits)
    if value >= _SPELLABLE:  # past quadrillions there is no scale word to say: read the digits
        return digits_to_words(digits)
    if options.years_as_pairs and not grouped and len(digits) == 4 and 1100 <= value <= 2099 and value % 1000:
        return _year_to_words(value)
    return number_to_words(value)


# ----------------------------------------------------------------------------------------------
# Rules
# ----------------------------------------------------------------------------------------------

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "′": "'", "`": "'", "´": "'"})
_CURRENCY = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
}

_RE_TIME = re.compile(r"\b(\d{1,2}):(\d{2})\b(\s*(?:a\.?\s?m\.?|p\.?\s?m\.?)(?![a-z]))?", re.IGNORECASE)
_RE_AMPM = re.compile(r"(?<=\d)\s*([ap])\.?\s?m\b\.?", re.IGNORECASE)
_RE_CURRENCY = re.compile(r"([$£€])\s?(\d[\d,]*)(?:\.(\d{1,2}))?\b")
_RE_HASH = re.compile(r"#\s?(?=\d)")
_RE_HYPHEN_DIGITS = re.compile(r"(?<![\d.])\d+(?:-\d+)+\b")
_RE_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_RE_DECADE = re.compile(r"\b(\d0|\d{3}0)'?s\b", re.IGNORECASE)
_RE_DECIMAL = re.compile(r"(?<![\d.])(-?)(\d[\d,]*)\.(\d+)\b")
_RE_INTEGER = re.compile(r"(?<![\w.])(-?)(\d{1,3}(?:,\d{3})+|\d+)(?![\d])")
_RE_UNIT_AFTER_NUMBER = re.compile(
    r"(\d)\s?(km/h|°[cf]|%|"
    + "|".join(sorted((re.escape(u) for u in UNITS if u[0].isalpha()), key=len, reverse=True))
    + r")(?![\w/])",
    re.IGNORECASE,
)
ABBREVIATIONS: dict[str, str] = {
    "mr.": "mister",
    "mrs.": "missus",
    "dr.": "doctor",
    "vs.": "versus",
    "etc.": "et cetera",
    "approx.": "approximately",
}
"""Abbreviations (with their period, any case) spelled out as words; others just lose the period."""
_RE_ABBREVIATION = re.compile(
    r"(?<![\w.])(" + "|".join(re.escape(a) for a in ABBREVIATIONS) + r")(?!\w)", re.IGNORECASE
)

_SYMBOLS = {"%": " percent ", "&": " and ", "+": " plus ", "@": " at ", "=": " equals ", "°": " degrees "}
_RE_NON_WORD = re.compile(r"[^a-z' ]+")


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _expand_units(text: str) -> str:
    def repl(m: re.Match) -> str:
        unit = m.group(2).lower()
        return f"{m.group(1)} {UNITS.get(unit, unit)} "

    return _RE_UNIT_AFTER_NUMBER.sub(repl, text)


def _expand_numbers(text: str, options: NormalizeOptions) -> str:
    def time(m: re.Match) -> str:
        hour, minute = int(m.group(1)), int(m.group(2))
        suffix = m.group(3)
        if hour > 24 or minute > 59:
            return m.group(0).replace(":", " ")
        words = number_to_words(hour)
        if minute == 0:
            words += "" if suffix else " o'clock"
        elif minute < 10:
            words += f" oh {_ONES[minute]}"
        else:
            words += " " + number_to_words(minute)
        if suffix:
            words += " a m" if suffix.strip()[0].lower() == "a" else " p m"
        return f" {words} "

    def currency(m: re.Match) -> str:
        one, many, sub_one, sub_many = _CURRENCY[m.group(1)]
        whole = int(m.group(2).replace(",", ""))
        words = f"{number_to_words(whole)} {one if whole == 1 else many}"
        if m.group(3):
            cents = int(m.group(3).ljust(2, "0"))
            if cents:
                words += f" {number_to_words(cents)} {sub_one if cents == 1 else sub_many}"
        return f" {words} "

    def hyphen_digits(m: re.Match) -> str:
        groups = m.group(0).split("-")
        if sum(len(g) for g in groups) >= options.digit_string_min_length or any(
            len(g) > 1 and g.startswith("0") for g in groups
        ):
            return " " + digits_to_words("".join(groups)) + " "
        return " " + " to ".join(_integer_words(g, options) for g in groups) + " "

    def decade(m: re.Match) -> str:
        words = _integer_words(m.group(1), options).split()
        last = words[-1]
        words[-1] = last[:-1] + "ies" if last.endswith("y") else last + "s"
        return " " + " ".join(words) + " "

    def ordinal(m: re.Match) -> str:
        return " " + ordinal_to_words(int(m.group(1))) + " "

    def decimal(m: re.Match) -> str:
        whole = _integer_words(m.group(2).replace(",", ""), options, grouped=True)
        sign = "minus " if m.group(1) else ""
        return f" {sign}{whole} point {digits_to_words(m.group(3))} "

    def integer(m: re.Match) -> str:
        raw = m.group(2)
        grouped = "," in raw
        sign = "minus " if m.group(1) else ""
        return f" {sign}{_integer_words(raw.replace(',', ''), options, grouped=grouped)} "

    text = _RE_TIME.sub(time, text)
    text = _RE_AMPM.sub(lambda m: f" {m.group(1).lower()} m ", text)
    text = _RE_CURRENCY.sub(currency, text)
    text = _RE_HASH.sub(" number ", text)
    text = _RE_HYPHEN_DIGITS.sub(hyphen_digits, text)
    text = _RE_ORDINAL.sub(ordinal, text)
    text = _RE_DECADE.sub(decade, text)
    text = _RE_DECIMAL.sub(decimal, text)
    text = _RE_INTEGER.sub(integer, text)
    return text


def unknown_characters(text: str) -> list[str]:
    """Characters of ``text`` outside :data:`CHARSET`, each once, in order of appearance.

    Args:
        text: any string (usually a label that should already be normalized).

    Returns:
        The offending characters; empty when ``text`` uses only the model's characters.
    """
    seen: dict[str, None] = {}
    for c in text:
        if c not in _CHARSET_SET:
            seen[c] = None
    return list(seen)


def normalize_text(text: str, options: NormalizeOptions = DEFAULT_OPTIONS) -> str:
    """Apply the labelling convention (see the module docstring for every rule, in order).

    Args:
        text: raw text: a prompt, a transcript from an imported corpus, a user's sentence.
        options: the convention's choices (fillers, unknown characters, digit strings, years).

    Returns:
        The label: lower case a-z, apostrophes inside words, single spaces; may be "" when the
        text held only punctuation or fillers.

    Raises:
        TextNormalizationError: ``text`` contains characters with no spoken form in the
            convention (only with ``options.unknown == "error"``).
        TypeError: ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    t = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    t = _strip_accents(t)
    if options.spell_units:
        t = _expand_units(t)
    t = _RE_ABBREVIATION.sub(lambda m: " " + ABBREVIATIONS[m.group(1).lower()] + " ", t)
    t = _expand_numbers(t, options)
    for sym, words in _SYMBOLS.items():
        t = t.replace(sym, words)
    t = t.lower()
    # Rule 5: hyphens and every other punctuation mark are word breaks. Anything that is not a
    # letter, digit or whitespace and is ASCII is punctuation; non-ASCII leftovers are unknown.
    chars: list[str] = []
    unknown: dict[str, None] = {}
    for c in t:
        if c in _CHARSET_SET:
            chars.append(c)
        elif c.isspace() or (c.isascii() and not c.isalnum()):
            chars.append(" ")
        else:
            unknown[c] = None
            chars.append(" " if options.unknown == "drop" else c)
    if unknown and options.unknown == "error":
        raise TextNormalizationError(text, list(unknown))
    words: list[str] = []
    for word in "".join(chars).split():
        word = word.strip("'")
        if not word:
            continue
        if word in FILLERS:
            if options.fillers == "remove":
                continue
            word = FILLERS[word]
        words.append(word)
    return " ".join(words)


def is_normalized(text: str, options: NormalizeOptions = DEFAULT_OPTIONS) -> bool:
    """Whether ``text`` is already a fixed point of :func:`normalize_text`.

    Args:
        text: a label.
        options: the convention to check against.

    Returns:
        True when normalizing would not change it (and it has no unknown characters).
    """
    try:
        return normalize_text(text, options) == text
    except TextNormalizationError:
        return False
