"""edgeasr: edge-first speech recognition, from corpus to Triton and device.

The public API is imported lazily so that ``import edgeasr`` stays light: on-device inference
pulls in numpy and onnxruntime only, never torch or tritonclient.

From the repository's root (``tests/test_docs.py`` runs this example):

    >>> from edgeasr import Recognizer
    >>> rec = Recognizer("triton_models/edgeasr")
    >>> rec.transcribe("samples/01-flite-rms.wav").text
    'is it windy in cincinnati right now'
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Recognizer": "edgeasr.recognizer",
    "RecognizerOptions": "edgeasr.recognizer",
    "StreamingSession": "edgeasr.recognizer",
    "Transcript": "edgeasr.decoding",
    "Word": "edgeasr.decoding",
    "BeamSearchDecoder": "edgeasr.decoding",
    "BeamSearchOptions": "edgeasr.decoding",
    "NGramModel": "edgeasr.training.language_model",
    "AudioError": "edgeasr.audio",
    "load_audio": "edgeasr.audio",
    "TritonClient": "edgeasr.client",
    "AsyncTritonClient": "edgeasr.client",
    "ClientError": "edgeasr.client",
    "TritonServer": "edgeasr.serving.server",
    "ModelRepository": "edgeasr.export.repository",
    "ModelCard": "edgeasr.modelcard",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'edgeasr' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
