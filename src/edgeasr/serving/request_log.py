"""One record per request, whichever path served it: what came in, what came out (no audio kept).

The same statistics on the device path (a :class:`~edgeasr.recognizer.Recognizer` with
:func:`edgeasr.monitor.live.attach`) and the served path (the routing front of ``edgeasr serve
--request-log``, which measures the audio of each request it forwards and the transcript of each
answer): :func:`request_record` is the one implementation, :class:`WindowLog` the one JSONL file
format, and ``edgeasr monitor`` reads either (:func:`read_window`). The audio measurements are those
of ``edgeasr data validate`` (:func:`edgeasr.data.validate.measure_audio`), so a window can be held
against the reference profile that validation writes:

* inputs: ``duration``, ``loudness`` (dBFS of the active frames), ``peak``, ``clipping_ratio``,
  ``leading_silence``, ``trailing_silence``, ``silence_ratio``, ``snr_db`` (loud frames against
  quiet ones), ``sample_rate``;
* outputs: ``words``, ``words_per_second`` and ``chars_per_second`` (of the transcript over the
  speech), ``empty``, ``mean_confidence`` (mean best-token probability per frame) and
  ``blank_ratio`` where the log-probabilities are at hand (the device path), ``oov_rate`` (words
  outside the model's vocabulary, when it is known), ``latency_ms``.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from edgeasr.audio import SAMPLE_RATE
from edgeasr.data.validate import measure_audio
from edgeasr.serving.live import PairLog

__all__ = ["WindowLog", "keep_audio", "read_window", "request_audio", "request_record"]


def _snr_db(wave: np.ndarray) -> float:
    """Loud frames against quiet ones: the 90th against the 10th percentile of 20 ms frame energies (dB)."""
    n = wave.size // 320
    if n < 4:
        return 0.0
    energy = np.mean(wave[: n * 320].astype(np.float64).reshape(n, 320) ** 2, axis=1)
    db = 10.0 * np.log10(energy + 1e-12)
    return float(np.percentile(db, 90) - np.percentile(db, 10))


def request_record(
    wave: np.ndarray,
    text: str,
    latency_s: float,
    logprobs: np.ndarray | None = None,
    vocabulary: Iterable[str] | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> dict[str, Any]:
    """The statistics of one request (16 kHz mono ``wave`` and its transcript), as one JSON object.

    Args:
        wave: the audio the model heard (16 kHz mono float32).
        text: the transcript.
        latency_s: the request's latency.
        logprobs: (frames, vocab) log-probabilities, for confidence and blank ratio.
        vocabulary: the words the decoder knows, for the out-of-vocabulary rate.
        sample_rate: the rate the audio arrived at (before resampling).
    """
    m = measure_audio(np.asarray(wave, dtype=np.float32), SAMPLE_RATE)
    m.pop("_active")
    words = text.split()
    speech = m.pop("speech_seconds")
    record: dict[str, Any] = {
        "ts": round(time.time(), 3),
        **{k: (round(float(v), 5) if isinstance(v, float) else v) for k, v in m.items()},
        "snr_db": round(_snr_db(np.asarray(wave)), 3),
        "sample_rate": int(sample_rate),
        "words": len(words),
        "words_per_second": round(len(words) / speech, 4),
        "chars_per_second": round(len(text.replace(" ", "")) / speech, 4),
        "empty": not words,
        "latency_ms": round(1000.0 * latency_s, 3),
    }
    if logprobs is not None and logprobs.size:
        best = np.exp(logprobs.max(axis=-1))
        record["mean_confidence"] = round(float(best.mean()), 5)
        record["blank_ratio"] = round(float(np.mean(logprobs.argmax(axis=-1) == 0)), 5)
    if vocabulary is not None and words:
        known = vocabulary if isinstance(vocabulary, set | frozenset) else set(vocabulary)
        record["oov_rate"] = round(sum(w not in known for w in words) / len(words), 5)
    return record


class WindowLog(PairLog):
    """Thread-safe JSONL log of request records (one object per line; no audio).

    The canary's pair log, holding request records instead of pairs.

    Args:
        path: the log file (its folder is created).
    """


def read_window(path: str | os.PathLike, last: int = 0) -> list[dict[str, Any]]:
    """The records of a window log (the ``last`` N, or all); unreadable lines are skipped."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records[-last:] if last else records


def request_audio(request: Any) -> list[tuple[np.ndarray, int]]:
    """The audio rows of a KServe v2 ``ModelInferRequest`` (raw tensors) as float32, with their rate.

    Reads the ``AUDIO`` (FP32) or ``AUDIO_INT16`` input and the ``SAMPLE_RATE`` input that
    :class:`~edgeasr.client.TritonClient` sends (the served model refuses any rate but 16 kHz, so
    an answered request is at 16 kHz); rows a request does not carry as raw tensors are skipped.
    """
    rows: list[np.ndarray] = []
    rate = SAMPLE_RATE
    for index, tensor in enumerate(request.inputs):
        raw = request.raw_input_contents[index] if index < len(request.raw_input_contents) else b""
        if tensor.name in ("AUDIO", "AUDIO_INT16") and raw:
            dtype = np.float32 if tensor.name == "AUDIO" else np.int16
            data = np.frombuffer(raw, dtype=dtype)
            shape = [int(d) for d in tensor.shape]
            data = data.reshape(shape) if int(np.prod(shape)) == data.size else data.reshape(1, -1)
            scale = 1.0 if dtype == np.float32 else 1.0 / 32768.0
            rows = [np.asarray(r, dtype=np.float32) * scale for r in data.reshape(data.shape[0], -1)]
        elif tensor.name == "SAMPLE_RATE" and raw:
            rate = int(np.frombuffer(raw, dtype=np.int32)[0])
    return [(r, rate) for r in rows]


def keep_audio(record: dict[str, Any], wave: np.ndarray, folder: str | os.PathLike) -> None:
    """Keep a request's audio, where asked: a 16 kHz FLAC in ``folder``, named in ``record["audio_file"]``.

    Records keep no audio unless a folder is given (``edgeasr serve --request-log-audio``,
    :func:`edgeasr.monitor.live.attach`'s ``audio_dir``): the audio of live traffic is personal data.
    """
    import soundfile as sf

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{int(record.get('ts', time.time()) * 1000)}-{uuid.uuid4().hex[:8]}.flac"
    sf.write(path, np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")
    record["audio_file"] = str(path)
