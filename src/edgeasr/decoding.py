"""CTC decoding on numpy: token vocabulary, greedy decoding, word timestamps.

Shared by the on-device :class:`~edgeasr.recognizer.Recognizer`, evaluation and benchmarks; it
needs numpy only. The acoustic model emits log-probabilities over :data:`TOKENS` every
:data:`FRAME_SECONDS`; index 0 is the CTC blank.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "BLANK",
    "FRAME_SECONDS",
    "TOKENS",
    "Transcript",
    "Word",
    "greedy_decode",
    "greedy_path",
]

BLANK = 0
TOKENS: tuple[str, ...] = ("<blank>", " ", "'", *"abcdefghijklmnopqrstuvwxyz")
"""Model output tokens: blank, space, apostrophe, a-z (the labelling convention's character set)."""

FRAME_SECONDS = 0.02
"""Duration of one output frame: 10 ms feature hop times the model's stride of 2."""


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
    path = greedy_path(logprobs)
    words: list[Word] = []
    chars: list[str] = []
    start = end = 0.0
    prev = BLANK
    for t, tok in enumerate(path.tolist()):
        if tok != prev and tok != BLANK:
            ch = tokens[tok]
            if ch == " ":
                if chars:
                    words.append(Word("".join(chars), start, end))
                    chars = []
            else:
                if not chars:
                    start = time_offset + t * frame_seconds
                chars.append(ch)
        if tok != BLANK and tokens[tok] != " ":
            end = time_offset + (t + 1) * frame_seconds
        prev = tok
    if chars:
        words.append(Word("".join(chars), start, end))
    return Transcript(text=" ".join(w.text for w in words), words=tuple(words))
