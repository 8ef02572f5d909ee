"""Canary rollout with shadow traffic: compare what two versions of the model *say*, then promote.

Roles follow the champion/challenger convention: the **champion** is the live version whose answers
users get; the **challenger** is the candidate. Versions are Triton model versions (``"1"``,
``"2"``, ...) of one model (``edgeasr``).

* :class:`ShadowProxy` sends every request to the champion and returns its answer; the same audio
  is mirrored to the challenger on a worker thread. The challenger's errors or slowness never fail
  or delay the champion's answer: the mirror runs beside it, is never waited for, and is shed (not
  queued) once ``max_pending`` mirrors are outstanding. Each request gets a correlation id; when
  both sides have answered, the pair (texts, latencies, errors) is appended to a JSONL log.
* :class:`CanaryRouter` is the traffic router of a staged canary. It reads the **live file**
  (``<repository>/<model>/live.json`` by default, see :class:`LiveState`): which version is the
  champion, which the challenger, and what percentage of requests the challenger serves. A request
  is routed by a hash of its correlation id and, in shadow mode, mirrored to the other version so
  that every request yields a pair for the analysis.
* :class:`~edgeasr.canary.rollout.Rollout` steps the challenger's traffic through the policy's steps
  (e.g. 5, 25, 50, 100 percent); after each step :func:`~edgeasr.canary.stats.analyze` judges the step's pairs:
  *success* goes to the next step, *failure* counts against the failure limit and at the limit
  rolls back, *inconclusive* holds the step and gathers more pairs (``max_holds`` times, then the
  rollout ends **held**). Success at the last step **promotes**.

**Promotion and rollback never drop a request in flight.** Both versions stay loaded throughout;
promotion atomically replaces the live file (``os.replace``) so that requests routed from then on
go to the new champion, while requests routed before finish on the version they were sent to. Only
after the router's in-flight count for the retired version has drained (and only when the policy
says ``retire_versions``) is the repository's ``version_policy`` narrowed and the model reloaded
through Triton's explicit model control, so that clients that do not pin a version (Triton's
default is the highest loaded one) follow the live file too.

Exit codes of ``edgeasr canary rollout`` (and of ``shadow``, by the analysis outcome):
:data:`EXIT_PROMOTED` 0 promoted (success), :data:`EXIT_ERROR` 1 usage or server error,
:data:`EXIT_ROLLED_BACK` 3 rolled back (failure), :data:`EXIT_HELD` 4 held (inconclusive).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import threading
import time
import tomllib
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgeasr.audio import SAMPLE_RATE
from edgeasr.canary.stats import FAILURE, INCONCLUSIVE, SUCCESS, AnalysisOptions, analyze
from edgeasr.decoding import Transcript

__all__ = [
    "EXIT_ERROR",
    "EXIT_HELD",
    "EXIT_PROMOTED",
    "EXIT_ROLLED_BACK",
    "CanaryPolicy",
    "CanaryRouter",
    "LiveState",
    "PairLog",
    "ShadowProxy",
    "Transcriber",
    "add_canary_parser",
    "live_file_for",
    "read_live",
    "write_live",
]

EXIT_PROMOTED = 0
"""Exit code: promoted (rollout) or the analysis succeeded (shadow)."""
EXIT_ERROR = 1
"""Exit code: bad arguments or policy, unreachable server, missing files."""
EXIT_ROLLED_BACK = 3
"""Exit code: rolled back (rollout) or the analysis failed (shadow)."""
EXIT_HELD = 4
"""Exit code: held (rollout) or the analysis was inconclusive (shadow)."""
_EXIT = {SUCCESS: EXIT_PROMOTED, FAILURE: EXIT_ROLLED_BACK, INCONCLUSIVE: EXIT_HELD}
LIVE_FILENAME = "live.json"


class Transcriber(Protocol):
    """Anything with the client's ``transcribe`` (TritonClient, Recognizer, a test fake)."""

    def transcribe(self, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Transcript:
        """Transcribe one utterance."""
        ...


# -- policy -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CanaryPolicy:
    """A staged canary (the ``[canary]`` table of a TOML; ``[analysis]`` holds :attr:`analysis`)."""

    model: str = "edgeasr"  # Triton model name (the python flavour; its _onnx/_trt siblings follow)
    champion: str = ""  # live version now; "" = the live file's champion
    challenger: str = ""  # candidate version; "" = the repository's highest version
    steps: tuple[float, ...] = (5.0, 25.0, 50.0, 100.0)  # challenger traffic percent per step
    requests_per_step: int = 200  # requests replayed (rollout command) per analysis window
    max_failures: int = 1  # failed analyses tolerated in all; reaching it rolls back
    max_holds: int = 2  # inconclusive analyses in a row at one step before the rollout ends held
    shadow: bool = True  # mirror each request to the other version so every request is a pair
    mirror_workers: int = 4  # threads that run mirrored requests
    max_pending_mirrors: int = 64  # outstanding mirrors beyond which new ones are shed, not queued
    drain_timeout_s: float = 30.0  # wait for a retired version's in-flight requests, seconds
    retire_versions: bool = False  # also narrow the repository's version_policy and reload in Triton
    concurrency: int = 2  # replay concurrency of the rollout/shadow commands
    timeout_s: float = 10.0  # per-request deadline of the Triton clients, seconds
    live_file: str = ""  # live file; "" = <repository>/<model>/live.json
    analysis: AnalysisOptions = field(default_factory=AnalysisOptions)  # how each window is judged

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(float(s) for s in self.steps))
        object.__setattr__(self, "champion", str(self.champion))
        object.__setattr__(self, "challenger", str(self.challenger))
        if not self.steps or any(not 0 < s <= 100 for s in self.steps) or list(self.steps) != sorted(self.steps):
            raise ValueError(f"steps must be increasing percentages in (0, 100], got {list(self.steps)}")
        if self.requests_per_step < 1 or self.max_failures < 1 or self.max_holds < 0:
            raise ValueError("requests_per_step and max_failures must be >= 1, max_holds >= 0")
        if self.mirror_workers < 1 or self.max_pending_mirrors < 1 or self.concurrency < 1:
            raise ValueError("mirror_workers, max_pending_mirrors and concurrency must be >= 1")

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> CanaryPolicy:
        """Load ``[canary]`` and ``[analysis]`` from a TOML file; absent keys keep their defaults.

        Args:
            path: the policy file (see ``export/canary.toml``).

        Returns:
            The policy.

        Raises:
            FileNotFoundError: no such file.
            ValueError: unknown keys or invalid values.
        """
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        table = dict(data.get("canary", {}))
        known = {f.name for f in fields(cls)} - {"analysis"}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ValueError(f"{path}: unknown [canary] keys {unknown}; known: {sorted(known)}")
        analysis = AnalysisOptions.from_mapping(data.get("analysis", {}), f"{path}: [analysis]")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}, analysis=analysis)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (for reports)."""
        out = asdict(self)
        out["steps"] = list(self.steps)
        return out


# -- the live file ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveState:
    """What the traffic router serves: the content of the live file."""

    model: str  # Triton model name
    champion: str  # version that serves (100 - challenger_percent) % of requests
    challenger: str = ""  # version under canary; "" = none
    challenger_percent: float = 0.0  # share of requests the challenger answers
    phase: str = "stable"  # "stable", "canary", "promoted", "rolled_back" or "held"
    previous: str = ""  # the champion before the last promotion (for the record)
    updated: str = ""  # ISO time of the last change


def live_file_for(repository: str | os.PathLike, model: str) -> Path:
    """Return the default live file of a model: ``<repository>/<model>/live.json``.

    Triton ignores files in a model folder that are neither ``config.pbtxt`` nor a version.
    """
    return Path(repository) / model / LIVE_FILENAME


def read_live(path: str | os.PathLike) -> LiveState:
    """Read a live file.

    Args:
        path: the live file.

    Returns:
        The state.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a live file.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        known = {f.name for f in fields(LiveState)}
        return LiveState(**{k: v for k, v in data.items() if k in known})
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"{path}: not a live file ({exc})") from None


