"""CTC decoding on numpy: the token vocabulary, greedy decoding and the lexicon beam search.

This is the one decoder of edgeasr. The on-device :class:`~edgeasr.recognizer.Recognizer`,
evaluation, benchmarks and the Triton python model all decode with it: ``edgeasr export`` copies
this file into every version folder of the python flavour as ``decoding.py`` and the Triton model
loads it from there by path, so it imports only the standard library and numpy (flashlight-text
when a beam search is built), never the rest of edgeasr.

The acoustic model emits log-probabilities over :data:`TOKENS` every :data:`FRAME_SECONDS` (the
default model's frame; a model with another stride records its own in the ONNX file's metadata
under :data:`FRAME_SECONDS_KEY`); index 0 is the CTC blank.

* :func:`greedy_decode`: best token per frame, repeats collapsed, blanks dropped, words timed.
* :class:`SearchPool`: a batch's recognition work (beam searches, or the acoustic model and the
  search) spread over forked processes (the search holds the GIL, so threads cannot share it
  out); the Triton model serves its batches so.
* :class:`BeamSearchDecoder`: flashlight-text's ``LexiconDecoder`` (C++, the decoder behind
  torchaudio's ``ctc_decoder``) with KenLM from the same wheel, scoring words with the ARPA model
  that :mod:`edgeasr.training.language_model` estimates. The lexicon spells each word of the
  language model with the model's characters and closes it with the space token, the word
  separator, so every output word is a known word and a letter the model holds over several
  frames stays inside its word; one certain separator frame after the last frame closes the
  utterance's last word. A version that ships it carries ``lm.arpa`` (the word
  n-gram; or ``lm.bin``, the same n-gram in KenLM's binary format, which loads in milliseconds,
  with its lexicon in ``lm.words`` and, where the export wrote it, each word's first-word score in
  ``lm.scores``: :func:`find_lm`, :func:`lexicon_scores`) and ``decoder.json`` (:class:`BeamSearchOptions`,
  tuned on the dev split). A version
  may also ship a second, domain n-gram (``lm-domain.arpa``, or ``lm-domain.bin`` and ``lm-domain.words``,
  with its own ``decoder-domain.json``,
  the product's closed command vocabulary beside a general one): each utterance is then searched
  with both and the domain transcript is taken when its acoustic score plus ``domain_weight``
  times its n-gram score plus ``domain_word_bias`` per word is at least the general search's
  acoustic score plus ``lm_weight`` times its n-gram score (:func:`prefer_domain`: a sentence-level
  choice between the two language models, the bias a per-word prior of the product's words, so
  that a one-word clip is not pulled into the domain as a long command is; ``edgeasr export``
  tunes the weight and the bias).

From the repository's root (``tests/test_docs.py`` runs this example; ``logprobs`` is
(frames, 29) from the acoustic model of version 2, the command model):

    >>> from edgeasr import Recognizer
    >>> logprobs = Recognizer("triton_models/edgeasr/2").logprobs("samples/01-flite-rms.wav")
    >>> greedy_decode(logprobs).text
    'is it windy in sinsanaki rght now'
    >>> decoder = BeamSearchDecoder.from_dir("triton_models/edgeasr/2", list(TOKENS))
    >>> [word for word, first_frame, end_frame in decoder.search(logprobs)]
    ['is', 'it', 'windy', 'in', 'cincinnati', 'right', 'now']
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TextIO

import numpy as np

__all__ = [
    "BIAS_BOOST",
    "BLANK",
    "CONTEXT_SECONDS_KEY",
    "DECODER_FILE",
    "DOMAIN_DECODER_FILE",
    "DOMAIN_LM_FILE",
    "FRAME_SECONDS",
    "FRAME_SECONDS_KEY",
    "KENLM_BINARY_MAGIC",
    "LM_FILE",
    "MAX_BIASED_SEARCHES",
    "MAX_BIAS_BOOST",
    "MODULE_FILE",
    "SCORES_SUFFIX",
    "TOKENS",
    "BeamSearchDecoder",
    "BeamSearchOptions",
    "SearchPool",
    "Transcript",
    "Word",
    "bias_boost",
    "decode_path",
    "domain_out_of_reach",
    "find_lm",
    "greedy_decode",
    "greedy_path",
    "has_beam_search",
    "is_kenlm_binary",
    "lexicon_scores",
    "lm_vocabulary",
    "open_arpa",
    "prefer_domain",
]

BLANK = 0
TOKENS: tuple[str, ...] = ("<blank>", " ", "'", *"abcdefghijklmnopqrstuvwxyz")
"""Model output tokens: blank, space, apostrophe, a-z (the labelling convention's character set)."""

FRAME_SECONDS = 0.02
"""Duration of one output frame at the default stride: 10 ms feature hop times 2."""
FRAME_SECONDS_KEY = "edgeasr.frame_seconds"
"""ONNX metadata key of a model's frame duration in seconds (``edgeasr export`` writes it; a model
without it has :data:`FRAME_SECONDS`)."""
CONTEXT_SECONDS_KEY = "edgeasr.context_seconds"
"""ONNX metadata key of the audio on each side of a frame that can change its output (the model's
receptive field's half width, seconds): the least context windowed and streaming decoding keep."""

CLOSING_FLOOR = -1.0e4
"""Log-probability of every token but the separator on the frame the beam search appends to close the last word."""

LM_FILE = "lm.arpa"
"""The word n-gram of a version folder that ships a beam search."""
DECODER_FILE = "decoder.json"
"""The beam-search settings (:class:`BeamSearchOptions`) of such a folder."""
DOMAIN_LM_FILE = "lm-domain.arpa"
"""The optional second (domain) word n-gram of such a folder, searched beside ``lm.arpa``."""
KENLM_BINARY_MAGIC = b"mmap lm "
"""The first bytes of a KenLM binary n-gram (``build_binary``). Such a file stands in a folder as
``<stem>.bin`` beside ``<stem>.arpa``'s name, with its lexicon (the ARPA unigrams, one per line) in
``<stem>.words``: KenLM maps a binary in milliseconds where it parses an ARPA file for tenths of a
second, but does not list its words."""
SCORES_SUFFIX = ".scores"
"""Beside a binary ``<stem>.bin`` and its ``<stem>.words``, each lexicon word's log10 score as a sentence's first
word, little-endian float32 in the ``.words`` order (:func:`lexicon_scores`): the scores the lexicon trie is
smeared with, which a search otherwise asks KenLM for word by word at every load (28k words: 0.03 s of a cold
start). Optional: a folder without it gets the same trie, computed."""
DOMAIN_DECODER_FILE = "decoder-domain.json"
"""The domain search's own settings (:class:`BeamSearchOptions`), shipped with ``lm-domain.arpa``."""
MODULE_FILE = "decoding.py"
"""The name of this file's copy in a python-flavour version folder."""


@dataclass(frozen=True)
class Word:
    """One recognized word and where it lies in the audio."""

    text: str  # the word, in the labelling convention's characters
    start: float  # seconds from the start of the audio to the word's first emitted character
    end: float  # seconds to the end of the word's last emitted character frame


@dataclass(frozen=True)
class Transcript:
    """What a recognizer or the Triton client returns for one utterance."""

    text: str  # the transcript, normalized (lower case, words separated by single spaces)
    words: tuple[Word, ...] = ()  # per-word timestamps where the decoder had frame alignments
    latency_s: float = 0.0  # wall time from request to result, seconds
    model_version: str = ""  # which model version answered (Triton version or card's version)
    extra: dict = field(default_factory=dict, compare=False)  # backend-specific details


def greedy_path(logprobs: np.ndarray) -> np.ndarray:
    """Best token per frame for ``logprobs`` of shape (frames, vocab)."""
    if logprobs.ndim != 2:
        raise ValueError(f"logprobs must be (frames, vocab), got shape {logprobs.shape}")
    return logprobs.argmax(axis=-1)


def greedy_decode(
    logprobs: np.ndarray,
    tokens: tuple[str, ...] = TOKENS,
    frame_seconds: float = FRAME_SECONDS,
    time_offset: float = 0.0,
) -> Transcript:
    """CTC greedy decoding: collapse repeats, drop blanks, and time each word.

    Args:
        logprobs: (frames, vocab) log-probabilities of one utterance (padding already removed).
        tokens: the model's token list; index 0 must be the blank.
        frame_seconds: the duration of one frame.
        time_offset: seconds added to every timestamp (for chunks of a longer recording).
    """
    return decode_path(greedy_path(logprobs), tokens, frame_seconds, time_offset)


def decode_path(
    path: np.ndarray,
    tokens: tuple[str, ...] = TOKENS,
    frame_seconds: float = FRAME_SECONDS,
    time_offset: float = 0.0,
    prev: int = BLANK,
) -> Transcript:
    """Words of a CTC token path (one token index per frame): repeats collapsed, blanks dropped.

    Vectorized over frames (a Python step per emitted character only), so a streaming session can
    decode a long path for every partial result cheaply.

    Args:
        path: token index per frame.
        tokens: the model's token list; index 0 is the blank.
        frame_seconds: the duration of one frame.
        time_offset: seconds added to every timestamp.
        prev: the token of the frame before ``path`` (a repeat of it is not a new character).

    Returns:
        The transcript; a word starts at its first emitted character's frame and ends after the
        last frame of a letter before the space that closes it.
    """
    path = np.asarray(path, dtype=np.int64).reshape(-1)
    if path.size == 0:
        return Transcript(text="")
    space = tokens.index(" ") if " " in tokens else -1
    previous = np.concatenate([np.array([prev], np.int64), path[:-1]])
    emitted = np.nonzero((path != previous) & (path != BLANK))[0]
    letters = np.nonzero((path != BLANK) & (path != space))[0]
    words: list[Word] = []
    chars: list[str] = []
    start = 0

    def close(at: int) -> None:  # the word ends after its last letter frame before `at`
        last = int(letters[np.searchsorted(letters, at) - 1])
        begin = round(time_offset + start * frame_seconds, 6)  # microseconds: the same time however offset
        end = round(time_offset + (last + 1) * frame_seconds, 6)
        words.append(Word("".join(chars), begin, end))

    for t in emitted.tolist():
        tok = int(path[t])
        if tok == space:
            if chars:
                close(t)
                chars = []
        else:
            if not chars:
                start = t
            chars.append(tokens[tok])
    if chars:
        close(path.size)
    return Transcript(text=" ".join(w.text for w in words), words=tuple(words))


# -- beam search ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BeamSearchOptions:
    """Search settings; ``edgeasr export`` tunes ``lm_weight`` and ``word_score`` on the check (dev) data."""

    beam_size: int = 64  # hypotheses kept after each frame
    beam_size_token: int = 16  # tokens tried per frame (the most likely ones)
    beam_threshold: float = 25.0  # hypotheses this far (natural log) below the best are dropped
    lm_weight: float = 1.0  # weight of the n-gram's log10 probability (KenLM's score) against the acoustic log-prob
    word_score: float = 0.0  # added per word (positive favours more, shorter words)
    sil_score: float = 0.0  # added per space token
    blank_skip: float = 0.0  # frames with blank probability above this are searched once per run (0: all)
    lm_order: int = 4  # the n-gram order of lm.arpa (recorded for the model card)
    domain_weight: float = 1.0  # with a domain n-gram: weight of its (log10) score when the two searches are compared
    domain_word_bias: float = 0.0  # with a domain n-gram: added to the domain search's score per word it found
    # with a domain n-gram: a narrow domain search of this beam runs first, and the full one only where the
    # narrow one's side of the choice comes within ``domain_precheck_margin`` of the general side (0: off, the
    # full domain search runs on every utterance; :func:`domain_out_of_reach`)
    domain_precheck_beam: int = 0
    domain_precheck_threshold: float = 16.0  # the narrow domain search's beam_threshold (natural log)
    domain_precheck_margin: float = 5.0  # how far below the general side the narrow one must fall to skip the full

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> BeamSearchOptions:
        """Read ``decoder.json``; unknown keys are an error."""
        doc = json.loads(Path(path).read_text())
        known = {f.name for f in fields(cls)}
        unknown = set(doc) - known
        if unknown:
            raise ValueError(f"{path}: unknown decoder option(s): {', '.join(sorted(unknown))}")
        return cls(**doc)

    def to_json(self, path: str | os.PathLike) -> None:
        """Write ``decoder.json``; the precheck's keys only where it is on, so that a file without it reads
        in the decoders of versions that predate it (each version folder carries its own copy of this module)."""
        doc = asdict(self)
        if not self.domain_precheck_beam:
            doc = {k: v for k, v in doc.items() if not k.startswith("domain_precheck_")}
        Path(path).write_text(json.dumps(doc, indent=2) + "\n")


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 for the duration (C++ libraries write there directly)."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def has_beam_search(model_dir: str | os.PathLike) -> bool:
    """Whether a model version folder ships a language model and decoder settings."""
    d = Path(model_dir)
    return find_lm(d) is not None and (d / DECODER_FILE).is_file()


def find_lm(model_dir: str | os.PathLike, name: str = LM_FILE) -> Path | None:
    """A folder's word n-gram ``name`` (:data:`LM_FILE` or :data:`DOMAIN_LM_FILE`): its KenLM binary
    (``lm.bin``, see :data:`KENLM_BINARY_MAGIC`) where the folder ships one, else the ARPA file, else None."""
    arpa = Path(model_dir) / name
    binary = arpa.with_suffix(".bin")
    if binary.is_file():
        return binary
    return arpa if arpa.is_file() else None


def lm_vocabulary(path: str | os.PathLike) -> list[str]:
    """The words of a word n-gram (without ``<s>``, ``</s>`` and ``<unk>``), in the order of its unigrams.

    An ARPA file (plain or gzip) lists them; a KenLM binary has them beside it in ``<stem>.words``.

    Raises:
        FileNotFoundError: a binary n-gram without its ``.words`` file.
    """
    path = Path(path)
    if not is_kenlm_binary(path):
        return _read_arpa_vocabulary(path)
    words = path.with_suffix(".words")
    if not words.is_file():
        raise FileNotFoundError(f"{path}: a KenLM binary n-gram needs its lexicon beside it ({words.name})")
    return [w for w in words.read_text(encoding="utf-8").split("\n") if w]


def lexicon_scores(path: str | os.PathLike) -> np.ndarray:
    """Each word of a KenLM binary n-gram's lexicon scored as a sentence's first word (log10), in ``.words`` order.

    What :class:`BeamSearchDecoder` smears its lexicon trie with; ``edgeasr export`` writes it beside the binary
    as ``<stem>.scores`` (:data:`SCORES_SUFFIX`) so that a load reads it instead of asking KenLM word by word.

    Raises:
        ImportError: flashlight-text is not installed.
        FileNotFoundError: no ``.words`` beside the binary.
    """
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    path = Path(path)
    count = len(lm_vocabulary(path))
    words = Dictionary(str(path.with_suffix(".words")))
    words.add_entry("<unk>")
    words.set_default_index(words.get_index("<unk>"))
    with _quiet_stderr():
        lm = KenLM(str(path), words)
    return np.asarray(_first_word_scores(lm, count), dtype="<f4")


def _first_word_scores(lm, count: int) -> list[float]:
    """The log10 score of dictionary words 0..count-1 after ``<s>`` (KenLM scores are float32: exact in ``<f4``)."""
    start, score = lm.start(False), lm.score
    return [score(start, i)[1] for i in range(count)]


def _stored_scores(path: Path, count: int) -> list[float] | None:
    """The ``.scores`` file beside binary n-gram ``path`` as floats, or None where there is none.

    Raises:
        ValueError: the file does not hold one float32 for each of the lexicon's ``count`` words.
    """
    stored = path.with_suffix(SCORES_SUFFIX)
    if not stored.is_file():
        return None
    if stored.stat().st_size != 4 * count:
        raise ValueError(f"{stored}: {stored.stat().st_size} bytes, not 4 per word of its lexicon ({count} words)")
    return np.fromfile(stored, dtype="<f4").tolist()


def is_kenlm_binary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a KenLM binary n-gram (told by its first bytes, :data:`KENLM_BINARY_MAGIC`)."""
    with open(path, "rb") as fh:
        return fh.read(len(KENLM_BINARY_MAGIC)) == KENLM_BINARY_MAGIC


def open_arpa(path: str | os.PathLike) -> TextIO:
    """An ARPA file opened as text, plain or gzip-compressed (told by its first bytes, not its name).

    KenLM reads both; ``lm.arpa`` in a version folder may be either (a general n-gram of 37 MB
    compresses to 11 MB).
    """
    with open(path, "rb") as fh:
        compressed = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="utf-8") if compressed else open(path, encoding="utf-8")


def _read_arpa_vocabulary(path: Path) -> list[str]:
    """The unigrams of an ARPA file, without <s>, </s> and <unk>."""
    words, inside = [], False
    with open_arpa(path) as fh:
        for line in fh:
            line = line.strip()
            if line == "\\1-grams:":
                inside = True
                continue
            if inside:
                if not line:
                    continue
                if line.startswith("\\"):
                    break
                word = line.split("\t")[1] if "\t" in line else line.split()[1]
                if word not in ("<s>", "</s>", "<unk>"):
                    words.append(word)
    return words


BIAS_BOOST = 2.0
"""Default log10 bonus of a biased word in the beam search (phrase biasing)."""
MAX_BIAS_BOOST = 10.0
"""The largest bonus a request may ask for (log10: ten orders of magnitude, past which nothing changes)."""
MAX_BIASED_SEARCHES = 4
"""Biased searches kept at once, one per phrase set and boost (the oldest goes first). Each holds a lexicon trie of its
own: with the 103,701-word lexicon of versions 28 and 29 about 130 MiB and 0.5 s to build, with 28,287 words about
40 MiB and 0.2 s (``bench/results/eval-cpu-2core-xeon/bias-cost.txt``)."""


def bias_boost(value: object) -> float:
    """A phrase-biasing boost as asked for (a number, or its text from a request parameter), checked.

    Every path reads a caller's boost through this (``Recognizer.transcribe``, the CLI's ``--bias-boost``,
    the Triton request parameter ``bias_boost``), so each refuses a bad one with the same message.

    Raises:
        ValueError: not a finite number from 0 to :data:`MAX_BIAS_BOOST`.
    """
    try:
        boost = float(value) if not isinstance(value, bool) else float("nan")  # type: ignore[arg-type]
    except (TypeError, ValueError):
        boost = float("nan")
    if not 0.0 <= boost <= MAX_BIAS_BOOST:
        raise ValueError(
            f"bias boost must be a number from 0 to {MAX_BIAS_BOOST:g} (log10 bonus per biased word), not {value}"
        )
    return boost


OOV_LOG10 = -4.5
"""n-gram score given to a biased word the language model does not know (a rare word's)."""


_BIASED_LM = None


def _biased_lm(base, bonus: dict[int, float], base_vocabulary: int, base_unk: int):
    """flashlight's LM interface over the n-gram: its scores, plus ``bonus`` for biased word indices.

    Word indices below ``base_vocabulary`` are the n-gram's own words; indices from there on are
    words new to it (added by biasing), scored :data:`OOV_LOG10` plus their bonus, with the n-gram's
    context ending as for an unknown word.
    """
    global _BIASED_LM
    if _BIASED_LM is None:
        from flashlight.lib.text.decoder import LM

        class BiasedLM(LM):
            def __init__(self, base, bonus, base_vocabulary, base_unk) -> None:
                super().__init__()
                self.base, self.bonus = base, bonus
                self.base_vocabulary, self.base_unk = base_vocabulary, base_unk

            def start(self, start_with_nothing):
                return self.base.start(start_with_nothing)

            def score(self, state, token_index):
                if token_index < self.base_vocabulary:
                    next_state, score = self.base.score(state, token_index)
                    return next_state, score + self.bonus.get(token_index, 0.0)
                next_state, score = self.base.score(state, self.base_unk)
                if token_index in self.bonus:  # a biased word the n-gram does not know
                    return next_state, OOV_LOG10 + self.bonus[token_index]
                return next_state, score

            def finish(self, state):
                return self.base.finish(state)

        _BIASED_LM = BiasedLM
    return _BIASED_LM(base, bonus, base_vocabulary, base_unk)


def prefer_domain(general: dict[str, float], domain: dict[str, float], options: BeamSearchOptions) -> bool:
    """The two-n-gram choice: whether the domain search's transcript is taken over the general one's.

    The domain side is its acoustic score + ``domain_weight`` x its n-gram score +
    ``domain_word_bias`` x the number of words it found; the general side its acoustic score +
    ``lm_weight`` x its n-gram score. A bias per word rather than per sentence: measured with
    general-7 (``bench/two_domain.py``), no sentence bias got the in-domain test split under 10%
    for less than 1.5 points of real speech (mostly one-word clips); the per-word one for 0.05.

    A domain search that found no word never wins over a general one that did: the closed
    vocabulary could not spell what was said, so it is not one of the product's phrases. Without
    this rule the command n-gram's empty answer outscored the open search's "yes" on 1.1% of the
    real-speech replay (``bench/results/canary-shipped/v6-empty/``: 14 of 1,000 clips read as
    nothing, most of them a lone "yes", which the command vocabulary lacks).

    Args:
        general: the general search's ``acoustic`` and ``lm`` scores (:meth:`BeamSearchDecoder.search_scored`),
            with ``words`` where known.
        domain: the domain search's, with ``words`` (how many it found).
        options: the general search's settings (``lm_weight``, ``domain_weight``, ``domain_word_bias``).
    """
    if not domain.get("words") and general.get("words"):
        return False
    ours, theirs = _choice_sides(general, domain, options)
    return bool(theirs >= ours)


def domain_out_of_reach(general: dict[str, float], rough: dict[str, float], options: BeamSearchOptions) -> bool:
    """Whether a narrow domain search's answer lets the full domain search be skipped (the general one wins).

    The narrow search (``domain_precheck_beam``, ``domain_precheck_threshold``) keeps fewer hypotheses,
    so its best is a little below the full search's where the two differ; a general sentence leaves
    the closed vocabulary far behind (its side of :func:`prefer_domain` tens of points below), a
    command does not. The full search is skipped when the narrow side falls more than
    ``domain_precheck_margin`` below the general side, or when the narrow search found no word and
    the general one did. :meth:`BeamSearchDecoder.search_scored` asks only where the general
    transcript holds a word the domain lexicon lacks (one made of the product's words alone may be a
    command, and is searched in full at once). What decides is the narrow threshold: at 8 a command's
    path is pruned in its first frames and no margin brings it back; 16 changed no transcript of 400
    in-domain and 400 real-speech check utterances
    (``bench/results/eval-cpu-2core-epyc/domain-precheck-v13-dev.txt``).

    Args:
        general: the general search's scores (:meth:`BeamSearchDecoder.search_scored`).
        rough: the narrow domain search's scores, with ``words``.
        options: the general search's settings (the choice's weights and the margin).
    """
    if not rough.get("words") and general.get("words"):
        return True
    ours, theirs = _choice_sides(general, rough, options)
    return bool(theirs < ours - options.domain_precheck_margin)


def _choice_sides(general: dict, domain: dict, options: BeamSearchOptions) -> tuple[float, float]:
    """The two sides :func:`prefer_domain` compares: (general, domain)."""
    return (
        general["acoustic"] + options.lm_weight * general["lm"],
        domain["acoustic"] + options.domain_weight * domain["lm"] + options.domain_word_bias * domain["words"],
    )


class BeamSearchDecoder:
    """Lexicon-constrained CTC beam search with a KenLM word n-gram (flashlight-text)."""

    def __init__(
        self,
        lm_path: str | os.PathLike,
        tokens: list[str],
        options: BeamSearchOptions | None = None,
        domain: BeamSearchDecoder | None = None,
    ) -> None:
        """Build the lexicon trie and load the n-gram.

        Args:
            lm_path: an ARPA file, whose unigrams are the lexicon, or a KenLM binary with its
                ``.words`` beside it (:func:`lm_vocabulary`).
            tokens: the acoustic model's tokens (blank first, ``" "`` the word separator).
            options: search settings (defaults: :class:`BeamSearchOptions`).
            domain: a second search over a domain n-gram; each utterance is searched with both
                and the domain transcript is taken when ``options.domain_weight`` and
                ``options.domain_word_bias`` say so (see the module's docstring).

        Raises:
            ImportError: flashlight-text is not installed (``pip install flashlight-text``).
            ValueError: the ARPA file has no word the tokens can spell, or a binary's stored first-word scores
                (:data:`SCORES_SUFFIX`) do not match its lexicon.
        """
        try:
            from flashlight.lib.text.decoder import (
                CriterionType,
                LexiconDecoder,
                LexiconDecoderOptions,
                SmearingMode,
                Trie,
            )
            from flashlight.lib.text.decoder.kenlm import KenLM
            from flashlight.lib.text.dictionary import Dictionary
        except ImportError as exc:  # pragma: no cover - a dependency of edgeasr
            raise ImportError("beam search needs flashlight-text: pip install flashlight-text") from exc

        self.options = options or BeamSearchOptions()
        self.tokens = tuple(tokens)
        if domain is not None and domain.tokens != self.tokens:
            raise ValueError("the domain search must use the same tokens")
        self.domain = domain
        if " " not in self.tokens:
            raise ValueError("the tokens have no word separator ' '")
        if len(self.tokens) > 256:  # a lexicon search spells words by character (see _spelling below)
            raise ValueError(f"a lexicon search spells words by character: {len(self.tokens)} tokens is too many")
        space = self.tokens.index(" ")
        self._space = space
        self.lm_path = Path(lm_path)
        index = {t: i for i, t in enumerate(self.tokens)}
        # each token's index as one character, so a word is spelled by str.translate and encode (in C), not by
        # a Python loop per letter
        self._spelling = str.maketrans({t: chr(i) for t, i in index.items() if len(t) == 1})
        letters = frozenset(index) - {" "}  # the spellable words (a set test: most of a cold start is this loop's kind)
        listed = list(dict.fromkeys(lm_vocabulary(self.lm_path)))  # unique, so a word's index is its position
        vocabulary = [w for w in listed if letters.issuperset(w)]
        if not vocabulary:
            raise ValueError(f"{lm_path}: no word of the language model can be spelled with the model's tokens")
        self.vocabulary = vocabulary
        self._known = frozenset(vocabulary)
        words_file = self.lm_path.with_suffix(".words")
        scores = None  # each word's first-word score, where the export stored them (SCORES_SUFFIX)
        if len(vocabulary) == len(listed) and is_kenlm_binary(self.lm_path) and words_file.is_file():
            words = Dictionary(str(words_file))  # one word a line, read in C++ (a 28k lexicon: 0.01 s, not 0.03)
            scores = _stored_scores(self.lm_path, len(vocabulary))
        else:
            words = Dictionary()
            for w in vocabulary:
                words.add_entry(w)
        words.add_entry("<unk>")
        if words.entry_size() != len(vocabulary) + 1:
            raise ValueError(f"{lm_path}: its lexicon does not list each word once on its own line")
        words.set_default_index(words.get_index("<unk>"))
        self._words = words
        self._index = index
        self._fl = (CriterionType, LexiconDecoder, LexiconDecoderOptions, SmearingMode, Trie, Dictionary)
        with _quiet_stderr():  # KenLM prints a loading banner on the C-level stderr
            self._lm = KenLM(str(self.lm_path), words)
        self._decoder, self._trie = self._build(self._lm, words, {}, scores)
        self._biased: dict[tuple[tuple[str, ...], float], tuple[object, object, object]] = {}
        self._domain_narrow = None  # the precheck: the domain search with a narrower beam, over the domain's trie
        if domain is not None and self.options.domain_precheck_beam > 0:
            narrow = BeamSearchOptions(
                **{
                    **asdict(domain.options),
                    "beam_size": self.options.domain_precheck_beam,
                    "beam_threshold": self.options.domain_precheck_threshold,
                }
            )
            self._domain_narrow = domain._decoder_over(domain._trie, domain._lm, domain._words, narrow)

    def _build(self, lm, words, extra: dict[str, float], scores: list[float] | None = None):
        """The flashlight decoder over the lexicon (plus ``extra`` words), and its trie.

        Each word is smeared with ``lm``'s score of it as a first word: ``scores`` (one per lexicon word, in
        order: what :func:`lexicon_scores` stored) where given, else asked of ``lm`` word by word.
        """
        _, _, _, smearing, trie_class, _ = self._fl
        trie = trie_class(len(self.tokens), self._space)
        insert, spelling = trie.insert, self._spelling
        # the lexicon's word i has dictionary index i (__init__); the words of ``extra`` are looked up.
        # Most of a cold start is this loop: 28k words, each spelled and inserted.
        if scores is None:
            scores = _first_word_scores(lm, len(self.vocabulary))
        # A word is spelled with the separator after its last letter, so flashlight emits it on the separator: a
        # last letter held for several frames ("yes" read ``yy_ee_sss``) stays inside the word. Spelled without
        # it, the word was emitted on its last letter's first frame, and the held frames (which the search may
        # only read as blank or separator once at the root) cost it about 8 nats each: "yes" lost to no words.
        for wi, w in enumerate(self.vocabulary):
            insert(list((w + " ").translate(spelling).encode("latin-1")), wi, scores[wi])
        start = lm.start(False)
        for w in extra:
            wi = words.get_index(w)
            insert(list((w + " ").translate(spelling).encode("latin-1")), wi, lm.score(start, wi)[1])
        trie.smear(smearing.MAX)
        return self._decoder_over(trie, lm, words, self.options), trie

    def _decoder_over(self, trie, lm, words, o: BeamSearchOptions):
        """A flashlight decoder with the settings ``o`` over a built trie (tries are shared, not rebuilt)."""
        criterion, lexicon_decoder, decoder_options, *_ = self._fl
        return lexicon_decoder(
            decoder_options(
                beam_size=o.beam_size,
                beam_size_token=o.beam_size_token,
                beam_threshold=o.beam_threshold,
                lm_weight=o.lm_weight,
                word_score=o.word_score,
                unk_score=float("-inf"),
                sil_score=o.sil_score,
                log_add=False,
                criterion_type=criterion.CTC,
            ),
            trie,
            lm,
            self._space,
            BLANK,
            words.get_index("<unk>"),
            [],
            False,
        )

    def _bias(self, phrases: Sequence[str], boost: float):
        """(decoder, dictionary) favouring the words of ``phrases``; words new to the lexicon are added."""
        spellable = set(self._index) - {" ", self.tokens[BLANK]}
        wanted = tuple(sorted({w for p in phrases for w in str(p).lower().split() if set(w) <= spellable}))
        if not wanted:
            return self._decoder, self._words
        key = (wanted, float(boost))
        if key not in self._biased:
            if len(self._biased) >= MAX_BIASED_SEARCHES:  # the same contact list is asked for again and again
                self._biased.pop(next(iter(self._biased)))
            new = [w for w in wanted if w not in self._known]
            words = self._fl[5]()
            for w in [*self.vocabulary, *new, "<unk>"]:
                words.add_entry(w)
            words.set_default_index(words.get_index("<unk>"))
            bonus = {words.get_index(w): float(boost) for w in wanted}
            lm = _biased_lm(self._lm, bonus, len(self.vocabulary), self._words.get_index("<unk>"))
            # the LM object is kept with its decoder: flashlight holds it by a reference Python must keep alive
            self._biased[key] = (self._build(lm, words, dict.fromkeys(new, 0.0))[0], words, lm)
        return self._biased[key][:2]

    @classmethod
    def from_dir(cls, model_dir: str | os.PathLike, tokens: list[str], **overrides) -> BeamSearchDecoder:
        """The decoder a model version folder ships (``lm.arpa`` or ``lm.bin``, and ``decoder.json``), overridable.

        A folder that also ships ``lm-domain.arpa`` (with ``decoder-domain.json``) gets the two-n-gram
        search; ``overrides`` (a narrower beam, say) apply to the general search, the one whose
        cost grows with its lexicon; the domain search keeps the settings it shipped with.
        """
        d = Path(model_dir)
        options = BeamSearchOptions.from_json(d / DECODER_FILE)
        if overrides:
            options = BeamSearchOptions(**{**asdict(options), **overrides})
        domain = None
        domain_lm = find_lm(d, DOMAIN_LM_FILE)
        if domain_lm is not None:
            if not (d / DOMAIN_DECODER_FILE).is_file():
                raise FileNotFoundError(f"{d}: {domain_lm.name} without its settings ({DOMAIN_DECODER_FILE})")
            domain = cls(domain_lm, tokens, BeamSearchOptions.from_json(d / DOMAIN_DECODER_FILE))
        general = find_lm(d)
        if general is None:
            raise FileNotFoundError(f"{d}: no {LM_FILE} (nor its binary {Path(LM_FILE).with_suffix('.bin').name})")
        return cls(general, tokens, options, domain)

    def search(
        self, logprobs: np.ndarray, bias: Sequence[str] = (), boost: float = BIAS_BOOST
    ) -> list[tuple[str, int, int]]:
        """The best word sequence for one utterance's (frames, vocab) log-probabilities.

        Args:
            logprobs: (frames, vocab) log-probabilities.
            bias: phrases to favour (contact and device names); their words become possible even
                when the lexicon lacks them, and each gets ``boost`` added to its n-gram score.
                The biased search is built once per phrase set (16 kept) and is slower than the
                plain one (the n-gram is consulted from Python).
            boost: log10 bonus per biased word (2.0 = a hundred times more likely; 0 makes the words
                possible without favouring them), from 0 to :data:`MAX_BIAS_BOOST`.

        Returns:
            ``(word, first frame, end frame)`` per word; the frames are where the word's
            characters were emitted (end exclusive), from the best hypothesis' token path. With
            a domain search, the words of the search the choice took.

        Raises:
            ValueError: ``logprobs`` is not (frames, len(tokens)), or ``boost`` is out of range (:func:`bias_boost`).
        """
        return self.search_scored(logprobs, bias, boost)[0]

    def search_scored(
        self, logprobs: np.ndarray, bias: Sequence[str] = (), boost: float = BIAS_BOOST
    ) -> tuple[list[tuple[str, int, int]], dict[str, float | bool]]:
        """:meth:`search`, with the scores behind its answer.

        Returns:
            The words (as :meth:`search`) and a dict of the answering search's best hypothesis:
            ``acoustic`` (its summed acoustic log-probability), ``lm`` (its unweighted n-gram
            log10 score), ``words`` (how many) and ``score`` (acoustic plus that search's LM
            weight times lm); with a domain search also ``domain`` (whether its transcript was
            taken), the two sides of the choice, ``general_score`` and ``domain_score``
            (:func:`prefer_domain`), and ``domain_full``: whether the full domain search ran (False
            where the narrow precheck of ``domain_precheck_beam`` put it out of reach, and
            ``domain_score`` is then the narrow search's side: :func:`domain_out_of_reach`).
        """
        if logprobs.ndim != 2 or logprobs.shape[1] != len(self.tokens):
            raise ValueError(f"logprobs must be (frames, {len(self.tokens)}), got shape {logprobs.shape}")
        boost = bias_boost(boost)
        words, scores = self._search_one(logprobs, bias, boost)
        if self.domain is None:
            return words, scores
        # the precheck runs where the general transcript holds a word the domain lexicon lacks: one made only of
        # the product's words may be a command (and a biased search always runs the full domain search)
        if self._domain_narrow is not None and not bias and not self.domain._known.issuperset(w for w, _, _ in words):
            _, rough = self.domain._search_one(logprobs, bias, boost, decoder=self._domain_narrow)
            if domain_out_of_reach(scores, rough, self.options):
                general_score, domain_score = _choice_sides(scores, rough, self.options)
                kept: dict[str, float | bool] = dict(scores)
                kept.update(domain=False, general_score=general_score, domain_score=domain_score, domain_full=False)
                return words, kept
        found, other = self.domain._search_one(logprobs, bias, boost)
        take = prefer_domain(scores, other, self.options)
        general_score, domain_score = _choice_sides(scores, other, self.options)
        chosen: dict[str, float | bool] = dict(other if take else scores)
        chosen.update(domain=take, general_score=general_score, domain_score=domain_score, domain_full=True)
        return (found if take else words), chosen

    def _search_one(
        self, logprobs: np.ndarray, bias: Sequence[str], boost: float, decoder=None
    ) -> tuple[list[tuple[str, int, int]], dict[str, float]]:
        """This search's best words and scores (``score``: acoustic + its own ``lm_weight`` x n-gram).

        ``decoder``: another flashlight decoder over this search's lexicon (a general search's narrow
        precheck; no bias), in place of this search's own.
        """
        lm_weight = self.options.lm_weight
        nothing = {"acoustic": float("-inf"), "lm": 0.0, "score": float("-inf"), "words": 0}  # always loses
        if logprobs.shape[0] == 0:
            return [], nothing
        kept = self._searched_frames(logprobs)
        searched = logprobs if kept is None else logprobs[kept]
        # one more frame, a certain separator, closes the utterance's last word (each word ends on a separator:
        # _build); it adds nothing to a hypothesis that has closed its words already
        emissions = np.full((searched.shape[0] + 1, searched.shape[1]), CLOSING_FLOOR, dtype=np.float32)
        emissions[:-1] = searched
        emissions[-1, self._space] = 0.0
        if decoder is not None:
            dictionary = self._words
        else:
            decoder, dictionary = self._bias(bias, boost) if bias else (self._decoder, self._words)
        results = decoder.decode(emissions.ctypes.data, emissions.shape[0], emissions.shape[1])
        if not results:
            return [], nothing
        best = results[0]
        acoustic, lm = float(best.emittingModelScore), float(best.lmScore)
        words = [dictionary.get_entry(i) for i in best.words if i >= 0]
        scores = {"acoustic": acoustic, "lm": lm, "score": acoustic + lm_weight * lm, "words": len(words)}
        spans = self._spans(list(best.tokens), len(words), searched.shape[0])
        if kept is not None:  # back to the utterance's own frames
            spans = [
                (int(kept[s]), int(kept[e - 1]) + 1) if e > s else (int(kept[min(s, kept.size - 1)]),) * 2
                for s, e in spans
            ]
        return [(w, s, e) for w, (s, e) in zip(words, spans, strict=True)], scores

    def _searched_frames(self, logprobs: np.ndarray) -> np.ndarray | None:
        """Indices of the frames the search visits, or None for all of them.

        With ``blank_skip`` > 0, a run of frames whose blank probability exceeds it is searched at
        its first frame only: the rest add the same near-certain blank to every hypothesis, so
        they change no ranking worth keeping, and the run's first frame still separates a letter
        from its repeat ("ll"). On the shipped model this skips about a fifth of in-domain frames.
        """
        p = self.options.blank_skip
        if p <= 0.0:
            return None
        blank = logprobs[:, BLANK] > np.log(p)
        skipped = blank.copy()
        skipped[1:] &= blank[:-1]
        skipped[0] = False
        if not skipped.any():
            return None
        return np.flatnonzero(~skipped)

    def _spans(self, path: list[int], n_words: int, frames: int) -> list[tuple[int, int]]:
        """Frame span of each word on the token path (blank and space frames lie between words).

        The path carries one extra state before the first frame, and after the ``frames`` searched
        frames the closing separator frame (:meth:`_search_one`) and a final state.
        """
        path = path[1 : 1 + frames]
        spans: list[tuple[int, int]] = []
        in_word = False
        for t, tok in enumerate(path):
            if tok == self._space:
                in_word = False
            elif tok != BLANK:
                if not in_word:
                    spans.append((t, t + 1))
                    in_word = True
                else:
                    spans[-1] = (spans[-1][0], t + 1)
        if len(spans) != n_words:  # words emitted with no space between them: split the speech evenly
            first = spans[0][0] if spans else 0
            last = spans[-1][1] if spans else len(path)
            step = (last - first) / max(n_words, 1)
            spans = [(first + round(i * step), first + round((i + 1) * step)) for i in range(n_words)]
        return spans


# -- many searches at once ------------------------------------------------------------------------

_POOL_WORK: dict[int, Callable] = {}  # what forked workers run, by pool
POOL_REPLY_SECONDS = 120.0
"""How long a batch waits for a worker's answer before the pool is taken as broken."""


def _answer(work: Callable, item: object) -> object:
    """``work(item)``, or its exception as something a pipe can carry back."""
    import pickle

    try:
        return work(item)
    except Exception as exc:
        try:
            pickle.dumps(exc)
        except Exception:  # an exception class the other side could not rebuild
            return RuntimeError(f"{type(exc).__name__}: {exc}")
        return exc


def _pool_worker(key: int, conn, parent: int, inherited: list) -> None:
    """A worker: answer each list of items with ``work`` of each, until told to stop.

    It exits as soon as the process that forked it is gone (a SIGKILL, or Triton ending a stub),
    watched from a thread, and closes the other pipe ends it was forked with, so that no worker
    keeps another's pipe open.
    """
    import threading
    import time

    for other in inherited:
        other.close()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.25)
        os._exit(0)

    threading.Thread(target=watch, name="edgeasr-parent-watch", daemon=True).start()
    work = _POOL_WORK[key]
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):
            break
        if batch is None:
            break
        conn.send([_answer(work, item) for item in batch])


