"""The feature frontend's definition: its settings and its constant tables, on numpy.

A model's log-mel frontend (80 bands, 25 ms window, 10 ms hop) is part of its exported graph, so
the features a model was trained on are the features it sees on a device or in Triton. Before
the model, the runtime brings the input to the training level (:class:`LevelMeter`; the
``Recognizer``, its streams and the Triton model all use it: every python-flavour version folder
carries a copy of this file as ``features.py``, so it imports only numpy) and cuts its long
quiet ends as the corpora were cut (:func:`speech_span`; a stream, its lead only). This module defines
the frontend without torch: :class:`FrontendConfig` (recorded in every model
card), the number of frames a length of audio gives, and the constant tables the graph holds
(Hann window, factored DFT, HTK mel filters). The torch module that trains and exports them is
:class:`edgeasr.training.frontend.LogMelFrontend`; :func:`log_mel` is the same computation on
numpy, for checks and for tools that look at audio without a model.

The short-time Fourier transform is framing plus a 512-point DFT factored Cooley-Tukey style into
a 16-point DFT, twiddle factors and a 32-point DFT, so the graph holds only Reshape, Slice, Pad,
Concat, MatMul, Mul, Add and Log: operators that onnxruntime and TensorRT both have. It matches
``torchaudio.transforms.MelSpectrogram(..., center=True, pad_mode="constant", mel_scale="htk")``
(``tests/test_features.py`` holds the tolerance). Zero padding is used at both ends (not
reflection) so that a padded batch row and the same audio alone give identical frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "DFT_FACTORS",
    "LEVEL_FRAME",
    "PAD_SECONDS_KEY",
    "PAUSE_SECONDS",
    "ROOM_TONE_DBFS",
    "FrontendConfig",
    "LevelConfig",
    "LevelMeter",
    "apply_gain",
    "dft_tables",
    "frame_count",
    "frame_levels_db",
    "hann_window",
    "input_pad_seconds",
    "level_gain_db",
    "log_mel",
    "mel_filterbank",
    "model_input",
    "model_pieces",
    "not_speech",
    "pad_room_tone",
    "pink_noise",
    "prepare_input",
    "room_tone",
    "speech_frames",
    "speech_segments",
    "speech_span",
]

LEVEL_FRAME = 320
"""Frame length of the level measurement, samples (20 ms at 16 kHz), as the data stage's conditioning."""

PAD_SECONDS_KEY = "edgeasr.input_pad_seconds"
"""ONNX metadata key: seconds of room tone the runtime lays before and after an utterance (absent: none)."""

ROOM_TONE_DBFS = -70.0
"""RMS of the room tone that input padding lays down (a quiet room through a device microphone)."""

PAUSE_SECONDS = 0.3
"""Non-speech between two words that cuts a whole-input model's recording into pieces heard one at a
time (:func:`speech_segments`): the ``Recognizer``, its streams and the Triton model all use it."""

DFT_FACTORS = (16, 32)
"""The 512-point DFT as N1 x N2: sample n = N2 * n1 + n2, bin k = k1 + N1 * k2."""


@dataclass(frozen=True)
class FrontendConfig:
    """Parameters of the log-mel frontend (fixed per model; recorded in its card)."""

    sample_rate: int = 16_000  # input sample rate in Hz
    n_fft: int = 512  # FFT size; the window is zero-padded to it, centred
    win_length: int = 400  # analysis window, 25 ms at 16 kHz
    hop_length: int = 160  # frame shift, 10 ms at 16 kHz
    n_mels: int = 80  # mel bands
    f_min: float = 0.0  # lowest mel band edge, Hz
    f_max: float = 8_000.0  # highest mel band edge, Hz (Nyquist at 16 kHz)
    log_floor: float = 1e-6  # added before the logarithm so silence stays finite


def frame_count(n_samples: int, hop_length: int = 160) -> int:
    """Feature frames for ``n_samples`` of audio: ``n_samples // hop + 1`` (centred framing)."""
    return int(n_samples) // hop_length + 1


