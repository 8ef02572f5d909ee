"""On-device recognition with onnxruntime alone: :class:`Recognizer` and :class:`StreamingSession`.

Needs numpy, onnxruntime and soundfile/soxr only; importing this module never imports torch or
tritonclient (``tests/test_recognizer.py`` proves it). One object, created once, used many times:

    rec = Recognizer("triton_models/edgeasr")          # a version dir, a model dir, a bundle or .onnx
    result = rec.transcribe("call_mom.wav")            # or an array plus its sample_rate
    result.text, result.words                           # words carry start/end seconds

    stream = rec.create_stream()
    for chunk in chunks_of_160_ms:
        stream.accept_waveform(chunk, 16000)
        print(stream.partial.text, stream.is_endpoint)
    final = stream.finish()

Long recordings are cut into overlapping windows; each window keeps only the frames whose context
lies inside it, and the frames are stitched before decoding. Streaming uses the same idea with a
right context: a frame is committed once the audio it depends on has arrived, so the final text
of a stream equals offline decoding of the same audio when the context covers the model's
receptive field (the command model's, versions 1 and 2). A model whose frames hear the whole input
(:data:`WHOLE_INPUT_KEY`: the default, versions 3, 4, 7 and 8, on a pretrained attention encoder) has no
such field. It was trained on single utterances, so it hears a recording in pieces cut where the
words leave ``pause_seconds`` (0.3 s) of non-speech (:func:`edgeasr.features.speech_segments`), each
piece run and searched on its own and the words joined (:func:`edgeasr.features.model_pieces`; the
eight samples in one 23 s recording, version 8: 32.2% WER heard whole, 6.8% in pieces, as each alone:
``bench/results/eval-cpu-2core-epyc/long-audio.txt``); a piece longer than a window is windowed,
which only approximates one pass. Its stream's final text comes from one more pass over all the
stream heard, in the same pieces, so that it equals offline decoding.

A model whose file asks for room around the words (``edgeasr.input_pad_seconds``, written at
export) hears that much quiet room tone before and after every utterance, offline, batched and
streamed alike (:func:`edgeasr.features.model_input`); word times stay on the recording's clock.

Offline and batched, quiet ends longer than half a second are cut before the model down to the
0.15 s that every corpus clip was trimmed to, by the corpora's own activity rule
(:func:`edgeasr.features.speech_span`), so two seconds of room tone around a command are heard as
the training clips were (``LevelConfig(trim=False)`` keeps everything). A stream holds its audio
until speech starts and cuts a long lead by the same rule (the decision waits 0.3 s past the first
active frame, so that the causal gain has settled); it does not cut a long tail (its endpointing
bounds that), so its text equals the offline one where the recording ends within half a second
of its last word.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeasr.audio import SAMPLE_RATE, AudioError, AudioLimits, check_waveform, load_audio, to_mono_float
from edgeasr.decoding import (
    BIAS_BOOST,
    BLANK,
    CONTEXT_SECONDS_KEY,
    FRAME_SECONDS,
    FRAME_SECONDS_KEY,
    TOKENS,
    Transcript,
    Word,
    decode_path,
    greedy_decode,
)
from edgeasr.decoding import bias_boost as check_bias_boost
from edgeasr.features import (
    LEVEL_FRAME,
    PAUSE_SECONDS,
    LevelConfig,
    LevelMeter,
    apply_gain,
    input_pad_seconds,
    level_gain_db,
    model_input,
    model_pieces,
    not_speech,
    room_tone,
    speech_frames,
)

__all__ = [
    "WHOLE_INPUT_KEY",
    "Recognizer",
    "RecognizerOptions",
    "StreamingSession",
    "model_timing",
    "resolve_model_dir",
]

_FEATURE_HOP = 160  # samples per feature frame (10 ms at 16 kHz; the frontend of every model)
WHOLE_INPUT_KEY = "edgeasr.whole_input"
"""ONNX metadata key, "1" when a frame's output can depend on the whole input (attention over the
utterance, absolute positions, a per-utterance scale: a pretrained encoder), so that no finite context
makes a window or a stream's frames equal one pass; ``edgeasr export`` writes it. A stream of such a
model keeps its audio and decodes it once more, whole, at :meth:`StreamingSession.finish`."""
_LEAD_SETTLE_SECONDS = 0.3  # a stream's lead is cut once this much is heard past its first active frame


@dataclass(frozen=True)
class RecognizerOptions:
    """How a :class:`Recognizer` runs."""

    threads: int = 1  # onnxruntime intra-op threads (1 suits a device core; 0 lets onnxruntime choose)
    window_seconds: float = 20.0  # longer audio is decoded in windows of this length
    # context kept on each side of a window cut / stream commit point; raised to the model's receptive
    # half width where its file records one (edgeasr.decoding.CONTEXT_SECONDS_KEY)
    context_seconds: float = 2.0
    max_seconds: float = 3600.0  # longer inputs are refused (AudioError)
    verify_card: bool = True  # check the model files against model_card.json (while they load; refused before use)
    endpoint_seconds: float = 0.8  # streaming: trailing non-speech frames that end an utterance
    stream_update_seconds: float = 0.32  # streaming: new audio that triggers a model run (partials update this often)
    decoder: str = "auto"  # "auto": the beam search the model ships (lm.arpa), else greedy; "greedy"; "beam"
    # beam search: hypotheses kept per frame; 0 keeps the model's decoder.json (narrower: faster); with two
    # n-grams it narrows the general search, the domain search keeps its decoder-domain.json
    beam_size: int = 0
    level: LevelConfig = LevelConfig()  # level normalization before the model (edgeasr.features.LevelMeter)
    # a whole-input model (WHOLE_INPUT_KEY) hears a recording in pieces cut where this much non-speech lies
    # between words (edgeasr.features.speech_segments), each piece decoded on its own; 0 hears it whole
    pause_seconds: float = PAUSE_SECONDS


def resolve_model_dir(model: str | os.PathLike) -> Path:
    """Find the ``model.onnx`` to load.

    ``model`` may be an ``.onnx`` file, a version directory or edge bundle holding ``model.onnx``,
    or a Triton model directory holding numbered versions (the highest is taken).

    Raises:
        FileNotFoundError: nothing loadable is there.
    """
    path = Path(model)
    if path.is_file():
        return path
    if (path / "model.onnx").is_file():
        return path / "model.onnx"
    versions = sorted(int(p.name) for p in path.glob("*") if p.name.isdigit() and (p / "model.onnx").is_file())
    if versions:
        return path / str(versions[-1]) / "model.onnx"
    raise FileNotFoundError(f"{path}: no model.onnx (expected an .onnx file, a version dir or a model dir)")


class Recognizer:
    """Speech to text on the local CPU with an exported edgeasr ONNX model."""

    def __init__(
        self, model: str | os.PathLike = "triton_models/edgeasr", options: RecognizerOptions | None = None
    ) -> None:
        """Load a model.

        Args:
            model: see :func:`resolve_model_dir`.
            options: run options; defaults documented on :class:`RecognizerOptions`.

        Raises:
            FileNotFoundError: no model there.
            edgeasr.modelcard.IntegrityError: the files do not match their model card.
        """
        from concurrent.futures import ThreadPoolExecutor

        import onnxruntime as ort

        self.options = options or RecognizerOptions()
        self.model_path = resolve_model_dir(model)
        folder = self.model_path.parent
        self.card: dict = {}
        # The card's hashes, the onnxruntime session and the beam search's lexicon trie are made at once: hashing
        # and most of the session's making let go of the GIL, the trie holds it. The files are read while their
        # hashes are checked, but the constructor returns (and the model serves) only once the check has passed.
        background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="edgeasr-load")
        checked = None
        try:
            if (folder / "model_card.json").is_file():
                from edgeasr.modelcard import ModelCard

                card = ModelCard.from_json(folder)
                if self.options.verify_card:
                    checked = background.submit(card.verify, folder)
                self.card = card.to_dict()
            vocab = folder / "vocab.json"
            self.tokens: tuple[str, ...] = tuple(json.loads(vocab.read_text())) if vocab.is_file() else TOKENS
            so = ort.SessionOptions()
            so.intra_op_num_threads = self.options.threads
            so.inter_op_num_threads = 1
            so.log_severity_level = 3
            session = background.submit(
                ort.InferenceSession, str(self.model_path), so, providers=["CPUExecutionProvider"]
            )
            self.beam_search = self._load_decoder(folder)
            self.session = session.result()
        except BaseException:
            if checked is not None:
                checked.result()  # a file that fails its card explains whatever failed to load: that error first
            raise
        finally:
            background.shutdown(wait=False)
        if checked is not None:
            checked.result()
        self.frame_seconds, model_context = model_timing(self.session)
        # quiet room tone laid before and after every utterance, as the model asks (0: none)
        self.pad_seconds = input_pad_seconds(self.session.get_modelmeta().custom_metadata_map)
        # a frame can depend on the whole input (WHOLE_INPUT_KEY): windows of long audio approximate one
        # pass, and a stream's final transcript comes from one more pass over all it heard
        self.whole_input = self.session.get_modelmeta().custom_metadata_map.get(WHOLE_INPUT_KEY) == "1"
        # windows and streams keep enough context that their frames equal one pass over the whole audio
        self.context_seconds = max(self.options.context_seconds, model_context or 0.0)
        self.samples_per_frame = round(self.frame_seconds * SAMPLE_RATE)  # 320 at the default 20 ms
        self._stride = self.samples_per_frame // _FEATURE_HOP
        self.version = str(self.card.get("version", ""))
        self._observers: list[Callable[[np.ndarray, Transcript, np.ndarray], None]] = []

    def _load_decoder(self, folder: Path):
        """The model's beam-search decoder, or None for greedy decoding (per ``options.decoder``)."""
        from edgeasr.decoding import BeamSearchDecoder, has_beam_search

        choice = self.options.decoder
        if choice not in ("auto", "greedy", "beam"):
            raise ValueError(f"decoder must be auto, greedy or beam, not {choice!r}")
        if choice == "greedy" or (choice == "auto" and not has_beam_search(folder)):
            return None
        if not has_beam_search(folder):
            raise FileNotFoundError(f"{folder}: decoder='beam' but the model ships no lm.arpa/decoder.json")
        overrides = {"beam_size": self.options.beam_size} if self.options.beam_size > 0 else {}
        return BeamSearchDecoder.from_dir(folder, list(self.tokens), **overrides)

    @property
    def decoder_name(self) -> str:
        """``"beam"`` or ``"greedy"``: how this recognizer turns log-probabilities into words."""
        return "greedy" if self.beam_search is None else "beam"

    def decode(
        self,
        logprobs: np.ndarray,
        time_offset: float = 0.0,
        bias: Sequence[str] = (),
        bias_boost: float = BIAS_BOOST,
    ) -> Transcript:
        """Words and timestamps of one utterance's (frames, vocab) log-probabilities.

        Args:
            logprobs: (frames, vocab) log-probabilities.
            time_offset: seconds added to every timestamp.
            bias: phrases to favour (contact and device names; the beam search only, see
                :meth:`~edgeasr.decoding.BeamSearchDecoder.search`); ignored by greedy decoding.
            bias_boost: log10 bonus per biased word (:func:`~edgeasr.decoding.bias_boost`).
        """
        if self.beam_search is None:
            return greedy_decode(logprobs, self.tokens, self.frame_seconds, time_offset)
        words = tuple(
            Word(w, time_offset + s * self.frame_seconds, time_offset + e * self.frame_seconds)
            for w, s, e in self.beam_search.search(logprobs, bias=tuple(bias), boost=bias_boost)
        )
        return Transcript(text=" ".join(w.text for w in words), words=words)

    # -- core --------------------------------------------------------------------------------

    def _run(self, audio: np.ndarray) -> np.ndarray:
        """Log-probabilities (frames, vocab) of one waveform, padding removed."""
        logp, lengths = self.session.run(
            None, {"audio": audio[None, :].astype(np.float32), "audio_length": np.array([audio.size], np.int64)}
        )
        return logp[0, : int(lengths[0])]

    def _load(self, audio: str | os.PathLike | np.ndarray, sample_rate: int | None, name: str) -> np.ndarray:
        wave = load_audio(audio, sample_rate, max_seconds=self.options.max_seconds)
        check_waveform(wave, name=name, limits=AudioLimits(max_seconds=self.options.max_seconds))
        return wave

    def _prepare(self, audio: str | os.PathLike | np.ndarray, sample_rate: int | None, name: str) -> np.ndarray:
        return model_input(self._load(audio, sample_rate, name), self.pad_seconds, self.options.level)

    def _pieces(self, leveled: np.ndarray, origin: int = 0) -> list[tuple[np.ndarray, float]]:
        """The inputs the model hears of a leveled recording, one by one, each with its time offset (s).

        :func:`~edgeasr.features.model_pieces`: one piece (quiet ends cut, room tone laid around) for a
        model with a finite receptive field; a whole-input model's recording cut at pauses
        (``options.pause_seconds``). ``origin``: where ``leveled`` starts in the recording.
        """
        pieces = model_pieces(
            leveled, self.pad_seconds, self.options.level, self.whole_input, self.options.pause_seconds, origin
        )
        return [(heard, (origin + start) / SAMPLE_RATE - self.pad_seconds) for heard, start in pieces]

    def _decode_pieces(
        self,
        pieces: list[tuple[np.ndarray, float]],
        logprobs: list[np.ndarray],
        bias: Sequence[str] = (),
        bias_boost: float = BIAS_BOOST,
    ) -> Transcript:
        """The words of each piece's log-probabilities, on the recording's clock, joined in order."""
        words = tuple(
            w
            for (_, offset), lp in zip(pieces, logprobs, strict=True)
            for w in self.decode(lp, offset, bias, bias_boost).words
        )
        return Transcript(text=" ".join(w.text for w in words), words=words)

    def _unpadded(self, decoded: Transcript, samples: int) -> tuple[Word, ...]:
        """Words of a padded utterance's decoding on the recording's own clock (within ``[0, duration]``)."""
        if not self.pad_seconds:
            return decoded.words
        end = samples / SAMPLE_RATE
        return tuple(Word(w.text, min(max(w.start, 0.0), end), min(max(w.end, 0.0), end)) for w in decoded.words)

    def add_observer(self, fn: Callable[[np.ndarray, Transcript, np.ndarray], None]) -> None:
        """Call ``fn(audio, transcript, logprobs)`` after every :meth:`transcribe` (opt-in monitoring).

        ``audio`` is the input as it arrived (16 kHz, before level normalization), ``logprobs``
        what the model said about it. An observer that raises never fails the request
        (:func:`edgeasr.monitor.live.attach` is one).
        """
        self._observers.append(fn)

    def _notify(self, wave: np.ndarray, result: Transcript, logprobs: np.ndarray) -> None:
        for fn in self._observers:
            with contextlib.suppress(Exception):  # monitoring must never fail a request
                fn(wave, result, logprobs)

    def logprobs(self, audio: str | os.PathLike | np.ndarray, sample_rate: int | None = None) -> np.ndarray:
        """Per-frame log-probabilities (frames, vocab) of a whole recording, windowed if long.

        The frames cover the model's input: the recording with its quiet ends cut
        (:func:`~edgeasr.features.speech_span`) and the room tone the model asks for
        (:attr:`pad_seconds` before and after it), heard whole: :meth:`transcribe` hears a
        whole-input model's recording in pieces cut at its pauses instead
        (``options.pause_seconds``; the frames it decoded go to the observers).
        """
        name = str(audio) if isinstance(audio, str | os.PathLike) else "audio"
        wave = self._prepare(audio, sample_rate, name)
        return self._windowed(wave)

    def _windowed(self, wave: np.ndarray) -> np.ndarray:
        spf = self.samples_per_frame
        win = int(self.options.window_seconds * SAMPLE_RATE) // spf * spf
        ctx = -(-int(self.context_seconds * SAMPLE_RATE) // spf) * spf  # whole frames, rounded up
        if wave.size <= win + 2 * ctx:
            return self._run(wave)
        total_frames = self.frames_for(wave.size)
        pieces, frame = [], 0
        while frame < total_frames:
            keep_start = frame * spf
            seg_start = max(0, keep_start - ctx)
            seg_end = min(wave.size, keep_start + win + ctx)
            out = self._run(wave[seg_start:seg_end])
            offset = seg_start // spf
            stop = total_frames if seg_end == wave.size else (keep_start + win) // spf
            pieces.append(out[frame - offset : stop - offset])
            frame = stop
        return np.concatenate(pieces, axis=0)

    def transcribe(
        self,
        audio: str | os.PathLike | np.ndarray,
        sample_rate: int | None = None,
        *,
        bias: Sequence[str] = (),
        bias_boost: float = BIAS_BOOST,
    ) -> Transcript:
        """Transcribe a file or an array.

        Args:
            audio: a path to an audio file, the bytes of one, or samples (a numpy array, list or
                tuple; int16, int32 or float; mono or (n, channels)).
            sample_rate: the rate of ``audio`` when it is samples; it is resampled to 16 kHz.
            bias: phrases to favour at run time (contact and device names), with no re-export:
                their words become possible outputs even where the lexicon lacks them.
            bias_boost: how strongly (log10 bonus per biased word, 0 to
                :data:`~edgeasr.decoding.MAX_BIAS_BOOST`; 0 makes the words possible without
                favouring them): a long contact list wants less than one name.

        Returns:
            A :class:`~edgeasr.decoding.Transcript` with per-word timestamps and the latency; no
            words for input that cannot be speech (silence, a tone, hum, steady noise:
            :func:`edgeasr.features.not_speech`), with the reason in ``extra["not_speech"]``.

        Raises:
            AudioError: the input is not usable audio (the message says why).
            ValueError: ``bias_boost`` is out of range (:func:`~edgeasr.decoding.bias_boost`).
        """
        started = time.perf_counter()
        bias_boost = check_bias_boost(bias_boost)  # before any work: a bad request costs nothing
        name = str(audio) if isinstance(audio, str | os.PathLike) else "audio"
        raw = self._load(audio, sample_rate, name)
        leveled = apply_gain(raw, level_gain_db(raw, self.options.level))
        reason = not_speech(leveled)
        if reason:  # a tone, hum, steady noise or silence: no words, and why
            result = Transcript("", (), time.perf_counter() - started, self.version, extra={"not_speech": reason})
            if self._observers:
                self._notify(raw, result, np.zeros((0, len(self.tokens)), np.float32))
            return result
        pieces = self._pieces(leveled)  # model_input(raw), the gain measured once; cut at pauses if whole-input
        logprobs = [self._windowed(heard) for heard, _ in pieces]
        decoded = self._decode_pieces(pieces, logprobs, bias, bias_boost)
        result = Transcript(
            decoded.text, self._unpadded(decoded, raw.size), time.perf_counter() - started, self.version
        )
        if self._observers:
            self._notify(raw, result, np.concatenate(logprobs, axis=0))
        return result

    def transcribe_batch(self, waves: list[np.ndarray]) -> list[Transcript]:
        """Transcribe 16 kHz float32 waveforms in one padded onnxruntime run (for throughput).

        A whole-input model's pieces run one by one instead: its frames would hear the zeros that pad
        the shorter rows of a batch (version 4 read "for october third" as "force to with it" beside
        a longer row), so its batch gives what :meth:`transcribe` gives.
        """
        started = time.perf_counter()
        for i, w in enumerate(waves):
            check_waveform(w, name=f"audio[{i}]", limits=AudioLimits(max_seconds=self.options.window_seconds))
        leveled = [apply_gain(w, level_gain_db(w, self.options.level)) for w in waves]
        pieces = [self._pieces(w) for w in leveled]  # one per wave, or a whole-input model's pieces
        inputs = [heard for mine in pieces for heard, _ in mine]
        if self.whole_input:  # its frames would hear the zeros that pad a shorter row: each piece alone
            outputs = [self._run(x) for x in inputs]
        else:
            lengths = np.array([w.size for w in inputs], np.int64)
            batch = np.zeros((len(inputs), int(lengths.max())), np.float32)
            for i, w in enumerate(inputs):
                batch[i, : w.size] = w
            logp, out_len = self.session.run(None, {"audio": batch, "audio_length": lengths})
            outputs = [logp[i, : int(out_len[i])] for i in range(len(inputs))]
        elapsed = time.perf_counter() - started
        results, row = [], 0
        for w, mine in zip(waves, pieces, strict=True):
            frames = outputs[row : row + len(mine)]
            row += len(mine)
            r = self._decode_pieces(mine, frames)
            results.append(Transcript(r.text, self._unpadded(r, w.size), elapsed, self.version))
        return results

    def create_stream(self) -> StreamingSession:
        """A new streaming session on this recognizer (sessions are independent)."""
        return StreamingSession(self)

    def frames_for(self, samples: int) -> int:
        """Output frames of the model for ``samples`` of 16 kHz audio: ceil(feature frames / stride)."""
        return (samples // _FEATURE_HOP + 1 + self._stride - 1) // self._stride


def model_timing(session) -> tuple[float, float | None]:
    """The frame duration and receptive half width an onnxruntime session's model records.

    Read from the ONNX metadata (:data:`~edgeasr.decoding.FRAME_SECONDS_KEY`,
    :data:`~edgeasr.decoding.CONTEXT_SECONDS_KEY`). A model without them (every export before
    they were written) has the default :data:`~edgeasr.decoding.FRAME_SECONDS` and no recorded
    half width (None).

    Raises:
        ValueError: the frame is not a whole number of 10 ms feature frames, or the half width is negative.
    """
    meta = session.get_modelmeta().custom_metadata_map
    value = meta.get(FRAME_SECONDS_KEY)
    seconds = FRAME_SECONDS if value is None else float(value)
    stride = seconds * SAMPLE_RATE / _FEATURE_HOP
    if not (stride >= 1 and abs(stride - round(stride)) < 1e-6):
        raise ValueError(f"{FRAME_SECONDS_KEY}={value!r}: not a whole number of 10 ms feature frames")
    context = meta.get(CONTEXT_SECONDS_KEY)
    if context is not None and not float(context) >= 0:
        raise ValueError(f"{CONTEXT_SECONDS_KEY}={context!r}: must be a non-negative number of seconds")
    return round(seconds, 6), None if context is None else float(context)


class StreamingSession:
    """Feed audio in chunks (100 to 200 ms suit), read partial results, detect the endpoint.

    A frame is *committed* once ``context_seconds`` of audio after it has arrived: its
    log-probabilities can no longer change. :attr:`partial` decodes the committed frames plus a
    provisional tail greedily; :meth:`finish` decodes everything with the recognizer's decoder (the
    beam search when the model ships one). The input is brought to the training level with the
    gain of the audio heard so far (causal), so a stream whose level is steady decodes as offline
    decoding does, and one that gets louder keeps the frames it committed at the gain it had then.
    Until speech starts the audio is held, not run: a quiet lead longer than half a second is cut
    to 0.15 s before the first active frame, as offline (:func:`edgeasr.features.speech_span`).

    Cost is bounded per second of audio, whatever the stream's length: the model runs once per
    ``stream_update_seconds`` of new audio, on that audio plus ``context_seconds`` on each side
    (about (2 x 2 + 0.32) / 0.32 = 13.5 model-seconds per second of audio with the defaults);
    the committed frames' greedy path and words are kept as they are decoded, so :attr:`partial`
    and :attr:`is_endpoint` only look at frames since the last completed word. The audio kept is
    the context plus the uncommitted tail; a stream longer than ``max_seconds`` is refused.

    A model whose frames can depend on the whole input (:attr:`Recognizer.whole_input`: attention over
    the utterance) cannot commit a frame for good: its partials come from the same bounded runs, and
    its final transcript from one more pass over everything heard, cut into offline's pieces at the
    final gain (:meth:`Recognizer._pieces`, on the recording's 20 ms frames whatever lead was let go;
    a long quiet tail is cut there too), so it equals offline decoding of the same audio. Such a
    stream keeps all its audio (64 kB per second) until :meth:`finish`.
    """

    def __init__(self, recognizer: Recognizer) -> None:
        self._rec = recognizer
        self._spf = spf = recognizer.samples_per_frame
        self._ctx = -(-int(recognizer.context_seconds * SAMPLE_RATE) // spf) * spf  # whole frames, rounded up
        self._update = max(1, int(recognizer.options.stream_update_seconds * SAMPLE_RATE))
        self._max_samples = int(recognizer.options.max_seconds * SAMPLE_RATE)
        self._space = recognizer.tokens.index(" ") if " " in recognizer.tokens else -1
        # the model's input: the room tone it asks for, then the stream, then (at finish) more tone
        self._lead, self._trail = room_tone(round(recognizer.pad_seconds * SAMPLE_RATE))
        self._audio = np.array(self._lead, np.float32)
        self._length = self._lead.size  # samples of model input so far (tone included)
        self._finished = False  # finish() has appended the trailing tone
        self._base = 0  # global sample index of self._audio[0] (a multiple of samples_per_frame)
        self._committed: list[np.ndarray] = []  # log-probabilities of committed frames (the final decode)
        self._n_committed = 0
        self._path = np.zeros(1024, np.int64)  # greedy token of each committed frame (grown by doubling)
        self._words: list[Word] = []  # words of committed frames [0, _done), each closed by a space
        self._done = 0
        self._last_speech = -1  # last committed frame whose greedy token is a letter or apostrophe
        self._tail = np.zeros((0, len(recognizer.tokens)), np.float32)
        self._meter = LevelMeter(recognizer.options.level)  # the level of everything heard so far
        self._rate: int | None = None  # the stream's input sample rate (fixed by its first chunk)
        self._resampler = None  # one stateful soxr stream, so chunk edges resample as offline does
        self._pending = 0  # samples received since the model last ran
        self.samples_received = 0
        level = recognizer.options.level
        # a long quiet lead is cut as offline (features.speech_span): until the first active frame the
        # audio is held, not fed to the model; _dropped samples of the recording's start are never fed
        self._waiting = level.trim and level.normalize
        self._held = np.zeros(0, np.float32)
        self._dropped = 0
        self._active_since: int | None = None  # where the held audio ended when a frame was first active
        self._fed = 0  # samples of the recording fed to the model

    def accept_waveform(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
        """Append a chunk (any dtype load_audio accepts); the model runs once enough audio is new.

        A stream at another rate than 16 kHz is resampled by one stateful resampler, so the
        chunks join exactly as the whole recording resampled at once would.

        Raises:
            AudioError: the chunk holds NaN or Inf, its sample rate differs from the stream's, or
                it would make the stream longer than ``max_seconds`` (the chunk is not taken).
        """
        rate = int(sample_rate)
        if self._rate is not None and rate != self._rate:
            raise AudioError(f"stream chunk at {rate} Hz, but the stream is at {self._rate} Hz")
        if rate <= 0:
            raise AudioError(f"sample rate must be positive, got {rate}")
        chunk = to_mono_float(np.asarray(samples))
        if chunk.size and not np.all(np.isfinite(chunk)):
            raise AudioError("stream chunk contains NaN or Inf samples")
        if self.samples_received + chunk.size * SAMPLE_RATE / rate > self._max_samples:
            raise AudioError(
                f"the stream would be longer than max_seconds={self._rec.options.max_seconds:g} s: "
                "finish() it and start another"
            )
        self._rate = rate
        if rate != SAMPLE_RATE:
            if self._resampler is None:
                import soxr

                self._resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
            chunk = np.asarray(self._resampler.resample_chunk(chunk, last=False), dtype=np.float32)
        self._append(chunk)
        if self._pending >= self._update:
            self._advance(final=False)

    def _append(self, chunk: np.ndarray, last: bool = False) -> None:
        self._meter.update(chunk)
        self.samples_received += chunk.size
        if self._waiting:
            chunk = self._lead_cut(chunk, last)
        self._audio = np.concatenate([self._audio, chunk])
        self._fed += chunk.size
        self._length += chunk.size
        self._pending += chunk.size

    def _lead_cut(self, chunk: np.ndarray, last: bool) -> np.ndarray:
        """What of the held lead and ``chunk`` goes to the model now (speech_span's rule, causally).

        Frames are measured on the recording's 20 ms grid at the gain so far; the wait ends
        ``_LEAD_SETTLE_SECONDS`` after a frame was first found active, and the first active frame
        is found again then (at a word's quiet onset the gain so far lifts the room tone before it
        into the active range; a syllable later the loudest frame and the gain are near the whole
        recording's). A lead longer than ``trim_after_seconds`` is then cut to
        ``trim_margin_seconds`` before that frame; while none is active, whole frames older than
        the margin are let go.
        """
        level = self._rec.options.level
        held = np.concatenate([self._held, chunk])
        whole = held.size if last else held.size // LEVEL_FRAME * LEVEL_FRAME
        active = speech_frames(apply_gain(held[:whole], self._meter.gain_db()), level)
        margin = round(level.trim_margin_seconds * SAMPLE_RATE)
        after = round(level.trim_after_seconds * SAMPLE_RATE)
        end = self._dropped + whole
        if active.size and self._active_since is None:
            self._active_since = end
        settled = active.size and end - self._active_since >= round(_LEAD_SETTLE_SECONDS * SAMPLE_RATE)
        if settled or last:
            first = self._dropped + int(active[0]) * LEVEL_FRAME if active.size else 0
            start = first - margin if first > after else self._dropped
            self._waiting, self._held = False, np.zeros(0, np.float32)
            cut = start - self._dropped
            self._dropped = start
            return held[cut:]
        if not active.size and end > after + margin + LEVEL_FRAME:  # the speech starts at `end` or later
            let_go = (end - margin - LEVEL_FRAME) // LEVEL_FRAME * LEVEL_FRAME - self._dropped
            if let_go > 0:
                held, self._dropped = held[let_go:], self._dropped + let_go
        self._held = held
        return np.zeros(0, np.float32)

    def _advance(self, final: bool) -> None:
        total = self._length
        self._pending = 0
        if self._fed == 0:
            return
        spf = self._spf
        seg_start = max(self._base, self._n_committed * spf - self._ctx)
        seg_start -= seg_start % spf
        out = self._rec._run(self._heard(seg_start))
        offset = seg_start // spf
        # a frame is final once the audio it depends on (context_seconds after it) has arrived
        safe = self._rec.frames_for(total) if final else max(self._n_committed, (total - self._ctx) // spf)
        safe = min(safe, offset + out.shape[0])
        if safe > self._n_committed:
            self._commit(out[self._n_committed - offset : safe - offset])
        self._tail = out[self._n_committed - offset :]
        keep_from = max(0, self._n_committed * spf - self._ctx)
        keep_from -= keep_from % spf
        if keep_from > self._base and not self._rec.whole_input:  # a whole-input model decodes it all again
            self._audio = self._audio[keep_from - self._base :]
            self._base = keep_from

    def _heard(self, start: int) -> np.ndarray:
        """The model's input from global sample ``start`` on: the stream at its gain so far, the room tone as it is."""
        raw = self._audio[start - self._base :]
        out = apply_gain(raw, self._meter.gain_db())
        if out is raw or not self._lead.size:  # no gain (the same samples), or no tone
            return out
        lead_end = self._lead.size - start  # the tone before the stream (model_input pads after the gain)
        if lead_end > 0:
            out[:lead_end] = raw[:lead_end]
        if self._finished:  # and the tone after it
            speech_end = max(self._lead.size + self._fed - start, 0)
            out[speech_end:] = raw[speech_end:]
        return out

    def _commit(self, frames: np.ndarray) -> None:
        """Keep newly final frames, their greedy path, and the words that a space closed."""
        first, n = self._n_committed, frames.shape[0]
        self._committed.append(frames)
        if first + n > self._path.size:
            self._path = np.concatenate([self._path, np.zeros(max(self._path.size, n), np.int64)])
        new = frames.argmax(axis=-1)
        self._path[first : first + n] = new
        self._n_committed = first + n
        speech = np.nonzero((new != BLANK) & (new != self._space))[0]
        if speech.size:
            self._last_speech = first + int(speech[-1])
        spaces = np.nonzero(new == self._space)[0]
        if spaces.size:  # every word before the last space of these frames is complete
            end = first + int(spaces[-1]) + 1
            self._words.extend(self._decode(self._done, end).words)
            self._done = end

    def _decode(self, start: int, end: int, tail: np.ndarray | None = None) -> Transcript:
        path = self._path[start:end]
        if tail is not None and tail.size:
            path = np.concatenate([path, tail])
        prev = int(self._path[start - 1]) if start > 0 else BLANK
        seconds = self._rec.frame_seconds
        offset = start * seconds + self._dropped / SAMPLE_RATE - self._rec.pad_seconds
        return decode_path(path, self._rec.tokens, seconds, offset, prev)

    def _all_frames(self) -> np.ndarray:
        parts = [*self._committed, self._tail]
        return np.concatenate(parts, axis=0) if parts else np.zeros((0, len(self._rec.tokens)), np.float32)

    @property
    def partial(self) -> Transcript:
        """The best guess so far (its last words may still change; updated once per ``stream_update_seconds``)."""
        rest = self._decode(self._done, self._n_committed, self._tail.argmax(axis=-1) if self._tail.size else None)
        words = (*self._words, *rest.words)
        heard = Transcript(text=" ".join(w.text for w in words), words=words)
        return Transcript(text=heard.text, words=self._rec._unpadded(heard, self.samples_received))

    @property
    def is_endpoint(self) -> bool:
        """True once words were heard and then ``endpoint_seconds`` of non-speech frames followed."""
        last = self._last_speech
        if self._tail.size:
            tail = self._tail.argmax(axis=-1)
            speech = np.nonzero((tail != BLANK) & (tail != self._space))[0]
            if speech.size:
                last = self._n_committed + int(speech[-1])
        if last < 0:
            return False
        trailing = self._n_committed + self._tail.shape[0] - 1 - last
        return trailing * self._rec.frame_seconds >= self._rec.options.endpoint_seconds

    def finish(self) -> Transcript:
        """Decode the rest of the audio and return the final transcript."""
        if self._resampler is not None:  # the resampler's last samples
            self._append(np.asarray(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True), np.float32))
        if self._waiting:  # a lead still held: the rule decides on the whole of it
            self._append(np.zeros(0, np.float32), last=True)
        if self._fed and not self._finished:  # the room tone after the speech, unmetered
            self._audio = np.concatenate([self._audio, self._trail])
            self._length += self._trail.size
            self._finished = True
        if self._rec.whole_input:  # no frame was final before the whole input was known: offline decoding
            decoded = self._finish_whole()
        else:
            self._advance(final=True)
            self._tail = np.zeros((0, len(self._rec.tokens)), np.float32)
            decoded = self._rec.decode(self._all_frames(), self._dropped / SAMPLE_RATE - self._rec.pad_seconds)
        return Transcript(text=decoded.text, words=self._rec._unpadded(decoded, self.samples_received))

    def _finish_whole(self) -> Transcript:
        """A whole-input model's final transcript: all it heard, at the final gain, in offline's pieces."""
        self._pending = 0
        self._tail = np.zeros((0, len(self._rec.tokens)), np.float32)
        if not self._fed:
            self._committed, self._n_committed = [], 0
            return Transcript(text="", words=())
        start = self._lead.size - self._base  # the whole stream is kept (_advance never lets it go)
        heard = apply_gain(self._audio[start : start + self._fed], self._meter.gain_db())
        pieces = self._rec._pieces(heard, origin=self._dropped)
        frames = [self._rec._windowed(x) for x, _ in pieces]
        self._committed = frames
        self._n_committed = sum(f.shape[0] for f in frames)
        return self._rec._decode_pieces(pieces, frames)
