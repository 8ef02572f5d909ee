"""Continuous training: new data through the same gates as every model, up to the canary.

``edgeasr retrain --config retrain.toml`` runs five steps, each gated and logged, and stops at the
first gate that fails, saying why:

1. **validate** the new data (:func:`edgeasr.data.validate.validate_manifest`): errors stop it;
2. **train**: fine-tune from the champion's checkpoint (``train --init``) on the base recipe with
   the new data added to it (its ``extra_manifests``), for ``max_steps``;
3. **export** the best checkpoint with the export target (its parity, quantization and decoder
   checks) into the repository as a new version; publishing never changes who is live;
4. **bench** the new version on device against a budget of ``bench/budgets.toml``;
5. **canary**: with ``url`` (a running ``edgeasr serve --allow-model-control``), a staged rollout
   by the canary policy, which promotes or rolls back; without it, the new version is handed over
   (published, not live), and the step says which command runs the rollout.

Progress is kept in ``<work_dir>/state.json`` after every step, so a run that is interrupted
(killed, a full disk) resumes at the step that did not finish; training resumes from its own
``last.pt``. ``--dry-run`` prints the plan and changes nothing. A run can start by hand, on a drift
report (``--if-drift drift.json``: only when ``edgeasr monitor`` found drift) or when new data
arrives (``--if-new-data``: only when the new manifest's data version differs from the last run's;
``--watch SECONDS`` polls for it and runs each time it changes). A run on new data starts over at
the first step, keeping the previous run's record and training folder.
"""

from __future__ import annotations

import json
import os
import time
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgeasr.files import write_atomic

__all__ = ["STEPS", "RetrainConfig", "RetrainError", "Retrainer"]

STEPS = ("validate", "train", "export", "bench", "canary")
"""The steps of a retraining run, in order."""


