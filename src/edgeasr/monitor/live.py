"""Live statistics of the device path: :func:`attach` logs every transcript of a Recognizer.

The record (:func:`request_record`), the JSONL log (:class:`WindowLog`) and its reader
(:func:`read_window`) live in :mod:`edgeasr.serving.request_log`, shared with the served path
(``edgeasr serve --request-log``); they are re-exported here. Attaching is opt in: nothing is
measured unless a log is attached, and the statistics are computed after the transcript is made.
"""

from __future__ import annotations

import os

import numpy as np

from edgeasr.serving.request_log import WindowLog, read_window, request_record

__all__ = ["WindowLog", "attach", "read_window", "request_record"]


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
