"""The canary's request path: serve from one version, mirror to the other, log the pair.

Both classes take the place of a single client (anything with ``transcribe``, a
:class:`Transcriber`) in front of two versions of one Triton model:

* :class:`ShadowProxy` sends every request to the champion and returns its answer; the same audio
  is mirrored to the challenger on a worker thread. The challenger's errors or slowness never fail
  or delay the champion's answer: the mirror runs beside it, is never waited for, and is shed (not
  queued) once ``max_pending`` mirrors are outstanding. Each request gets a correlation id; when
  both sides have answered, the pair (texts, latencies, errors) is appended to a JSONL log
  (:class:`~edgeasr.serving.live.PairLog`).
* :class:`CanaryRouter` is the traffic router of a staged canary. It routes by the live file
  (:class:`~edgeasr.serving.live.LiveState`: which version is the champion, which the challenger,
  and what percentage of requests the challenger serves), re-read whenever it changes. A request
  is routed by a hash of its correlation id (the same id always goes the same way) and, in shadow
  mode, mirrored to the other version so that every request yields a pair for the analysis
  (:func:`~edgeasr.canary.stats.analyze`). A request the challenger fails is answered by the
  champion (its mirror's answer, or a call then): a broken challenger never fails a user, and the
  failure stays in the pair record (``fallback: true``), where the analysis counts it.

Both count the requests in flight per version: the routing decision and the rise of the count are
one atomic step, so :meth:`CanaryRouter.wait_drained` (used by
:class:`~edgeasr.canary.rollout.Rollout` before it retires a version) cannot miss a request that
was just routed to it. Records are kept in memory (:attr:`records`), appended to the log and passed
to listeners (:meth:`CanaryRouter.add_listener`); a broken log or listener never fails a request.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgeasr.audio import SAMPLE_RATE
from edgeasr.decoding import Transcript
from edgeasr.serving.live import LiveFile, LiveState, PairLog, route_bucket

__all__ = [
    "CanaryRouter",
    "ShadowProxy",
    "Transcriber",
]


class Transcriber(Protocol):
    """Anything with the client's ``transcribe`` (TritonClient, Recognizer, a test fake)."""

    def transcribe(self, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Transcript:
        """Transcribe one utterance."""
        ...


# -- the mirroring engine ---------------------------------------------------------------------------


def _call(client: Transcriber, audio: np.ndarray, sample_rate: int, version: str) -> tuple[dict, Any]:
    """Run one request; return (side record, transcript or the exception)."""
    started = time.perf_counter()
    try:
        result = client.transcribe(audio, sample_rate)
    except Exception as exc:  # any failure of one side is data, not a crash
        side = {
            "version": version,
            "text": None,
            "latency_s": time.perf_counter() - started,
            "error": f"{type(exc).__name__}: {exc}",
        }
        return side, exc
    side = {
        "version": str(result.model_version or version),
        "text": result.text,
        "latency_s": time.perf_counter() - started,
        "error": None,
    }
    return side, result


class _Engine:
    """Routing-independent core: mirrors, pair records, in-flight counts, statistics."""

    def __init__(
        self,
        log: str | os.PathLike | PairLog | None,
        workers: int,
        max_pending: int,
        keep_records: int,
        paced: bool = False,
    ) -> None:
        self.log = log if isinstance(log, PairLog) or log is None else PairLog(log)
        self.max_pending = int(max_pending)
        self.paced = bool(paced)
        self.records: deque[dict[str, Any]] = deque(maxlen=keep_records)
        self.stats = {
            "requests": 0,
            "served_champion": 0,
            "served_challenger": 0,
            "mirrored": 0,
            "shed": 0,
            "pairs": 0,
            "champion_errors": 0,
            "challenger_errors": 0,
            "served_errors": 0,
            "log_errors": 0,
            "fallbacks": 0,
        }
        self._executor = ThreadPoolExecutor(max_workers=int(workers), thread_name_prefix="edgeasr-mirror")
        self._lock = threading.Condition()
        self._pending = 0
        self._inflight: dict[str, int] = {}
        self._listeners: list[Callable[[dict[str, Any]], None]] = []

    def add_listener(self, fn: Callable[[dict[str, Any]], None]) -> None:
        """Call ``fn(record)`` for every finished record (from the thread that finished it)."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[dict[str, Any]], None]) -> None:
        """Stop calling ``fn``."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(fn)

    def in_flight(self, version: str) -> int:
        """Requests (served or mirrored) now outstanding to ``version``."""
        with self._lock:
            return self._inflight.get(str(version), 0)

    def wait_drained(self, version: str, timeout_s: float) -> bool:
        """Wait until no request to ``version`` is in flight; return False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._inflight.get(str(version), 0) > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def drain(self, timeout_s: float = 30.0) -> int:
        """Wait for outstanding mirrors; return how many are still pending at the timeout."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._pending > 0 and time.monotonic() < deadline:
                self._lock.wait(max(0.0, deadline - time.monotonic()))
            return self._pending

    def close(self, timeout_s: float = 5.0) -> int:
        """Drain up to ``timeout_s``, then stop: mirrors not started are cancelled (logged as skipped).

        Returns:
            Mirrors still pending at the timeout.
        """
        left = self.drain(timeout_s)
        self._executor.shutdown(wait=False, cancel_futures=True)
        return left

    def _begin(self, version: str) -> None:  # caller holds self._lock
        self._inflight[version] = self._inflight.get(version, 0) + 1

    def _end(self, version: str) -> None:
        with self._lock:
            self._inflight[version] = self._inflight.get(version, 1) - 1
            self._lock.notify_all()

    def _exchange(
        self,
        route: Callable[[], tuple[dict[str, tuple[Transcriber, str]], str, bool]],
        audio: np.ndarray,
        sample_rate: int,
        meta: dict[str, Any],
    ) -> Transcript:
        """Serve ``audio`` from the routed role, mirror it to the other role; log the pair.

        ``route()`` runs under the lock and returns (roles, served role, mirror?): the routing
        decision and the rise of the in-flight counts are one atomic step, so a promotion that
        waits for a version to drain cannot miss a request that was just routed to it.
        """
        future: Future | None = None
        with self._lock:
            roles, served, mirror = route()
            other = "challenger" if served == "champion" else "champion"
            record: dict[str, Any] = {**meta, "served_by": served, "champion": None, "challenger": None}
            client, version = roles[served]
            self._begin(version)
            self.stats["requests"] += 1
            self.stats[f"served_{served}"] += 1
            if mirror and other in roles:
                if self._pending >= self.max_pending:
                    self.stats["shed"] += 1
                    record[other] = {"version": roles[other][1], "skipped": f"shed: {self._pending} mirrors pending"}
                else:
                    self._pending += 1
                    self._begin(roles[other][1])
                    self.stats["mirrored"] += 1
                    future = self._submit(roles[other], audio, sample_rate)
        try:
            side, result = _call(client, audio, sample_rate, version)
        finally:
            self._end(version)
        record[served] = side
        if isinstance(result, Exception) and served == "challenger" and "champion" in roles:
            return self._fall_back(record, roles["champion"], future, audio, sample_rate, meta)
        if future is None:
            self._emit(record)
        elif self.paced:  # a replayer's next request waits for this pair: both versions see the same load
            wait_futures([future])
            self._finish(record, other, roles[other][1], future)
        else:
            future.add_done_callback(lambda f: self._finish(record, other, roles[other][1], f))
        if isinstance(result, Exception):
            raise result
        return replace(result, extra={**result.extra, "request_id": meta["id"], "served_by": served})

    def _fall_back(
        self,
        record: dict[str, Any],
        champion: tuple[Transcriber, str],
        mirror: Future | None,
        audio: np.ndarray,
        sample_rate: int,
        meta: dict[str, Any],
    ) -> Transcript:
        """The challenger failed a request it served: the champion answers it (its mirror, or a call now).

        The pair is logged with the challenger's error (the analysis counts it) and ``fallback``.
        """
        client, version = champion
        side = mirror.result() if mirror is not None else None
        if mirror is not None:  # the mirror is consumed here, not by _finish
            with self._lock:
                self._pending -= 1
                self._lock.notify_all()
        if side is None or side.get("error") or side.get("skipped"):
            with self._lock:
                self._begin(version)
            try:
                side, answer = _call(client, audio, sample_rate, version)
            finally:
                self._end(version)
        else:
            answer = Transcript(text=side["text"], latency_s=side["latency_s"], model_version=side["version"])
        record["champion"] = side
        record["fallback"] = True
        with self._lock:
            self.stats["fallbacks"] += 1
        self._emit(record)
        if isinstance(answer, Exception):
            raise answer
        return replace(
            answer, extra={**answer.extra, "request_id": meta["id"], "served_by": "champion", "fallback": True}
        )

    def _submit(self, target: tuple[Transcriber, str], audio: np.ndarray, sample_rate: int) -> Future:
        client, version = target

        def run() -> dict:
            try:
                return _call(client, audio, sample_rate, version)[0]
            finally:
                self._end(version)

        try:
            return self._executor.submit(run)
        except RuntimeError:  # executor shut down: nothing runs, nothing is in flight
            self._end(version)
            done: Future = Future()
            done.set_result({"version": version, "skipped": "proxy closed"})
            return done

    def _finish(self, record: dict[str, Any], role: str, version: str, future: Future) -> None:
        if future.cancelled():
            self._end(version)
            record[role] = {"version": version, "skipped": "cancelled at close"}
        else:
            record[role] = future.result()
        try:
            self._emit(record)
        finally:  # only now is the mirror done: drain() returns after the pair is logged
            with self._lock:
                self._pending -= 1
                self._lock.notify_all()

    def _emit(self, record: dict[str, Any]) -> None:
        with self._lock:
            for role in ("champion", "challenger"):
                side = record.get(role) or {}
                if side.get("error"):
                    self.stats[f"{role}_errors"] += 1
            if (record.get(record["served_by"]) or {}).get("error"):
                self.stats["served_errors"] += 1
            both = all(record.get(r) and not record[r].get("skipped") for r in ("champion", "challenger"))
            self.stats["pairs"] += int(both)
            self.records.append(record)
        # a broken log or listener must never fail the caller's (champion's) request
        sinks = ([self.log.write] if self.log is not None else []) + list(self._listeners)
        for sink in sinks:
            try:
                sink(record)
            except Exception:
                with self._lock:
                    self.stats["log_errors"] += 1


def _meta(
    request_id: str | None,
    audio_name: str,
    duration_s: float | None,
    reference: str | None,
    audio: np.ndarray,
    sample_rate: int,
) -> dict[str, Any]:
    if duration_s is None:
        duration_s = float(np.asarray(audio).shape[0]) / float(sample_rate)
    return {
        "id": request_id or uuid.uuid4().hex,
        "ts": round(time.time(), 6),
        "audio": audio_name,
        "duration_s": round(float(duration_s), 4),
        "reference": reference,
    }


# -- the shadow proxy -------------------------------------------------------------------------------


class ShadowProxy(_Engine):
    """Serve from the champion, mirror to the challenger, log pairs (the library proxy).

    Args:
        champion: the live model (its answer is returned; its errors are raised).
        challenger: the candidate (its answer is only logged; its errors never reach the caller).
        log: JSONL pair log (a path or :class:`PairLog`); None = keep records in memory only.
        champion_version: version label of the champion for the records ("" = from the answer).
        challenger_version: version label of the challenger.
        workers: threads that run mirrors.
        max_pending: outstanding mirrors beyond which new mirrors are shed (logged as skipped).
        keep_records: how many recent records :attr:`records` keeps in memory.
        paced: return only when the mirror has answered too (the pair is logged). For a replayer
            (``edgeasr canary rollout``): a caller that sends its next request when the previous
            one returns then loads both versions alike. Unpaced, mirrors pile up on the mirrored
            version while the served one sees one request per caller, and an A/A pair of
            identical versions differs in latency by role (issue 17: +15 to +73 ms at p50).

    Example:
        >>> proxy = ShadowProxy(TritonClient(url, "edgeasr", "1"), TritonClient(url, "edgeasr", "2"),
        ...                     log="pairs.jsonl")
        >>> proxy.transcribe(audio).text   # version 1's answer; version 2's is in pairs.jsonl
    """

    def __init__(
        self,
        champion: Transcriber,
        challenger: Transcriber,
        *,
        log: str | os.PathLike | PairLog | None = None,
        champion_version: str = "",
        challenger_version: str = "",
        workers: int = 4,
        max_pending: int = 64,
        keep_records: int = 100_000,
        paced: bool = False,
    ) -> None:
        super().__init__(log, workers, max_pending, keep_records, paced)
        self._roles = {
            "champion": (champion, str(champion_version) or "champion"),
            "challenger": (challenger, str(challenger_version) or "challenger"),
        }

    def transcribe(
        self,
        audio: np.ndarray,
        sample_rate: int = SAMPLE_RATE,
        *,
        request_id: str | None = None,
        reference: str | None = None,
        audio_name: str = "",
        duration_s: float | None = None,
    ) -> Transcript:
        """Transcribe with the champion; mirror to the challenger without waiting for it.

        Args:
            audio: mono PCM.
            sample_rate: its rate.
            request_id: correlation id; None = a new uuid4 hex.
            reference: the reference text, when known (logged for WER).
            audio_name: what to log as the audio's name.
            duration_s: utterance duration (None = from the samples).

        Returns:
            The champion's transcript; ``extra["request_id"]`` is the correlation id.

        Raises:
            Exception: whatever the champion raised (e.g. ClientError); the pair is logged first.
        """
        meta = _meta(request_id, audio_name, duration_s, reference, audio, sample_rate)
        return self._exchange(lambda: (self._roles, "champion", True), audio, sample_rate, meta)


# -- the canary router ------------------------------------------------------------------------------


class CanaryRouter(_Engine):
    """Traffic router of a staged canary: the live file says who serves what share.

    Args:
        live_file: the live file (re-read whenever its mtime or size changes).
        client_for: builds the client of a version (called once per version, then cached).
        shadow: mirror each request to the other version while a challenger is set.
        log: JSONL pair log; None = memory only.
        workers: mirror threads.
        max_pending: outstanding mirrors beyond which new ones are shed.
        keep_records: recent records kept in :attr:`records`.
        paced: return only when the mirror has answered too (see :class:`ShadowProxy`).
    """

    def __init__(
        self,
        live_file: str | os.PathLike,
        client_for: Callable[[str], Transcriber],
        *,
        shadow: bool = True,
        log: str | os.PathLike | PairLog | None = None,
        workers: int = 4,
        max_pending: int = 64,
        keep_records: int = 100_000,
        paced: bool = False,
    ) -> None:
        super().__init__(log, workers, max_pending, keep_records, paced)
        self.live_file = Path(live_file)
        self.shadow = bool(shadow)
        self.override: LiveState | None = None  # set by dry runs: route by this, never by the file
        self._client_for = client_for
        self._clients: dict[str, Transcriber] = {}
        self._live = LiveFile(self.live_file)

    def _client(self, version: str) -> Transcriber:  # caller holds self._lock
        if version not in self._clients:
            self._clients[version] = self._client_for(version)
        return self._clients[version]

    def _live_locked(self) -> LiveState:
        if self.override is not None:
            return self.override
        # a vanished or unreadable live file keeps the last good state: requests are never dropped for it
        return self._live.state(required=True)

    def live(self) -> LiveState:
        """Return the live state the router routes by now."""
        with self._lock:
            return self._live_locked()

    def refresh(self) -> LiveState:
        """Re-read the live file now; requests routed after this see the new state."""
        with self._lock:
            self._live.forget()
            return self._live_locked()

    def transcribe(
        self,
        audio: np.ndarray,
        sample_rate: int = SAMPLE_RATE,
        *,
        request_id: str | None = None,
        reference: str | None = None,
        audio_name: str = "",
        duration_s: float | None = None,
    ) -> Transcript:
        """Route one request by the live state; see :meth:`ShadowProxy.transcribe` for the arguments.

        Returns:
            The serving version's transcript (``extra["served_by"]`` says which role).

        Raises:
            Exception: whatever the serving version raised.
        """
        meta = _meta(request_id, audio_name, duration_s, reference, audio, sample_rate)
        bucket = route_bucket(meta["id"])

        def route() -> tuple[dict[str, tuple[Transcriber, str]], str, bool]:  # runs under self._lock
            state = self._live_locked()
            roles = {"champion": (self._client(state.champion), state.champion)}
            if state.challenger:
                roles["challenger"] = (self._client(state.challenger), state.challenger)
            meta["live_percent"] = state.challenger_percent
            served = "challenger" if state.challenger and bucket < state.challenger_percent else "champion"
            return roles, served, self.shadow and bool(state.challenger)

        return self._exchange(route, audio, sample_rate, meta)
