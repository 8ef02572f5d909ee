"""Live statistics of the device path: :func:`attach` logs every transcript of a Recognizer.

The record (:func:`request_record`), the JSONL log (:class:`WindowLog`) and its reader
(:func:`read_window`) live in :mod:`edgeasr.serving.request_log`, shared with the served path
(``edgeasr serve --request-log``); they are re-exported here. Attaching is opt in: nothing is
measured unless a log is attached, and the statistics are computed after the transcript is made.
"""

from __future__ import annotations

import os

import numpy as np

from edgeasr.serving.request_log import WindowLog, keep_audio, read_window, request_record

__all__ = ["WindowLog", "attach", "read_window", "request_record"]


def attach(recognizer, log: WindowLog | str | os.PathLike, audio_dir: str | os.PathLike | None = None) -> WindowLog:
    """Log every :meth:`~edgeasr.recognizer.Recognizer.transcribe` of ``recognizer`` to ``log``.

    The statistics are computed after the transcript is made; a failure to log never fails a
    request.

    Args:
        recognizer: the recognizer to watch.
        log: the window log (a path or :class:`WindowLog`).
        audio_dir: also keep each request's audio here (16 kHz FLAC, named in the record's
            ``audio_file``); None keeps no audio.

    Returns:
        The log.
    """
    log = log if isinstance(log, WindowLog) else WindowLog(log)
    vocabulary = set(getattr(recognizer.beam_search, "vocabulary", ()) or ()) or None

    def observe(wave: np.ndarray, result, logprobs: np.ndarray) -> None:
        record = request_record(wave, result.text, result.latency_s, logprobs, vocabulary)
        if audio_dir is not None:
            keep_audio(record, wave, audio_dir)
        log.write(record)

    recognizer.add_observer(observe)
    return log