@dataclass(frozen=True)
class LevelConfig:
    """Level normalization of the input, applied by the runtime before the model (see :class:`LevelMeter`)."""

    normalize: bool = True  # bring each utterance (or the stream so far) to target_dbfs before the model
    target_dbfs: float = -23.0  # RMS over active frames: the level the data stage conditions corpora to
    active_db: float = 35.0  # a 20 ms frame is active within this many dB of the loudest one
    max_gain_db: float = 40.0  # never amplify more than this
    peak_dbfs: float = -1.0  # nor so much that the peak passes this
    floor_dbfs: float = -60.0  # a loudest frame below this is silence (room tone): no gain at all
    # cut long quiet ends before the model (speech_span): the audio before the first and after the
    # last active frame (within active_db of the loudest and above floor_dbfs, after the gain); only
    # with normalize on
    trim: bool = True
    trim_after_seconds: float = 0.5  # a quiet end this long or shorter is heard as it is (a stream then equals offline)
    trim_margin_seconds: float = 0.15  # a longer one is cut down to this (the margin every corpus clip was cut to)


class LevelMeter:
    """Running level of a recording, and the gain that brings it to the training level.

    A quiet microphone or a far talker should look like the training data: the RMS over the
    active 20 ms frames (within ``active_db`` of the loudest) is brought to ``target_dbfs``, with
    at most ``max_gain_db`` of gain and the peak kept below ``peak_dbfs``. A recording whose
    loudest frame is below ``floor_dbfs`` is silence and gets no gain, so room tone is never
    blown up into words. The meter only looks back: a stream's gain is that of the audio heard so
    far (causal, so streaming-safe), and a whole recording's is :func:`level_gain_db`.
    """

    def __init__(self, cfg: LevelConfig = LevelConfig()) -> None:
        self.cfg = cfg
        self._energy = np.zeros(256, np.float64)  # mean square of each complete frame (first _n used)
        self._db = np.zeros(256, np.float64)  # the same in dB, kept so a stream's query never recomputes it
        self._n = 0
        self._rest = np.zeros(0, np.float64)  # samples of the incomplete last frame
        self._peak = 0.0

    def update(self, samples: np.ndarray) -> LevelMeter:
        """Take more audio (16 kHz mono float); returns the meter."""
        if not self.cfg.normalize:
            return self
        x = np.concatenate([self._rest, np.asarray(samples, dtype=np.float64).reshape(-1)])
        if x.size:
            self._peak = max(self._peak, float(np.abs(x).max()))
        whole = x.size // LEVEL_FRAME * LEVEL_FRAME
        if whole:
            energy = (x[:whole].reshape(-1, LEVEL_FRAME) ** 2).mean(axis=1)
            end = self._n + energy.size
            if end > self._energy.size:  # grow by doubling: appending stays amortized O(1) per frame
                size = max(end, 2 * self._energy.size)
                self._energy = np.resize(self._energy, size)
                self._db = np.resize(self._db, size)
            self._energy[self._n : end] = energy
            self._db[self._n : end] = 10.0 * np.log10(energy + 1e-12)
            self._n = end
        self._rest = x[whole:]
        return self

    def gain_db(self) -> float:
        """The gain (dB) for the audio so far (0 when normalization is off or nothing was heard)."""
        cfg = self.cfg
        energy, db = self._energy[: self._n], self._db[: self._n]
        if self._rest.size:
            tail = float(np.mean(self._rest**2))
            energy, db = np.append(energy, tail), np.append(db, 10.0 * np.log10(tail + 1e-12))
        if not cfg.normalize or not energy.size:
            return 0.0
        loudest = float(db.max())
        if loudest < cfg.floor_dbfs:
            return 0.0
        rms_db = 10.0 * np.log10(float(energy[db >= loudest - cfg.active_db].mean()) + 1e-12)
        peak_db = 20.0 * np.log10(self._peak + 1e-12)
        return float(min(cfg.target_dbfs - rms_db, cfg.max_gain_db, cfg.peak_dbfs - peak_db))


