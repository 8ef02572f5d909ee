"""Triton python-backend model for edgeasr: batched onnxruntime inference and CTC decoding.

This file is copied verbatim into every version directory of the python flavour as ``model.py``
(see :mod:`edgeasr.export.repository`); it therefore imports only the standard library, numpy,
onnxruntime and ``triton_python_backend_utils``, never edgeasr.

Inputs (per request; the batch dimension comes from ``max_batch_size > 0``):

* ``AUDIO``        TYPE_FP32  [-1]  16 kHz mono PCM in [-1, 1];          ragged batching allowed.
* ``AUDIO_INT16``  TYPE_INT16 [-1]  16 kHz mono PCM as int16 (scaled by 1/32768); ragged.
  Exactly one of ``AUDIO`` / ``AUDIO_INT16`` must be sent: both are declared optional so that
  a client can send int16 PCM at half the bytes without a server-side dtype guess.
* ``SAMPLE_RATE``  TYPE_INT32 [1]   optional declaration; anything but 16000 is refused.

Outputs: ``TEXT`` TYPE_STRING [1] (the transcript) and ``LOGPROBS`` TYPE_FP32 [-1, 29] (the valid
frames only). The version folder carries its own copies of :mod:`edgeasr.integrity`,
:mod:`edgeasr.features`, :mod:`edgeasr.audio` and :mod:`edgeasr.decoding` (``integrity.py``,
``features.py``, ``audio.py``, ``decoding.py``), loaded from there by path. The files are checked
against the model card first; every request is checked as on device, with the same messages
(``audio.check_waveform``: empty, NaN or Inf, shorter than 50 ms, too long); each request is
brought to the training level, its quiet ends cut and given the room tone its model asks for
(``features.model_input``, as the on-device recognizer does; ``LOGPROBS`` then covers what the model
heard, tone included). A model whose frames hear the whole input (the metadata key
``edgeasr.whole_input``) hears each row in pieces cut at pauses (``features.speech_segments``, as the
recognizer does): the pieces run and are searched one by one, ``TEXT`` joins their words and
``LOGPROBS`` their frames, in order. ``TEXT`` comes from the beam search with the word n-gram when the
folder ships one (``lm.arpa``, or ``lm.bin`` and ``lm.words``, and ``decoder.json``, which needs
flashlight-text; with ``lm-domain.arpa`` (or ``.bin``) too, both searches and the choice between them),
else from greedy decoding: the same code, and so the same text, as the on-device recognizer for that folder.

``execute`` validates each request on its own; each row of the valid ones then runs through
onnxruntime unpadded (on CPU a padded batch cost 1.7x as much per audio second) and is decoded,
the rows of a batch shared out over ``decode_processes`` processes. A bad request (no audio, both audio inputs, empty,
NaN/Inf, too short, too long, wrong sample rate, wrong rank, a malformed ``bias`` or ``bias_boost``) gets an
INVALID_ARGUMENT error response while the rest of the batch is served.

The request parameter ``bias`` (a JSON list of phrases, :class:`~edgeasr.client.TritonClient`'s
``bias=``) favours those words in the beam search for that request alone (phrase biasing:
contact and device names, with no re-export); ``bias_boost`` (a number, ``bias_boost=``) says how strongly,
checked by the same rule as on device (``decoding.bias_boost``).

Config ``parameters`` read at ``initialize`` (string values): ``max_audio_seconds`` (default 30),
``sample_rate`` (16000), ``intra_op_threads`` (1), ``inter_op_threads`` (1), ``onnx_file``
(``model.onnx``), ``vocab_file`` (``vocab.json``), ``pause_seconds`` (``features.PAUSE_SECONDS``, the
recognizer's default; 0 hears a whole-input model's rows whole), ``decode_processes`` (1: the processes that
share out the rows of a batch, acoustic model and beam search, this stub included, through
``decoding.SearchPool``; the search holds the GIL, so this is what lets a batch use more than one
core). The version directory must match its
``model_card.json`` (SHA-256 of every file) or the model refuses to load.

Serving leaves the version folder as it was published: the helpers are loaded without writing
bytecode (``sys.dont_write_bytecode``), and the ``.pyc`` of this file, which the python backend's
stub writes when it imports it (its embedded interpreter ignores ``PYTHONDONTWRITEBYTECODE``), is
taken out again at ``initialize``.
"""