class RetrainError(RuntimeError):
    """A gate failed: the run stops here; ``step`` says which."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step, self.reason = step, reason


@dataclass(frozen=True)
class RetrainConfig:
    """``retrain.toml``, table ``[retrain]``."""

    new_data: str  # manifest of the new labelled audio
    recipe: str = "recipes/default.toml"  # the base recipe (its data, model and schedule)
    init: str = "recipes/checkpoints/default.pt"  # the champion's checkpoint, fine-tuned from
    max_steps: int = 1000  # fine-tuning steps
    new_data_repeats: int = 2  # times the new rows count per epoch beside the recipe's data
    dev_manifest: str = ""  # chooses the best checkpoint ("" = the recipe's dev manifest)
    export_target: str = "export/default.toml"  # export target (its checks are the export gate)
    check_manifest: str = ""  # utterances for the export checks ("" = the dev manifest)
    repository: str = "triton_models"  # where the new version is published
    bench_manifest: str = "samples/manifest.jsonl"  # what the bench gate measures
    budgets: str = "bench/budgets.toml"  # the budget file of the bench gate
    budget_target: str = "ci-device"  # the target in it
    canary_policy: str = "export/canary.toml"  # the policy a rollout follows
    url: str = ""  # a running edgeasr serve (gRPC) for the rollout; "" hands the version over
    work_dir: str = "work/retrain"  # state.json, the training run, the reports

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> RetrainConfig:
        """Read the ``[retrain]`` table; unknown keys are an error."""
        with open(path, "rb") as fh:
            table = tomllib.load(fh).get("retrain", {})
        unknown = set(table) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"{path}: unknown [retrain] key(s): {', '.join(sorted(unknown))}")
        if "new_data" not in table:
            raise ValueError(f"{path}: [retrain] needs new_data (a manifest)")
        return cls(**table)


class Retrainer:
    """One retraining run, step by step, resumable.

    Args:
        config: what to retrain and where.
        log: called with each line of progress (default: print).
    """

    def __init__(self, config: RetrainConfig, log=print) -> None:
        self.config = config
        self.work = Path(config.work_dir)
        self.state_path = self.work / "state.json"
        self.log = log
        self.state: dict[str, Any] = self._read_state()

    # -- state --------------------------------------------------------------------------------

    def _read_state(self) -> dict[str, Any]:
        if self.state_path.is_file():
            return json.loads(self.state_path.read_text())
        return {"config": asdict(self.config), "done": {}, "history": []}

    def _save(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        write_atomic(self.state_path, json.dumps(self.state, indent=2) + "\n")

    def _record(self, step: str, outcome: str, **details: Any) -> None:
        entry = {"step": step, "outcome": outcome, "at": datetime.now(UTC).isoformat(timespec="seconds"), **details}
        self.state["history"].append(entry)
        if outcome == "passed":
            self.state["done"][step] = details
        self._save()
        self.log(
            f"retrain {step}: {outcome}"
            + (f" ({details.get('reason') or details.get('summary', '')})" if details else "")
        )

    # -- triggers -----------------------------------------------------------------------------

    def watch(self, interval_s: float, *, if_drift: str | None = None, polls: int | None = None) -> int:
        """Poll for new data (and, with ``if_drift``, drift) every ``interval_s``; run when it asks.

        New data is a new data version of ``new_data`` (a manifest that grows as labelled audio
        arrives in its folder). A gate that fails is logged and the watch goes on: the next data
        gets its own run.

        Args:
            interval_s: seconds between polls.
            if_drift: also require drift in this drift report.
            polls: stop after this many polls (None: forever).

        Returns:
            The number of runs started.
        """
        started, poll = 0, 0
        while polls is None or poll < polls:
            poll += 1
            try:
                run, why = self.should_run(if_drift=if_drift, if_new_data=True)
            except (OSError, ValueError) as exc:  # the manifest is being written: next poll
                run, why = False, str(exc)
            if run:
                started += 1
                self.log(f"retrain watch: {why}: run {started}")
                try:
                    self.run()
                except RetrainError as exc:
                    self.log(f"retrain watch: stopped at {exc}")
            if polls is None or poll < polls:
                time.sleep(interval_s)
        return started

    def new_data_version(self) -> str:
        """The data version of the new manifest."""
        from edgeasr.manifest import data_version

        return data_version(self.config.new_data)

    def should_run(self, *, if_drift: str | None = None, if_new_data: bool = False) -> tuple[bool, str]:
        """Whether a trigger asks for a run: (run?, why)."""
        if if_drift:
            report = json.loads(Path(if_drift).read_text())
            if not report.get("drift"):
                return False, f"{if_drift}: no drift"
        if if_new_data:
            trained = self.state.get("done", {}).get("validate", {}).get("data_version")
            if trained and trained == self.new_data_version():
                return False, f"{self.config.new_data}: no new data since the last run ({trained})"
        return True, "drift" if if_drift else ("new data" if if_new_data else "by hand")

    def plan(self) -> list[str]:
        """What a run would do, step by step (the dry run)."""
        c, done = self.config, self.state.get("done", {})
        lines = [
            f"validate {c.new_data}",
            f"train: fine-tune {c.init} on {c.recipe} + {c.new_data} (x{c.new_data_repeats}) for {c.max_steps} steps "
            f"into {self.work / 'run'}",
            f"export the best checkpoint with {c.export_target} into {c.repository} (a new version, not live)",
            f"bench it on {c.bench_manifest} against {c.budgets} [{c.budget_target}]",
            f"canary: rollout by {c.canary_policy} at {c.url}" if c.url else "canary: hand over (publish only)",
        ]
        return [f"{'done' if s in done else 'todo'}  {s:<9} {line}" for s, line in zip(STEPS, lines, strict=True)]

    def start_over(self, why: str) -> None:
        """Close the current run: its record moves to ``state["runs"]``, its training folder to
        ``<work_dir>/run-<n>``; the next :meth:`run` starts at the first step."""
        runs = self.state.setdefault("runs", [])
        previous = self.work / "run"
        kept = self.work / f"run-{len(runs) + 1}"
        if previous.exists():
            previous.rename(kept)
        runs.append({"done": self.state["done"], "closed": datetime.now(UTC).isoformat(timespec="seconds"),
                     "why": why, "folder": str(kept)})  # fmt: skip
        self.state["done"] = {}
        self._save()
        self.log(f"retrain: starting over: {why}")

    # -- the steps ----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Run every step not done yet; returns the state.

        A run whose data has changed since its validation starts over (:meth:`start_over`): the
        steps done were done for other data.

        Raises:
            RetrainError: a gate failed (the state records it; fix and run again to resume).
        """
        validated = self.state["done"].get("validate", {}).get("data_version")
        if validated and validated != self.new_data_version():
            self.start_over(f"new data ({validated} -> {self.new_data_version()})")
        for step in STEPS:
            if step in self.state["done"]:
                self.log(f"retrain {step}: done already")
                continue
            try:
                details = getattr(self, f"_{step}")()
            except RetrainError as exc:
                self._record(step, "failed", reason=exc.reason)
                raise
            self._record(step, "passed", **details)
        return self.state

    def _validate(self) -> dict[str, Any]:
        from edgeasr.data.validate import validate_manifest

        report = validate_manifest(self.config.new_data)
        errors = sum(1 for i in report.issues if i.severity == "error")
        if errors:
            raise RetrainError("validate", f"{errors} error(s) in {self.config.new_data}: {report.issues[0].message}")
        return {"rows": report.profile.get("rows", 0), "data_version": self.new_data_version(), "summary": "clean"}

    def _train(self) -> dict[str, Any]:
        from edgeasr.training.recipe import TrainRecipe
        from edgeasr.training.train import train

        c = self.config
        base = TrainRecipe.from_toml(c.recipe)
        data = replace(
            base.data,
            extra_manifests=(*base.data.extra_manifests, c.new_data),
            extra_repeats=(*(base.data.extra_repeats or (1,) * len(base.data.extra_manifests)), c.new_data_repeats),
            dev_manifest=c.dev_manifest or base.data.dev_manifest,
        )
        recipe = replace(base, name=f"{base.name}-retrain", data=data)
        out = self.work / "run"
        resume = (out / "last.pt").is_file()
        result = train(
            recipe, out, resume=resume, init=None if resume else c.init, max_steps=c.max_steps, progress=False
        )
        if not Path(result.best_checkpoint).is_file():
            raise RetrainError("train", "no checkpoint was written")
        return {"checkpoint": str(result.best_checkpoint), "steps": result.steps, "summary": f"{result.steps} steps"}

    def _export(self) -> dict[str, Any]:
        from edgeasr.export.pipeline import export_checkpoint
        from edgeasr.export.target import ExportCheckError, ExportTarget

        c = self.config
        checkpoint = self.state["done"]["train"]["checkpoint"]
        try:
            result = export_checkpoint(
                checkpoint,
                ExportTarget.from_toml(c.export_target),
                check_manifest=c.check_manifest or None,
                repository=c.repository,
                repository_toml=c.export_target,
            )
        except ExportCheckError as exc:
            raise RetrainError("export", str(exc)) from None
        return {"version": result.version, "path": str(result.path), "summary": f"version {result.version}"}

    def _bench(self) -> dict[str, Any]:
        from edgeasr.bench.budgets import check_budget, load_budget
        from edgeasr.bench.runner import BenchOptions, DeviceBackend, load_workloads, measured_for_budget, run_bench

        c = self.config
        budget = load_budget(c.budgets, c.budget_target)
        backend = DeviceBackend(self.state["done"]["export"]["path"])
        result = run_bench(backend, load_workloads([c.bench_manifest]), BenchOptions(concurrency=(1,)), False)
        checks = check_budget(budget, measured_for_budget(result, budget.at_concurrency))
        (self.work / "bench.json").write_text(json.dumps(result, indent=2, default=str))
        missed = [f"{k.limit_name} {k.measured} against {k.limit:g}" for k in checks if not k.passed]
        if missed:
            raise RetrainError("bench", f"budget {c.budget_target} missed: {'; '.join(missed)}")
        return {"wer": result["summary"].get("wer"), "summary": f"budget {c.budget_target} met"}

    def _canary(self) -> dict[str, Any]:
        c = self.config
        version = self.state["done"]["export"]["version"]
        if not c.url:
            command = (
                f"edgeasr canary rollout --policy {c.canary_policy} --url HOST:PORT --repository {c.repository} "
                f"--challenger {version}"
            )
            return {"handed_over": version, "summary": f"version {version} published, not live; next: {command}"}
        import argparse

        from edgeasr.canary import cli as canary_cli

        parser = argparse.ArgumentParser(prog="edgeasr")
        canary_cli.add_parser(parser.add_subparsers())
        args = parser.parse_args(
            ["canary", "rollout", "--policy", c.canary_policy, "--url", c.url, "--repository", c.repository,
             "--challenger", str(version), "--manifest", c.bench_manifest, "--out", str(self.work / "canary")]
        )  # fmt: skip
        code = args.func(args)
        if code != 0:
            raise RetrainError("canary", f"the rollout of version {version} ended with exit code {code} (not promoted)")
        return {"promoted": version, "summary": f"version {version} promoted"}
