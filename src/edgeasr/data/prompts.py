"""In-domain prompts for voice search and voice commands, and the sentence split.

:func:`generate_prompts` fills hand-written templates for eleven domains (weather, timers and
alarms, calls and messages, music and media, navigation, directions and distances, numbers and
digit strings, times and dates, shopping, smart home, general questions) from word lists, with a
seeded :class:`random.Random`. Numbers, times, prices and codes are first written the way people
type them ("set a timer for 5 minutes", "call 555-0134") and then passed through
:func:`edgeasr.text.normalize_text`, so the prompts exercise the labelling convention; the
returned sentences are labels (normalized, distinct). :func:`load_text_list` reads a user's own
sentences instead, reporting every line it cannot use. :func:`split_sentences` assigns each
distinct sentence to exactly one of train/dev/test, so no test sentence occurs in training.

The word lists and the templates are package data, not code: ``prompt_lists/wordlists.toml`` (one
array per list) and ``prompt_lists/templates.toml`` (one array per domain) next to this module, read
with :mod:`importlib.resources` at first use and cached, so importing this module stays cheap.
:data:`DOMAINS` and the upper-case list names of earlier versions (``CITIES``, ``NAMES``, ...,
``MATH_OPS``) are still module attributes, loaded on access and returned as fresh copies.

The same seed gives the same sentences in the same order on every machine (only ``random.Random``
is used, never hash order).
"""

from __future__ import annotations

import functools
import os
import random
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from edgeasr.text import DEFAULT_OPTIONS, NormalizeOptions, TextNormalizationError, normalize_text

__all__ = [
    "DOMAINS",
    "PROMPTS_LICENCE",
    "TEXT_SOURCE_LINE",
    "PromptOptions",
    "SentenceSplit",
    "TextListResult",
    "generate_prompts",
    "load_text_list",
    "split_sentences",
    "vocabulary",
    "word_list",
]

_DATA_PACKAGE = "edgeasr.data"  # the package whose data folder holds the files below
_DATA_DIR = "prompt_lists"  # folder of wordlists.toml and templates.toml inside that package

PROMPTS_LICENCE = "Apache-2.0 (edgeasr's own templates and word lists, src/edgeasr/data/prompt_lists)"
"""The licence of generated prompts, recorded by ``edgeasr data synth`` like any text source's."""

DOMAINS: dict[str, list[str]]
"""Templates per domain (``prompt_lists/templates.toml``); ``{slot}`` placeholders are filled from the
word lists. Loaded on first access by the module ``__getattr__``; each access returns a copy."""


def _read_data(filename: str) -> Mapping[str, tuple[str, ...]]:
    """Parse one TOML data file of the ``prompts`` folder into named string arrays.

    Args:
        filename: the file name inside ``edgeasr/data/prompt_lists/``.

    Returns:
        Array name -> its items, in file order (read-only).

    Raises:
        ValueError: a top-level value is not an array of strings.
    """
    resource = resources.files(_DATA_PACKAGE).joinpath(_DATA_DIR).joinpath(filename)
    with resource.open("rb") as f:
        table = tomllib.load(f)
    for key, values in table.items():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError(f"{_DATA_DIR}/{filename}: {key!r} must be an array of strings")
    return MappingProxyType({key: tuple(values) for key, values in table.items()})


@functools.cache
def _word_lists() -> Mapping[str, tuple[str, ...]]:
    """The word lists of ``prompt_lists/wordlists.toml`` by lower-case name, parsed once."""
    return _read_data("wordlists.toml")


@functools.cache
def _templates() -> Mapping[str, tuple[str, ...]]:
    """The templates of ``prompt_lists/templates.toml`` by domain, in file order, parsed once."""
    return _read_data("templates.toml")


def word_list(name: str) -> tuple[str, ...]:
    """One word list of ``prompt_lists/wordlists.toml`` by its lower-case name (``"cities"``, ``"rooms"``, ...).

    Args:
        name: the list's name.

    Returns:
        Its items, in file order.
    """
    return _word_lists()[name]


_words = word_list  # the generator's own short name