def write_live(path: str | os.PathLike, state: LiveState) -> LiveState:
    """Replace the live file atomically (temp file, fsync, ``os.replace``).

    Args:
        path: the live file.
        state: the new state; ``updated`` is set to now.

    Returns:
        The state as written.
    """
    path = Path(path)
    state = replace(state, updated=datetime.now(UTC).isoformat(timespec="milliseconds"))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(asdict(state), indent=2) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return state


# -- pair log and the mirroring engine --------------------------------------------------------------


class PairLog:
    """Thread-safe JSONL log of pair records (one JSON object per line, appended).

    Args:
        path: the log file (parent folders are created).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        """Append one record."""
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)

    def read(self) -> list[dict[str, Any]]:
        """Return every record logged so far."""
        if not self.path.exists():
            return []
        return [json.loads(x) for x in self.path.read_text(encoding="utf-8").splitlines() if x.strip()]


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
        self, log: str | os.PathLike | PairLog | None, workers: int, max_pending: int, keep_records: int
    ) -> None:
        self.log = log if isinstance(log, PairLog) or log is None else PairLog(log)
        self.max_pending = int(max_pending)
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
        if future is None:
            self._emit(record)
        else:
            future.add_done_callback(lambda f: self._finish(record, other, roles[other][1], f))
        if isinstance(result, Exception):
            raise result
        return replace(result, extra={**result.extra, "request_id": meta["id"], "served_by": served})

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
    ) -> None:
        super().__init__(log, workers, max_pending, keep_records)
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


def _bucket(request_id: str) -> float:
    """Map a correlation id to [0, 100) deterministically (the same id always routes the same way)."""
    return int(hashlib.sha256(request_id.encode()).hexdigest()[:8], 16) / 0x1_0000_0000 * 100.0


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
    ) -> None:
        super().__init__(log, workers, max_pending, keep_records)
        self.live_file = Path(live_file)
        self.shadow = bool(shadow)
        self.override: LiveState | None = None  # set by dry runs: route by this, never by the file
        self._client_for = client_for
        self._clients: dict[str, Transcriber] = {}
        self._state: LiveState | None = None
        self._stamp: tuple[int, int] | None = None

    def _client(self, version: str) -> Transcriber:  # caller holds self._lock
        if version not in self._clients:
            self._clients[version] = self._client_for(version)
        return self._clients[version]

    def _live_locked(self) -> LiveState:
        if self.override is not None:
            return self.override
        try:
            st = os.stat(self.live_file)
            stamp = (st.st_mtime_ns, st.st_size)
            if self._state is None or stamp != self._stamp:
                self._state, self._stamp = read_live(self.live_file), stamp
        except (OSError, ValueError):
            if self._state is None:  # never read: nothing to route by
                raise
            # a vanished or unreadable live file keeps the last good state: requests are never dropped for it
        return self._state

    def live(self) -> LiveState:
        """Return the live state the router routes by now."""
        with self._lock:
            return self._live_locked()

    def refresh(self) -> LiveState:
        """Re-read the live file now; requests routed after this see the new state."""
        with self._lock:
            self._stamp = None
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
        bucket = _bucket(meta["id"])

        def route() -> tuple[dict[str, tuple[Transcriber, str]], str, bool]:  # runs under self._lock
            state = self._live_locked()
            roles = {"champion": (self._client(state.champion), state.champion)}
            if state.challenger:
                roles["challenger"] = (self._client(state.challenger), state.challenger)
            meta["live_percent"] = state.challenger_percent
            served = "challenger" if state.challenger and bucket < state.challenger_percent else "champion"
            return roles, served, self.shadow and bool(state.challenger)

        return self._exchange(route, audio, sample_rate, meta)


# -- command line -----------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _policy(args: argparse.Namespace) -> CanaryPolicy:
    policy = CanaryPolicy.from_toml(args.policy) if getattr(args, "policy", None) else CanaryPolicy()
    changes = {
        k: getattr(args, k)
        for k in ("model", "champion", "challenger", "requests_per_step")
        if getattr(args, k, None) not in (None, "")
    }
    return replace(policy, **changes) if changes else policy


def _client_factory(url: str, model: str, timeout_s: float) -> Callable[[str], Transcriber]:
    from edgeasr.client import TritonClient

    return lambda version: TritonClient(url, model, str(version), timeout_s=timeout_s, retries=1)


def _cmd_shadow(args: argparse.Namespace) -> int:
    from edgeasr.canary.report import write_report
    from edgeasr.canary.rollout import load_utterances, replay

    policy = _policy(args)
    if not policy.champion or not policy.challenger:
        print("edgeasr canary shadow: give --champion and --challenger versions", file=sys.stderr)
        return EXIT_ERROR
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    utterances = load_utterances(args.manifest, args.limit)
    make = _client_factory(args.url, policy.model, policy.timeout_s)
    proxy = ShadowProxy(
        make(policy.champion),
        make(policy.challenger),
        log=out / "pairs.jsonl",
        champion_version=policy.champion,
        challenger_version=policy.challenger,
        workers=policy.mirror_workers,
        max_pending=policy.max_pending_mirrors,
    )
    started = _now()
    count = args.requests or len(utterances)
    served = replay(proxy, utterances, count, concurrency=policy.concurrency)
    proxy.close(policy.drain_timeout_s)
    analysis = analyze(list(proxy.records), policy.analysis)
    outcome = analysis.outcome
    summary = {
        "kind": "shadow",
        "final": outcome,
        "exit_code": _EXIT[outcome],
        "champion": policy.champion,
        "challenger": policy.challenger,
        "dry_run": True,
        "policy": policy.to_dict(),
        "stats": proxy.stats,
        "champion_failed_requests": served["errors"],
        "started": started,
        "ended": _now(),
        "decisions": [
            {
                "index": 0,
                "step": 0,
                "percent": 0.0,
                "exposure_percent": 0.0,
                "outcome": outcome,
                "action": "report",
                "reasons": list(analysis.reasons),
                "pairs": analysis.pairs,
                "analysis": analysis.to_dict(),
                "time": _now(),
            }
        ],
    }
    paths = write_report(summary, out)
    print(
        f"shadow {policy.model} {policy.champion} -> {policy.challenger}: {outcome} on {analysis.pairs} pairs; "
        f"champion failed {served['errors']}/{count}; report {paths['markdown']}"
    )
    for reason in analysis.reasons:
        print(f"  {reason}")
    return _EXIT[outcome]


def _cmd_rollout(args: argparse.Namespace) -> int:
    from edgeasr.canary.report import write_report
    from edgeasr.canary.rollout import Rollout, TritonVersionControl, load_utterances, replay

    policy = _policy(args)
    live = Path(args.live_file or policy.live_file or live_file_for(args.repository, policy.model))
    if not policy.champion:
        if not live.exists():
            print(f"edgeasr canary rollout: no --champion and no live file {live}", file=sys.stderr)
            return EXIT_ERROR
        policy = replace(policy, champion=read_live(live).champion)
    if not policy.challenger:
        from edgeasr.export.repository import ModelRepository

        latest = ModelRepository(args.repository).latest(policy.model)
        policy = replace(policy, challenger=str(latest or ""))
    if not args.dry_run and not live.exists():
        live.parent.mkdir(parents=True, exist_ok=True)
        write_live(live, LiveState(policy.model, policy.champion))
    utterances = load_utterances(args.manifest, args.limit)
    router = CanaryRouter(
        live,
        _client_factory(args.url, policy.model, policy.timeout_s),
        shadow=policy.shadow,
        log=Path(args.out) / "pairs.jsonl",
        workers=policy.mirror_workers,
        max_pending=policy.max_pending_mirrors,
    )
    offset = [0]

    def traffic(r: CanaryRouter, count: int) -> None:
        replay(r, utterances, count, concurrency=policy.concurrency, offset=offset[0])
        offset[0] += count

    control = (
        TritonVersionControl(args.url, args.repository, policy.model)
        if policy.retire_versions and not args.dry_run
        else None
    )
    try:
        result = Rollout(policy, router, traffic, control=control, dry_run=args.dry_run, log=print).run()
    except ValueError as exc:
        print(f"edgeasr canary rollout: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        router.close(policy.drain_timeout_s)
    paths = write_report({"kind": "rollout", **result.to_dict()}, args.out)
    print(f"report: {paths['json']}, {paths['markdown']}, {paths['plot']}")
    return result.exit_code


def _cmd_kserve(args: argparse.Namespace) -> int:
    from edgeasr.canary.kserve import write_manifests

    policy = _policy(args)
    paths = write_manifests(
        policy,
        args.out,
        storage_uri=args.storage_uri,
        name=args.name,
        namespace=args.namespace,
        runtime_version=args.runtime_version,
    )
    for path in paths:
        print(path)
    return 0


def _guard(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from edgeasr.client import ClientError

        try:
            return handler(args)
        except (ValueError, ClientError, OSError) as exc:
            print(f"edgeasr canary {args.canary_command}: {exc}", file=sys.stderr)
            return EXIT_ERROR

    return run


def add_canary_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``edgeasr canary shadow|rollout|kserve`` on the CLI's subparsers.

    Exit codes: 0 promoted / analysis success, 3 rolled back / failure, 4 held / inconclusive,
    1 error (bad policy or arguments, server unreachable, missing file).

    Args:
        subparsers: the object returned by ``ArgumentParser.add_subparsers()``.

    Returns:
        The ``canary`` parser.
    """
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = subparsers.add_parser(
        "canary",
        help="shadow traffic, staged canary rollout and KServe manifests",
        formatter_class=fmt,
        description="Compare what two versions of the model say (shadow), roll a challenger out in steps with "
        "an analysis after each (rollout), or write the policy as KServe InferenceServices (kserve). "
        "Exit codes: 0 promoted/success, 3 rolled back/failure, 4 held/inconclusive, 1 error.",
    )
    sub = parser.add_subparsers(dest="canary_command", required=True, metavar="ACTION")

    def common(p: argparse.ArgumentParser, server: bool = True) -> None:
        p.add_argument(
            "--policy",
            default=None,
            help="policy TOML ([canary], [analysis]), e.g. export/canary.toml; unset = defaults",
        )
        p.add_argument("--model", default=None, help="Triton model name (overrides the policy)")
        p.add_argument("--champion", default=None, help="champion (live) version (overrides the policy)")
        p.add_argument("--challenger", default=None, help="challenger version (overrides the policy)")
        if server:
            p.add_argument("--url", default="127.0.0.1:8001", help="Triton gRPC HOST:PORT")
            p.add_argument("--manifest", required=True, help="JSONL manifest replayed as traffic (texts = references)")
            p.add_argument("--limit", type=int, default=None, help="use only the first N manifest rows")

    p = sub.add_parser("shadow", help="mirror traffic to the challenger and compare", formatter_class=fmt)
    common(p)
    p.add_argument("--requests", type=int, default=None, help="requests to send; unset = one per manifest row")
    p.add_argument("--out", default="canary-shadow", help="folder for pairs.jsonl and the report")
    p.set_defaults(func=_guard(_cmd_shadow))

    p = sub.add_parser("rollout", help="staged canary: steps, analysis, promote/roll back/hold", formatter_class=fmt)
    common(p)
    p.add_argument("--repository", default="triton_models", help="the server's model repository (live file, versions)")
    p.add_argument("--live-file", default=None, help="live file; unset = <repository>/<model>/live.json")
    p.add_argument("--requests-per-step", type=int, default=None, help="requests per analysis (overrides the policy)")
    p.add_argument("--dry-run", action="store_true", help="shadow only: change nothing, report what would happen")
    p.add_argument("--out", default="canary-rollout", help="folder for pairs.jsonl and the report")
    p.set_defaults(func=_guard(_cmd_rollout))

    p = sub.add_parser("kserve", help="write the policy as KServe InferenceService manifests", formatter_class=fmt)
    common(p, server=False)
    p.add_argument("--storage-uri", required=True, help="model repository URI of the challenger (s3://, gs://, pvc://)")
    p.add_argument("--name", default="edgeasr", help="InferenceService name")
    p.add_argument("--namespace", default="", help="Kubernetes namespace (empty: none written)")
    p.add_argument("--runtime-version", default="24.10-py3", help="Triton image tag (runtimeVersion)")
    p.add_argument("--out", default="kserve", help="folder for one YAML per step plus promote/rollback")
    p.set_defaults(func=_guard(_cmd_kserve))
    return parser
