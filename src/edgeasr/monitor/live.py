"""Live statistics of every request: what came in, what came out, logged as JSONL (no audio kept).

One record per request (:func:`request_record`), with the same audio measurements as
``edgeasr data validate`` (:func:`edgeasr.data.validate.measure_audio`: one implementation), so a
window of live records can be held against the reference profile that validation writes:

* inputs: ``duration``, ``loudness`` (dBFS of the active frames), ``peak``, ``clipping_ratio``,
  ``leading_silence``, ``trailing_silence``, ``silence_ratio``, ``snr_db`` (loud frames against
  quiet ones), ``sample_rate``;
* outputs: ``words``, ``words_per_second`` and ``chars_per_second`` (of the transcript over the
  speech), ``empty``, ``mean_confidence`` (mean best-token probability per frame), ``blank_ratio``,
  ``oov_rate`` (words outside the model's vocabulary, when it is known), ``latency_ms``.

:class:`WindowLog` appends records to a JSONL file; :func:`attach` hooks it to a
:class:`~edgeasr.recognizer.Recognizer` (opt in: nothing is measured unless attached).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from edgeasr.audio import SAMPLE_RATE
from edgeasr.data.validate import measure_audio
from edgeasr.serving.live import PairLog

__all__ = ["WindowLog", "attach", "read_window", "request_record"]


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


def attach(recognizer, log: WindowLog | str | os.PathLike) -> WindowLog:
    """Log every :meth:`~edgeasr.recognizer.Recognizer.transcribe` of ``recognizer`` to ``log``.

    The statistics are computed after the transcript is made; a failure to log never fails a
    request.

    Returns:
        The log.
    """
    log = log if isinstance(log, WindowLog) else WindowLog(log)
    vocabulary = set(getattr(recognizer.beam_search, "vocabulary", ()) or ()) or None

    def observe(wave: np.ndarray, result, logprobs: np.ndarray) -> None:
        log.write(request_record(wave, result.text, result.latency_s, logprobs, vocabulary))

    recognizer.add_observer(observe)
    return log