def __getattr__(name: str) -> dict[str, list[str]] | list[str]:
    """Load the data-file names on first access: ``DOMAINS`` and the word lists (``CITIES``, ...).

    Args:
        name: the attribute asked for.

    Returns:
        A copy of the templates per domain, or of the word list named ``name.lower()``.

    Raises:
        AttributeError: no such attribute.
    """
    if name == "DOMAINS":
        return {domain: list(templates) for domain, templates in _templates().items()}
    if name.isupper() and name.lower() in _word_lists():
        return list(_words(name.lower()))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _num(rng: random.Random, lo: int, hi: int) -> str:
    return str(rng.randint(lo, hi))


def _time(rng: random.Random) -> str:
    hour = rng.randint(1, 12)
    minute = rng.choice([0, 0, 5, 10, 15, 20, 25, 30, 30, 40, 45, 50, 55, rng.randint(0, 59)])
    suffix = rng.choice(["", " am", " pm", " a.m.", " p.m.", " in the morning", " in the evening"])
    return f"{hour}:{minute:02d}{suffix}"


def _duration(rng: random.Random) -> str:
    unit = rng.choice(_words("units_of_time"))
    n = rng.choice([1, 2, 3, 5, 10, 15, 20, 25, 30, 45, 90, rng.randint(1, 59)])
    if unit == "hour":
        n = rng.randint(1, 12)
    return f"{n} {unit}" + ("" if n == 1 else "s")


def _date(rng: random.Random) -> str:
    form = rng.randrange(4)
    if form == 0:
        return f"{rng.choice(_words('months'))} {_ordinal(rng.randint(1, 31))}"
    if form == 1:
        return f"the {_ordinal(rng.randint(1, 31))} of {rng.choice(_words('months'))}"
    if form == 2:
        return f"next {rng.choice(_words('days'))}"
    return f"{rng.choice(_words('months'))} {rng.randint(1, 31)} {rng.randint(1950, 2035)}"


