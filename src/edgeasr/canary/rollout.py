"""The staged canary: traffic replay, the rollout state machine, and retiring versions in Triton.

:class:`Rollout` drives a :class:`~edgeasr.canary.router.CanaryRouter` through the policy's traffic steps
(e.g. 5, 25, 50, 100 percent). After each step the step's pairs are judged by
:func:`~edgeasr.canary.stats.analyze`:

* **success**: go to the next step; success at the last step **promotes** the challenger;
* **failure**: counts against the failure limit (``max_failures``, counted over the whole rollout);
  reaching it **rolls back**; below it the step is retried with a fresh window;
* **inconclusive**: **hold** the step and gather more pairs into the same window, up to
  ``max_holds`` times; then the rollout ends **held** with the traffic split left as it is, for a
  person to decide.

Promotion writes the live file with the challenger as champion; rollback writes it with the
champion alone. Both versions stay loaded while requests routed before the change finish; only
then (``retire_versions``) does :class:`TritonVersionControl` narrow the repository's version
policy and reload the model. A dry run routes by an in-memory state with 0 % exposure (pure
shadow), never writes the live file nor touches Triton, and records what it would have done.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from edgeasr.audio import SAMPLE_RATE
from edgeasr.bench.runner import ErrorTally
from edgeasr.canary.policy import EXIT_HELD, EXIT_PROMOTED, EXIT_ROLLED_BACK, CanaryPolicy
from edgeasr.canary.router import CanaryRouter, ShadowProxy
from edgeasr.canary.stats import FAILURE, SUCCESS, analyze
from edgeasr.canary.versions import set_live
from edgeasr.serving.live import LiveState, read_live, write_live

__all__ = [
    "Rollout",
    "RolloutResult",
    "TritonVersionControl",
    "Utterance",
    "load_utterances",
    "replay",
]


# -- Triton version control -------------------------------------------------------------------------


class TritonVersionControl:
    """Retire a version from Triton without dropping requests: narrow the version policy, reload.

    Needs the server's model repository on this machine and ``--model-control-mode explicit``
    (as :class:`~edgeasr.serving.server.TritonServer` runs it). Triton loads the new config beside the old
    one and unloads the removed version after its in-flight requests completed.

    Args:
        url: the server's gRPC address.
        repository: the server's model repository.
        model: the model name (python flavour; sibling flavours' configs follow).
        timeout_s: deadline of the model-control calls.
    """

    def __init__(self, url: str, repository: str | os.PathLike, model: str, timeout_s: float = 120.0) -> None:
        import tritonclient.grpc as grpcclient

        self.url, self.repository, self.model, self.timeout_s = url, Path(repository), model, float(timeout_s)
        self._client = grpcclient.InferenceServerClient(url)

    def served_versions(self) -> list[int]:
        """Return the model's versions that are READY in Triton now."""
        index = self._client.get_model_repository_index(as_json=True, client_timeout=self.timeout_s)
        return sorted(
            int(m["version"])
            for m in index.get("models", [])
            if m.get("name") == self.model and m.get("state") == "READY" and m.get("version")
        )

    def retire(self, version: str | int) -> list[int]:
        """Stop serving ``version``: version policy = the other ready versions, then reload.

        Args:
            version: the version to retire.

        Returns:
            The versions served afterwards.

        Raises:
            ValueError: it is the only version served.
        """
        keep = [v for v in self.served_versions() if v != int(version)]
        if not keep:
            raise ValueError(f"{self.model}: version {version} is the only one served; not retiring it")
        set_live(self.repository, self.model, keep)
        self._client.load_model(self.model, client_timeout=self.timeout_s)
        return keep

    def is_ready(self, version: str | int) -> bool:
        """Whether Triton serves ``version`` now (a health call, open without model control)."""
        try:
            return bool(self._client.is_model_ready(self.model, str(version), client_timeout=self.timeout_s))
        except Exception:  # unknown version: Triton answers with an error, not False
            return False

    def serve_also(self, version: str | int) -> list[int]:
        """Load ``version`` beside the versions served now (version policy = both), then reload.

        Args:
            version: a version on disk that Triton does not serve yet (a new challenger).

        Returns:
            The versions served afterwards.
        """
        keep = sorted({*self.served_versions(), int(version)})
        set_live(self.repository, self.model, keep)
        self._client.load_model(self.model, client_timeout=self.timeout_s)
        return self.served_versions()

    def serve_all(self) -> list[int]:
        """Serve every version on disk again (``version_policy: all``) and reload."""
        set_live(self.repository, self.model)
        self._client.load_model(self.model, client_timeout=self.timeout_s)
        return self.served_versions()


# -- traffic replay ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Utterance:
    """One replayable request."""

    name: str  # audio path or label, logged with the pair
    audio: np.ndarray  # 16 kHz mono float32
    reference: str | None  # manifest text, None when unlabelled
    duration_s: float  # seconds


def load_utterances(
    manifest: str | os.PathLike, limit: int | None = None, shuffle: int | None = None
) -> list[Utterance]:
    """Read a manifest's audio (16 kHz) and labels into memory.

    Args:
        manifest: a JSONL manifest.
        limit: read at most this many rows (after the shuffle).
        shuffle: a seed: the rows in the order ``random.Random(shuffle).shuffle`` gives them, so that
            every analysis window of a manifest ordered by source (the real-speech dev side) mixes
            the sources; None keeps the manifest's order.

    Returns:
        The utterances, in manifest order (or the seeded order).

    Raises:
        FileNotFoundError: the manifest or an audio file is missing.
        ValueError: the manifest is empty.
    """
    from edgeasr.manifest import load_row_audio, read_manifest

    rows = read_manifest(manifest)
    if shuffle is not None:
        random.Random(shuffle).shuffle(rows)
    rows = rows[:limit]
    if not rows:
        raise ValueError(f"{manifest}: no rows")
    out = []
    for row in rows:
        audio = load_row_audio(row, manifest)
        text = str(row.get("text") or "").strip() or None
        out.append(Utterance(str(row["audio_filepath"]), audio, text, len(audio) / SAMPLE_RATE))
    return out


def replay(
    target: ShadowProxy | CanaryRouter,
    utterances: Sequence[Utterance],
    count: int,
    *,
    concurrency: int = 1,
    offset: int = 0,
) -> dict[str, int]:
    """Send ``count`` requests through a proxy or router, cycling through ``utterances``.

    Args:
        target: the proxy or router.
        utterances: what to send.
        count: number of requests.
        concurrency: requests in flight at once.
        offset: start at this utterance (to vary windows).

    Returns:
        ``{"requests": ..., "errors": ..., "error_messages": {"Type: message": count}}`` as seen
        by the callers (served answers only; the first 10 distinct messages are kept).
    """
    errors = ErrorTally()

    def one(k: int) -> None:
        u = utterances[(offset + k) % len(utterances)]
        try:
            target.transcribe(u.audio, SAMPLE_RATE, reference=u.reference, audio_name=u.name, duration_s=u.duration_s)
        except Exception as exc:  # the failure is data: counted with its message
            errors.add(exc)

    with ThreadPoolExecutor(max_workers=max(1, int(concurrency))) as pool:
        list(pool.map(one, range(int(count))))
    return {"requests": int(count), "errors": errors.count, "error_messages": errors.messages}


# -- the staged rollout -----------------------------------------------------------------------------


@dataclass
class RolloutResult:
    """The outcome of a rollout and every decision taken on the way."""

    final: str  # "promoted", "rolled_back" or "held"
    exit_code: int  # EXIT_PROMOTED, EXIT_ROLLED_BACK or EXIT_HELD
    champion: str  # champion version at the start
    challenger: str  # challenger version
    dry_run: bool  # nothing was changed; decisions say what would have happened
    decisions: list[dict[str, Any]]  # one per analysis: step, percent, outcome, action, reasons, metrics
    live_before: dict[str, Any]  # live state at the start
    live_after: dict[str, Any]  # live state at the end
    retired: list[str]  # versions taken out of Triton's version policy
    policy: dict[str, Any]  # the policy that ran
    stats: dict[str, int]  # router counters (requests, mirrored, shed, errors per role)
    started: str  # ISO time
    ended: str = ""  # ISO time

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Rollout:
    """Run a staged canary: steps, an analysis after each, promote / roll back / hold.

    Args:
        policy: the canary policy (champion and challenger must be set).
        router: the traffic router; its live file is rewritten at each step unless ``dry_run``.
        traffic: ``traffic(router, count)`` sends ``count`` requests (e.g. :func:`replay` of a manifest);
            production traffic flowing through the router counts as well.
        control: retires versions in Triton after promotion/rollback (when ``policy.retire_versions``).
        dry_run: shadow only (0 % exposure), never write the live file or touch Triton; the decisions
            say what would have happened.
        log: called with one line per decision (e.g. ``print``).
    """

    def __init__(
        self,
        policy: CanaryPolicy,
        router: CanaryRouter,
        traffic: Callable[[CanaryRouter, int], Any],
        *,
        control: TritonVersionControl | None = None,
        dry_run: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if not policy.champion or not policy.challenger or policy.champion == policy.challenger:
            raise ValueError(
                f"need distinct champion and challenger versions, got {policy.champion!r}, {policy.challenger!r}"
            )
        self.policy, self.router, self.traffic = policy, router, traffic
        self.control, self.dry_run = control, bool(dry_run)
        self._log = log or (lambda _line: None)

    def _set(self, state: LiveState) -> LiveState:
        if self.dry_run:
            self.router.override = state
            return state
        state = write_live(self.router.live_file, state)
        self.router.refresh()
        return state

    @contextlib.contextmanager
    def _window(self) -> Iterator[list[dict[str, Any]]]:
        """Collect the router's records while the block runs."""
        window: list[dict[str, Any]] = []
        lock = threading.Lock()

        def sink(record: dict[str, Any]) -> None:
            with lock:
                window.append(record)

        self.router.add_listener(sink)
        try:
            yield window
        finally:
            self.router.remove_listener(sink)

    def run(self) -> RolloutResult:
        """Run the rollout to its end.

        Returns:
            The result (the report writers take its :meth:`~RolloutResult.to_dict`).
        """
        p = self.policy
        before = (
            asdict(read_live(self.router.live_file))
            if self.router.live_file.exists()
            else asdict(LiveState(p.model, p.champion))
        )
        result = RolloutResult(
            "held", EXIT_HELD, p.champion, p.challenger, self.dry_run, [], before, {}, [], p.to_dict(), {}, _now()
        )
        failures = 0
        for step, percent in enumerate(p.steps):
            exposure = 0.0 if self.dry_run else percent
            self._set(LiveState(p.model, p.champion, p.challenger, exposure, "canary", before.get("previous", "")))
            holds = 0
            with self._window() as window:
                while True:
                    served_before = self.router.stats["served_errors"]
                    self.traffic(self.router, p.requests_per_step)
                    self.router.drain(p.drain_timeout_s)
                    analysis = analyze(list(window), p.analysis)
                    decision = {
                        "index": len(result.decisions),
                        "step": step,
                        "percent": percent,
                        "exposure_percent": exposure,
                        "outcome": analysis.outcome,
                        "reasons": list(analysis.reasons),
                        "pairs": analysis.pairs,
                        "served_errors": self.router.stats["served_errors"] - served_before,
                        "analysis": analysis.to_dict(),
                        "time": _now(),
                    }
                    result.decisions.append(decision)
                    if analysis.outcome == SUCCESS:
                        decision["action"] = "promote" if step == len(p.steps) - 1 else "next step"
                        break
                    if analysis.outcome == FAILURE:
                        failures += 1
                        if failures >= p.max_failures:
                            decision["action"] = "roll back"
                            self._log(self._line(decision))
                            return self._finish(result, "rolled_back")
                        decision["action"] = f"retry ({failures}/{p.max_failures} failures)"
                        window.clear()
                    else:
                        holds += 1
                        if holds > p.max_holds:
                            decision["action"] = "hold (ends the rollout)"
                            self._log(self._line(decision))
                            return self._finish(result, "held")
                        decision["action"] = f"hold ({holds}/{p.max_holds}), gather more"
                    self._log(self._line(decision))
            self._log(self._line(decision))
        return self._finish(result, "promoted")

    def _line(self, d: dict[str, Any]) -> str:
        verb = "would " if self.dry_run else ""
        why = f": {'; '.join(d['reasons'])}" if d["reasons"] else ""
        head = f"step {d['step'] + 1} ({d['percent']:g}%): {d['outcome']} on {d['pairs']} pairs"
        return f"{head} -> {verb}{d['action']}{why}"

    def _finish(self, result: RolloutResult, final: str) -> RolloutResult:
        p = self.policy
        result.final = final
        result.exit_code = {"promoted": EXIT_PROMOTED, "rolled_back": EXIT_ROLLED_BACK, "held": EXIT_HELD}[final]
        if final == "promoted":
            state, retire = LiveState(p.model, p.challenger, "", 0.0, "promoted", p.champion), p.champion
        elif final == "rolled_back":
            state, retire = LiveState(p.model, p.champion, "", 0.0, "rolled_back", p.challenger), p.challenger
        else:  # held: keep the current split for a human to decide
            current = self.router.live()
            state, retire = replace(current, phase="held"), ""
        if self.dry_run:
            self.router.override = None
            result.live_after = {**result.live_before, "would_be": asdict(state)}
        else:
            result.live_after = asdict(self._set(state))
            if retire:
                drained = self.router.wait_drained(retire, p.drain_timeout_s)
                if p.retire_versions and self.control is not None and drained:
                    self.control.retire(retire)
                    result.retired.append(retire)
        self.router.drain(p.drain_timeout_s)
        result.stats = dict(self.router.stats)
        result.ended = _now()
        self._log(
            f"{'dry run: would have ' if self.dry_run else ''}{final.replace('_', ' ')}: "
            f"champion {state.champion} (exit code {result.exit_code})"
        )
        return result
