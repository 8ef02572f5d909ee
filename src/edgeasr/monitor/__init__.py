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

import importlib

__all__ = ["DriftOptions", "DriftReport", "WindowLog", "attach", "detect_drift", "read_window", "request_record"]

_WHERE = {
    "DriftOptions": "drift",
    "DriftReport": "drift",
    "detect_drift": "drift",
    "WindowLog": "live",
    "attach": "live",
    "read_window": "live",
    "request_record": "live",
}


def __getattr__(name: str):
    """Import the submodule on first use: the command line builds its parser without them."""
    if name in _WHERE:
        return getattr(importlib.import_module(f"edgeasr.monitor.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'edgeasr.monitor' has no attribute {name!r}")
