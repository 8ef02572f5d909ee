"""Training: a tiny recipe trains, --resume continues exactly, --init fine-tunes, checkpoints load safely."""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs torch (train extra)")

from edgeasr.training.train import encode_text, load_checkpoint, train  # noqa: E402


def test_encode_text_rejects_characters_outside_the_vocabulary() -> None:
    assert encode_text("hi there") == [10, 11, 1, 22, 10, 7, 20, 7]
    assert encode_text("hi 2") is None


def test_tiny_training_writes_checkpoints_and_report(tiny_recipe, tmp_path) -> None:
    result = train(tiny_recipe, tmp_path, max_steps=12, progress=False)
    assert result.steps == 12
    for name in ("best.pt", "last.pt", "report.json", "report.png"):
        assert (tmp_path / name).is_file(), name
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["data_version"].startswith("dv-")
    assert all(math.isfinite(h["loss"]) for h in report["history"]["train"])
    ckpt = load_checkpoint(result.best_checkpoint)  # weights_only=True
    assert ckpt["data_version"] == result.data_version
    assert "optimizer" not in ckpt  # best.pt is weights only


def test_the_loss_falls(tiny_checkpoint) -> None:
    """20 steps of the tiny recipe (the session's tiny model) bring the CTC loss down by a fifth or more.

    Measured: 7.38 at step 10, 5.78 at step 20 (and 4.73 at step 30).
    """
    history = json.loads((Path(tiny_checkpoint).parent / "report.json").read_text())["history"]["train"]
    losses = [h["loss"] for h in history]
    assert len(losses) >= 2
    assert losses[-1] < 0.85 * losses[0], losses


