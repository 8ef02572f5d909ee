"""The checkpoint as ONNX: the export itself, an onnxruntime session over it, and the parity check.

The graph takes raw 16 kHz PCM (``audio`` float32 [batch, samples], ``audio_length`` int64 [batch])
and returns ``logprobs`` [batch, frames, vocab] and ``logprob_length`` [batch]; the feature
frontend is part of it. :func:`check_parity` compares it with the torch model it came from.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from edgeasr.decoding import CONTEXT_SECONDS_KEY, FRAME_SECONDS, FRAME_SECONDS_KEY, greedy_decode
from edgeasr.features import PAD_SECONDS_KEY
from edgeasr.recognizer import WHOLE_INPUT_KEY

__all__ = ["check_parity", "export_onnx", "logprobs_of", "onnx_logprobs", "onnx_session", "set_timing"]


def export_onnx(model, path: str | Path, opset: int = 18) -> Path:
    """Write ``model`` (a :class:`~edgeasr.training.model.CTCModel` in eval mode) as ONNX with dynamic batch and length.

    Inputs ``audio`` float32 [batch, samples] and ``audio_length`` int64 [batch]; outputs
    ``logprobs`` float32 [batch, frames, vocab] and ``logprob_length`` int64 [batch]. The model's
    frame duration, receptive half width and input padding go into the file's metadata
    (:data:`~edgeasr.decoding.FRAME_SECONDS_KEY`, :data:`~edgeasr.decoding.CONTEXT_SECONDS_KEY`,
    :data:`~edgeasr.features.PAD_SECONDS_KEY`), where the :class:`~edgeasr.recognizer.Recognizer`
    and the Triton model read them.
    """
    import onnx
    import torch

    model = model.eval()
    dummy = (torch.zeros(2, 16000), torch.tensor([16000, 12000], dtype=torch.int64))
    # AUTO lets torch.export find the ranges (it specialises away sizes 0 and 1 while tracing, but
    # the ONNX ops broadcast the same way for them; the parity check runs batch 1 to prove it)
    auto = torch.export.Dim.AUTO
    path = Path(path)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            dummy,
            input_names=["audio", "audio_length"],
            output_names=["logprobs", "logprob_length"],
            dynamic_shapes={"audio": {0: auto, 1: auto}, "audio_lengths": {0: auto}},
            opset_version=opset,
            dynamo=True,
            verbose=False,
        )
        program.save(str(path))
    proto = onnx.load(str(path))
    set_timing(
        proto,
        float(getattr(model, "frame_seconds", FRAME_SECONDS)),
        getattr(model, "context_seconds", None),
        float(getattr(model, "input_pad_seconds", 0.0)),
        whole_input=bool(getattr(model, "whole_input", False)),
    )
    onnx.save(proto, str(path))
    return path


def set_timing(
    proto,
    frame_seconds: float,
    context_seconds: float | None = None,
    pad_seconds: float = 0.0,
    *,
    whole_input: bool = False,
) -> None:
    """Record a model's frame duration, receptive half width and input padding in an ONNX ``ModelProto``'s metadata.

    Earlier values of the same keys are replaced; ``context_seconds`` None and ``pad_seconds`` 0
    leave their keys out (a file without the padding key asks for none, as every earlier export).
    ``whole_input`` marks a model whose frames can depend on the whole input
    (:data:`~edgeasr.recognizer.WHOLE_INPUT_KEY`); ``context_seconds`` is then the context its windows
    and stream runs keep, not an exact receptive field.
    """
    values = {
        FRAME_SECONDS_KEY: None if frame_seconds is None else repr(float(frame_seconds)),
        CONTEXT_SECONDS_KEY: None if context_seconds is None else repr(float(context_seconds)),
        PAD_SECONDS_KEY: repr(float(pad_seconds)) if pad_seconds else None,
        WHOLE_INPUT_KEY: "1" if whole_input else None,
    }
    kept = [p for p in proto.metadata_props if p.key not in values]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in values.items():
        if value is not None:
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value


def onnx_session(path: Path):
    """A quiet single-file onnxruntime CPU session."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def onnx_logprobs(session, wave: np.ndarray) -> np.ndarray:
    """(frames, vocab) log-probabilities of one utterance (valid frames only)."""
    logp, lengths = session.run(None, {"audio": wave[None, :], "audio_length": np.array([len(wave)], np.int64)})
    return logp[0, : int(lengths[0])]


def logprobs_of(onnx_path: Path, waves: list[np.ndarray]) -> list[np.ndarray]:
    """Log-probabilities of each utterance under an ONNX model."""
    session = onnx_session(onnx_path)
    return [onnx_logprobs(session, w) for w in waves]


def check_parity(model, onnx_path: Path, waves: list[np.ndarray]) -> dict:
    """Compare the torch model and its ONNX export on ``waves``; returns the numbers (no verdict).

    Returns:
        ``max_abs_diff`` (largest |log-prob difference| over valid frames), ``identical_transcripts``
        (greedy texts equal), ``nonempty_transcripts`` (of those, how many say something: equal
        empty texts of an untrained model prove little) and ``utterances``.
    """
    import torch

    session = onnx_session(onnx_path)
    max_diff, same, nonempty = 0.0, 0, 0
    for wave in waves:
        with torch.no_grad():
            lp, ln = model(torch.from_numpy(wave)[None, :], torch.tensor([len(wave)]))
        ref = lp[0, : int(ln[0])].numpy()
        got = onnx_logprobs(session, wave)
        if ref.shape != got.shape:
            return {
                "max_abs_diff": float("inf"),
                "identical_transcripts": 0,
                "nonempty_transcripts": 0,
                "utterances": len(waves),
            }
        max_diff = max(max_diff, float(np.abs(ref - got).max()))
        text = greedy_decode(ref).text
        same += text == greedy_decode(got).text
        nonempty += text == greedy_decode(got).text and bool(text)
    return {
        "max_abs_diff": max_diff,
        "identical_transcripts": same,
        "nonempty_transcripts": nonempty,
        "utterances": len(waves),
    }
