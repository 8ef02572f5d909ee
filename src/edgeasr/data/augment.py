"""Training-time augmentation on 16 kHz mono float32 waveforms, numpy only.

:class:`Augmenter` is built once per DataLoader worker and called per utterance with that
worker's ``numpy.random.Generator``; every step fires with its own probability, in this order:

1. **speed perturbation** (``speed_prob``, factor in ``speed_range``): resampling with soxr, so
   tempo and pitch change together (the classic 0.9/1.0/1.1 recipe, drawn continuously);
2. **silence padding** (``pad_prob``): ``pad_seconds_range`` seconds of room tone (pink noise at
   an RMS drawn from ``pad_floor_dbfs_range``) before and after the speech, as a device records
   it, so that long leading and trailing silences do not turn into words; off by default;
3. **pitch shift** (``pitch_prob``, semitones in ``pitch_range``): resampling by the pitch factor,
   then a WSOLA time stretch back to the original duration (written here by hand: overlap-add of
   32 ms Hann frames, each placed where it best continues the previous one);
4. **reverberation** (``reverb_prob``): convolution with a synthetic room impulse response, a
   direct path followed by exponentially decaying noise whose 60 dB decay time (RT60) is drawn
   from ``rt60_range`` and whose energy relative to the direct path (DRR) from ``drr_db_range``;
   the output keeps the input's RMS and its timing (the direct path is at lag 0);
5. **additive noise** (``noise_prob``) at an SNR drawn from ``snr_db_range``: white, pink (1/f
   power) or babble (a mix of 3 to 6 other utterances from the noise pool), chosen by
   ``noise_weights``. Noises are generated locally at construction from ``seed`` (banks of
   ``noise_bank_s`` seconds) and a random slice is taken per call. SNR is measured against the
   power of the whole clip (clips are trimmed to a short margin, so this is close to speech power);
6. **band limiting** (``bandlimit_prob``): a telephone-like band pass, the low edge drawn from
   ``low_hz_range`` and the high edge from ``high_hz_range``, applied as a raised-cosine mask
   (100 Hz transition) on the spectrum;
7. **gain** (``gain_prob``, dB in ``gain_db_range``); if the peak then exceeds 1.0 the clip is
   scaled down to a peak of 1.0 (augmentation never clips);
8. **codec** (``codec_prob``): 8-bit mu-law coding and decoding (G.711, the quantization noise of
   a phone line or a low bit-rate link); off by default;
9. **vocoder resynthesis** (``vocode_prob``): :func:`vocode` rebuilds the clip as statistical
   parametric synthesis does (the HMM voices of SVOX Pico, HTS and RHVoice): an all-pole envelope
   per frame, smoothed over ``vocode_smooth_frames`` frames, driving a pulse train at the clip's own
   pitch (noise where it is unvoiced), its intonation kept or flattened toward one pitch
   (``vocode_pitch_scale``, the regular prosody of diphone and rule-driven voices); off by default.

Babble needs a noise pool (other utterances); without one, babble's share goes to pink noise.
Cost per 3 s clip with the defaults: measured by ``bench/test_micro.py::test_augmenter`` (pytest-benchmark;
``bench/README.md`` says how to save and compare runs).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import convolve1d
from scipy.signal import lfilter

from edgeasr.audio import SAMPLE_RATE
from edgeasr.features import pink_noise

__all__ = [
    "AugmentOptions",
    "Augmenter",
    "add_noise",
    "band_limit",
    "load_noise_pool",
    "mu_law",
    "pad_silence",
    "pink_noise",
    "reverberate",
    "speed_perturb",
    "synthetic_rir",
    "time_stretch",
    "vocode",
]


@dataclass(frozen=True)
class AugmentOptions:
    """Probabilities and ranges of each augmentation step (defaults suit synthetic-speech training)."""

    speed_prob: float = 0.5  # chance of speed perturbation
    speed_range: tuple[float, float] = (0.9, 1.1)  # speed factor (>1 faster and higher)
    pitch_prob: float = 0.2  # chance of a pitch shift at constant duration
    pitch_range: tuple[float, float] = (-3.0, 3.0)  # pitch shift in semitones
    reverb_prob: float = 0.3  # chance of reverberation
    rt60_range: tuple[float, float] = (0.15, 0.8)  # room decay time RT60 (s)
    drr_db_range: tuple[float, float] = (0.0, 12.0)  # direct-to-reverberant energy ratio (dB)
    noise_prob: float = 0.6  # chance of additive noise
    snr_db_range: tuple[float, float] = (5.0, 30.0)  # signal-to-noise ratio (dB)
    noise_weights: tuple[float, float, float] = (0.3, 0.4, 0.3)  # relative odds of white, pink, babble
    bandlimit_prob: float = 0.15  # chance of telephone band limiting
    low_hz_range: tuple[float, float] = (200.0, 400.0)  # band-pass low edge (Hz)
    high_hz_range: tuple[float, float] = (3000.0, 4000.0)  # band-pass high edge (Hz)
    gain_prob: float = 0.5  # chance of a gain change
    gain_db_range: tuple[float, float] = (-12.0, 6.0)  # gain (dB); peaks are kept at or below 1.0
    pad_prob: float = 0.0  # chance of leading and trailing silence (a device that records before and after speech)
    pad_seconds_range: tuple[float, float] = (0.2, 2.0)  # silence added at each end (s), drawn per end
    pad_floor_dbfs_range: tuple[float, float] = (-70.0, -50.0)  # RMS of the room tone laid under the padding
    codec_prob: float = 0.0  # chance of 8-bit mu-law coding (G.711, telephone and low bit-rate links)
    vocode_prob: float = 0.0  # chance of LPC vocoder resynthesis (the sound of HMM and other parametric voices)
    vocode_smooth_frames: tuple[int, int] = (1, 7)  # envelope smoothing (frames of 6.25 ms), drawn per clip
    vocode_highpass_hz: float = 50.0  # vocoder output below this left out (0: the rumble pretrained-13 heard)
    vocode_pitch_scale: tuple[float, float] = (1.0, 1.0)  # vocoded intonation kept (1) or flattened (0), per clip
    noise_bank_s: float = 20.0  # seconds of white/pink/babble noise generated at construction

    def __post_init__(self) -> None:
        for name in (
            "speed_prob",
            "pitch_prob",
            "reverb_prob",
            "noise_prob",
            "bandlimit_prob",
            "gain_prob",
            "pad_prob",
            "codec_prob",
            "vocode_prob",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        for name in (
            "speed_range",
            "pitch_range",
            "rt60_range",
            "drr_db_range",
            "snr_db_range",
            "low_hz_range",
            "high_hz_range",
            "gain_db_range",
            "pad_seconds_range",
            "pad_floor_dbfs_range",
            "vocode_smooth_frames",
            "vocode_pitch_scale",
        ):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name} must be (low, high), got {(lo, hi)}")
        if self.pad_seconds_range[0] < 0:
            raise ValueError(f"pad_seconds_range must not be negative, got {self.pad_seconds_range}")
        if self.speed_range[0] <= 0 or self.rt60_range[0] <= 0:
            raise ValueError("speed_range and rt60_range must be positive")
        if self.vocode_highpass_hz < 0:
            raise ValueError(f"vocode_highpass_hz must not be negative, got {self.vocode_highpass_hz}")
        if self.vocode_pitch_scale[0] < 0:
            raise ValueError(f"vocode_pitch_scale must not be negative, got {self.vocode_pitch_scale}")
        if self.vocode_smooth_frames[0] < 1:
            raise ValueError(f"vocode_smooth_frames must be at least 1, got {self.vocode_smooth_frames}")
        if min(self.noise_weights) < 0 or sum(self.noise_weights) <= 0:
            raise ValueError("noise_weights must be non-negative and not all zero")


# ----------------------------------------------------------------------------------------------
# Building blocks (each usable on its own)
# ----------------------------------------------------------------------------------------------


def speed_perturb(wave: np.ndarray, factor: float) -> np.ndarray:
    """Play audio ``factor`` times faster (tempo and pitch together) by resampling with soxr.

    Args:
        wave: 16 kHz mono float32.
        factor: speed factor (>1 shorter and higher).

    Returns:
        float32 audio of about ``len(wave) / factor`` samples.
    """
    import soxr

    if abs(factor - 1.0) < 1e-6 or wave.size == 0:
        return wave
    return np.asarray(soxr.resample(wave, SAMPLE_RATE * factor, SAMPLE_RATE, quality="MQ"), dtype=np.float32)


def time_stretch(wave: np.ndarray, rate: float, frame: int = 512, tolerance: int = 128) -> np.ndarray:
    """Change duration without changing pitch (WSOLA): output length is about ``len / rate``.

    Args:
        wave: mono float32.
        rate: >1 shortens (faster), <1 lengthens.
        frame: analysis frame (samples; 512 = 32 ms at 16 kHz), hopped by half a frame on output.
        tolerance: how far (samples) each frame may move to continue the previous one best.

    Returns:
        float32 audio.
    """
    x = np.asarray(wave, dtype=np.float32)
    if abs(rate - 1.0) < 1e-6 or x.size < frame + 2 * tolerance + 2:
        return x
    hop_out = frame // 2
    hop_in = hop_out * rate
    padded = np.concatenate([np.zeros(tolerance, np.float32), x, np.zeros(frame + tolerance, np.float32)])
    n_frames = int((x.size - 1) / hop_in) + 1
    window = np.hanning(frame).astype(np.float32)
    out = np.zeros(n_frames * hop_out + frame, np.float32)
    norm = np.zeros_like(out)
    prev = tolerance  # position (in padded) of the previous chosen frame
    for k in range(n_frames):
        nominal = tolerance + round(k * hop_in)
        if k == 0:
            chosen = nominal
        else:
            target = padded[prev + hop_out : prev + hop_out + frame]
            lo = max(0, nominal - tolerance)
            hi = min(padded.size - frame, nominal + tolerance)
            region = padded[lo : hi + frame]
            if hi <= lo or not target.any():
                chosen = min(max(nominal, 0), padded.size - frame)
            else:
                chosen = lo + int(np.argmax(np.correlate(region, target, mode="valid")))
        out[k * hop_out : k * hop_out + frame] += padded[chosen : chosen + frame] * window
        norm[k * hop_out : k * hop_out + frame] += window
        prev = chosen
    length = round(x.size / rate)
    out = out[:length] / np.maximum(norm[:length], 1e-3)
    return out.astype(np.float32)


def synthetic_rir(rng: np.random.Generator, rt60: float, drr_db: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A room impulse response: unit direct path at lag 0, then exponentially decaying noise.

    Args:
        rng: random generator.
        rt60: time for the tail to decay by 60 dB (s).
        drr_db: direct-to-reverberant energy ratio (dB).
        sample_rate: the rate of the response.

    Returns:
        float32 response of ``min(1.2 * rt60, 1.0)`` seconds.
    """
    n = max(2, int(min(1.2 * rt60, 1.0) * sample_rate))
    t = np.arange(n, dtype=np.float64) / sample_rate
    delay = int(rng.uniform(0.002, 0.01) * sample_rate)  # first reflections arrive after a few ms
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)
    tail[: delay + 1] = 0.0
    energy = float(np.sum(tail**2))
    if energy > 0:
        tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / energy)
    tail[0] = 1.0
    return tail.astype(np.float32)