def test_resume_continues_exactly_where_an_interrupted_run_stopped(tiny_recipe, tmp_path) -> None:
    recipe = replace(tiny_recipe, optim=replace(tiny_recipe.optim, checkpoint_every=5, eval_every=100))
    straight = train(recipe, tmp_path / "straight", max_steps=10, progress=False)
    train(recipe, tmp_path / "split", max_steps=5, progress=False)
    resumed = train(recipe, tmp_path / "split", max_steps=10, resume=True, progress=False)
    assert resumed.steps == straight.steps == 10
    a = load_checkpoint(tmp_path / "straight" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "split" / "last.pt")["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4, msg=key)


def test_init_starts_from_another_model(tiny_recipe, tiny_checkpoint, tmp_path) -> None:
    result = train(tiny_recipe, tmp_path, init=tiny_checkpoint, max_steps=2, progress=False)
    ckpt = load_checkpoint(result.best_checkpoint)
    assert ckpt["init_from"] == str(tiny_checkpoint)
    source = load_checkpoint(tiny_checkpoint)["model"]
    torch.testing.assert_close(ckpt["model"]["frontend.mean"], source["frontend.mean"])  # normalisation kept


def test_vtlp_in_the_recipe_reaches_the_features(tiny_recipe, tiny_checkpoint, tmp_path) -> None:
    warped = replace(tiny_recipe, spec_augment=replace(tiny_recipe.spec_augment, warp_prob=1.0, warp_max=0.15))
    a = train(tiny_recipe, tmp_path / "plain", init=tiny_checkpoint, max_steps=2, progress=False)
    b = train(warped, tmp_path / "warped", init=tiny_checkpoint, max_steps=2, progress=False)
    wa, wb = load_checkpoint(a.out_dir / "last.pt")["model"], load_checkpoint(b.out_dir / "last.pt")["model"]
    assert any(not torch.equal(wa[k], wb[k]) for k in wa if not k.startswith("frontend."))


def test_recipe_refuses_an_out_of_range_warp() -> None:
    from edgeasr.training.recipe import TrainRecipe

    with pytest.raises(ValueError, match="warp_prob"):
        TrainRecipe.from_dict({"spec_augment": {"warp_prob": 1.5}})


def test_max_minutes_stops_on_time_and_still_evaluates_and_checkpoints(tiny_recipe, tmp_path) -> None:
    result = train(tiny_recipe, tmp_path, max_minutes=0.0, progress=False)  # the budget is spent after one step
    assert result.steps == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["history"]["dev"][-1]["step"] == 1
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 1


def test_a_time_fitted_schedule_ends_its_cosine_when_the_time_is_spent(tiny_recipe, tmp_path, monkeypatch) -> None:
    """``fit_schedule``: the pace measured early sets the horizon; the learning rate reaches the
    recipe's final ratio there and the run stops there, before its time is spent.

    The trainer's clock is a fake that moves 0.1 s each time it is read (about once a step), so
    the pace, the horizon and the stop do not depend on this machine's speed.
    """
    import edgeasr.training.train as training

    class Clock:
        now = 1000.0

        @classmethod
        def time(cls) -> float:
            cls.now += 0.1
            return cls.now

    monkeypatch.setattr(training, "time", Clock)
    monkeypatch.setattr(training, "_PACE_FROM", 2)
    monkeypatch.setattr(training, "_PACE_TO", 6)
    recipe = replace(tiny_recipe, optim=replace(tiny_recipe.optim, max_steps=10_000, warmup_steps=2, eval_every=1000))
    result = train(recipe, tmp_path, max_minutes=0.1, fit_schedule=True, progress=False)
    report = json.loads((tmp_path / "report.json").read_text())
    horizon = report["horizon_steps"]
    assert horizon is not None and 20 < horizon < 60  # about 10 steps a (fake) second for the 5.4 s left
    assert result.steps == horizon  # stopped by its own horizon, not by the recipe's max_steps or the clock
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["horizon"] == horizon
    final_lr = last["scheduler"]["_last_lr"][0]
    assert final_lr == pytest.approx(recipe.optim.lr * recipe.optim.final_lr_ratio, rel=0.05)
    resumed = train(recipe, tmp_path, max_minutes=0.1, fit_schedule=True, resume=True, progress=False)
    assert resumed.steps == horizon  # --resume keeps the fitted horizon: nothing left to train
    with pytest.raises(ValueError, match="max_minutes"):
        train(recipe, tmp_path / "no-budget", fit_schedule=True, progress=False)


def test_length_buckets_give_few_batch_shapes_and_every_row_once() -> None:
    """``data.bucket_seconds``: batches of one bucket each, at most two sizes a bucket, padded to a
    multiple of the bucket; without it, one shape per batch (what made a GPU step cost 1.2 s)."""
    from edgeasr.training.train import _collate, _epoch_batches

    durations = np.random.default_rng(0).uniform(0.5, 16.0, 3000)
    plain = _epoch_batches(durations, 120.0, 7, 0)
    bucketed = _epoch_batches(durations, 120.0, 7, 0, bucket=0.5)
    for batches in (plain, bucketed):
        rows = sorted(i for b in batches for i, _ in b)
        assert rows == list(range(3000))  # every row once
        assert all(len(b) * max(durations[i] for i, _ in b) <= 120.0 + 0.5 * len(b) for b in batches)
    buckets = [{int(np.ceil(durations[i] / 0.5)) for i, _ in b} for b in bucketed]
    assert all(len(k) == 1 for k in buckets)  # one bucket a batch
    shapes = {(len(b), k.pop()) for b, k in zip(bucketed, buckets, strict=True)}
    assert len(shapes) <= 2 * 32  # 32 buckets up to 16 s, at most two sizes each
    later = [b for epoch in range(1, 4) for b in _epoch_batches(durations, 120.0, 7, epoch, bucket=0.5)]
    shapes |= {(len(b), int(np.ceil(max(durations[i] for i, _ in b) / 0.5))) for b in later}
    assert len(shapes) <= 2 * 32  # still: the shapes repeat from epoch to epoch
    plain += [b for epoch in range(1, 4) for b in _epoch_batches(durations, 120.0, 7, epoch)]
    plain_shapes = {(len(b), max(durations[i] for i, _ in b)) for b in plain}
    assert len(plain_shapes) > 10 * len(shapes)  # without buckets nearly every batch is a new shape
    items = [(np.ones(n, np.float32), [1]) for n in (7000, 12001)]
    assert _collate(items, quantum=8000)["audio"].shape == (2, 16000)
    assert _collate(items)["audio"].shape == (2, 12001)


def test_a_bucketed_recipe_trains_like_a_plain_one(tiny_recipe, tmp_path) -> None:
    bucketed = replace(tiny_recipe, data=replace(tiny_recipe.data, bucket_seconds=0.5))
    result = train(bucketed, tmp_path, max_steps=6, progress=False)
    assert result.steps == 6
    history = json.loads((tmp_path / "report.json").read_text())["history"]["train"]
    assert all(math.isfinite(h["loss"]) for h in history)
    with pytest.raises(ValueError, match="bucket_seconds"):
        replace(tiny_recipe.data, bucket_seconds=-1.0)


def test_spec_augment_masks_are_the_per_row_draws_laid_at_once() -> None:
    """The masks come from the same draws of the generator as a row-by-row loop would take, and
    cover the same cells: frequency bands up to each row's length, and time spans inside it."""
    from edgeasr.training.recipe import SpecAugmentConfig
    from edgeasr.training.train import _spec_augment

    cfg = SpecAugmentConfig(freq_masks=2, freq_width=12, time_masks=3, time_width=0.1)
    lengths = torch.tensor([400, 37, 260])
    feats = torch.randn(3, 80, 400)
    for b, n in enumerate(lengths.tolist()):
        feats[b, :, n:] = 0.0  # past a row's length the frontend gives zeros
    before, gen = feats.clone(), torch.Generator().manual_seed(5)
    masked = _spec_augment(feats, lengths, cfg, gen)
    expected, gen = feats.clone(), torch.Generator().manual_seed(5)
    for b, n in enumerate(lengths.tolist()):
        for _ in range(cfg.freq_masks):
            w = int(torch.randint(0, cfg.freq_width + 1, (1,), generator=gen))
            f0 = int(torch.randint(0, max(1, 80 - w), (1,), generator=gen))
            expected[b, f0 : f0 + w, :n] = 0.0
        for _ in range(min(cfg.time_masks, max(1, n // 50))):
            w = int(torch.randint(0, max(1, int(cfg.time_width * n)) + 1, (1,), generator=gen))
            t0 = int(torch.randint(0, max(1, n - w), (1,), generator=gen))
            expected[b, :, t0 : t0 + w] = 0.0
    assert torch.equal(masked, expected)
    assert (masked == 0).sum() > (feats == 0).sum()  # something was masked
    assert torch.equal(feats, before)  # the input is left as it was


@pytest.mark.parametrize(("slow_reads", "minutes"), [(5, 0.25), (8, 0.2)])
def test_a_slow_start_is_refitted_from_the_pace_that_follows(
    tiny_recipe, tmp_path, monkeypatch, capsys, slow_reads: int, minutes: float
) -> None:
    """The first pace of a GPU run is low (kernels chosen per new shape); each doubling of the
    steps measures it again, so the horizon grows to what the warm pace fits in the time left.
    With the longer slow start the first horizon (9) comes before the next doubling (12): it is
    fitted again where it is reached."""
    import re

    import edgeasr.training.train as training

    class Clock:  # 1 s a read for the first reads (a slow start), then 0.1 s
        now, reads = 1000.0, 0

        @classmethod
        def time(cls) -> float:
            cls.reads += 1
            cls.now += 1.0 if cls.reads <= slow_reads else 0.1
            return cls.now

    monkeypatch.setattr(training, "time", Clock)
    monkeypatch.setattr(training, "_PACE_FROM", 2)
    monkeypatch.setattr(training, "_PACE_TO", 6)
    recipe = replace(tiny_recipe, optim=replace(tiny_recipe.optim, max_steps=10_000, warmup_steps=2, eval_every=1000))
    result = train(recipe, tmp_path, max_minutes=minutes, fit_schedule=True, progress=True)
    horizons = [int(h) for h in re.findall(r"fitted schedule: .* horizon (\d+) steps", capsys.readouterr().out)]
    assert len(horizons) >= 2  # refitted at 6, 12, 24, ... steps while a fifth of the time was left
    assert horizons[-1] > 3 * horizons[0]  # the slow start no longer sets the length of the run
    assert result.steps == horizons[-1]


def _fitted_rank(rank: int, recipe, out: str, port: int) -> None:
    """One rank of a two-process (gloo) time-fitted run; the ranks get different time budgets."""
    import edgeasr.training.train as training

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank))
    os.environ["LOCAL_RANK"] = str(rank)
    training._PACE_FROM, training._PACE_TO = 2, 6
    result = training.train(recipe, out, max_minutes=0.2 + 0.1 * rank, fit_schedule=True, progress=False)
    Path(out, f"rank{rank}.json").write_text(json.dumps({"steps": result.steps}))


@pytest.mark.slow
def test_distributed_ranks_share_rank_0s_fitted_horizon(tiny_recipe, tmp_path) -> None:
    """Under DDP every rank stops at rank 0's horizon (a rank that stopped alone would hang the rest)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    recipe = replace(
        tiny_recipe, optim=replace(tiny_recipe.optim, max_steps=10_000, warmup_steps=2, eval_every=1000, threads=1)
    )
    torch.multiprocessing.spawn(_fitted_rank, args=(recipe, str(tmp_path), port), nprocs=2, join=True)
    steps = [json.loads((tmp_path / f"rank{r}.json").read_text())["steps"] for r in (0, 1)]
    horizon = json.loads((tmp_path / "report.json").read_text())["horizon_steps"]
    assert steps[0] == steps[1]  # both ranks stopped together: at the horizon, or at rank 0's deadline
    assert 6 < steps[0] <= horizon


def test_bf16_precision_trains_under_autocast_and_keeps_fp32_weights(tiny_recipe, tiny_checkpoint, tmp_path) -> None:
    bf16 = replace(tiny_recipe, optim=replace(tiny_recipe.optim, precision="bf16"))
    a = train(tiny_recipe, tmp_path / "fp32", init=tiny_checkpoint, max_steps=10, progress=False)
    b = train(bf16, tmp_path / "bf16", init=tiny_checkpoint, max_steps=10, progress=False)
    wa, wb = load_checkpoint(a.out_dir / "last.pt")["model"], load_checkpoint(b.out_dir / "last.pt")["model"]
    assert all(v.dtype == wa[k].dtype for k, v in wb.items())  # the checkpoint exports like any other
    assert any(not torch.equal(wa[k], wb[k]) for k in wa if k.endswith("weight"))  # autocast took effect
    losses = [h["loss"] for h in json.loads((b.out_dir / "report.json").read_text())["history"]["train"]]
    assert losses and all(math.isfinite(x) for x in losses)


def test_auto_precision_is_bf16_only_where_the_device_has_it(
    monkeypatch, tiny_recipe, tiny_checkpoint, tmp_path
) -> None:
    from edgeasr.training import train as train_module

    cpu = torch.device("cpu")
    assert train_module.resolve_precision("fp32", cpu) == "fp32"
    assert train_module.resolve_precision("bf16", cpu) == "bf16"
    monkeypatch.setattr(train_module, "native_bf16", lambda device: False)
    assert train_module.resolve_precision("auto", cpu) == "fp32"
    auto = replace(tiny_recipe, optim=replace(tiny_recipe.optim, precision="auto"))
    a = train(auto, tmp_path / "auto-fp32", init=tiny_checkpoint, max_steps=4, progress=False)
    assert json.loads((a.out_dir / "report.json").read_text())["precision"] == "fp32"
    bf16 = replace(tiny_recipe, optim=replace(tiny_recipe.optim, precision="bf16"))
    with pytest.warns(UserWarning, match="without native bfloat16"):
        train(bf16, tmp_path / "bf16-emulated", init=tiny_checkpoint, max_steps=2, progress=False)
    monkeypatch.setattr(train_module, "native_bf16", lambda device: True)
    assert train_module.resolve_precision("auto", cpu) == "bf16"
    b = train(auto, tmp_path / "auto-bf16", init=tiny_checkpoint, max_steps=4, progress=False)
    assert json.loads((b.out_dir / "report.json").read_text())["precision"] == "bf16"
    wa, wb = load_checkpoint(a.out_dir / "last.pt")["model"], load_checkpoint(b.out_dir / "last.pt")["model"]
    assert any(not torch.equal(wa[k], wb[k]) for k in wa if k.endswith("weight"))  # autocast took effect


def test_a_gpu_run_keeps_one_thread_and_leaves_the_cores_to_its_data_workers() -> None:
    import os

    from edgeasr.training.train import training_threads

    assert training_threads(0, torch.device("cuda")) == 1
    assert training_threads(0, torch.device("cpu")) == (os.cpu_count() or 1)
    assert training_threads(3, torch.device("cuda")) == training_threads(3, torch.device("cpu")) == 3


def test_recipe_refuses_an_unknown_precision() -> None:
    from edgeasr.training.recipe import TrainRecipe

    with pytest.raises(ValueError, match="precision"):
        TrainRecipe.from_dict({"optim": {"precision": "fp16"}})


def test_extra_manifests_join_the_training_rows_repeated(tiny_recipe, tmp_path) -> None:
    """Real speech can be weighted: an extra manifest's rows count ``repeats`` times per epoch."""
    extra = replace(tiny_recipe.data, extra_manifests=(tiny_recipe.data.dev_manifest,), extra_repeats=(3,))
    result = train(replace(tiny_recipe, data=extra), tmp_path / "x", max_steps=2, progress=False)
    plain = train(tiny_recipe, tmp_path / "p", max_steps=2, progress=False)
    report = json.loads((tmp_path / "x" / "report.json").read_text())
    base = json.loads((tmp_path / "p" / "report.json").read_text())
    dev_rows = sum(1 for line in Path(tiny_recipe.data.dev_manifest).read_text().splitlines() if line.strip())
    assert report["train_rows"] == base["train_rows"] + 3 * dev_rows
    assert result.data_version != plain.data_version  # the mixture is a different data version


def test_training_refuses_rows_spoken_by_a_non_commercial_engine(tiny_recipe, tmp_path) -> None:
    """MBROLA's voices may not go into a product that is sold: they evaluate (a dev check too), they never train."""
    rows = [json.loads(line) for line in Path(tiny_recipe.data.dev_manifest).read_text().splitlines() if line]
    base = Path(tiny_recipe.data.dev_manifest).parent
    marked = tmp_path / "mbrola.jsonl"
    marked.write_text(
        "".join(
            json.dumps({**r, "audio_filepath": str(base / r["audio_filepath"]), "engine": "mbrola" if i == 1 else "x"})
            + "\n"
            for i, r in enumerate(rows)
        )
    )
    extra = replace(tiny_recipe.data, extra_manifests=(str(marked),))
    with pytest.raises(ValueError, match=r"mbrola.jsonl: row 2 is spoken by mbrola.*evaluation only"):
        train(replace(tiny_recipe, data=extra), tmp_path / "run", max_steps=1, progress=False)
    assert not (tmp_path / "run" / "last.pt").exists()
    scored = replace(tiny_recipe.data, dev_manifest=str(marked))  # a dev check only scores: MBROLA may judge
    result = train(replace(tiny_recipe, data=scored), tmp_path / "dev", max_steps=1, progress=False)
    assert result.steps == 1 and (tmp_path / "dev" / "last.pt").exists()


def test_recipe_augment_table_and_extras_round_trip(tmp_path) -> None:
    from edgeasr.training.recipe import TrainRecipe

    path = tmp_path / "r.toml"
    path.write_text(
        '[data]\nextra_manifests = ["a.jsonl", "b.jsonl"]\nextra_repeats = [3]\n'
        "[augment]\ngain_prob = 0.9\ngain_db_range = [-30.0, 6.0]\n"
    )
    recipe = TrainRecipe.from_toml(path)
    assert recipe.data.extras() == [("a.jsonl", 3), ("b.jsonl", 1)]
    assert recipe.augment.gain_db_range == (-30.0, 6.0) and recipe.augment.gain_prob == 0.9
    assert TrainRecipe.from_dict(recipe.to_dict()) == recipe
    path.write_text("[augment]\nloudness = 1\n")
    with pytest.raises(ValueError, match="AugmentOptions"):
        TrainRecipe.from_toml(path)
    path.write_text("[data]\nextra_manifests = []\nextra_repeats = [2]\n")
    with pytest.raises(ValueError, match="extra_repeats"):
        TrainRecipe.from_toml(path)


def test_init_grows_a_deeper_recipe_from_a_shallower_checkpoint(tiny_recipe, tiny_checkpoint, tmp_path) -> None:
    kernels = tiny_recipe.model.kernels
    deeper = replace(tiny_recipe, model=replace(tiny_recipe.model, kernels=tuple(k for k in kernels for _ in (0, 1))))
    result = train(deeper, tmp_path, init=tiny_checkpoint, max_steps=2, progress=False)
    ckpt = load_checkpoint(result.out_dir / "last.pt")
    source = load_checkpoint(tiny_checkpoint)["model"]
    assert ckpt["recipe"]["model"]["kernels"] == list(deeper.model.kernels)
    last = tiny_recipe.model.repeats - 1
    # block 0 of the source became block 0, block 1 became block 2; blocks 1 and 3 are new
    shape = source[f"blocks.1.layers.{last}.pointwise.weight"].shape
    assert ckpt["model"][f"blocks.2.layers.{last}.pointwise.weight"].shape == shape
    for key in ("layers.0.depthwise.weight", f"layers.{last}.pointwise.weight"):  # two Adam steps move little
        torch.testing.assert_close(ckpt["model"][f"blocks.2.{key}"], source[f"blocks.1.{key}"], atol=0.02, rtol=0)
        torch.testing.assert_close(ckpt["model"][f"blocks.0.{key}"], source[f"blocks.0.{key}"], atol=0.02, rtol=0)
    assert ckpt["model"][f"blocks.3.layers.{last}.norm.weight"].abs().max() < 0.05  # started at zero, two steps in
    assert ckpt["model"]["blocks.3.layers.0.pointwise.weight"].abs().max() > 0.0


def test_the_dev_check_hears_the_room_the_model_asks_for(tiny_checkpoint, tiny_corpus) -> None:
    """evaluate_model lays the model's input_pad_seconds of room tone around each row, as the runtime does."""
    import torch

    from edgeasr.decoding import greedy_decode
    from edgeasr.features import pad_room_tone
    from edgeasr.manifest import load_row_audio, read_manifest
    from edgeasr.training.model import CTCModel
    from edgeasr.training.train import evaluate_model, load_model

    plain, _ = load_model(tiny_checkpoint)
    padded = CTCModel(replace(plain.cfg, input_pad_seconds=0.5)).eval()
    padded.load_state_dict(plain.state_dict())
    with torch.no_grad():  # the tiny model says little: favour letters, so that its output has words
        for m in (plain, padded):
            m.output.bias[2:] += 2.0
    manifest = tiny_corpus / "dev.jsonl"
    rows = read_manifest(manifest)[:6]
    expected = []
    with torch.no_grad():
        for row in rows:
            wave = pad_room_tone(load_row_audio(row, manifest), 0.5)
            logp, n = padded(torch.from_numpy(wave)[None], torch.tensor([wave.size]))
            expected.append(greedy_decode(logp[0, : int(n[0])].numpy()).text)
    got = evaluate_model(padded, rows, manifest, torch.device("cpu"))["hypotheses"]
    assert any(expected) and got == expected
    assert evaluate_model(plain, rows, manifest, torch.device("cpu"))["hypotheses"] != expected


def test_a_frozen_prefix_keeps_its_weights_and_stays_in_the_checkpoint(tiny_recipe, tiny_checkpoint, tmp_path) -> None:
    recipe = replace(tiny_recipe, optim=replace(tiny_recipe.optim, freeze=["stem.", "blocks.0."]))
    assert recipe.optim.freeze == ("stem.", "blocks.0.")
    result = train(recipe, tmp_path, init=tiny_checkpoint, max_steps=3, progress=False)
    start = load_checkpoint(tiny_checkpoint)["model"]
    end = load_checkpoint(result.out_dir / "last.pt")["model"]
    held = [k for k in start if k.startswith(("stem.", "blocks.0.")) and start[k].is_floating_point()]
    assert held and all(k in end for k in held)
    for key in held:  # batch-norm statistics are buffers: only weights are held, so compare those
        if not key.endswith(("running_mean", "running_var")):
            assert torch.equal(start[key], end[key]), key
    assert not torch.equal(start["output.weight"], end["output.weight"])  # the rest trained
    with pytest.raises(ValueError, match="matches no trainable weight"):
        train(replace(tiny_recipe, optim=replace(tiny_recipe.optim, freeze=["nothing."])), tmp_path / "x", max_steps=1)
    with pytest.raises(ValueError, match="non-empty parameter-name prefixes"):
        replace(tiny_recipe.optim, freeze=[""])


def test_a_stage_that_freezes_a_trained_pretrained_encoder_still_saves_it(small_pretrained_config) -> None:
    """A stage with ``optim.freeze = ["encoder."]`` holds the encoder's trained blocks fixed; they are the
    run's starting weights (a mean, or one moved toward Whisper's), not the installed file's, so the
    checkpoint must keep them: what a checkpoint keeps follows the model config, not ``requires_grad``."""
    from edgeasr.training.model import CTCModel

    model = CTCModel(small_pretrained_config)
    kept = set(model.trained_state_dict())
    assert "encoder.blocks.0.qkv.weight" in kept and "encoder.conv1.weight" not in kept
    for name, p in model.named_parameters():
        if name.startswith("encoder."):
            p.requires_grad_(False)  # what optim.freeze does for a stage
    assert set(model.trained_state_dict()) == kept


def test_an_avx512_cpu_without_bf16_instructions_trains_auto_in_fp32(monkeypatch) -> None:
    """oneDNN says bfloat16 is supported on any AVX512 core, where it is emulated (3x slower than fp32
    on a 2-core Xeon): "auto" asks for AVX512-BF16 or AMX on x86, and takes oneDNN's word elsewhere."""
    from edgeasr.training import train as train_module

    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    monkeypatch.setattr(train_module.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert not train_module.native_bf16(cpu)
    assert train_module.resolve_precision("auto", cpu) == "fp32"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert train_module.native_bf16(cpu) and train_module.resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert train_module.native_bf16(cpu)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(train_module.platform, "machine", lambda: "aarch64")
    assert train_module.native_bf16(cpu)  # oneDNN's answer where it is not x86
