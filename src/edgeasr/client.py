"""gRPC clients for the edgeasr model on a Triton Inference Server (sync and asyncio).

The client sends raw 16 kHz mono PCM (int16 as ``AUDIO_INT16`` at half the bytes, anything else
as float32 ``AUDIO``) with its declared ``SAMPLE_RATE``; the server-side python model batches,
runs the model and decodes, so a request carries no features. Audio at another rate is
resampled here first (soxr). Each request has a deadline (``timeout_s``); only UNAVAILABLE (the
server is not reachable or is shutting down) is retried, with exponential backoff. Any other
failure becomes a :class:`ClientError` whose message carries the server's own text, e.g. an
INVALID_ARGUMENT for empty or over-long audio.

This is the only edgeasr module that imports ``tritonclient``; the on-device path never does.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as grpcaio
from tritonclient.utils import InferenceServerException

from edgeasr.audio import SAMPLE_RATE, AudioLimits, check_rate, check_waveform, load_audio, resample, to_mono_float
from edgeasr.decoding import Transcript

__all__ = ["AsyncTritonClient", "BatchStats", "ClientError", "TritonClient"]

_UNAVAILABLE = "StatusCode.UNAVAILABLE"
_DEADLINE = "StatusCode.DEADLINE_EXCEEDED"


class ClientError(RuntimeError):
    """A request failed; ``status`` is the gRPC status (e.g. ``"StatusCode.INVALID_ARGUMENT"``)."""

    def __init__(self, message: str, status: str = "") -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class BatchStats:
    """Server-side inference statistics of one model (all loaded versions added up).

    The one reading of Triton's ``ModelStatisticsResponse`` in edgeasr: the bench's Triton
    backend and the tests read these fields, never the raw response.
    """

    inference_count: int  # requests (batch rows) inferred
    execution_count: int  # model executions (one per formed batch)
    batch_sizes: dict[int, int] = field(default_factory=dict)  # executed batch size -> number of executions
    success_count: int = 0  # successful requests
    failure_count: int = 0  # failed requests (e.g. INVALID_ARGUMENT)
    queue_ns: int = 0  # total time requests waited in the scheduler's queue, nanoseconds
    compute_input_ns: int = 0  # total time spent copying inputs into the model, nanoseconds
    compute_infer_ns: int = 0  # total time spent in the model's execute, nanoseconds
    compute_output_ns: int = 0  # total time spent copying outputs back, nanoseconds

    @property
    def max_batch_size(self) -> int:
        """Largest batch size executed so far (0 before any execution)."""
        return max(self.batch_sizes, default=0)


# -- shared request building / response parsing ----------------------------------------------------


def _prepare(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Return mono int16 or float32 PCM at 16 kHz, without changing int16 audio already at 16 kHz.

    The input is checked as the on-device recognizer checks it (:func:`edgeasr.audio.check_waveform`:
    empty, NaN or Inf, shorter than 50 ms; a rate that is not an audio rate), with the same
    :class:`~edgeasr.audio.AudioError` messages, before anything is sent.
    """
    arr = np.asarray(audio)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    rate = check_rate(sample_rate)
    pcm = arr if arr.ndim == 1 and arr.dtype == np.int16 and rate == SAMPLE_RATE else None
    wave = resample(to_mono_float(arr), rate)
    check_waveform(wave, limits=AudioLimits(max_seconds=float("inf")))  # the server holds the length limit
    return pcm if pcm is not None else wave


def _inputs(pcm: np.ndarray) -> list[grpcclient.InferInput]:
    name, dtype = ("AUDIO_INT16", "INT16") if pcm.dtype == np.int16 else ("AUDIO", "FP32")
    data = pcm.reshape(1, -1)
    audio = grpcclient.InferInput(name, list(data.shape), dtype)
    audio.set_data_from_numpy(np.ascontiguousarray(data))
    rate = grpcclient.InferInput("SAMPLE_RATE", [1, 1], "INT32")
    rate.set_data_from_numpy(np.array([[SAMPLE_RATE]], dtype=np.int32))
    return [audio, rate]


