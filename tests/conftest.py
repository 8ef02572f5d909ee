"""Shared pytest fixtures. Sections are owned by whoever wrote them; keep each small."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

# -- pipeline (lead): session fixtures tiny_corpus / tiny_recipe / tiny_checkpoint / tiny_repository --
from pipeline_fixtures import *  # noqa: F403

# -- Triton is required where ./run test runs (tests/triton_required.py) -------------------------
from triton_required import pytest_runtest_makereport  # noqa: F401

# -- serving (Triton) ---------------------------------------------------------------------------
# `asr_onnx` is the model every serving test uses. It is a tiny stand-in with exactly the export
# contract (audio [B,T] f32 + audio_length [B] i64 -> logprobs [B,F,29] + logprob_length [B],
# 20 ms frames, padding-independent); swap in the lead's exported model here and nothing else.

FRAME = 320  # samples per output frame (20 ms at 16 kHz)


def build_tiny_asr_onnx(path: Path, vocab: int = 29, seed: int = 0, whole_input: bool = False) -> Path:
    """Write a deterministic ONNX model with the export contract (strided conv + log-softmax).

    ``whole_input`` adds the mean over time of every token's logit to each frame's, so that a frame's
    output depends on the whole input, as an attention encoder's does (the file does not say so:
    the caller records :data:`edgeasr.recognizer.WHOLE_INPUT_KEY` where a test needs it).
    """
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weight = rng.normal(0.0, 4.0, size=(vocab, 1, FRAME)).astype(np.float32)
    bias = np.zeros(vocab, dtype=np.float32)
    bias[0] = 1.0  # blank is somewhat more likely, so outputs look like CTC
    inits = [
        numpy_helper.from_array(weight, "W"),
        numpy_helper.from_array(bias, "bias"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array(FRAME - 1, dtype=np.int64), "fm1"),
        numpy_helper.from_array(np.array(FRAME, dtype=np.int64), "frame"),
    ]
    nodes = [
        helper.make_node("Unsqueeze", ["audio", "axis1"], ["x"]),  # [B,1,T]
        # ceil(T/320) frames; the tail frame sees zeros whether padded by the batch or by the conv
        helper.make_node(
            "Conv",
            ["x", "W", "bias"],
            ["logits_t0" if whole_input else "logits_t"],
            strides=[FRAME],
            pads=[0, FRAME - 1],
        ),
        *(
            [  # logits + 2 x their mean over the frames: every frame hears the whole input
                helper.make_node("ReduceMean", ["logits_t0"], ["mean_t"], axes=[2], keepdims=1),
                helper.make_node("Add", ["mean_t", "mean_t"], ["twice_t"]),
                helper.make_node("Add", ["logits_t0", "twice_t"], ["logits_t"]),
            ]
            if whole_input
            else []
        ),
        helper.make_node("Transpose", ["logits_t"], ["logits"], perm=[0, 2, 1]),  # [B,F,V]
        helper.make_node("LogSoftmax", ["logits"], ["logprobs"], axis=-1),
        helper.make_node("Add", ["audio_length", "fm1"], ["len_p"]),
        helper.make_node("Div", ["len_p", "frame"], ["logprob_length"]),  # integer division
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_asr",
        [
            helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["B", "T"]),
            helper.make_tensor_value_info("audio_length", TensorProto.INT64, ["B"]),
        ],
        [
            helper.make_tensor_value_info("logprobs", TensorProto.FLOAT, ["B", "F", vocab]),
            helper.make_tensor_value_info("logprob_length", TensorProto.INT64, ["B"]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edgeasr-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def asr_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ONNX model with the export contract (the serving tests' model)."""
    return build_tiny_asr_onnx(tmp_path_factory.mktemp("onnx") / "model.onnx")


@pytest.fixture(scope="session")
def speechlike() -> list[np.ndarray]:
    """Eight deterministic 16 kHz float32 waveforms of different lengths (0.1 s to 2.3 s).

    Noise that rises and falls at a syllable rate (4 Hz): steady noise is not speech, and the
    recognizers give no words for it (features.not_speech).
    """
    rng = np.random.default_rng(1)
    waves = []
    for i in range(8):
        n = 1600 + 4800 * i
        envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * np.arange(n) / 16000)
        waves.append((0.3 * envelope * rng.standard_normal(n)).astype(np.float32))
    return waves


def _published_repo(root: Path, onnx_path: Path, max_queue_delay_us: int | None = None) -> Path:
    from edgeasr.export.repository import ModelRepository, RepositoryOptions

    repo = ModelRepository(root)
    options = RepositoryOptions(max_batch_size=8, warmup_seconds=0.5)
    if max_queue_delay_us is not None:
        options = dataclasses.replace(options, max_queue_delay_us=max_queue_delay_us)
    repo.publish("edgeasr", onnx_path, card_fields={"source_checkpoint": "tests"}, options=options)
    return root


@pytest.fixture(scope="module")
def triton_server(tmp_path_factory: pytest.TempPathFactory, asr_onnx: Path):
    """One real Triton server per test module, serving `asr_onnx` as model "edgeasr" version 1.

    Skipped (with the reason) where nvidia-pytriton's server binary or python stub is missing.
    """
    from edgeasr.serving.server import ServerError, TritonServer, find_tritonserver

    try:
        find_tritonserver()
    except ServerError as exc:
        pytest.skip(reason=f"no bundled Triton server: {exc}")
    root = _published_repo(tmp_path_factory.mktemp("triton_models"), asr_onnx)
    server = TritonServer(root)
    server.start(timeout_s=120)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def reference_text(asr_onnx: Path):
    """audio (16 kHz float32) -> the text that `asr_onnx` gives run alone in onnxruntime (after level normalization)."""
    ort = pytest.importorskip("onnxruntime")
    from edgeasr.decoding import greedy_decode
    from edgeasr.features import apply_gain, level_gain_db

    session = ort.InferenceSession(str(asr_onnx), providers=["CPUExecutionProvider"])

    def transcribe(audio: np.ndarray) -> str:
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        audio = apply_gain(audio, level_gain_db(audio)).reshape(1, -1)
        logprobs, frames = session.run(None, {"audio": audio, "audio_length": np.array([audio.shape[1]])})
        return greedy_decode(logprobs[0, : int(frames[0])]).text

    return transcribe


# -- pipeline (real tiny model through synth, train, export) ----------------------------------------
from pipeline_fixtures import (  # noqa: E402,F401
    small_pretrained_config,
    tiny_checkpoint,
    tiny_corpus,
    tiny_recipe,
    tiny_repository,
)