class SearchPool:
    """A batch's recognition work shared out over ``processes`` processes.

    flashlight's search holds the GIL, so threads decode one utterance at a time, and a pool fed by
    background threads (``concurrent.futures``) starves while this process searches. So each
    worker is a forked process with a copy of ``work`` (and of what it holds: the decoder, a
    model; forked once, here, so nothing is loaded twice) and a pipe: a batch is dealt out by size,
    each worker's share is written to its pipe before this process works through its own, and the
    answers are read back in order. A worker that dies or stops answering breaks the pool: its
    share is done here, and so is every later batch (``processes`` drops to 1), so a failure costs
    speed, never an answer. ``SearchPool(decoder.search).map(logprobs)`` searches utterances; the
    Triton model gives a function that runs its acoustic model and then the search.
    """

    def __init__(self, work: Callable[[object], object], processes: int = 2) -> None:
        """Fork the workers.

        Args:
            work: what is done with one item, in whichever process gets it (workers run the copy
                forked here); an exception it raises is that item's answer.
            processes: processes that work, this one included; 1 works here alone.

        Raises:
            ValueError: ``processes`` is below 1.
        """
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        self.work = work
        self.processes = int(processes)
        self._key = id(self)
        self._workers: list[tuple[object, object]] = []  # (process, this end of its pipe)
        if self.processes > 1:
            import multiprocessing

            context = multiprocessing.get_context("fork")
            _POOL_WORK[self._key] = work
            for _ in range(self.processes - 1):
                here, there = context.Pipe()
                inherited = [c for _, c in self._workers] + [here]
                worker = context.Process(
                    target=_pool_worker,
                    args=(self._key, there, os.getpid(), inherited),
                    name="edgeasr-search",
                    daemon=True,
                )
                worker.start()
                there.close()
                self._workers.append((worker, here))

    @property
    def worker_pids(self) -> list[int]:
        """The workers' process ids (empty when this process works alone)."""
        return [w.pid for w, _ in self._workers]

    def map(self, items: Sequence[object], sizes: Sequence[int] | None = None) -> list[object]:
        """``work`` of each item, in order; an item's exception is its entry.

        Args:
            items: the batch.
            sizes: each item's cost (frames, samples); items are dealt out largest first, each to
                the process with the least so far. Default: ``len`` of each item.
        """
        sizes = [len(x) for x in items] if sizes is None else list(sizes)
        results: list = [None] * len(items)
        shares: list[list[int]] = [[] for _ in range(len(self._workers) + 1)]  # shares[0] is this process's
        if len(items) > 1 and self._workers:
            load = [0] * len(shares)
            for i in sorted(range(len(items)), key=lambda i: -sizes[i]):
                j = load.index(min(load))
                shares[j].append(i)
                load[j] += sizes[i]
        else:
            shares[0] = list(range(len(items)))
        sent = []
        for (_, conn), share in zip(self._workers, shares[1:], strict=True):
            if not share:
                continue
            try:
                conn.send([items[i] for i in share])
                sent.append((conn, share))
            except (OSError, ValueError):  # the worker is gone
                shares[0] += share
        for i in shares[0]:
            results[i] = _answer(self.work, items[i])
        broken = len(sent) < sum(1 for s in shares[1:] if s)
        for conn, share in sent:
            found = None
            try:
                if conn.poll(POOL_REPLY_SECONDS):
                    found = conn.recv()
            except (EOFError, OSError):
                pass
            if found is None or len(found) != len(share):
                broken = True
                found = [_answer(self.work, items[i]) for i in share]
            for i, answer in zip(share, found, strict=True):
                results[i] = answer
        if broken:
            self._stop(wait=False)
        return results

    def _stop(self, wait: bool) -> None:
        for worker, conn in self._workers:
            with contextlib.suppress(OSError, ValueError):
                if wait:
                    conn.send(None)
            conn.close()
            if wait:
                worker.join(timeout=5)
            if worker.is_alive():
                worker.kill()
                worker.join(timeout=5)
        self._workers = []
        self.processes = 1
        _POOL_WORK.pop(self._key, None)

    def close(self) -> None:
        """Stop the workers (idempotent)."""
        self._stop(wait=True)
