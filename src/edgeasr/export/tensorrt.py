"""TensorRT engines (fp16, int8) from the exported ONNX, checked, published as the ``tensorrt_plan`` flavour.

Runs only where ``tensorrt`` imports and a CUDA GPU exists; :func:`unavailable_reason` says why not
elsewhere (tests skip with that reason). The engine has one optimization profile over batch size
and audio length (:class:`EngineProfile`); int8 uses an entropy calibrator fed with utterances of
the check manifest (real data, never random noise). Device buffers are torch CUDA tensors, so no
extra CUDA binding is needed: torch is present wherever training and export run.

Before anything is written, the engine is run on the check utterances: the largest absolute
difference of its log-probabilities from the torch model, and its WER against the fp32 ONNX WER
(at most ``max_wer_increase`` worse). A failed check raises :class:`~edgeasr.export.target.ExportCheckError`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeasr.decoding import TOKENS

__all__ = ["EngineProfile", "TensorRTRunner", "build_engine", "unavailable_reason"]


def unavailable_reason() -> str | None:
    """None when TensorRT engines can be built here, else the reason they cannot."""
    try:
        import tensorrt  # noqa: F401
    except ImportError as exc:
        return f"TensorRT is not installed ({exc}); install the gpu extra on a machine with an NVIDIA GPU"
    try:
        import torch
    except ImportError:
        return "torch is needed for the TensorRT path's device buffers (train extra)"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible"
    return None


@dataclass(frozen=True)
class EngineProfile:
    """The optimization profile: shapes the engine accepts and the one it is tuned for."""

    min_batch: int = 1  # smallest batch
    opt_batch: int = 8  # batch the kernels are tuned for
    max_batch: int = 16  # largest batch (match the repository's max_batch_size)
    min_seconds: float = 0.05  # shortest audio
    opt_seconds: float = 4.0  # typical voice-command length
    max_seconds: float = 30.0  # longest request the server accepts
    workspace_mb: int = 2048  # builder workspace memory pool

    def shapes(self) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
        s = [int(x * 16000) for x in (self.min_seconds, self.opt_seconds, self.max_seconds)]
        b = (self.min_batch, self.opt_batch, self.max_batch)
        return {
            "audio": ((b[0], s[0]), (b[1], s[1]), (b[2], s[2])),
            "audio_length": ((b[0],), (b[1],), (b[2],)),
        }


def _calibrator(trt, waves: list[np.ndarray], cache: Path):
    import torch

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        """Feeds real utterances one at a time; caches the scales beside the build."""

        def __init__(self) -> None:
            super().__init__()
            self._items = iter(waves)
            self._keep: list = []

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str]) -> list[int] | None:
            wave = next(self._items, None)
            if wave is None:
                return None
            audio = torch.from_numpy(wave[None, :].astype(np.float32)).cuda()
            length = torch.tensor([wave.size], dtype=torch.int64).cuda()
            self._keep = [audio, length]
            by_name = {"audio": audio.data_ptr(), "audio_length": length.data_ptr()}
            return [by_name[n] for n in names]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.exists() else None

        def write_calibration_cache(self, data: bytes) -> None:
            cache.write_bytes(bytes(data))

    return EntropyCalibrator()


def build_engine(
    onnx_path: Path,
    precision: str,
    profile: EngineProfile = EngineProfile(),
    calibration: list[np.ndarray] | None = None,
) -> bytes:
    """Build a serialized TensorRT engine from an exported ONNX.

    Args:
        onnx_path: the checked fp32 ONNX (inputs ``audio``, ``audio_length``).
        precision: "fp16" or "int8" (int8 also enables fp16 for layers int8 cannot take).
        profile: shapes of the optimization profile.
        calibration: waveforms for the int8 calibrator (required for int8).

    Raises:
        RuntimeError: TensorRT is unavailable, parsing failed, or the build failed.
    """
    reason = unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, profile.workspace_mb << 20)
    opt = builder.create_optimization_profile()
    for name, (lo, mid, hi) in profile.shapes().items():
        opt.set_shape(name, lo, mid, hi)
    config.add_optimization_profile(opt)
    config.set_flag(trt.BuilderFlag.FP16)
    with tempfile.TemporaryDirectory() as tmp:
        if precision == "int8":
            if not calibration:
                raise RuntimeError("int8 engines need calibration utterances")
            config.set_flag(trt.BuilderFlag.INT8)
            config.int8_calibrator = _calibrator(trt, calibration, Path(tmp) / "calibration.cache")
            config.set_calibration_profile(opt)
        elif precision != "fp16":
            raise ValueError(f"TensorRT precision must be fp16 or int8, not {precision!r}")
        plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError("TensorRT engine build failed (see the TensorRT log above)")
    return bytes(plan)


class TensorRTRunner:
    """Runs a serialized engine on torch CUDA buffers; one request batch at a time."""

    def __init__(self, plan: bytes) -> None:
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        import tensorrt as trt
        import torch

        self._torch = torch
        self.engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(plan)
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()

    def run(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """Log-probabilities (frames, vocab) per waveform, padding removed."""
        torch = self._torch
        lengths = [w.size for w in waves]
        audio = torch.zeros(len(waves), max(lengths), dtype=torch.float32, device="cuda")
        for i, w in enumerate(waves):
            audio[i, : w.size] = torch.from_numpy(w)
        audio_length = torch.tensor(lengths, dtype=torch.int64, device="cuda")
        self.context.set_input_shape("audio", tuple(audio.shape))
        self.context.set_input_shape("audio_length", tuple(audio_length.shape))
        # the output length follows from the input shape (any stride): TensorRT resolves it once the inputs are set
        frames = int(self.context.get_tensor_shape("logprobs")[1])
        if frames < 0:  # not resolvable (an engine of an older TensorRT): the default model's stride of 2
            frames = (max(lengths) // 160 + 2) // 2
        logprobs = torch.empty(len(waves), frames, len(TOKENS), dtype=torch.float32, device="cuda")
        out_len = torch.empty(len(waves), dtype=torch.int64, device="cuda")
        for name, t in (
            ("audio", audio),
            ("audio_length", audio_length),
            ("logprobs", logprobs),
            ("logprob_length", out_len),
        ):
            self.context.set_tensor_address(name, t.data_ptr())
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        self.stream.synchronize()
        lp, ln = logprobs.cpu().numpy(), out_len.cpu().numpy()
        return [lp[i, : int(ln[i])] for i in range(len(waves))]
