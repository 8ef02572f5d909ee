"""The routing front of ``edgeasr serve``: KServe v2 gRPC in front of Triton, obeying the live file.

Triton answers a request that names no model version with the *highest* version it has loaded,
so the moment a challenger is published and loaded it would take every such request. The front
closes that gap for every gRPC client, not only those that use the canary's own router:

* It speaks the same protocol as Triton (``inference.GRPCInferenceService``, KServe v2), so
  ``tritonclient``, :class:`~edgeasr.client.TritonClient` and ``edgeasr transcribe --url`` talk to
  it unchanged. Every call is forwarded as raw bytes to Triton on a loopback port, with the
  caller's metadata and deadline; Triton's status codes and messages come back as they were.
* An inference request (``ModelInfer`` and each message of ``ModelStreamInfer``) that names **no
  version** of a model with a live file (``<repository>/<model>/live.json``,
  :mod:`edgeasr.serving.live`) is given one: the champion, or the challenger for
  ``challenger_percent`` of requests, chosen by :func:`~edgeasr.serving.live.route_bucket` of the
  request id (a random id when the request has none). A request that names a version goes where
  it says (the canary, the bench and the parity checks name versions).
* When the challenger fails a request, the champion answers it instead: a broken challenger never
  fails a client. The failure is counted (:attr:`RoutingFront.stats`) and logged.
* Each routed request is counted in Prometheus metrics (:mod:`edgeasr.serving.metrics`) by
  model, version and role, beside the fallbacks and mirrors; ``edgeasr serve`` publishes them on
  its metrics port next to Triton's own.
* With ``"shadow": true`` in the live file and a pair log, each routed request is also sent to the
  other version on a worker thread, never waited for and shed beyond ``max_pending``; the pair of
  texts, latencies and errors is appended to the log in the format of
  :mod:`edgeasr.canary.stats`.

The live file is re-read when it changes (:class:`~edgeasr.serving.live.LiveFile`), so a
promotion or a rollback takes effect on the next request, with no restart. The cost is one
protobuf parse and one serialization per inference request (about 0.1 ms for 4 s of audio).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from tritonclient.grpc import service_pb2

from edgeasr.serving.live import LiveFile, LiveState, PairLog, live_file_for, route_bucket
from edgeasr.serving.metrics import FrontMetrics
from edgeasr.serving.request_log import WindowLog, keep_audio, request_audio, request_record

__all__ = ["SERVICE", "RoutingFront", "max_request_bytes", "response_texts"]

SERVICE = "inference.GRPCInferenceService"
"""The KServe v2 gRPC service that Triton and the front implement."""
_INFER = f"/{SERVICE}/ModelInfer"
_STREAM = f"/{SERVICE}/ModelStreamInfer"
_DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024  # bytes; Triton's own gRPC limit is 2 GB, the model refuses long audio


def max_request_bytes(repository: str | Path, slack_bytes: int = 1 << 20) -> int:
    """The largest request any python model of ``repository`` can accept, in bytes.

    ``max_audio_seconds`` of float32 samples at the model's rate, times its ``max_batch_size``
    rows, plus ``slack_bytes`` for the rest of the message. The front refuses a larger request
    (RESOURCE_EXHAUSTED) from its length prefix, before it is read into memory.
    """
    from edgeasr.tritonconfig import read_config

    largest = 0
    for config_file in Path(repository).glob("*/config.pbtxt"):
        try:
            config = read_config(config_file)
        except ValueError:
            continue
        if config.backend != "python":
            continue
        params = {k: v.string_value for k, v in config.parameters.items()}
        seconds = float(params.get("max_audio_seconds", "30"))
        rate = int(params.get("sample_rate", "16000"))
        largest = max(largest, int(seconds * rate * 4 * max(1, config.max_batch_size)))
    return (largest or _DEFAULT_MAX_MESSAGE) + slack_bytes


def response_texts(response: service_pb2.ModelInferResponse, output: str = "TEXT") -> list[str]:
    """The strings of a BYTES output of a raw ``ModelInferResponse`` (4-byte length, then the bytes)."""
    for index, tensor in enumerate(response.outputs):
        if tensor.name != output:
            continue
        if tensor.contents.bytes_contents:
            return [b.decode("utf-8", "replace") for b in tensor.contents.bytes_contents]
        raw = response.raw_output_contents[index] if index < len(response.raw_output_contents) else b""
        texts, pos = [], 0
        while pos + 4 <= len(raw):
            size = int.from_bytes(raw[pos : pos + 4], "little")
            texts.append(raw[pos + 4 : pos + 4 + size].decode("utf-8", "replace"))
            pos += 4 + size
        return texts
    return []


class RoutingFront:
    """A KServe v2 gRPC server that forwards to Triton and routes unversioned requests by the live file.

    Args:
        upstream: Triton's gRPC address, ``"host:port"``.
        repository: the model repository Triton serves (where the live files are).
        bind: address to listen on.
        port: port to listen on; 0 picks a free one (see :attr:`port` after :meth:`start`).
        pair_log: JSONL log of shadow pairs; None = no mirroring even where the live file asks.
        workers: threads that serve calls.
        mirror_workers: threads that send shadow mirrors.
        max_pending: outstanding mirrors beyond which new ones are shed.
        max_message_bytes: largest request or answer accepted.
        metrics: Prometheus counters to update (:mod:`edgeasr.serving.metrics`); a fresh set if None.
        request_log: JSONL window log of request records (:mod:`edgeasr.serving.request_log`: the
            audio's statistics and the transcript's, one line per row; no audio kept), written
            off the request path (records beyond 256 waiting are shed); None = no log.
        request_audio_dir: with ``request_log``, also keep each request's audio here (16 kHz
            FLAC, named in the record); None keeps no audio.
    """

    def __init__(
        self,
        upstream: str,
        repository: str | Path,
        *,
        bind: str = "127.0.0.1",
        port: int = 0,
        pair_log: str | Path | None = None,
        workers: int = 32,
        mirror_workers: int = 2,
        max_pending: int = 16,
        max_message_bytes: int = _DEFAULT_MAX_MESSAGE,
        metrics: FrontMetrics | None = None,
        request_log: str | Path | None = None,
        request_audio_dir: str | Path | None = None,
    ) -> None:
        self.upstream = upstream
        self.repository = Path(repository)
        self.bind = bind
        self.port = int(port)
        self.pair_log = PairLog(pair_log) if pair_log else None
        self.max_pending = int(max_pending)
        self.metrics = metrics or FrontMetrics()
        self.request_log = WindowLog(request_log) if request_log else None
        self.request_audio_dir = Path(request_audio_dir) if request_audio_dir else None
        self._recorder = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgeasr-records")
        self._records_pending = 0
        self.stats = {
            "routed": 0,
            "served_champion": 0,
            "served_challenger": 0,
            "fallbacks": 0,
            "mirrored": 0,
            "shed": 0,
            "records": 0,
            "records_shed": 0,
        }
        self._options = [
            ("grpc.max_send_message_length", int(max_message_bytes)),
            ("grpc.max_receive_message_length", int(max_message_bytes)),
        ]
        self._workers = int(workers)
        self._mirrors = futures.ThreadPoolExecutor(max_workers=int(mirror_workers), thread_name_prefix="edgeasr-front")
        self._pending = 0
        self._lock = threading.Lock()
        self._live: dict[str, LiveFile] = {}
        self._channel: grpc.Channel | None = None
        self._server: grpc.Server | None = None

    # -- life -----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The address clients use, ``"host:port"`` (loopback when bound to every interface)."""
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "::", "") else self.bind
        return f"{host}:{self.port}"

    def start(self) -> RoutingFront:
        """Connect to Triton and start listening.

        Raises:
            OSError: the port cannot be bound.
        """
        self._channel = grpc.insecure_channel(self.upstream, options=self._options)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=self._workers), options=self._options)
        self._server.add_generic_rpc_handlers((_Handler(self),))
        bound = self._server.add_insecure_port(f"{self.bind}:{self.port}")
        if not bound:
            raise OSError(f"edgeasr front: cannot listen on {self.bind}:{self.port}")
        self.port = bound
        self._server.start()
        return self

    def stop(self, grace_s: float = 2.0) -> None:
        """Stop listening (requests in flight get ``grace_s``), then close the mirrors and the channel."""
        if self._server is not None:
            self._server.stop(grace_s).wait()
            self._server = None
        self._mirrors.shutdown(wait=True, cancel_futures=True)
        self._recorder.shutdown(wait=True)  # the queued records are written
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def __enter__(self) -> RoutingFront:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- routing --------------------------------------------------------------------------------

    def live(self, model: str) -> LiveState | None:
        """The live state of ``model`` (None: no live file, Triton's own choice stands)."""
        with self._lock:
            live = self._live.get(model)
            if live is None:
                live = self._live[model] = LiveFile(live_file_for(self.repository, model))
        return live.state()

    def route(self, request: service_pb2.ModelInferRequest) -> tuple[str, str, LiveState | None]:
        """Choose the version of one request: (version, role, state); version "" leaves it to Triton.

        A request naming a version keeps it (role ``"named"``); a model without a live file is
        left alone (role ``"unrouted"``).
        """
        if request.model_version:
            return request.model_version, "named", None
        state = self.live(request.model_name)
        if state is None or not state.champion:
            return "", "unrouted", None
        key = request.id or uuid.uuid4().hex
        if state.challenger and route_bucket(key) < state.challenger_percent:
            return state.challenger, "challenger", state
        return state.champion, "champion", state

    def infer(self, data: bytes, metadata: Any, timeout: float | None) -> bytes:
        """Route and forward one serialized ``ModelInferRequest``; return the serialized answer.

        Raises:
            grpc.RpcError: Triton's error (from the champion, when the challenger failed first).
        """
        request = service_pb2.ModelInferRequest.FromString(data)
        version, role, state = self.route(request)
        if role == "named" or role == "unrouted":
            if role == "named":
                self.metrics.requests.labels(request.model_name, version, role).inc()
            started = time.perf_counter()
            answer = self._call(_INFER, data, metadata, timeout)
            self._log_request(request, answer, time.perf_counter() - started)
            return answer
        request.model_version = version
        with self._lock:
            self.stats["routed"] += 1
            self.stats[f"served_{role}"] += 1
        started = time.perf_counter()
        try:
            answer = self._call(_INFER, request.SerializeToString(), metadata, timeout)
            error = None
        except grpc.RpcError as exc:
            if role != "challenger":
                raise
            answer, error = None, exc
        served = {"version": version, "text": None, "latency_s": time.perf_counter() - started, "error": None}
        if error is None:
            self.metrics.requests.labels(request.model_name, version, role).inc()
            self._log_request(request, answer, served["latency_s"])
            if state.shadow and state.challenger and self.pair_log is not None:
                self._mirror(request, role, served, answer, state, metadata)
            return answer
        # the challenger failed: the champion answers, and the failure is data for the analysis
        served["error"] = f"{error.code().name}: {error.details()}"
        with self._lock:
            self.stats["fallbacks"] += 1
        self.metrics.fallbacks.labels(request.model_name, version).inc()
        self.metrics.requests.labels(request.model_name, state.champion, "champion").inc()
        request.model_version = state.champion
        started = time.perf_counter()
        answer = self._call(_INFER, request.SerializeToString(), metadata, timeout)
        self._log_request(request, answer, time.perf_counter() - started)
        if self.pair_log is not None:
            champion = {"version": state.champion, "latency_s": time.perf_counter() - started, "error": None}
            champion["text"] = " | ".join(response_texts(service_pb2.ModelInferResponse.FromString(answer)))
            self.pair_log.write(self._record(request, "champion", {"challenger": served, "champion": champion}))
        return answer

    def _log_request(self, request: service_pb2.ModelInferRequest, answer: bytes, latency_s: float) -> None:
        """Queue the request records of one answered request (never fails or delays the request)."""
        if self.request_log is None:
            return
        with self._lock:
            if self._records_pending >= 256:
                self.stats["records_shed"] += 1
                return
            self._records_pending += 1

        def write() -> None:
            try:
                response = service_pb2.ModelInferResponse.FromString(answer)
                texts = response_texts(response)
                for (wave, rate), text in zip(request_audio(request), texts, strict=False):
                    record = request_record(wave, text, latency_s, sample_rate=rate)
                    record.update(model=request.model_name, version=response.model_version, via="front")
                    if self.request_audio_dir is not None:
                        keep_audio(record, wave, self.request_audio_dir)
                    self.request_log.write(record)
                    with self._lock:
                        self.stats["records"] += 1
            except Exception:  # a record that cannot be made is lost, never the request
                with self._lock:
                    self.stats["records_shed"] += 1
            finally:
                with self._lock:
                    self._records_pending -= 1

        try:
            self._recorder.submit(write)
        except RuntimeError:  # stopping
            with self._lock:
                self._records_pending -= 1

    @staticmethod
    def _record(request: service_pb2.ModelInferRequest, served_by: str, sides: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": request.id or uuid.uuid4().hex,
            "ts": round(time.time(), 6),
            "audio": "",
            "duration_s": None,
            "reference": None,
            "served_by": served_by,
            "champion": None,
            "challenger": None,
            **sides,
            "via": "front",
        }

    def _call(self, method: str, data: bytes, metadata: Any, timeout: float | None) -> bytes:
        assert self._channel is not None, "start() the front first"
        call = self._channel.unary_unary(method)
        return call(data, metadata=metadata, timeout=timeout)

    def _mirror(
        self,
        request: service_pb2.ModelInferRequest,
        role: str,
        served: dict[str, Any],
        answer: bytes,
        state: LiveState,
        metadata: Any,
    ) -> None:
        other_role = "champion" if role == "challenger" else "challenger"
        other = state.champion if other_role == "champion" else state.challenger
        served["text"] = " | ".join(response_texts(service_pb2.ModelInferResponse.FromString(answer)))
        record = self._record(request, role, {role: served})
        with self._lock:
            if self._pending >= self.max_pending:
                self.stats["shed"] += 1
                self.metrics.mirrors.labels(request.model_name, "shed").inc()
                record[other_role] = {"version": other, "skipped": f"shed: {self._pending} mirrors pending"}
                self.pair_log.write(record)
                return
            self._pending += 1
            self.stats["mirrored"] += 1
            self.metrics.mirrors.labels(request.model_name, "sent").inc()
        request.model_version = other
        payload = request.SerializeToString()

        def run() -> None:
            started = time.perf_counter()
            side: dict[str, Any] = {"version": other, "text": None, "error": None}
            try:
                reply = service_pb2.ModelInferResponse.FromString(self._call(_INFER, payload, metadata, 60.0))
                side["text"] = " | ".join(response_texts(reply))
            except grpc.RpcError as exc:
                side["error"] = f"{exc.code().name}: {exc.details()}"
            side["latency_s"] = time.perf_counter() - started
            record[other_role] = side
            self._done(record)

        try:
            self._mirrors.submit(run)
        except RuntimeError:  # shutting down
            record[other_role] = {"version": other, "skipped": "front closed"}
            self._done(record)

    def _done(self, record: dict[str, Any]) -> None:
        try:
            if self.pair_log is not None:
                self.pair_log.write(record)
        finally:
            with self._lock:
                self._pending -= 1

    def stream(self, requests: Iterator[bytes], metadata: Any, timeout: float | None) -> Iterator[bytes]:
        """Route each message of a ``ModelStreamInfer`` stream and forward the stream."""

        def routed() -> Iterator[bytes]:
            for data in requests:
                request = service_pb2.ModelInferRequest.FromString(data)
                version, role, _ = self.route(request)
                if role in ("champion", "challenger"):
                    request.model_version = version
                    with self._lock:
                        self.stats["routed"] += 1
                        self.stats[f"served_{role}"] += 1
                    data = request.SerializeToString()
                if role != "unrouted":
                    self.metrics.requests.labels(request.model_name, version, role).inc()
                yield data

        assert self._channel is not None, "start() the front first"
        call = self._channel.stream_stream(_STREAM)
        yield from call(routed(), metadata=metadata, timeout=timeout)