BIAS_PARAMETER = "bias"
"""The request parameter that carries phrases to favour (a JSON list of strings)."""


BIAS_BOOST_PARAMETER = "bias_boost"
"""The request parameter that says how strongly to favour them (log10 bonus per word; the server checks it)."""


def _parameters(bias: Sequence[str], bias_boost: float | None = None) -> dict[str, str] | None:
    """The request parameters of a transcription: the biasing phrases and their boost, where given."""
    params = {}
    phrases = [str(p) for p in bias]
    if phrases:
        params[BIAS_PARAMETER] = json.dumps(phrases)
    if bias_boost is not None:
        params[BIAS_BOOST_PARAMETER] = repr(bias_boost) if isinstance(bias_boost, float) else str(bias_boost)
    return params or None


def _outputs(names: tuple[str, ...]) -> list[grpcclient.InferRequestedOutput]:
    return [grpcclient.InferRequestedOutput(n) for n in names]


def _error(exc: InferenceServerException, what: str, attempts: int, timeout_s: float) -> ClientError:
    status = str(exc.status() or "")
    text = exc.message() or str(exc)
    if status == _DEADLINE:
        return ClientError(f"{what}: no answer within the {timeout_s:g} s deadline ({text})", status)
    if status == _UNAVAILABLE:
        return ClientError(f"{what}: server unavailable after {attempts} attempt(s): {text}", status)
    return ClientError(f"{what}: {status.replace('StatusCode.', '') or 'error'}: {text}", status)


def _transcript(result: Any, started: float, attempts: int) -> Transcript:
    text = result.as_numpy("TEXT").reshape(-1)[0]
    text = text.decode("utf-8") if isinstance(text, bytes) else str(text)
    response = result.get_response()
    return Transcript(
        text=text,
        latency_s=time.perf_counter() - started,
        model_version=str(response.model_version),
        extra={"attempts": attempts, "model_name": response.model_name},
    )


def _batch_stats(stats: Any) -> BatchStats:
    counts = dict.fromkeys(("inference", "execution", "success", "failure"), 0)
    times = dict.fromkeys(("queue", "compute_input", "compute_infer", "compute_output"), 0)
    sizes: dict[int, int] = {}
    for model in stats.model_stats:
        counts["inference"] += int(model.inference_count)
        counts["execution"] += int(model.execution_count)
        counts["success"] += int(model.inference_stats.success.count)
        counts["failure"] += int(model.inference_stats.fail.count)
        for key in times:
            times[key] += int(getattr(model.inference_stats, key).ns)
        for entry in model.batch_stats:
            sizes[int(entry.batch_size)] = sizes.get(int(entry.batch_size), 0) + int(entry.compute_infer.count)
    return BatchStats(
        counts["inference"],
        counts["execution"],
        dict(sorted(sizes.items())),
        counts["success"],
        counts["failure"],
        **{f"{key}_ns": value for key, value in times.items()},
    )


def _what(model_name: str, model_version: str, url: str) -> str:
    return f"{model_name}{'/' + model_version if model_version else ''} at {url}"


# -- synchronous client ----------------------------------------------------------------------------