def _fft_convolve_same(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    n = x.size + h.size - 1
    size = 1 << (n - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)
    return y[: x.size]


def reverberate(wave: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with an impulse response, keeping the length, timing and RMS of ``wave``.

    Args:
        wave: mono float32.
        rir: impulse response with its direct path at lag 0.

    Returns:
        float32 audio of the same length.
    """
    if wave.size == 0:
        return wave
    y = _fft_convolve_same(wave.astype(np.float64), rir.astype(np.float64))
    rms_in = np.sqrt(np.mean(wave.astype(np.float64) ** 2))
    rms_out = np.sqrt(np.mean(y**2))
    if rms_out > 0:
        y *= rms_in / rms_out
    return y.astype(np.float32)


def add_noise(wave: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Mix ``noise`` into ``wave`` at the given SNR (power of the whole clip vs. the noise).

    Args:
        wave: mono float32.
        noise: at least as long as ``wave`` (extra samples ignored).
        snr_db: signal-to-noise ratio (dB).

    Returns:
        float32 audio (``wave`` unchanged when it is silent).
    """
    n = noise[: wave.size].astype(np.float64)
    p_signal = float(np.mean(wave.astype(np.float64) ** 2))
    p_noise = float(np.mean(n**2))
    if p_signal <= 0 or p_noise <= 0:
        return wave
    scale = np.sqrt(p_signal / (p_noise * 10.0 ** (snr_db / 10.0)))
    return (wave + scale * n).astype(np.float32)


def band_limit(
    wave: np.ndarray,
    low_hz: float,
    high_hz: float,
    sample_rate: int = SAMPLE_RATE,
    transition_hz: float = 100.0,
) -> np.ndarray:
    """Band-pass by a raised-cosine spectral mask (telephone channel when 300-3400 Hz).

    Args:
        wave: mono float32.
        low_hz: lower edge (Hz).
        high_hz: upper edge (Hz).
        sample_rate: the rate of ``wave``.
        transition_hz: width of each raised-cosine edge (Hz).

    Returns:
        float32 audio of the same length.
    """
    if wave.size == 0:
        return wave
    spec = np.fft.rfft(wave.astype(np.float64))
    f = np.fft.rfftfreq(wave.size, 1.0 / sample_rate)
    half = transition_hz / 2.0
    rise = np.clip((f - (low_hz - half)) / transition_hz, 0.0, 1.0)
    fall = np.clip(((high_hz + half) - f) / transition_hz, 0.0, 1.0)
    mask = (0.5 - 0.5 * np.cos(np.pi * rise)) * (0.5 - 0.5 * np.cos(np.pi * fall))
    return np.fft.irfft(spec * mask, wave.size).astype(np.float32)


def pad_silence(
    wave: np.ndarray,
    lead_s: float,
    trail_s: float,
    floor_dbfs: float,
    rng: np.random.Generator,
    noise: Callable[[int, np.random.Generator], np.ndarray] = pink_noise,
) -> np.ndarray:
    """Add ``lead_s`` and ``trail_s`` seconds of room tone (pink noise at ``floor_dbfs`` RMS) around ``wave``.

    The tone runs under the speech as well, so the padding does not start and stop audibly.
    ``noise(n, rng)`` makes the tone: :func:`~edgeasr.features.pink_noise` by default; the
    :class:`Augmenter` passes a slice of its pink bank (an FFT of an arbitrary length took two
    thirds of a training item's augmentation time).
    """
    lead, trail = round(lead_s * SAMPLE_RATE), round(trail_s * SAMPLE_RATE)
    x = np.pad(np.asarray(wave, dtype=np.float32), (lead, trail))
    tone = noise(x.size, rng)
    rms = float(np.sqrt(np.mean(tone.astype(np.float64) ** 2))) or 1.0
    return (x + tone * np.float32(10.0 ** (floor_dbfs / 20.0) / rms)).astype(np.float32)


def mu_law(wave: np.ndarray, mu: int = 255) -> np.ndarray:
    """Code ``wave`` with 8-bit mu-law (G.711) and decode it again: the coding noise of a phone line."""
    x = np.clip(np.asarray(wave, dtype=np.float64), -1.0, 1.0)
    coded = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    levels = np.round((coded + 1.0) / 2.0 * mu)  # 256 code words
    y = levels / mu * 2.0 - 1.0
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu).astype(np.float32)


_VOCODE_WIN = 400  # analysis and synthesis frame: 25 ms at 16 kHz (Hann)
_VOCODE_HOP = 100  # a quarter frame (6.25 ms): Hann frames at this hop add up to a constant 2
_VOCODE_NFFT = 1024  # room for the all-pole filter's tail after a 400-sample frame


def _lpc_levinson(r: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Levinson-Durbin over many frames at once: reflection coefficients (frames, order) and the final error."""
    frames = r.shape[0]
    a = np.zeros((frames, order + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    ks = np.zeros((frames, order))
    for i in range(1, order + 1):
        acc = r[:, i] + np.sum(a[:, 1:i] * r[:, i - 1 : 0 : -1], axis=1)
        k = np.clip(-acc / np.maximum(err, 1e-12), -0.999, 0.999)
        ks[:, i - 1] = k
        _step_up(a, k, i)
        err = err * (1.0 - k**2)
    return ks, err


def _step_up(a: np.ndarray, k: np.ndarray, i: int) -> None:
    """Raise predictor polynomials ``a`` (frames, order + 1) to order ``i`` with reflection coefficients ``k``."""
    a[:, 1:i] = a[:, 1:i] + k[:, None] * a[:, i - 1 : 0 : -1].copy()
    a[:, i] = k


def _lpc_from_reflection(ks: np.ndarray) -> np.ndarray:
    """Predictor polynomials (frames, order + 1) from reflection coefficients (the step-up recursion)."""
    frames, order = ks.shape
    a = np.zeros((frames, order + 1))
    a[:, 0] = 1.0
    for i in range(1, order + 1):
        _step_up(a, ks[:, i - 1], i)
    return a


def _smooth_frames(values: np.ndarray, width: int) -> np.ndarray:
    """Hann-weighted moving average along axis 0 (edges held), ``width`` frames wide."""
    if width <= 1 or values.shape[0] < 2:
        return values
    kernel = np.hanning(width + 2)[1:-1]
    # the window starts width // 2 frames before each frame (one frame later than scipy's centre for even widths)
    return convolve1d(values, kernel / kernel.sum(), axis=0, mode="nearest", origin=-(1 - width % 2))


def vocode(
    wave: np.ndarray,
    rng: np.random.Generator,
    order: int = 18,
    smooth_frames: int = 5,
    voicing_threshold: float = 0.3,
    aspiration: float = 0.05,
    highpass_hz: float = 50.0,
    pitch_scale: float = 1.0,
) -> np.ndarray:
    """Resynthesize speech the way a statistical parametric voice would sound (LPC vocoder).

    Each 25 ms frame (hop 6.25 ms) of the pre-emphasized clip is fitted with an all-pole envelope
    (autocorrelation method, 60 Hz lag window); the envelopes' reflection coefficients and gains are
    averaged over ``smooth_frames`` frames (the over-smoothed trajectories of HMM synthesis; the
    average of stable filters' reflection coefficients is a stable filter); the excitation is a unit
    power pulse train at the frame's pitch (its autocorrelation peak between 60 and 400 Hz) with a
    little noise where the frame is voiced, white noise where it is not. The frames are filtered in
    the frequency domain and overlap-added, de-emphasized and scaled to the input's RMS. Written
    here by hand (no vocoder library installs from the registries without a compiler).

    Args:
        wave: 16 kHz mono float32.
        rng: random generator (the noise of the excitation).
        order: all-pole order (18 at 16 kHz: about one pole pair per kHz, plus spectral tilt).
        smooth_frames: frames averaged per envelope (1: none).
        voicing_threshold: normalized autocorrelation peak above which a frame is voiced.
        aspiration: noise power mixed into voiced frames' pulses (relative).
        highpass_hz: the synthesis leaves out everything below this (the pulse train is one-signed: without
            it, its mean comes out as a rumble below 50 Hz holding about a fifth of the clip's energy; 0 keeps
            it, as the first version of this function did, which pretrained-13 was trained with).
        pitch_scale: the voiced frames' log pitch is scaled about its median by this (1: the clip's own
            intonation; 0: one flat pitch, the regular prosody of diphone and rule-driven voices).

    Returns:
        float32 audio of the same length and RMS (peak at most 0.99); clips shorter than a frame
        come back unchanged.
    """
    x = np.asarray(wave, dtype=np.float64)
    win, hop, nfft = _VOCODE_WIN, _VOCODE_HOP, _VOCODE_NFFT
    if x.size < win or not np.any(x):
        return np.asarray(wave, dtype=np.float32)
    pre = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1]])
    n_frames = 1 + -(-(x.size - win) // hop) if x.size > win else 1
    length = (n_frames - 1) * hop + win
    window = np.hanning(win + 1)[:-1]  # periodic: the quarter-hop overlap-add is flat
    index = np.arange(win)[None, :] + hop * np.arange(n_frames)[:, None]
    frames = np.pad(pre, (0, length - pre.size))[index] * window
    power = np.abs(np.fft.rfft(frames, nfft, axis=1)) ** 2
    acf = np.fft.irfft(power, nfft, axis=1)
    r = acf[:, : order + 1] * np.exp(-0.5 * (2.0 * np.pi * 60.0 / SAMPLE_RATE * np.arange(order + 1)) ** 2)
    r[:, 0] = r[:, 0] * (1.0 + 1e-4) + 1e-10  # white-noise correction: well conditioned on silence
    ks, err = _lpc_levinson(r, order)
    ks = _smooth_frames(ks, smooth_frames)
    sigma = np.sqrt(np.maximum(_smooth_frames(err, smooth_frames), 0.0) / float(np.sum(window**2)))
    a = _lpc_from_reflection(ks)
    # pitch: the autocorrelation peak between 60 and 400 Hz, relative to the frame's energy
    lo, hi = SAMPLE_RATE // 400, SAMPLE_RATE // 60
    normalized = acf[:, lo:hi] / np.maximum(acf[:, :1], 1e-12)
    lag = np.argmax(normalized, axis=1)
    voiced = normalized[np.arange(n_frames), lag] > voicing_threshold
    f0 = np.where(voiced, SAMPLE_RATE / (lag + lo), 0.0)
    if pitch_scale != 1.0 and np.any(voiced):
        log_f0 = np.log(f0[voiced])
        center = float(np.median(log_f0))
        f0[voiced] = np.exp(center + pitch_scale * (log_f0 - center))
    # per-sample pitch (each frame's value over its central hop), a pulse at every whole period
    f0_samples = np.repeat(f0, hop)
    f0_samples = np.pad(f0_samples, ((win - hop) // 2, 0), mode="edge")[:length]
    f0_samples = np.pad(f0_samples, (0, length - f0_samples.size), mode="edge")
    cycles = np.cumsum(f0_samples / SAMPLE_RATE)
    pulses = np.zeros(length)
    at = np.flatnonzero(np.diff(np.floor(cycles), prepend=0.0) > 0)
    pulses[at] = np.sqrt(SAMPLE_RATE / np.maximum(f0_samples[at], 1.0))  # unit power over a period
    noise = rng.standard_normal(length)
    is_voiced = f0_samples > 0
    excitation = np.where(is_voiced, pulses + np.sqrt(aspiration) * noise, noise)
    spectrum = np.fft.rfft(excitation[index] * window, nfft, axis=1)
    envelope = sigma[:, None] / np.fft.rfft(a, nfft, axis=1)
    if highpass_hz > 0:
        envelope[:, : int(np.ceil(highpass_hz * nfft / SAMPLE_RATE))] = 0.0
    span = -(-nfft // hop) * hop  # each frame's output, padded to whole hops
    out_frames = np.zeros((n_frames, span))
    out_frames[:, :nfft] = np.fft.irfft(spectrum * envelope, nfft, axis=1)
    out = np.zeros(n_frames * hop + span)
    for j in range(0, span, hop):  # overlap-add: the j-th hop of every frame tiles one contiguous run
        out[j : j + n_frames * hop] += out_frames[:, j : j + hop].ravel()
    y = lfilter([1.0], [1.0, -0.97], out[: x.size] / 2.0)  # de-emphasis
    rms_in = float(np.sqrt(np.mean(x**2)))
    rms_out = float(np.sqrt(np.mean(y**2)))
    if rms_out <= 0 or not np.isfinite(rms_out):
        return np.asarray(wave, dtype=np.float32)
    y *= rms_in / rms_out
    peak = float(np.max(np.abs(y)))
    if peak > 0.99:
        y *= 0.99 / peak
    return y.astype(np.float32)


def load_noise_pool(manifest: str | os.PathLike, max_clips: int = 64, seed: int = 0) -> list[np.ndarray]:
    """Load some utterances of a manifest as babble material.

    Unreadable rows are skipped here (babble is optional material, the validator reports them).

    Args:
        manifest: a JSONL manifest.
        max_clips: how many utterances to load at most (chosen by ``seed``).
        seed: which ones.

    Returns:
        16 kHz mono float32 clips.
    """
    from edgeasr.audio import AudioError, load_audio
    from edgeasr.manifest import read_manifest, resolve_audio_path

    rows = read_manifest(manifest)
    order = np.random.default_rng(seed).permutation(len(rows))[:max_clips]
    pool = []
    for i in order:
        try:
            wave = load_audio(resolve_audio_path(rows[int(i)], manifest))
        except AudioError:
            continue
        if wave.size and np.all(np.isfinite(wave)):
            pool.append(wave)
    return pool


# ----------------------------------------------------------------------------------------------
# The augmenter
# ----------------------------------------------------------------------------------------------


class Augmenter:
    """Applies :class:`AugmentOptions` to waveforms; cheap to call, noise banks built once.

    Args:
        options: probabilities and ranges.
        noise_pool: other utterances (16 kHz mono float32) for babble; None disables babble.
        seed: seeds the noise banks (per-call randomness comes from the ``rng`` argument).
    """

    def __init__(
        self, options: AugmentOptions | None = None, noise_pool: list[np.ndarray] | None = None, seed: int = 0
    ):
        self.options = options or AugmentOptions()
        rng = np.random.default_rng(seed)
        n = int(self.options.noise_bank_s * SAMPLE_RATE)
        white = rng.standard_normal(n).astype(np.float32)
        self._banks: dict[str, np.ndarray] = {"white": white, "pink": pink_noise(n, rng)}
        babble = self._make_babble(noise_pool or [], n, rng)
        if babble is not None:
            self._banks["babble"] = babble
        kinds = ["white", "pink", "babble"]
        weights = list(self.options.noise_weights)
        if babble is None:
            weights[1] += weights[2]
            weights[2] = 0.0
        total = sum(weights)
        self._kinds = kinds
        self._kind_p = np.array(weights) / total

    @staticmethod
    def _make_babble(pool: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray | None:
        clips = [np.asarray(c, np.float32) for c in pool if c is not None and np.size(c) > SAMPLE_RATE // 10]
        if not clips:
            return None
        out = np.zeros(n, np.float64)
        # Several overlapping talkers: for each talker track, concatenate random clips to length.
        talkers = min(6, max(3, len(clips)))
        for _ in range(talkers):
            track = []
            filled = 0
            while filled < n:
                c = clips[int(rng.integers(len(clips)))]
                c = c / (np.sqrt(np.mean(c.astype(np.float64) ** 2)) + 1e-9)
                track.append(c)
                filled += c.size
            t = np.concatenate(track)
            start = int(rng.integers(0, max(1, t.size - n + 1)))
            out += t[start : start + n]
        out /= np.sqrt(np.mean(out**2)) + 1e-12
        return out.astype(np.float32)

    def noise(self, kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
        """A random slice of ``n`` samples of a noise bank ("white", "pink" or "babble").

        Args:
            kind: the noise.
            n: samples wanted (the bank is tiled when shorter).
            rng: random generator.

        Returns:
            float32 noise, unit RMS.

        Raises:
            KeyError: babble without a noise pool.
        """
        bank = self._banks[kind]
        if n > bank.size:
            bank = np.tile(bank, n // bank.size + 1)
        start = int(rng.integers(0, bank.size - n + 1))
        return bank[start : start + n]

    def __call__(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Augment one utterance.

        Args:
            wave: 16 kHz mono float32 audio.
            rng: the caller's random generator (one per DataLoader worker).

        Returns:
            Augmented float32 audio (its length changes with speed perturbation and silence padding only).
        """
        o = self.options
        x = np.asarray(wave, dtype=np.float32)
        if x.size == 0:
            return x
        if o.speed_prob and rng.random() < o.speed_prob:
            x = speed_perturb(x, float(rng.uniform(*o.speed_range)))
        if o.pad_prob and rng.random() < o.pad_prob:
            lead, trail = rng.uniform(*o.pad_seconds_range, size=2)
            floor = float(rng.uniform(*o.pad_floor_dbfs_range))
            x = pad_silence(x, float(lead), float(trail), floor, rng, lambda n, r: self.noise("pink", n, r))
        if o.pitch_prob and rng.random() < o.pitch_prob:
            factor = 2.0 ** (float(rng.uniform(*o.pitch_range)) / 12.0)
            n = x.size
            x = time_stretch(speed_perturb(x, factor), 1.0 / factor)
            x = x[:n] if x.size >= n else np.pad(x, (0, n - x.size))
        if o.reverb_prob and rng.random() < o.reverb_prob:
            rir = synthetic_rir(rng, float(rng.uniform(*o.rt60_range)), float(rng.uniform(*o.drr_db_range)))
            x = reverberate(x, rir)
        if o.noise_prob and rng.random() < o.noise_prob:
            kind = self._kinds[int(rng.choice(3, p=self._kind_p))]
            x = add_noise(x, self.noise(kind, x.size, rng), float(rng.uniform(*o.snr_db_range)))
        if o.bandlimit_prob and rng.random() < o.bandlimit_prob:
            x = band_limit(x, float(rng.uniform(*o.low_hz_range)), float(rng.uniform(*o.high_hz_range)))
        if o.gain_prob and rng.random() < o.gain_prob:
            x = x * np.float32(10.0 ** (float(rng.uniform(*o.gain_db_range)) / 20.0))
        peak = float(np.max(np.abs(x))) if x.size else 0.0
        if peak > 1.0:
            x = x / np.float32(peak)
        if o.codec_prob and rng.random() < o.codec_prob:
            x = mu_law(x)
        if o.vocode_prob and rng.random() < o.vocode_prob:
            lo, hi = o.vocode_smooth_frames
            smooth = int(rng.integers(lo, hi + 1))
            low, high = o.vocode_pitch_scale
            scale = float(rng.uniform(low, high)) if high > low else low  # no draw when fixed: older recipes replay
            x = vocode(x, rng, smooth_frames=smooth, highpass_hz=o.vocode_highpass_hz, pitch_scale=scale)
        return np.ascontiguousarray(x, dtype=np.float32)