class _Handler(grpc.GenericRpcHandler):
    """Every method of the service: inference routed, the rest forwarded byte for byte."""

    def __init__(self, front: RoutingFront) -> None:
        self.front = front

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = details.method
        if not method.startswith(f"/{SERVICE}/"):
            return None
        if method == _STREAM:
            return grpc.stream_stream_rpc_method_handler(self._stream)
        if method == _INFER:
            return grpc.unary_unary_rpc_method_handler(self._infer)
        return grpc.unary_unary_rpc_method_handler(self._forward(method))

    @staticmethod
    def _metadata(context: grpc.ServicerContext) -> list[tuple[str, str | bytes]]:
        skip = ("grpc-", "user-agent", ":")
        return [(m.key, m.value) for m in context.invocation_metadata() if not m.key.startswith(skip)]

    @staticmethod
    def _timeout(context: grpc.ServicerContext) -> float | None:
        remaining = context.time_remaining()  # about 9e18 when the caller set no deadline
        return None if remaining is None or remaining > 1e6 else max(0.0, remaining)

    def _relay(self, context: grpc.ServicerContext, fn, *args):
        try:
            return fn(*args, self._metadata(context), self._timeout(context))
        except grpc.RpcError as exc:
            context.abort(exc.code(), exc.details() or "")

    def _infer(self, data: bytes, context: grpc.ServicerContext) -> bytes:
        return self._relay(context, self.front.infer, data)

    def _forward(self, method: str):
        def forward(data: bytes, context: grpc.ServicerContext) -> bytes:
            return self._relay(context, self.front._call, method, data)

        return forward

    def _stream(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        try:
            yield from self.front.stream(requests, self._metadata(context), self._timeout(context))
        except grpc.RpcError as exc:
            context.abort(exc.code(), exc.details() or "")
