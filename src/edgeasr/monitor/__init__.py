"""Monitoring: live statistics of requests and their drift from the training data.

* :mod:`~edgeasr.monitor.live`: one record per request (input level, silence, clipping, SNR,
  speaking rate, empty outputs, confidence, latency), logged as JSONL with no audio;
  :func:`~edgeasr.monitor.live.attach` hooks it to a :class:`~edgeasr.recognizer.Recognizer`.
* :mod:`~edgeasr.monitor.drift`: a window of records against the reference profile that
  ``edgeasr data validate --profile`` writes: KS or PSI per feature, a dataset-level verdict,
  output-health alerts.
* ``edgeasr monitor --reference PROFILE --window LOG`` (:mod:`~edgeasr.monitor.cli`): the report,
  JSON and a plot; exit 1 on drift.
"""

from edgeasr.monitor.drift import DriftOptions, DriftReport, detect_drift
from edgeasr.monitor.live import WindowLog, attach, read_window, request_record

__all__ = ["DriftOptions", "DriftReport", "WindowLog", "attach", "detect_drift", "read_window", "request_record"]