def _ordinal_suffix(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _ordinal(n: int) -> str:
    return f"{n}{_ordinal_suffix(n)}"


def _phone(rng: random.Random) -> str:
    form = rng.randrange(3)
    if form == 0:
        return f"{rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
    if form == 1:
        return f"{rng.randint(200, 999)}-{rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
    return "".join(str(rng.randint(0, 9)) for _ in range(rng.choice([5, 6, 7, 10])))


def _street(rng: random.Random) -> str:
    return f"{rng.randint(1, 2500)} {rng.choice(_words('street_names'))} {rng.choice(_words('street_kinds'))}"


def _price(rng: random.Random) -> str:
    return f"${rng.randint(1, 500)}" + (f".{rng.randint(1, 99):02d}" if rng.random() < 0.4 else "")


def _distance(rng: random.Random) -> str:
    n = rng.choice([str(rng.randint(1, 500)), f"{rng.randint(0, 20)}.{rng.randint(1, 9)}"])
    return f"{n} {rng.choice(['miles', 'km', 'kilometers', 'meters', 'feet', 'blocks', 'mi'])}"


def _temperature(rng: random.Random) -> str:
    return f"{rng.randint(-10, 105)} degrees" if rng.random() < 0.5 else f"{rng.randint(-5, 40)}°C"


def _big_number(rng: random.Random) -> str:
    return rng.choice(
        [
            str(rng.randint(0, 999)),
            f"{rng.randint(1, 999)},{rng.randint(0, 999):03d}",
            str(rng.randint(1000, 9999)),
            f"{rng.randint(1, 99)}.{rng.randint(0, 99)}",
        ]
    )


def _percent(rng: random.Random) -> str:
    return f"{rng.randint(1, 100)}%"


def _pin(rng: random.Random) -> str:
    return "".join(str(rng.randint(0, 9)) for _ in range(rng.choice([4, 5, 5, 6, 8])))


@functools.cache
def _joined(names: tuple[str, ...]) -> tuple[str, ...]:
    """The named word lists concatenated in that order (cached)."""
    return tuple(word for name in names for word in _words(name))


def _pick(*names: str) -> Callable[[random.Random], str]:
    """A slot filler that chooses one item of the named word lists, concatenated in that order."""

    def pick(rng: random.Random) -> str:
        return rng.choice(_joined(names))

    return pick


def _song(rng: random.Random) -> str:
    """A made-up title of one to three distinct song words."""
    return " ".join(rng.sample(_words("song_words"), rng.choice([1, 2, 2, 3])))


def _when(rng: random.Random) -> str:
    """A time expression ("tonight", "next week"), a day name, or "on" and a day name."""
    days = _words("days")
    return rng.choice([*_words("when"), *days, *(f"on {d}" for d in days)])


_SLOTS: dict[str, Callable[[random.Random], str]] = {
    "city": _pick("cities"),
    "name": _pick("names", "relations"),
    "artist": _pick("artists"),
    "genre": _pick("genres"),
    "song": _song,
    "media_action": _pick("media_actions"),
    "item": _pick("items"),
    "store": _pick("stores"),
    "place": _pick("places"),
    "room": _pick("rooms"),
    "device": _pick("devices"),
    "color": _pick("colors"),
    "animal": _pick("animals"),
    "country": _pick("countries"),
    "thing": _pick("things", "animals", "countries"),
    "frame": _pick("question_frames"),
    "recipe": _pick("recipes"),
    "weather_thing": _pick("weather_things"),
    "day": _pick("days"),
    "when": _when,
    "event": _pick("events"),
    "reminder": _pick("reminders"),
    "message": _pick("messages"),
    "conversion": _pick("conversions"),
    "op": _pick("math_ops"),
    "time": _time,
    "duration": _duration,
    "date": _date,
    "phone": _phone,
    "street": _street,
    "price": _price,
    "distance": _distance,
    "temperature": _temperature,
    "number": _big_number,
    "small": lambda r: _num(r, 1, 100),
    "percent": _percent,
    "pin": _pin,
    "ordinal": lambda r: _ordinal(r.randint(1, 40)),
    "level": lambda r: _num(r, 1, 10),
    "year": lambda r: _num(r, 1900, 2030),
}
"""``{slot}`` placeholder -> filler: a word list (``prompt_lists/wordlists.toml``) or a generator."""


def _all_domains() -> tuple[str, ...]:
    """Every domain of ``prompt_lists/templates.toml`` in file order: the default ``PromptOptions.domains``."""
    return tuple(_templates())


@dataclass(frozen=True)
class PromptOptions:
    """How many prompts to make and from which domains."""

    num_sentences: int = 5000  # distinct normalized sentences to return
    seed: int = 0  # seed of random.Random; the same seed gives the same list
    domains: tuple[str, ...] = field(default_factory=_all_domains)  # which domains (all eleven by default)
    max_words: int = 20  # sentences longer than this (after normalization) are skipped
    normalize: NormalizeOptions = field(default_factory=NormalizeOptions)  # the labelling convention


def _fill(template: str, rng: random.Random) -> str:
    out = []
    rest = template
    while "{" in rest:
        head, _, tail = rest.partition("{")
        slot, _, rest = tail.partition("}")
        out.append(head)
        out.append(_SLOTS[slot](rng))
    out.append(rest)
    return "".join(out)


def generate_prompts(options: PromptOptions | None = None) -> list[tuple[str, str]]:
    """Generate distinct in-domain sentences.

    Args:
        options: how many, the seed, which domains.

    Returns:
        ``(domain, sentence)`` pairs, sentences normalized and pairwise distinct, in generation
        order (deterministic for the seed).

    Raises:
        ValueError: an unknown domain, or the templates cannot yield that many distinct
            sentences (after 50 tries per sentence asked for).
    """
    options = options or PromptOptions()
    templates = _templates()
    unknown = [d for d in options.domains if d not in templates]
    if unknown:
        raise ValueError(f"unknown prompt domains {unknown}; choose from {sorted(templates)}")
    rng = random.Random(options.seed)
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    budget = 50 * max(options.num_sentences, 1)
    domains = list(options.domains)
    while len(out) < options.num_sentences and budget > 0:
        budget -= 1
        domain = domains[len(out) % len(domains)] if rng.random() < 0.5 else rng.choice(domains)
        raw = _fill(rng.choice(templates[domain]), rng)
        sentence = normalize_text(raw, options.normalize)
        if not sentence or sentence in seen or len(sentence.split()) > options.max_words:
            continue
        seen.add(sentence)
        out.append((domain, sentence))
    if len(out) < options.num_sentences:
        raise ValueError(
            f"only {len(out)} distinct sentences could be generated from domains {domains}; "
            f"asked for {options.num_sentences}"
        )
    return out


def vocabulary(sentences: list[str]) -> dict[str, int]:
    """Count the words of ``sentences``.

    Args:
        sentences: normalized sentences.

    Returns:
        Word -> number of occurrences, most frequent first.
    """
    counts: dict[str, int] = {}
    for s in sentences:
        for w in s.split():
            counts[w] = counts.get(w, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass(frozen=True)
class TextListResult:
    """What :func:`load_text_list` made of a file: the usable sentences and every rejected line."""

    sentences: list[str]  # normalized, distinct, in file order
    rejected: list[dict]  # {"line": n, "text": raw, "reason": why}; duplicates and empties included
    sources: list[dict] = field(default_factory=list)  # {"source", "licence"} of each TEXT_SOURCE_LINE, in order


TEXT_SOURCE_LINE = re.compile(r"^#\s*source:\s*(?P<source>[^;]+?)\s*;\s*licence:\s*(?P<licence>.+?)\s*$")
"""A line of a text list that says where the sentences after it come from and under which licence
(``# source: bible; licence: public domain``, written by ``edgeasr data sentences``). It is not a
sentence; ``edgeasr data synth --text`` records it in the corpus's ``summary.json``, and a file made by
concatenating such lists keeps every source's line."""


def load_text_list(path: str | os.PathLike, normalize: NormalizeOptions = DEFAULT_OPTIONS) -> TextListResult:
    """Read a user's sentences, one per line (UTF-8), and normalize them.

    Lines that are blank, normalize to nothing, contain unknown characters, or repeat an earlier
    sentence are not used, and each is reported with its line number and reason. A line of the form
    :data:`TEXT_SOURCE_LINE` names the source and licence of the text; it is returned in ``sources``.

    Args:
        path: a UTF-8 text file.
        normalize: the labelling convention.

    Returns:
        The usable sentences and the rejected lines.

    Raises:
        OSError: the file cannot be read.
        ValueError: the file is not UTF-8.
    """
    sentences: list[str] = []
    rejected: list[dict] = []
    seen: set[str] = set()
    sources: list[dict] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for lineno, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        source_line = TEXT_SOURCE_LINE.match(raw.strip())
        if source_line:
            sources.append({"source": source_line["source"], "licence": source_line["licence"]})
            continue
        try:
            sentence = normalize_text(raw, normalize)
        except TextNormalizationError as exc:
            rejected.append({"line": lineno, "text": raw, "reason": str(exc)})
            continue
        if not sentence:
            rejected.append({"line": lineno, "text": raw, "reason": "empty after normalization"})
        elif sentence in seen:
            rejected.append({"line": lineno, "text": raw, "reason": "duplicate of an earlier line"})
        else:
            seen.add(sentence)
            sentences.append(sentence)
    return TextListResult(sentences, rejected, sources)


@dataclass(frozen=True)
class SentenceSplit:
    """Disjoint train/dev/test sentence lists."""

    train: list[str]  # sentences for training
    dev: list[str]  # held-out sentences for model selection
    test: list[str]  # held-out sentences for the final score; none occurs in train or dev


def split_sentences(
    sentences: list[str], dev_fraction: float = 0.05, test_fraction: float = 0.05, seed: int = 0
) -> SentenceSplit:
    """Split distinct sentences into train/dev/test, each sentence in exactly one part.

    Duplicates are collapsed first (keeping the first), so a sentence cannot straddle parts.

    Args:
        sentences: sentences (normalized).
        dev_fraction: share for dev (at least one sentence when there are three or more).
        test_fraction: share for test (at least one sentence when there are three or more).
        seed: shuffle seed.

    Returns:
        The split.

    Raises:
        ValueError: fractions outside [0, 1) or summing to 1 or more.
    """
    if not (0 <= dev_fraction < 1 and 0 <= test_fraction < 1 and dev_fraction + test_fraction < 1):
        raise ValueError("dev_fraction and test_fraction must be in [0, 1) and sum to less than 1")
    unique = list(dict.fromkeys(sentences))
    order = list(range(len(unique)))
    random.Random(seed).shuffle(order)
    n = len(unique)
    n_test = max(1, round(n * test_fraction)) if n >= 3 and test_fraction > 0 else 0
    n_dev = max(1, round(n * dev_fraction)) if n >= 3 and dev_fraction > 0 else 0
    test = [unique[i] for i in order[:n_test]]
    dev = [unique[i] for i in order[n_test : n_test + n_dev]]
    train = [unique[i] for i in order[n_test + n_dev :]]
    return SentenceSplit(train=train, dev=dev, test=test)
