"""Listening conditions for evaluation: the same split heard quieter, padded, faster, by phone, in a room, in noise.

``edgeasr eval --conditions SPEC`` scores each split again under each condition, so a model is
judged on what devices do to audio and not only on clean, levelled recordings. A condition is a
deterministic transform of one utterance; its random parts draw from one generator per split
seeded with :data:`NOISE_SEED`, so two runs and two models hear exactly the same audio (and
``noise=10`` is exactly what ``--noise-snr 10`` adds). ``SPEC`` lists kinds and their values::

    level=-45,-40,-30,-20,-6;silence=0.5,2;tempo=0.8,1.25;telephone;reverb=0.3,0.8;noise=20,10,5

| kind | value | what it does |
| --- | --- | --- |
| ``level`` | peak level in dBFS | scales the utterance so that its largest sample is at that level |
| ``silence`` | seconds | adds that much quiet room tone (-70 dBFS pink noise) before and after |
| ``tempo`` | rate | plays it that much faster (>1) or slower without changing pitch (WSOLA) |
| ``telephone`` | none | 300-3400 Hz band, through 8 kHz and back, 8-bit mu-law |
| ``reverb`` | RT60 seconds | a synthetic room impulse response with 3 dB direct-to-reverberant ratio |
| ``noise`` | SNR in dB | pink noise at that signal-to-noise ratio (as ``--noise-snr``) |
| ``vocoder`` | frames | LPC vocoder resynthesis, the envelope smoothed over that many 6.25 ms frames (the sound of |
| | | statistical parametric voices: :func:`edgeasr.data.augment.vocode`) |

:data:`DEFAULT_SWEEP` is the sweep of the model card.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgeasr.audio import SAMPLE_RATE, resample
from edgeasr.data.augment import (
    add_noise,
    band_limit,
    pink_noise,
    reverberate,
    synthetic_rir,
    time_stretch,
    vocode,
)

__all__ = ["DEFAULT_SWEEP", "KINDS", "NOISE_SEED", "Condition", "parse_conditions"]

NOISE_SEED = 1234
"""Seeds every random part of a condition (and export's noisy check copies): runs compare."""

DEFAULT_SWEEP = "level=-45,-40,-30,-20,-6;silence=2;tempo=0.8,1.25;telephone;reverb=0.6;noise=20,10,5"
"""The conditions sweep the model card reports."""


@dataclass(frozen=True)
class Condition:
    """One listening condition: a name for reports and the transform it applies."""

    name: str  # e.g. "level-40dBFS", "tempo1.25", "telephone", "10dB"
    kind: str  # a key of KINDS
    value: float | None  # the kind's parameter (None for telephone)

    def apply(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The utterance under this condition (16 kHz mono float32 in, the same out)."""
        return KINDS[self.kind][1](np.asarray(wave, dtype=np.float32), self.value, rng)


def _level(wave: np.ndarray, dbfs: float, rng: np.random.Generator) -> np.ndarray:
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    if peak <= 0.0:
        return wave
    return (wave * np.float32(10.0 ** (dbfs / 20.0) / peak)).astype(np.float32)


def _silence(wave: np.ndarray, seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = round(seconds * SAMPLE_RATE)
    tone = pink_noise(2 * n, rng)
    tone = tone / max(float(np.sqrt(np.mean(tone**2))), 1e-12) * np.float32(10.0 ** (-70.0 / 20.0))
    return np.concatenate([tone[:n], wave, tone[n:]]).astype(np.float32)


def _tempo(wave: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    return time_stretch(wave, rate)


def _telephone(wave: np.ndarray, value: float | None, rng: np.random.Generator) -> np.ndarray:
    narrow = resample(band_limit(wave, 300.0, 3400.0), SAMPLE_RATE, 8000)
    mu = 255.0
    x = np.clip(narrow, -1.0, 1.0)
    code = np.round(np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) * 127.0) / 127.0  # 8-bit mu-law
    decoded = np.sign(code) * np.expm1(np.abs(code) * np.log1p(mu)) / mu
    return resample(decoded.astype(np.float32), 8000, SAMPLE_RATE)


def _reverb(wave: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    return reverberate(wave, synthetic_rir(rng, rt60, 3.0))


def _noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    return add_noise(wave, pink_noise(wave.size, rng), snr_db)


def _vocoder(wave: np.ndarray, frames: float, rng: np.random.Generator) -> np.ndarray:
    return vocode(wave, rng, smooth_frames=int(frames))


KINDS: dict[str, tuple[Callable[[float | None], str], Callable]] = {
    "level": (lambda v: f"level{v:g}dBFS", _level),
    "silence": (lambda v: f"silence{v:g}s", _silence),
    "tempo": (lambda v: f"tempo{v:g}", _tempo),
    "telephone": (lambda v: "telephone", _telephone),
    "reverb": (lambda v: f"reverb{v:g}s", _reverb),
    "noise": (lambda v: f"{v:g}dB", _noise),
    "vocoder": (lambda v: f"vocoder{v:g}", _vocoder),
}
"""Condition kind -> (its name for a value, its transform)."""


def parse_conditions(spec: str) -> list[Condition]:
    """Parse ``kind=v1,v2;kind;...`` (see the module docstring; ``default`` is :data:`DEFAULT_SWEEP`) into conditions.

    Raises:
        ValueError: an unknown kind, a missing or extra value, or a value out of range.
    """
    if spec.strip() == "default":
        spec = DEFAULT_SWEEP
    out: list[Condition] = []
    for part in (p.strip() for p in spec.split(";")):
        if not part:
            continue
        kind, _, values = part.partition("=")
        kind = kind.strip()
        if kind not in KINDS:
            raise ValueError(f"unknown condition {kind!r}; choose from {', '.join(KINDS)}")
        if kind == "telephone":
            if values.strip():
                raise ValueError("telephone takes no value")
            out.append(Condition("telephone", kind, None))
            continue
        if not values.strip():
            raise ValueError(f"condition {kind!r} needs values, e.g. {kind}=1,2")
        for text in values.split(","):
            value = float(text)
            if (kind == "level" and not -90.0 <= value <= 0.0) or (kind in ("tempo", "reverb") and value <= 0.0):
                raise ValueError(f"{kind}={value:g} is out of range")
            if kind == "vocoder" and (value != int(value) or not 1 <= value <= 50):
                raise ValueError(f"vocoder={value:g} is out of range (a whole number of frames, 1 to 50)")
            if kind == "silence" and not 0.0 <= value <= 30.0:
                raise ValueError(f"silence={value:g} s is out of range (0 to 30)")
            out.append(Condition(KINDS[kind][0](value), kind, value))
    return out
