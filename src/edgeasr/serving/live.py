"""Who serves what: the live file (champion, challenger, share) and the JSONL pair log.

**The live file** (``<repository>/<model>/live.json`` by default, :func:`live_file_for`) is the
single source of truth of a staged canary: which version is the champion, which the challenger,
and what percentage of requests the challenger serves (:class:`LiveState`)::

    {"model": "edgeasr", "champion": "1", "challenger": "2", "challenger_percent": 25.0,
     "phase": "canary", "previous": "", "updated": "2024-05-01T12:00:00.000+00:00", "shadow": false}

Two routers obey it: the routing front of ``edgeasr serve`` (:mod:`edgeasr.serving.front`), for
every gRPC client that names no version, and the caller-side
:class:`~edgeasr.canary.router.CanaryRouter`. Both route a request by :func:`route_bucket` of its
id, so the same id goes the same way on either. Publishing writes the file once, naming the first
version champion (:meth:`~edgeasr.export.repository.ModelRepository.publish`), and never changes it
again; :class:`~edgeasr.canary.rollout.Rollout` rewrites it at each step. :func:`write_live` replaces it
atomically (temp file, fsync, ``os.replace``), so a router that re-reads it sees either the old
state or the new one, never half a file; promotion and rollback are one such write. Triton ignores
the file: a model folder's entries other than ``config.pbtxt`` and the version folders are not its
business.

**The pair log** (:class:`PairLog`) is the JSONL file the router and the shadow proxy append one
*pair record* to per request (both sides' texts, latencies and errors; the format is described in
:mod:`edgeasr.canary.stats`, which analyses it).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgeasr.files import write_atomic

__all__ = [
    "LIVE_FILENAME",
    "LiveFile",
    "LiveState",
    "PairLog",
    "live_file_for",
    "read_live",
    "route_bucket",
    "write_live",
]

LIVE_FILENAME = "live.json"
"""Name of the default live file in a model's folder of the repository."""


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
    shadow: bool = False  # the serving front mirrors each request to the other version and logs the pair


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
    write_atomic(path, json.dumps(asdict(state), indent=2) + "\n")
    return state


def route_bucket(request_id: str) -> float:
    """Map a request id to [0, 100) deterministically: below ``challenger_percent`` goes to the challenger."""
    return int(hashlib.sha256(request_id.encode()).hexdigest()[:8], 16) / 0x1_0000_0000 * 100.0


class LiveFile:
    """A live file as a router reads it: re-read when its mtime or size changes, thread-safe.

    A file that vanishes or turns unreadable after a good read keeps the last good state, so a
    request is never dropped for a half-finished edit by hand.

    Args:
        path: the live file.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._state: LiveState | None = None
        self._stamp: tuple[int, int] | None = None

    def state(self, *, required: bool = False) -> LiveState | None:
        """The current state; None when the file has never been readable (``required``: raise then).

        Raises:
            FileNotFoundError, ValueError: with ``required``, when there is no good state to route by.
        """
        with self._lock:
            try:
                st = os.stat(self.path)
                stamp = (st.st_mtime_ns, st.st_size)
                if self._state is None or stamp != self._stamp:
                    self._state, self._stamp = read_live(self.path), stamp
            except (OSError, ValueError):
                if self._state is None and required:
                    raise
            return self._state

    def forget(self) -> None:
        """Drop the cached stamp: the next :meth:`state` reads the file again."""
        with self._lock:
            self._stamp = None


# -- the pair log -----------------------------------------------------------------------------------


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
