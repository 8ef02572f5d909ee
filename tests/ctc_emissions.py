"""Synthetic CTC emissions for decoder tests: spell a text frame by frame, with doubtful frames."""

from __future__ import annotations

import numpy as np

from edgeasr.decoding import BLANK, TOKENS


def emissions(frames: list[dict[str, float]]) -> np.ndarray:
    """(frames, vocab) log-probabilities: each frame's named tokens get their mass, the rest share 0.01."""
    out = np.full((len(frames), len(TOKENS)), 0.01 / len(TOKENS), np.float64)
    for t, probs in enumerate(frames):
        for tok, p in probs.items():
            out[t, BLANK if tok == "_" else TOKENS.index(tok)] = p
    out /= out.sum(axis=1, keepdims=True)
    return np.log(out).astype(np.float32)


def spell(text: str, doubtful: dict[int, dict[str, float]] | None = None) -> np.ndarray:
    """Frames for ``text``: each character once followed by a blank; ``doubtful`` overrides a character's frame."""
    frames: list[dict[str, float]] = [{"_": 0.95}]
    for i, ch in enumerate(text):
        frames.append((doubtful or {}).get(i, {ch: 0.9}))
        frames.append({"_": 0.9})
    return emissions(frames)
