"""The canary policy and the canary's exit codes: what a staged rollout is asked to do.

A :class:`CanaryPolicy` is the ``[canary]`` table of a policy TOML (``export/canary.toml``), with
the ``[analysis]`` table as its :attr:`CanaryPolicy.analysis`
(:class:`~edgeasr.canary.stats.AnalysisOptions`)::

    [canary]
    model = "edgeasr"            # Triton model name
    champion = ""                # live version; "" = the champion in the live file
    challenger = ""              # candidate version; "" = the highest version in the repository
    steps = [5, 25, 50, 100]     # challenger traffic percent per step
    ...

    [analysis]
    min_samples = 100            # pairs needed before any verdict
    ...

Every key is optional (absent keys keep the dataclass defaults); unknown keys are errors. The
policy is frozen: the command line's overrides (``--model``, ``--champion``, ...) make a new one
with :func:`dataclasses.replace`. The same policy drives the in-process rollout
(:class:`~edgeasr.canary.rollout.Rollout`) and the KServe manifests
(:func:`~edgeasr.canary.kserve.write_manifests`).

Exit codes of ``edgeasr canary rollout`` (and of ``shadow``, by the analysis outcome):
:data:`EXIT_PROMOTED` 0 promoted (success), :data:`EXIT_ERROR` 1 usage or server error,
:data:`EXIT_ROLLED_BACK` 3 rolled back (failure), :data:`EXIT_HELD` 4 held (inconclusive).
:data:`EXIT_CODES` maps an analysis outcome (:data:`~edgeasr.canary.stats.SUCCESS`,
:data:`~edgeasr.canary.stats.FAILURE`, :data:`~edgeasr.canary.stats.INCONCLUSIVE`) to its exit code.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from edgeasr.canary.stats import FAILURE, INCONCLUSIVE, SUCCESS, AnalysisOptions

__all__ = [
    "EXIT_CODES",
    "EXIT_ERROR",
    "EXIT_HELD",
    "EXIT_PROMOTED",
    "EXIT_ROLLED_BACK",
    "CanaryPolicy",
]

EXIT_PROMOTED = 0
"""Exit code: promoted (rollout) or the analysis succeeded (shadow)."""
EXIT_ERROR = 1
"""Exit code: bad arguments or policy, unreachable server, missing files."""
EXIT_ROLLED_BACK = 3
"""Exit code: rolled back (rollout) or the analysis failed (shadow)."""
EXIT_HELD = 4
"""Exit code: held (rollout) or the analysis was inconclusive (shadow)."""
EXIT_CODES = {SUCCESS: EXIT_PROMOTED, FAILURE: EXIT_ROLLED_BACK, INCONCLUSIVE: EXIT_HELD}
"""Exit code of each analysis outcome (``success``, ``failure``, ``inconclusive``)."""


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
    concurrency: int = 2  # replay threads of the rollout/shadow commands; each waits for its pair (paced)
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
