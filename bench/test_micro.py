"""Micro-benchmarks (pytest-benchmark): the frontend, one ONNX run per batch size, greedy decoding, augmentation.

Not part of the default test run (pyproject's ``testpaths`` is ``tests``). Run, save and compare
as ``bench/README.md`` describes, e.g.::

    nice -n 10 pytest bench/ --benchmark-autosave          # saves into bench/baselines/
    nice -n 10 pytest bench/ --benchmark-compare            # against the latest saved run

The model measured has the shipped architecture (``recipes/default.toml``) with seeded random
weights: its cost is that of the shipped model (convolutions cost the same whatever the weights),
and baselines stay comparable while the shipped model is retrained. Inputs are 2 s utterances of
seeded noise, the length of a typical voice command.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the micro-benchmarks export with torch (train extra)")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("pytest_benchmark")

ROOT = Path(__file__).resolve().parents[1]
SECONDS = 2.0
BATCH_SIZES = (1, 4, 8, 16)


def _session(path: Path, threads: int = 1):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    """16 x 2 s of seeded noise, float32, 16 kHz."""
    rng = np.random.default_rng(0)
    return (0.1 * rng.standard_normal((max(BATCH_SIZES), int(SECONDS * 16000)))).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    """The shipped architecture with seeded random weights, in eval mode."""
    from edgeasr.training.model import CTCModel
    from edgeasr.training.recipe import TrainRecipe

    torch.manual_seed(0)
    return CTCModel(TrainRecipe.from_toml(ROOT / "recipes" / "default.toml").model).eval()


@pytest.fixture(scope="module")
def onnx_models(model, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The model exported fp32, and quantized int8 as ``export/cpu-int8.toml`` does."""
    from edgeasr.export.onnx import export_onnx
    from edgeasr.export.quantize import quantize_onnx

    folder = tmp_path_factory.mktemp("micro")
    fp32 = export_onnx(model, folder / "fp32.onnx")
    return {"fp32": fp32, "int8": quantize_onnx(fp32, folder / "int8.onnx", "dynamic", [])}


class _Frontend(torch.nn.Module):
    def __init__(self, frontend) -> None:
        super().__init__()
        self.frontend = frontend

    def forward(self, audio, audio_lengths):
        return self.frontend(audio, audio_lengths)


@pytest.fixture(scope="module")
def frontend_onnx(model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The log-mel frontend alone, exported to ONNX."""
    import warnings

    path = tmp_path_factory.mktemp("frontend") / "frontend.onnx"
    dummy = (torch.zeros(2, 16000), torch.tensor([16000, 12000], dtype=torch.int64))
    auto = torch.export.Dim.AUTO
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            _Frontend(model.frontend).eval(),
            dummy,
            input_names=["audio", "audio_length"],
            output_names=["features", "feature_length"],
            dynamo=True,
            verbose=False,
            dynamic_shapes={"audio": {0: auto, 1: auto}, "audio_lengths": {0: auto}},
        )
        program.save(str(path))
    return path


def test_frontend_torch(benchmark, model, audio) -> None:
    """Log-mel features of one 2 s utterance in torch (the training path)."""
    torch.set_num_threads(1)
    wave = torch.from_numpy(audio[:1])
    lengths = torch.tensor([wave.shape[1]])
    with torch.no_grad():
        feats, _ = benchmark(model.frontend, wave, lengths)
    assert feats.shape[1] == 80


def test_frontend_onnx(benchmark, frontend_onnx, audio) -> None:
    """Log-mel features of one 2 s utterance in onnxruntime, one thread (the serving path)."""
    session = _session(frontend_onnx)
    feeds = {"audio": audio[:1], "audio_length": np.array([audio.shape[1]], np.int64)}
    feats, _ = benchmark(session.run, None, feeds)
    assert feats.shape[1] == 80


@pytest.mark.parametrize("precision", ["fp32", "int8"])
@pytest.mark.parametrize("batch", BATCH_SIZES)
def test_onnx_run(benchmark, onnx_models, audio, batch: int, precision: str) -> None:
    """One onnxruntime run of the whole model on ``batch`` 2 s utterances, one thread."""
    session = _session(onnx_models[precision])
    feeds = {"audio": audio[:batch], "audio_length": np.full(batch, audio.shape[1], np.int64)}
    benchmark.extra_info.update(batch=batch, precision=precision, audio_seconds=batch * SECONDS)
    logp, _ = benchmark(session.run, None, feeds)
    assert logp.shape[0] == batch


def test_greedy_decoding(benchmark) -> None:
    """CTC greedy decoding with word timestamps of one 2 s utterance (100 frames)."""
    from edgeasr.decoding import TOKENS, greedy_decode

    rng = np.random.default_rng(0)
    logits = rng.standard_normal((int(SECONDS / 0.02), len(TOKENS))).astype(np.float32)
    logits[:, 0] += 1.5  # blank-heavy, as CTC output is
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    result = benchmark(greedy_decode, logp)
    assert isinstance(result.text, str)


def test_augmenter(benchmark) -> None:
    """The data stage's augmentation of one 3 s clip with the default options, babble pool of 3 clips.

    Training augments each clip in a data worker while the step runs: this is what a worker pays
    per clip (it was a timed test in ``tests/`` until CI's machine measured 11 ms where this one
    measured 1-3 ms; speed goals live here).
    """
    from edgeasr.data.augment import Augmenter, AugmentOptions

    rate = 16_000
    t = np.arange(3 * rate) / rate
    clip = (0.3 * np.sin(2 * np.pi * 140 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    pool = [np.roll(clip[:rate], k * 97) for k in range(3)]
    augmenter = Augmenter(AugmentOptions(), noise_pool=pool)
    rng = np.random.default_rng(0)
    benchmark.extra_info.update(audio_seconds=3.0)
    out = benchmark(augmenter, clip, rng)
    assert out.dtype == np.float32 and out.size > 0 and np.all(np.isfinite(out))