def level_gain_db(audio: np.ndarray, cfg: LevelConfig = LevelConfig()) -> float:
    """The gain (dB) that level normalization gives a whole recording (see :class:`LevelMeter`)."""
    return LevelMeter(cfg).update(audio).gain_db()


def apply_gain(audio: np.ndarray, gain_db: float) -> np.ndarray:
    """``audio`` times ``gain_db`` decibels, float32."""
    if gain_db == 0.0:
        return np.asarray(audio, dtype=np.float32)
    return (np.asarray(audio, dtype=np.float32) * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)


STEADY_DB = 0.6
"""Frame energies that vary less than this (standard deviation, dB) are a steady signal, not speech."""


def not_speech(audio: np.ndarray, steady_db: float = STEADY_DB) -> str:
    """Why ``audio`` (16 kHz mono) cannot be speech, or "" when it may be.

    Speech rises and falls with its syllables: the energy of its 25 ms frames (10 ms hop) within
    40 dB of the loudest varies by 5 to 9 dB (standard deviation) in the shipped samples, and by
    0.81 dB at the least over the 9,098 real-speech clips (a one-second command deep in noise). A
    tone, a clipped square wave or hum varies by 0.0 dB, white noise by 0.3 dB. The signal must
    also span a second or more of such frames, so short input is always left to the model.
    Recognizers return no words for such input, with the reason.

    Args:
        audio: the waveform.
        steady_db: the variation below which a signal is steady.

    Returns:
        ``"silence"``, ``"a steady signal (tone, hum or noise)"`` or ``""``.
    """
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    if x.size < 400 + 10 * 160:  # under 0.13 s: too short to tell, the model decides
        return ""
    frames = np.lib.stride_tricks.sliding_window_view(x, 400)[::160]
    energy = 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    if energy.max() < -90.0:
        return "silence"
    active = energy[energy > energy.max() - 40.0]
    if active.size >= 100 and float(active.std()) < steady_db:  # a second or more, steady throughout
        return "a steady signal (tone, hum or noise)"
    return ""


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f power) noise with unit RMS.

    Args:
        n: number of samples.
        rng: random generator.

    Returns:
        float32 noise of length ``n``.
    """
    if n <= 0:
        return np.zeros(0, np.float32)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    spec /= np.sqrt(f)
    spec[0] = 0.0
    out = np.fft.irfft(spec, n)
    return (out / (np.sqrt(np.mean(out**2)) + 1e-12)).astype(np.float32)


@lru_cache(maxsize=8)
def _room_tone(samples: int) -> np.ndarray:
    tone = pink_noise(2 * samples, np.random.default_rng(20261203)) * np.float32(10.0 ** (ROOM_TONE_DBFS / 20.0))
    tone.flags.writeable = False
    return tone


def room_tone(samples: int) -> tuple[np.ndarray, np.ndarray]:
    """The lead and the tail of input padding: ``samples`` each of pink noise at :data:`ROOM_TONE_DBFS`.

    Always the same samples for the same length (a fixed seed), so every path that pads an
    utterance (the ``Recognizer``, its streams, the Triton model, the training dev check) feeds
    the model identical audio. The arrays are read-only.
    """
    if samples <= 0:
        empty = np.zeros(0, np.float32)
        return empty, empty
    tone = _room_tone(int(samples))
    return tone[:samples], tone[samples:]


def pad_room_tone(audio: np.ndarray, seconds: float, sample_rate: int = 16_000) -> np.ndarray:
    """``audio`` with ``seconds`` of quiet room tone (:func:`room_tone`) before and after it.

    A model trained on recordings that start and end in a quiet room hears a clip cut tight
    around its words (a first phoneme at sample 0) worse than the same clip with a little room
    around it; an export records how much it wants (:data:`PAD_SECONDS_KEY`) and the runtime lays
    it down after the level gain (:func:`model_input`).
    """
    n = round(seconds * sample_rate)
    x = np.asarray(audio, dtype=np.float32)
    if n <= 0:
        return x
    lead, trail = room_tone(n)
    return np.concatenate([lead, x, trail])


def input_pad_seconds(metadata: dict[str, str]) -> float:
    """The input padding an ONNX model's metadata asks for (:data:`PAD_SECONDS_KEY`; 0 when absent).

    Raises:
        ValueError: the value is not a number of seconds between 0 and 5.
    """
    value = metadata.get(PAD_SECONDS_KEY)
    if value is None:
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not 0.0 <= seconds <= 5.0:
        raise ValueError(f"{PAD_SECONDS_KEY}={value!r}: must be a number of seconds from 0 to 5")
    return seconds


def frame_levels_db(audio: np.ndarray, frame: int = LEVEL_FRAME) -> np.ndarray:
    """RMS level (dBFS) of each ``frame``-sample frame of ``audio``; a final partial frame counts.

    Digital silence reads -200 dBFS. The data stage's silence rule (:mod:`edgeasr.data.conditioning`)
    and :func:`speech_span` both measure frames with this.
    """
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return np.zeros(0, dtype=np.float64)
    frames = -(-x.size // frame)
    padded = np.zeros(frames * frame, dtype=np.float64)
    padded[: x.size] = x
    counts = np.full(frames, float(frame))
    counts[-1] = x.size - (frames - 1) * frame
    return 10.0 * np.log10(np.maximum((padded.reshape(frames, frame) ** 2).sum(axis=1) / counts, 1e-20))


def speech_frames(leveled: np.ndarray, level: LevelConfig = LevelConfig()) -> np.ndarray:
    """Indices of the 20 ms frames of a level-normalized recording that are active: within
    ``level.active_db`` of its loudest frame and above ``level.floor_dbfs`` (:func:`speech_span`;
    a stream applies it to what it has heard so far)."""
    db = frame_levels_db(leveled)
    if db.size == 0:
        return np.zeros(0, np.int64)
    return np.flatnonzero(db >= max(float(db.max()) - level.active_db, level.floor_dbfs))


def speech_span(audio: np.ndarray, level: LevelConfig = LevelConfig(), sample_rate: int = 16_000) -> tuple[int, int]:
    """``(start, end)``: the samples of a level-normalized recording that hold its speech, with a margin.

    A frame is active when it is within ``level.active_db`` of the loudest frame and above
    ``level.floor_dbfs``. A quiet end (before the first active frame, after the last) longer than
    ``level.trim_after_seconds`` is cut down to ``level.trim_margin_seconds``; a shorter one is
    kept whole, so a clip with ordinary margins is heard exactly as it is. The activity rule and
    the margin are those every corpus clip was trimmed by (:func:`edgeasr.data.conditioning.trim_silence`:
    35 dB, -60 dBFS, 0.15 s), so a model trained on such clips hears a recording with long
    silences around its words as it heard its training data. The whole recording when
    ``level.trim`` is off, when ``level.normalize`` is (the floor is a level of leveled audio: a
    quiet recording's words would fall below it) or when no frame is active (silence is left to
    :func:`not_speech`).
    """
    return speech_segments(audio, level, 0.0, sample_rate=sample_rate)[0]  # the one piece of no cut


def speech_segments(
    leveled: np.ndarray,
    level: LevelConfig = LevelConfig(),
    pause_seconds: float = PAUSE_SECONDS,
    origin: int = 0,
    sample_rate: int = 16_000,
) -> list[tuple[int, int]]:
    """``[(start, end), ...]``: :func:`speech_span` cut at every pause, the pieces a whole-input model hears.

    A model whose frames hear the whole input (an attention encoder) reads a long recording of many
    phrases worse than each phrase alone: it was trained on single utterances. Where the active
    frames (:func:`speech_frames`) leave a gap of at least ``pause_seconds`` (and at least twice
    ``level.trim_margin_seconds``), the span is cut; each piece keeps that margin of quiet on both
    sides of its words, as every corpus clip did. Without such a gap (an ordinary command or
    sentence, or ``pause_seconds`` 0) the one piece is exactly :func:`speech_span`'s.

    ``origin`` is where ``leveled`` starts in its recording (samples): the 20 ms frames are measured
    on the recording's grid, so a stream that let a quiet lead go cuts where offline decoding of the
    whole recording cuts.
    """
    n = int(np.asarray(leveled).size)
    if n == 0 or not (level.trim and level.normalize):
        return [(0, n)]
    skip = (-int(origin)) % LEVEL_FRAME  # the samples before the recording's next frame boundary
    active = speech_frames(np.asarray(leveled)[skip:], level)
    if active.size == 0:
        return [(0, n)]
    starts = skip + active * LEVEL_FRAME
    ends = np.minimum(starts + LEVEL_FRAME, n)
    margin, after = round(level.trim_margin_seconds * sample_rate), round(level.trim_after_seconds * sample_rate)
    first, last = int(starts[0]), int(ends[-1])
    cuts: list[int] = []
    if pause_seconds > 0:
        gap = max(round(pause_seconds * sample_rate), 2 * margin)
        cuts = np.flatnonzero(starts[1:] - ends[:-1] >= gap).tolist()
    seg_starts = [first - margin if first > after else 0] + [int(starts[c + 1]) - margin for c in cuts]
    seg_ends = [int(ends[c]) + margin for c in cuts] + [last + margin if n - last > after else n]
    return list(zip(seg_starts, seg_ends, strict=True))


def prepare_input(
    leveled: np.ndarray, pad_seconds: float = 0.0, level: LevelConfig = LevelConfig()
) -> tuple[np.ndarray, int]:
    """A level-normalized recording as its model hears it, and the recording's first sample in it.

    The quiet ends are cut (:func:`speech_span`), then ``pad_seconds`` of room tone laid around
    what is left (:func:`pad_room_tone`). The second value is where the kept part starts in the
    recording (samples), so that word times can be put back on the recording's clock.
    """
    start, end = speech_span(leveled, level)
    return pad_room_tone(np.asarray(leveled, dtype=np.float32)[start:end], pad_seconds), start


def model_pieces(
    leveled: np.ndarray,
    pad_seconds: float = 0.0,
    level: LevelConfig = LevelConfig(),
    whole_input: bool = False,
    pause_seconds: float = PAUSE_SECONDS,
    origin: int = 0,
) -> list[tuple[np.ndarray, int]]:
    """What a model hears of a level-normalized recording, piece by piece: ``[(input, start), ...]``.

    One piece, :func:`prepare_input`'s, for a model with a finite receptive field; for a model whose
    frames hear the whole input (``whole_input``), the pieces of :func:`speech_segments` (cut at
    ``pause_seconds`` of non-speech; ``origin`` as there), each with ``pad_seconds`` of room tone
    around it. ``start`` is where the piece's audio begins in ``leveled`` (samples). The
    ``Recognizer``, its streams, the Triton model and the native client all hear a recording so.
    """
    if not whole_input:
        return [prepare_input(leveled, pad_seconds, level)]
    x = np.asarray(leveled, dtype=np.float32)
    return [(pad_room_tone(x[s:e], pad_seconds), s) for s, e in speech_segments(x, level, pause_seconds, origin)]


def model_input(audio: np.ndarray, pad_seconds: float = 0.0, level: LevelConfig = LevelConfig()) -> np.ndarray:
    """What a model hears of a recording: brought to the training level, its quiet ends cut, room tone around it.

    The gain is the recording's own (:func:`level_gain_db`); the quiet ends are cut from the
    leveled audio (:func:`speech_span`), and the tone (:func:`pad_room_tone`) is laid down after
    that, so it is always :data:`ROOM_TONE_DBFS` beside speech at the training level, however
    quiet the recording was (a tone scaled with a quiet recording's gain would be a noise floor
    30 dB louder). The ``Recognizer`` and the Triton model both do this (:func:`prepare_input`);
    a stream levels and pads the same way as audio arrives and cuts a long lead by the same rule
    as it hears it (not a long tail: its endpointing bounds that).
    """
    return prepare_input(apply_gain(audio, level_gain_db(audio, level)), pad_seconds, level)[0]


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + f / 700.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_filterbank(cfg: FrontendConfig) -> np.ndarray:
    """Triangular HTK-scale mel filters without area normalisation, float32 (n_fft // 2 + 1, n_mels).

    The construction of torchaudio's ``melscale_fbanks(norm=None, mel_scale="htk")``, computed in
    float64 and rounded once.
    """
    n_freqs = cfg.n_fft // 2 + 1
    all_freqs = np.linspace(0, cfg.sample_rate // 2, n_freqs, dtype=np.float64)
    m_pts = np.linspace(_hz_to_mel(np.float64(cfg.f_min)), _hz_to_mel(np.float64(cfg.f_max)), cfg.n_mels + 2)
    f_pts = _mel_to_hz(m_pts)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[None, :] - all_freqs[:, None]  # (n_freqs, n_mels + 2)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.maximum(np.minimum(down, up), 0.0).astype(np.float32)


def _cos_sin(rows: int, cols: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    angle = 2.0 * np.pi * np.outer(np.arange(rows, dtype=np.float64), np.arange(cols, dtype=np.float64)) / n
    return np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)


def dft_tables(n_fft: int = 512) -> dict[str, np.ndarray]:
    """Cosine and sine tables of the factored DFT, float32, by the names the graph gives them.

    ``c16``/``s16`` (k1, n1), the twiddles ``tw_c``/``tw_s`` (k1, n2) and ``c32``/``s32`` (n2, k2).
    """
    n1, n2 = DFT_FACTORS
    if n_fft != n1 * n2:
        raise ValueError(f"the factored DFT has {n1 * n2} points, not {n_fft}")
    c16, s16 = _cos_sin(n1, n1, n1)
    tw_c, tw_s = _cos_sin(n1, n2, n_fft)
    c32, s32 = _cos_sin(n2, n2, n2)
    return {"c16": c16, "s16": s16, "tw_c": tw_c, "tw_s": tw_s, "c32": c32, "s32": s32}


def hann_window(win_length: int) -> np.ndarray:
    """Periodic Hann window, float32 (as ``torch.hann_window(win_length, periodic=True)``)."""
    n = np.arange(win_length, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)).astype(np.float32)


def log_mel(audio: np.ndarray, cfg: FrontendConfig = FrontendConfig()) -> np.ndarray:
    """Un-normalised log-mel energies of one mono utterance, float32 (n_mels, frames).

    The frontend's computation with numpy's FFT in place of the factored DFT: the same framing,
    window, filters and floor, so it agrees with the model's frontend to float32 rounding.
    """
    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    n_frames = frame_count(x.shape[0], cfg.hop_length)
    half = cfg.win_length // 2
    padded = np.zeros(half + n_frames * cfg.hop_length + cfg.win_length, dtype=np.float32)
    padded[half : half + x.shape[0]] = x
    starts = np.arange(n_frames) * cfg.hop_length
    frames = padded[starts[:, None] + np.arange(cfg.win_length)[None, :]] * hann_window(cfg.win_length)
    side = (cfg.n_fft - cfg.win_length) // 2
    spectrum = np.fft.rfft(np.pad(frames, ((0, 0), (side, side))).astype(np.float64), axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)  # (frames, n_freqs)
    mel = power @ mel_filterbank(cfg)
    return np.log(mel + np.float32(cfg.log_floor)).T.astype(np.float32)
