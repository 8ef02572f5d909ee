"""`edgeasr retrain` on a tiny corpus: every gate for the right reason, resume after an interruption."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="retraining needs torch (the train extra)")

from edgeasr.monitor.retrain import RetrainConfig, Retrainer, RetrainError

ROOT = Path(__file__).resolve().parents[1]


def _setup(
    tmp_path: Path, tiny_corpus: Path, tiny_checkpoint: Path, max_wer: float, new_data: Path | None = None
) -> Path:
    recipe = (ROOT / "recipes" / "tiny.toml").read_text()
    recipe = recipe.replace("work/tiny/train.jsonl", str(tiny_corpus / "train.jsonl"))
    recipe = recipe.replace("work/tiny/dev.jsonl", str(tiny_corpus / "dev.jsonl"))
    (tmp_path / "tiny.toml").write_text(recipe)
    (tmp_path / "budgets.toml").write_text(
        f'[targets.gate]\ndescription = "the retrain gate"\nmax_wer = {max_wer}\nmin_speed_x_realtime = 1\n'
    )
    config = tmp_path / "retrain.toml"
    config.write_text(
        "[retrain]\n"
        f'new_data = "{new_data or tiny_corpus / "dev.jsonl"}"\n'
        f'recipe = "{tmp_path / "tiny.toml"}"\n'
        f'init = "{tiny_checkpoint}"\n'
        "max_steps = 4\n"
        f'export_target = "{ROOT / "export" / "cpu-fp32.toml"}"\n'
        f'check_manifest = "{tiny_corpus / "dev.jsonl"}"\n'
        f'repository = "{tmp_path / "models"}"\n'
        f'bench_manifest = "{tiny_corpus / "test.jsonl"}"\n'
        f'budgets = "{tmp_path / "budgets.toml"}"\n'
        'budget_target = "gate"\n'
        f'work_dir = "{tmp_path / "work"}"\n'
    )
    return config


def test_a_run_resumes_after_an_interruption_and_hands_over_a_version(
    tmp_path: Path, tiny_corpus: Path, tiny_checkpoint: Path, monkeypatch
) -> None:
    config = RetrainConfig.from_toml(_setup(tmp_path, tiny_corpus, tiny_checkpoint, max_wer=1.0))
    retrainer = Retrainer(config, log=lambda line: None)
    assert [line.split()[0] for line in retrainer.plan()] == ["todo"] * 5

    def killed(self):  # the machine goes down while exporting
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(Retrainer, "_export", killed)
        with pytest.raises(KeyboardInterrupt):
            retrainer.run()
    state = json.loads((tmp_path / "work" / "state.json").read_text())
    assert list(state["done"]) == ["validate", "train"]  # what finished is kept
    trained = state["done"]["train"]["checkpoint"]

    again = Retrainer(config, log=lambda line: None)
    assert [line.split()[0] for line in again.plan()] == ["done", "done", "todo", "todo", "todo"]
    state = again.run()
    assert list(state["done"]) == ["validate", "train", "export", "bench", "canary"]
    assert state["done"]["train"]["checkpoint"] == trained  # training was not run again
    assert state["done"]["export"]["version"] == 1
    assert state["done"]["canary"]["handed_over"] == 1  # published, not live: the canary decides
    assert (tmp_path / "models" / "edgeasr" / "1" / "model.onnx").is_file()
    assert again.should_run(if_new_data=True) == (False, f"{config.new_data}: no new data since the last run "
                                                        f"({state['done']['validate']['data_version']})")  # fmt: skip


def test_the_watch_starts_a_new_run_when_new_data_arrives(
    tmp_path: Path, tiny_corpus: Path, tiny_checkpoint: Path
) -> None:
    import shutil

    corpus = tmp_path / "incoming"
    shutil.copytree(tiny_corpus, corpus)
    config = RetrainConfig.from_toml(_setup(tmp_path, tiny_corpus, tiny_checkpoint, 1.0, corpus / "dev.jsonl"))
    lines: list[str] = []
    retrainer = Retrainer(config, log=lines.append)
    assert retrainer.watch(0.0, polls=2) == 1  # the first data: one run; the second poll: nothing new
    first = json.loads((tmp_path / "work" / "state.json").read_text())
    assert first["done"]["export"]["version"] == 1 and "runs" not in first
    with open(corpus / "dev.jsonl", "a") as fh:  # labelled audio arrives
        fh.write((corpus / "test.jsonl").read_text().splitlines()[0] + "\n")
    assert retrainer.watch(0.0, polls=2) == 1
    state = json.loads((tmp_path / "work" / "state.json").read_text())
    assert list(state["done"]) == ["validate", "train", "export", "bench", "canary"]
    assert (
        state["done"]["export"]["version"] == 2
        and state["done"]["validate"]["rows"] == first["done"]["validate"]["rows"] + 1
    )
    assert len(state["runs"]) == 1 and state["runs"][0]["done"]["export"]["version"] == 1
    assert (tmp_path / "work" / "run-1" / "best.pt").is_file()  # the first run's training is kept
    assert any("starting over: new data" in line for line in lines)


def test_a_gate_that_fails_stops_the_run_and_says_why(tmp_path: Path, tiny_corpus: Path, tiny_checkpoint: Path) -> None:
    from edgeasr.cli import main

    config = _setup(tmp_path, tiny_corpus, tiny_checkpoint, max_wer=0.01)  # a 4-step model cannot meet this
    assert main(["retrain", "--config", str(config), "--dry-run"]) == 0
    assert not (tmp_path / "work" / "state.json").exists()  # the dry run changed nothing
    assert main(["retrain", "--config", str(config)]) == 1
    state = json.loads((tmp_path / "work" / "state.json").read_text())
    assert list(state["done"]) == ["validate", "train", "export"]
    failed = state["history"][-1]
    assert failed["step"] == "bench" and failed["outcome"] == "failed" and "max_wer" in failed["reason"]
    drift = tmp_path / "drift.json"
    drift.write_text(json.dumps({"drift": False}))
    assert main(["retrain", "--config", str(config), "--if-drift", str(drift)]) == 0  # no drift: nothing to do
    with pytest.raises(RetrainError):
        Retrainer(RetrainConfig.from_toml(config), log=lambda line: None).run()  # the gate still holds


@pytest.mark.triton
def test_a_run_ends_in_a_canary_decision_on_a_real_server(
    tmp_path: Path, tiny_corpus: Path, tiny_checkpoint: Path
) -> None:
    """validate -> train -> export -> bench -> canary: the new version is loaded beside the champion,
    rolled out by the policy on a real Triton server, and promoted (the policy here accepts any tiny model)."""
    from edgeasr.export.pipeline import export_checkpoint
    from edgeasr.export.target import ExportTarget
    from edgeasr.serving.live import read_live
    from edgeasr.serving.server import ServerError, TritonServer, find_tritonserver

    try:
        find_tritonserver()
    except ServerError as exc:
        pytest.skip(reason=f"no bundled Triton server: {exc}")
    config = _setup(tmp_path, tiny_corpus, tiny_checkpoint, max_wer=1.0)
    champion = export_checkpoint(
        tiny_checkpoint, ExportTarget(), check_manifest=tiny_corpus / "dev.jsonl", repository=tmp_path / "models"
    )
    assert champion.version == 1
    policy = tmp_path / "canary.toml"
    policy.write_text(
        "[canary]\nrequests_per_step = 24\nconcurrency = 2\n"
        "[analysis]\nmin_samples = 20\nbootstrap_resamples = 400\nmax_disagreement = 1.0\nmax_wer_increase = 1.0\n"
        "max_empty_rate_increase = 1.0\nmax_p50_latency_increase_s = 2.0\nmax_p99_latency_increase_s = 5.0\n"
    )
    with TritonServer(tmp_path / "models", models=["edgeasr"]) as server:
        config.write_text(config.read_text() + f'canary_policy = "{policy}"\nurl = "{server.grpc_url}"\n')
        state = Retrainer(RetrainConfig.from_toml(config), log=lambda line: None).run()
    assert list(state["done"]) == ["validate", "train", "export", "bench", "canary"]
    assert state["done"]["export"]["version"] == 2 and state["done"]["canary"]["promoted"] == 2
    assert read_live(tmp_path / "models" / "edgeasr" / "live.json").champion == "2"
    report = json.loads((tmp_path / "work" / "canary" / "report.json").read_text())
    assert report["final"] == "promoted" and report["stats"]["challenger_errors"] == 0
    assert report["stats"]["pairs"] >= 4 * 20  # every step measured both versions