import contextlib
import glob
import importlib.util
import json
import os
import sys

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

sys.dont_write_bytecode = True  # the repository stays as published: no __pycache__ in version folders

DEFAULTS = {
    "max_audio_seconds": "30",
    "sample_rate": "16000",
    "intra_op_threads": "1",
    "inter_op_threads": "1",
    "onnx_file": "model.onnx",
    "vocab_file": "vocab.json",
    "decode_processes": "1",
}


class RequestError(ValueError):
    """A request that cannot be served; its message goes back to the client."""


def _invalid_argument(message):
    """Build a TritonError with the INVALID_ARGUMENT code where the stub supports codes."""
    code = getattr(pb_utils.TritonError, "INVALID_ARG", None)
    if code is None:
        return pb_utils.TritonError(message)
    return pb_utils.TritonError(message, code)


def remove_stub_bytecode(version_dir):
    """Take out the ``__pycache__/model.*.pyc`` that the stub wrote before this file could ask it not to."""
    cache = os.path.join(version_dir, "__pycache__")
    for path in glob.glob(os.path.join(cache, "model.*.pyc")):
        with contextlib.suppress(OSError):  # another instance of this version removed it first
            os.remove(path)
    with contextlib.suppress(OSError):  # absent, or holds files that are not ours
        os.rmdir(cache)