class TritonClient:
    """Blocking gRPC client of the edgeasr python model.

    Args:
        url: the server's gRPC address, ``"host:port"``.
        model_name: Triton model name.
        model_version: version to ask for; ``""`` = the highest loaded.
        timeout_s: deadline of each request attempt, seconds.
        retries: extra attempts after an UNAVAILABLE answer (nothing else is retried).
        backoff_s: wait before the first retry; doubled for each further one.
    """

    def __init__(
        self,
        url: str,
        model_name: str = "edgeasr",
        model_version: str = "",
        *,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.05,
    ) -> None:
        self.url = url
        self.model_name = model_name
        self.model_version = str(model_version)
        self.timeout_s = float(timeout_s)
        self.retries = max(0, int(retries))
        self.backoff_s = float(backoff_s)
        self._client = grpcclient.InferenceServerClient(url)

    def _call(self, fn: Callable[[], Any]) -> tuple[Any, int]:
        """Run ``fn`` with retries on UNAVAILABLE; return (result, attempts)."""
        what = _what(self.model_name, self.model_version, self.url)
        for attempt in range(self.retries + 1):
            try:
                return fn(), attempt + 1
            except InferenceServerException as exc:
                if str(exc.status()) != _UNAVAILABLE or attempt == self.retries:
                    raise _error(exc, what, attempt + 1, self.timeout_s) from None
            time.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    def _infer(
        self,
        audio: np.ndarray,
        sample_rate: int,
        outputs: tuple[str, ...],
        request_id: str = "",
        bias: Sequence[str] = (),
        bias_boost: float | None = None,
    ) -> tuple[Any, int]:
        inputs = _inputs(_prepare(audio, sample_rate))
        return self._call(
            lambda: self._client.infer(
                self.model_name,
                inputs,
                model_version=self.model_version,
                outputs=_outputs(outputs),
                request_id=request_id,
                client_timeout=self.timeout_s,
                parameters=_parameters(bias, bias_boost),
            )
        )

    def transcribe(
        self,
        audio: np.ndarray,
        sample_rate: int = SAMPLE_RATE,
        *,
        request_id: str = "",
        bias: Sequence[str] = (),
        bias_boost: float | None = None,
    ) -> Transcript:
        """Transcribe one utterance.

        Args:
            audio: mono (or (frames, channels)) PCM, int16 or float in [-1, 1].
            sample_rate: the rate of ``audio``; other than 16 kHz is resampled here.
            request_id: a correlation id sent with the request (Triton logs and traces carry it).
            bias: phrases to favour (contact and device names), sent as the request parameter
                ``bias``; the served version's beam search applies them, with no re-export.
            bias_boost: how strongly (log10 bonus per biased word, sent as ``bias_boost``; None: the
                server's default, :data:`~edgeasr.decoding.BIAS_BOOST`); the server refuses one out of range
                with the message ``Recognizer.transcribe`` raises.

        Returns:
            The transcript, with ``latency_s`` (including retries) and ``model_version`` set.

        Raises:
            ClientError: the request failed (the message says why, with the server's text).
        """
        started = time.perf_counter()
        result, attempts = self._infer(audio, sample_rate, ("TEXT",), request_id, bias, bias_boost)
        return _transcript(result, started, attempts)

    def transcribe_file(self, path: str | os.PathLike) -> Transcript:
        """Transcribe an audio file (any format libsndfile reads; resampled to 16 kHz).

        Args:
            path: the audio file.

        Returns:
            The transcript.

        Raises:
            AudioError: the file is missing or not audio.
            ClientError: the request failed.
        """
        return self.transcribe(load_audio(path), SAMPLE_RATE)

    def logprobs(self, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """Return the model's (frames, vocab) log-probabilities for one utterance.

        Args:
            audio: as for :meth:`transcribe`.
            sample_rate: as for :meth:`transcribe`.

        Returns:
            float32 array of the valid frames.

        Raises:
            ClientError: the request failed.
        """
        result, _ = self._infer(audio, sample_rate, ("LOGPROBS",))
        return result.as_numpy("LOGPROBS")[0]

    def is_ready(self) -> bool:
        """Return True when the server and the model are ready (False when unreachable)."""
        try:
            return bool(self._client.is_server_ready(client_timeout=self.timeout_s)) and bool(
                self._client.is_model_ready(self.model_name, self.model_version, client_timeout=self.timeout_s)
            )
        except InferenceServerException:
            return False

    def server_statistics(self) -> BatchStats:
        """Return the model's inference statistics, including executed batch sizes.

        Raises:
            ClientError: the statistics could not be read.
        """
        stats, _ = self._call(
            lambda: self._client.get_inference_statistics(
                self.model_name, self.model_version, client_timeout=self.timeout_s
            )
        )
        return _batch_stats(stats)

    def close(self) -> None:
        """Close the gRPC channel."""
        self._client.close()

    def __enter__(self) -> TritonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- asyncio client --------------------------------------------------------------------------------


class AsyncTritonClient:
    """The asyncio twin of :class:`TritonClient` (same arguments, methods are coroutines).

    Create it inside a running event loop; use ``async with`` or ``await client.close()``.
    """

    def __init__(
        self,
        url: str,
        model_name: str = "edgeasr",
        model_version: str = "",
        *,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.05,
    ) -> None:
        self.url = url
        self.model_name = model_name
        self.model_version = str(model_version)
        self.timeout_s = float(timeout_s)
        self.retries = max(0, int(retries))
        self.backoff_s = float(backoff_s)
        self._client = grpcaio.InferenceServerClient(url)

    async def _call(self, make: Callable[[], Any]) -> tuple[Any, int]:
        what = _what(self.model_name, self.model_version, self.url)
        for attempt in range(self.retries + 1):
            try:
                return await make(), attempt + 1
            except InferenceServerException as exc:
                if str(exc.status()) != _UNAVAILABLE or attempt == self.retries:
                    raise _error(exc, what, attempt + 1, self.timeout_s) from None
            await asyncio.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    async def _infer(
        self,
        audio: np.ndarray,
        sample_rate: int,
        outputs: tuple[str, ...],
        request_id: str = "",
        bias: Sequence[str] = (),
        bias_boost: float | None = None,
    ) -> tuple[Any, int]:
        inputs = _inputs(_prepare(audio, sample_rate))
        return await self._call(
            lambda: self._client.infer(
                self.model_name,
                inputs,
                model_version=self.model_version,
                outputs=_outputs(outputs),
                request_id=request_id,
                client_timeout=self.timeout_s,
                parameters=_parameters(bias, bias_boost),
            )
        )

    async def transcribe(
        self,
        audio: np.ndarray,
        sample_rate: int = SAMPLE_RATE,
        *,
        request_id: str = "",
        bias: Sequence[str] = (),
        bias_boost: float | None = None,
    ) -> Transcript:
        """Transcribe one utterance; see :meth:`TritonClient.transcribe`."""
        started = time.perf_counter()
        result, attempts = await self._infer(audio, sample_rate, ("TEXT",), request_id, bias, bias_boost)
        return _transcript(result, started, attempts)

    async def transcribe_file(self, path: str | os.PathLike) -> Transcript:
        """Transcribe an audio file; see :meth:`TritonClient.transcribe_file`."""
        audio = await asyncio.to_thread(load_audio, path)
        return await self.transcribe(audio, SAMPLE_RATE)

    async def logprobs(self, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """Return (frames, vocab) log-probabilities; see :meth:`TritonClient.logprobs`."""
        result, _ = await self._infer(audio, sample_rate, ("LOGPROBS",))
        return result.as_numpy("LOGPROBS")[0]

    async def is_ready(self) -> bool:
        """Return True when the server and the model are ready (False when unreachable)."""
        try:
            return bool(await self._client.is_server_ready(client_timeout=self.timeout_s)) and bool(
                await self._client.is_model_ready(self.model_name, self.model_version, client_timeout=self.timeout_s)
            )
        except InferenceServerException:
            return False

    async def server_statistics(self) -> BatchStats:
        """Return the model's inference statistics; see :meth:`TritonClient.server_statistics`."""
        stats, _ = await self._call(
            lambda: self._client.get_inference_statistics(
                self.model_name, self.model_version, client_timeout=self.timeout_s
            )
        )
        return _batch_stats(stats)

    async def close(self) -> None:
        """Close the gRPC channel."""
        await self._client.close()

    async def __aenter__(self) -> AsyncTritonClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