def load_version_module(version_dir, filename):
    """Import ``filename`` from the version folder by path (each version runs its own copy)."""
    path = os.path.join(version_dir, filename)
    if not os.path.isfile(path):
        raise ValueError(
            f"{version_dir}: {filename} is missing (re-export the model with this edgeasr, "
            "or give it this edgeasr's serving code with ModelRepository.upgrade_runtime)"
        )
    name = "edgeasr_version_" + os.path.splitext(filename)[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


METRIC_BUCKETS = {
    "edgeasr_request_audio_seconds": [0.5, 1, 2, 4, 8, 16, 30],
    "edgeasr_request_level_dbfs": [-70, -60, -50, -40, -30, -20, -10, 0],
    "edgeasr_request_words": [0, 1, 2, 4, 8, 16, 32, 64],
    "edgeasr_request_confidence": [0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95],
}
METRIC_HELP = {
    "edgeasr_request_audio_seconds": "Length of each request's audio, seconds",
    "edgeasr_request_level_dbfs": "RMS level of each request's audio before normalization, dBFS",
    "edgeasr_request_words": "Words in each transcript",
    "edgeasr_request_confidence": "Mean best-token probability per frame of each request",
    "edgeasr_request_empty_total": "Requests whose transcript is empty",
    "edgeasr_request_not_speech_total": "Requests whose audio is not speech (silence, a tone, steady noise)",
}


# metric objects of closed instances, never deleted while the stub runs (RequestMetrics.close)
_RETIRED_METRICS: list = []


class RequestMetrics:
    """Prometheus metrics of the requests a version serves, on Triton's metrics port (custom metrics).

    Labels ``model`` and ``version``, beside Triton's own ``nv_inference_*``. Histograms (buckets
    below) of the audio's length (s), its RMS level (dBFS, before level normalization), the words
    of each transcript and the mean best-token probability per frame; counters of empty
    transcripts and of input that is not speech. Where the python backend has no custom metrics,
    nothing is recorded and nothing fails.
    """

    def __init__(self, model, version):
        self.families, self.metrics = [], {}
        family = getattr(pb_utils, "MetricFamily", None)
        if family is None:
            return
        labels = {"model": model, "version": version}
        try:
            for name, help_text in METRIC_HELP.items():
                histogram = name in METRIC_BUCKETS
                kind = family.HISTOGRAM if histogram else family.COUNTER
                fam = family(name=name, description=help_text, kind=kind)
                self.families.append(fam)
                kwargs = {"buckets": METRIC_BUCKETS[name]} if histogram else {}
                self.metrics[name] = fam.Metric(labels=labels, **kwargs)
        except Exception:  # an older backend without histograms: serve without these metrics
            self.metrics = {}

    def observe(self, rows, levels, texts, logprobs, silent):
        """Record one request's rows."""
        m = self.metrics
        if not m:
            return
        for row, level, text, lp, quiet in zip(rows, levels, texts, logprobs, silent, strict=True):
            m["edgeasr_request_audio_seconds"].observe(row.shape[0] / 16000.0)
            m["edgeasr_request_level_dbfs"].observe(level)
            m["edgeasr_request_words"].observe(len(text.split()))
            if lp.shape[0]:
                m["edgeasr_request_confidence"].observe(float(np.exp(lp.max(axis=-1)).mean()))
            if not text:
                m["edgeasr_request_empty_total"].increment(1)
            if quiet:
                m["edgeasr_request_not_speech_total"].increment(1)

    def close(self):
        """Stop recording; keep the metric objects alive until this stub process exits.

        Every instance of every version registers families of the same names, and Triton 2.51
        shares one family per name across them: deleting the families of an instance that is being
        replaced (a reload, a version loaded or retired) freed the family under the instances that
        replaced it, and the server crashed (SIGSEGV or heap corruption) within seconds
        (`tests/test_server.py::test_a_reload_keeps_serving_and_counting`). Nothing is deleted: the
        objects go with the process.
        """
        _RETIRED_METRICS.append((self.metrics, self.families))
        self.metrics, self.families = {}, []


class TritonPythonModel:
    """The edgeasr speech recognizer as a Triton python-backend model."""

    def initialize(self, args):
        """Verify the files, open the onnxruntime session and read the vocabulary."""
        config = json.loads(args["model_config"])
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        remove_stub_bytecode(version_dir)
        self.card = load_version_module(version_dir, "integrity.py").verify_version_dir(version_dir)
        self.decoding = load_version_module(version_dir, "decoding.py")
        self.features = load_version_module(version_dir, "features.py")  # level normalization, as on device
        self.audio = load_version_module(version_dir, "audio.py")  # the input checks, as on device
        self.level = self.features.LevelConfig()
        params = dict(DEFAULTS)
        for key, value in (config.get("parameters") or {}).items():
            params[key] = value.get("string_value", "") if isinstance(value, dict) else str(value)
        self.sample_rate = int(params["sample_rate"])
        self.max_samples = int(float(params["max_audio_seconds"]) * self.sample_rate)
        with open(os.path.join(version_dir, params["vocab_file"]), encoding="utf-8") as fh:
            self.tokens = list(json.load(fh))
        self._onnx = (
            os.path.join(version_dir, params["onnx_file"]),
            int(params["intra_op_threads"]),
            int(params["inter_op_threads"]),
        )
        self.session = self._new_session()
        # room tone laid around every row, as the model asks (features.PAD_SECONDS_KEY; 0: none)
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.pad_seconds = self.features.input_pad_seconds(metadata)
        # frames that hear the whole input (recognizer.WHOLE_INPUT_KEY): rows are heard in pieces cut at pauses
        self.whole_input = metadata.get("edgeasr.whole_input") == "1"
        self.pause_seconds = float(params.get("pause_seconds") or self.features.PAUSE_SECONDS)
        names = [i.name for i in self.session.get_inputs()]
        if names[:2] != ["audio", "audio_length"]:
            raise ValueError(f"ONNX model inputs must be ['audio', 'audio_length'], got {names}")
        vocab = self.session.get_outputs()[0].shape[-1]
        if isinstance(vocab, int) and vocab != len(self.tokens):
            raise ValueError(f"ONNX model has {vocab} output tokens but the vocabulary has {len(self.tokens)}")
        self.metrics = RequestMetrics(config.get("name", "edgeasr"), str(args["model_version"]))
        self.beam_search = None
        if self.decoding.has_beam_search(version_dir):
            self.beam_search = self.decoding.BeamSearchDecoder.from_dir(version_dir, self.tokens)
        processes = int(params["decode_processes"])
        self.search_pool = self.decoding.SearchPool(self._recognize, processes)  # 1: this process alone
        if processes > 1:
            silence = np.zeros(self.sample_rate, np.float32)
            self.search_pool.map([(silence, (), False)] * processes)  # each worker opens its session now

    def _new_session(self):
        """An onnxruntime session of this version, owned by the calling process."""
        path, intra, inter = self._onnx
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra
        options.inter_op_num_threads = inter
        self._session_pid = os.getpid()
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def _acoustic(self, row):
        """One row's (frames, vocab) log-probabilities, unpadded.

        Rows run one by one: on CPU a zero-padded batch of 8 test utterances cost 1.7x as much per
        audio second as the same rows alone, mostly padding (1.56x the samples;
        ``bench/acoustic_batching.py``). A search worker opens its own session the first time it is
        asked (never a forked one).
        """
        if self._session_pid != os.getpid():
            self.session = self._new_session()
        lengths = np.array([row.shape[0]], dtype=np.int64)
        logprobs, frames = self.session.run(None, {"audio": row[None, :], "audio_length": lengths})[:2]
        return np.ascontiguousarray(logprobs[0, : int(np.asarray(frames).reshape(-1)[0])], dtype=np.float32)

    def _recognize(self, job):
        """(log-probabilities, text) of one row, job = (row, (bias phrases, boost), silent), in any pool process.

        Raises:
            RuntimeError: "inference failed: ..." or "decoding failed: ...", its request's error.
        """
        row, (bias, boost), silent = job
        try:
            logprobs = self._acoustic(row)
        except Exception as exc:
            raise RuntimeError(f"inference failed: {exc}") from None
        try:
            return logprobs, "" if silent else self._text(logprobs, bias, boost)
        except Exception as exc:
            raise RuntimeError(f"decoding failed: {type(exc).__name__}: {exc}") from None

    def _text(self, logprobs, bias=(), boost=None):
        if self.beam_search is None:
            return self.decoding.greedy_decode(logprobs, tuple(self.tokens)).text
        boost = self.decoding.BIAS_BOOST if boost is None else boost
        return " ".join(word for word, _, _ in self.beam_search.search(logprobs, bias=bias, boost=boost))

    def _bias(self, request):
        """``(phrases, boost)``: the request parameters ``bias`` (a JSON list of phrases to favour; () when
        absent) and ``bias_boost`` (log10 bonus per biased word, checked as on device; the default when absent).
        """
        try:
            params = json.loads(request.parameters() or "{}")
        except (AttributeError, ValueError):
            return (), None
        boost = params.get("bias_boost")
        if boost is not None:
            try:
                boost = self.decoding.bias_boost(boost)
            except ValueError as exc:
                raise RequestError(str(exc)) from None
        raw = params.get("bias")
        if raw is None:
            return (), boost
        try:
            phrases = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            raise RequestError("parameter bias must be a JSON list of phrases") from None
        if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases) or len(phrases) > 1000:
            raise RequestError("parameter bias must be a JSON list of at most 1000 phrases")
        return tuple(phrases), boost

    # -- request parsing ----------------------------------------------------------------------

    def _audio_rows(self, request):
        """Return the request's rows as a list of 1-D float32 arrays, or raise RequestError."""
        fp32 = pb_utils.get_input_tensor_by_name(request, "AUDIO")
        int16 = pb_utils.get_input_tensor_by_name(request, "AUDIO_INT16")
        if (fp32 is None) == (int16 is None):
            raise RequestError("send exactly one of AUDIO (FP32) or AUDIO_INT16 (INT16)")
        if fp32 is not None:
            name, audio = "AUDIO", fp32.as_numpy().astype(np.float32, copy=False)
        else:
            name, audio = "AUDIO_INT16", int16.as_numpy().astype(np.float32) / np.float32(32768.0)
        if audio.ndim != 2:
            raise RequestError(f"{name} must have shape [batch, samples], got {list(audio.shape)}")
        rate = pb_utils.get_input_tensor_by_name(request, "SAMPLE_RATE")
        if rate is not None:
            rates = np.asarray(rate.as_numpy()).reshape(-1)
            if rates.size == 0 or np.any(rates != self.sample_rate):
                raise RequestError(
                    f"SAMPLE_RATE {rates.tolist()} Hz: this model takes {self.sample_rate} Hz mono audio "
                    "(resample on the client)"
                )
        if audio.shape[0] == 0:
            raise RequestError(f"{name} has an empty batch")
        limits = self.audio.AudioLimits(max_seconds=self.max_samples / self.sample_rate)
        for row in audio:  # the on-device checks and messages (edgeasr.audio.check_waveform)
            try:
                self.audio.check_waveform(row, name=name, limits=limits)
            except self.audio.AudioError as exc:
                raise RequestError(str(exc)) from None
        self._levels = [float(10.0 * np.log10(np.mean(np.square(row, dtype=np.float64)) + 1e-12)) for row in audio]
        leveled = [self.features.apply_gain(row, self.features.level_gain_db(row, self.level)) for row in audio]
        # what the model hears of each row (features.model_input, the gain measured once): its quiet
        # ends cut and the room tone laid around it, as on device; a whole-input model's in pieces
        self._inputs = [self._pieces(row) for row in leveled]
        return leveled

    def _pieces(self, leveled):
        """The model inputs of one leveled row: one, or a whole-input model's pieces (``features.model_pieces``)."""
        pieces = self.features.model_pieces(leveled, self.pad_seconds, self.level, self.whole_input, self.pause_seconds)
        return [heard for heard, _ in pieces]

    def _not_speech(self, rows):
        """Per row: True for input that cannot be speech (no words for it, as on device)."""
        return [bool(self.features.not_speech(row)) for row in rows]

    # -- inference ----------------------------------------------------------------------------

    def execute(self, requests):
        """Serve a (dynamic) batch: one response per request, in order."""
        responses = [None] * len(requests)
        valid = []  # (request index, rows)
        biases, levels, inputs = {}, {}, {}
        for i, request in enumerate(requests):
            try:
                biases[i] = self._bias(request)
                valid.append((i, self._audio_rows(request)))
                levels[i], inputs[i] = self._levels, self._inputs
            except RequestError as exc:
                responses[i] = pb_utils.InferenceResponse(output_tensors=[], error=_invalid_argument(str(exc)))
        if not valid:
            return responses
        silent = {i: self._not_speech(rows) for i, rows in valid}
        jobs, owner = [], []  # one job per piece of each row; owner: (request index, row) of each job
        for i, rows in valid:
            for j in range(len(rows)):
                for piece in inputs[i][j]:
                    jobs.append((piece, biases.get(i, ((), None)), silent[i][j]))
                    owner.append((i, j))
        done = self.search_pool.map(jobs, sizes=[job[0].shape[0] for job in jobs])  # an error is its row's answer
        per_row = {}
        for key, result in zip(owner, done, strict=True):
            per_row.setdefault(key, []).append(result)
        for i, rows in valid:
            mine = [self._joined(per_row[i, j]) for j in range(len(rows))]
            failed = next((d for d in mine if isinstance(d, Exception)), None)
            if failed is not None:  # a failure fails its own request, never the others of the batch
                # one TritonError object per response: the python backend frees each response's
                # error with the response, so a shared object garbles the messages and can crash
                # the stub (and the server) when several failed requests share a batch
                error = pb_utils.TritonError(str(failed))
                responses[i] = pb_utils.InferenceResponse(output_tensors=[], error=error)
                continue
            logprobs, texts = [d[0] for d in mine], [d[1] for d in mine]
            responses[i] = self._response(logprobs, texts)
            self.metrics.observe(rows, levels[i], texts, logprobs, silent[i])
        return responses

    @staticmethod
    def _joined(results):
        """One row's (log-probabilities, text) from its pieces' results in order, or the first error."""
        failed = next((r for r in results if isinstance(r, Exception)), None)
        if failed is not None:
            return failed
        if len(results) == 1:
            return results[0]
        logprobs = np.concatenate([r[0] for r in results], axis=0)
        return logprobs, " ".join(r[1] for r in results if r[1])

    def _response(self, per_row, texts):
        texts = np.array([[t.encode("utf-8")] for t in texts], dtype=np.object_)
        frames = max(lp.shape[0] for lp in per_row)
        stacked = np.zeros((len(per_row), frames, len(self.tokens)), dtype=np.float32)
        for j, lp in enumerate(per_row):
            stacked[j, : lp.shape[0]] = lp
        return pb_utils.InferenceResponse(
            output_tensors=[pb_utils.Tensor("TEXT", texts), pb_utils.Tensor("LOGPROBS", stacked)]
        )

    def finalize(self):
        """Release the session and the search workers; stop recording metrics (kept: RequestMetrics.close)."""
        self.session = None
        self.search_pool.close()
        self.metrics.close()
