"""The Triton model repository: publishing versions atomically, for every serving flavour.

One exported ONNX file becomes, at version N, up to three Triton models::

    triton_models/
      edgeasr/          backend "python": onnxruntime inside Triton's python backend, KIND_CPU.
        config.pbtxt    Takes raw PCM (ragged batching), returns TEXT. Served by the tritonserver
        1/ 2/ ...       bundled with nvidia-pytriton (edgeasr serve), and by NVIDIA's images.
          model.py  decoding.py  features.py  integrity.py  model.onnx  vocab.json  model_card.json
          (lm.arpa  decoder.json when the export ships a beam search)
      edgeasr_onnx/     platform "onnxruntime_onnx": NVIDIA's native onnxruntime backend.
        config.pbtxt    Inputs are the ONNX contract (audio [B,T], audio_length [B]).
        warmup/         Raw files used by model_warmup.
        1/ 2/ ...       model.onnx  model_card.json
      edgeasr_trt/      platform "tensorrt_plan", KIND_GPU; only when a TensorRT plan is given.
        1/ 2/ ...       model.plan  model_card.json

Variable-length audio: the python flavour declares ``allow_ragged_batch`` so requests of any
length share one execution and ``model.py`` pads inside. The native flavours cannot pad
server-side, so their clients zero-pad the audio themselves (ideally to a few fixed bucket
lengths, so that requests of one bucket batch together) and send the true length in
``audio_length``; the model masks the padding and returns ``logprob_length``.

Publishing never touches a live version: version N+1 is written into a hidden temp directory in
the same model folder, fsynced and renamed into place (``os.rename`` refuses to replace a
non-empty directory). A failure removes the temp directories; a crash leaves only a hidden
temp directory, which Triton ignores (not a number), :meth:`ModelRepository.versions` ignores,
and the next publish removes.

Publishing never changes which version is live either. The first version of a model becomes its
champion in the live file (``<model>/live.json``, :mod:`edgeasr.serving.live`), which the routing
front of ``edgeasr serve`` obeys for every request that names no version; later versions wait
there until the canary gives them traffic. A ``config.pbtxt`` that exists keeps its
``version_policy`` (a rollback's ``specific [N]``, :func:`edgeasr.canary.versions.set_live`)
when a publish rewrites the rest of it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from tritonclient.grpc import model_config_pb2 as pb

from edgeasr import decoding, integrity
from edgeasr.audio import SAMPLE_RATE
from edgeasr.decoding import TOKENS
from edgeasr.files import fsync_dir, write_atomic
from edgeasr.modelcard import ModelCard
from edgeasr.serving.live import LiveState, live_file_for, write_live
from edgeasr.tritonconfig import (
    CONFIG_FILENAME,
    ModelConfig,
    read_config,
    set_parameters,
    set_version_policy,
    write_config,
)

__all__ = [
    "FLAVOURS",
    "ModelRepository",
    "RepositoryOptions",
    "native_config",
    "python_config",
]

FLAVOURS = {"python": "", "onnx": "_onnx", "trt": "_trt"}
"""Serving flavour -> suffix of its Triton model name."""

RUNTIME_FILES = {
    "model.py": resources.files("edgeasr.serving").joinpath("triton_model.py"),
    decoding.MODULE_FILE: resources.files("edgeasr").joinpath("decoding.py"),
    "features.py": resources.files("edgeasr").joinpath("features.py"),
    "audio.py": resources.files("edgeasr").joinpath("audio.py"),
    integrity.MODULE_FILE: resources.files("edgeasr").joinpath("integrity.py"),
}
"""What every python-flavour version folder runs, by its name there: the Triton model
(:mod:`edgeasr.serving.triton_model`) and its own copies of the decoder, the level normalization,
the input checks and the integrity check."""

OBSOLETE_RUNTIME_FILES = ("beam_search.py",)
"""Runtime files that earlier edgeasr versions shipped and :meth:`ModelRepository.upgrade_runtime` drops
(``beam_search.py`` is now part of ``decoding.py``)."""
"""The python-backend model, copied verbatim into each python-flavour version as ``model.py``."""

_TMP_PREFIX = ".tmp-"
_VERSION_RE = re.compile(r"^[1-9][0-9]*$")
_KINDS = {"cpu": "KIND_CPU", "gpu": "KIND_GPU", "auto": "KIND_AUTO"}


@dataclass(frozen=True)
class RepositoryOptions:
    """How published models are configured for Triton (the ``[repository]`` table of a TOML file)."""

    max_batch_size: int = 16  # largest batch the dynamic batcher forms (requests per execution)
    dynamic_batching: bool = True  # batch concurrent requests; False = one request per execution
    max_queue_delay_us: int = 0  # batcher wait for more requests; 0 = none, a lone request never waits
    preferred_batch_sizes: tuple[int, ...] = ()  # batch sizes the batcher aims for; () = any
    instance_count: int = 1  # model instances (python flavour and native CPU flavour)
    onnx_instance_kind: str = "auto"  # native onnx flavour: "cpu", "gpu" or "auto" (GPU if present)
    trt_instance_count: int = 1  # TensorRT flavour instances, always KIND_GPU
    version_policy: str = "all"  # "all" versions on disk are served, or "latest" (see latest_n)
    latest_n: int = 1  # with version_policy="latest": how many of the highest versions are served
    max_audio_seconds: float = 30.0  # python flavour: longer requests get INVALID_ARGUMENT
    intra_op_threads: int = 1  # onnxruntime threads per python-flavour instance (within an op)
    inter_op_threads: int = 1  # onnxruntime threads per python-flavour instance (across ops)
    decode_processes: int = 1  # python flavour: processes sharing out a batch's rows, model and search (stub included)
    warmup_seconds: float = 1.0  # length of the zero-audio warm-up request; 0 disables warm-up
    execution_env_path: str = ""  # python flavour: EXECUTION_ENV_PATH (a venv) for the stub; "" = PATH
    flavours: tuple[str, ...] = ("python", "onnx")  # flavours to write; "trt" is added when a plan is given

    def __post_init__(self) -> None:
        object.__setattr__(self, "preferred_batch_sizes", tuple(int(b) for b in self.preferred_batch_sizes))
        object.__setattr__(self, "flavours", tuple(self.flavours))
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {self.max_batch_size}")
        if self.version_policy not in ("all", "latest"):
            raise ValueError(f"version_policy must be 'all' or 'latest', got {self.version_policy!r}")
        if self.latest_n < 1:
            raise ValueError(f"latest_n must be >= 1, got {self.latest_n}")
        if self.onnx_instance_kind not in _KINDS:
            raise ValueError(f"onnx_instance_kind must be one of {sorted(_KINDS)}, got {self.onnx_instance_kind!r}")
        unknown = set(self.flavours) - set(FLAVOURS)
        if unknown or not self.flavours:
            raise ValueError(f"flavours must be a non-empty subset of {sorted(FLAVOURS)}, got {self.flavours}")
        if self.decode_processes < 1:
            raise ValueError(f"decode_processes must be >= 1, got {self.decode_processes}")
        if self.max_audio_seconds <= 0 or self.warmup_seconds < 0:
            raise ValueError("max_audio_seconds must be > 0 and warmup_seconds >= 0")

    @classmethod
    def from_toml(cls, path: str | os.PathLike, table: str = "repository") -> RepositoryOptions:
        """Read options from the ``[repository]`` table of a TOML file (absent keys keep defaults).

        Args:
            path: the TOML file.
            table: the table to read.

        Returns:
            The options.

        Raises:
            FileNotFoundError: no such file.
            ValueError: unknown keys, or invalid values.
        """
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]

        with open(path, "rb") as fh:
            data = tomllib.load(fh).get(table, {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown [{table}] keys {unknown}; known: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


# -- config.pbtxt ---------------------------------------------------------------------------------


def _batching(config: ModelConfig, opts: RepositoryOptions) -> None:
    if not opts.dynamic_batching:
        return  # no batcher: Triton's default scheduler runs one request per execution
    config.dynamic_batching.SetInParent()
    config.dynamic_batching.preferred_batch_size.extend(int(n) for n in opts.preferred_batch_sizes)
    if opts.max_queue_delay_us:
        config.dynamic_batching.max_queue_delay_microseconds = int(opts.max_queue_delay_us)


def _warmup(config: ModelConfig, audio_input: str, opts: RepositoryOptions, with_length: bool = False) -> None:
    if opts.warmup_seconds <= 0:
        return
    warm = config.model_warmup.add(name="zero_audio", batch_size=1)
    audio = warm.inputs[audio_input]
    audio.data_type = pb.TYPE_FP32
    audio.dims.append(int(opts.warmup_seconds * SAMPLE_RATE))
    audio.zero_data = True
    if with_length:
        length = warm.inputs["audio_length"]
        length.data_type = pb.TYPE_INT64
        length.dims.append(1)
        length.input_data_file = "audio_length"


def python_config(name: str, opts: RepositoryOptions, vocab_size: int = len(TOKENS)) -> ModelConfig:
    """Return the config of the python flavour (raw PCM in, TEXT out, ragged batching).

    Args:
        name: the Triton model name.
        opts: repository options.
        vocab_size: number of output tokens.

    Returns:
        Triton's ``ModelConfig`` (write it with :func:`edgeasr.tritonconfig.write_config`).
    """
    config = ModelConfig(name=name, backend="python", max_batch_size=opts.max_batch_size)
    set_version_policy(config, opts.version_policy, latest_n=opts.latest_n)
    ragged = {"allow_ragged_batch": True, "optional": True}
    config.input.add(name="AUDIO", data_type=pb.TYPE_FP32, dims=[-1], **ragged)
    config.input.add(name="AUDIO_INT16", data_type=pb.TYPE_INT16, dims=[-1], **ragged)
    config.input.add(name="SAMPLE_RATE", data_type=pb.TYPE_INT32, dims=[1], optional=True)
    config.output.add(name="TEXT", data_type=pb.TYPE_STRING, dims=[1])
    config.output.add(name="LOGPROBS", data_type=pb.TYPE_FP32, dims=[-1, vocab_size])
    _batching(config, opts)
    config.instance_group.add(count=opts.instance_count, kind=pb.ModelInstanceGroup.KIND_CPU)
    params = {
        "max_audio_seconds": f"{opts.max_audio_seconds:g}",
        "sample_rate": SAMPLE_RATE,
        "intra_op_threads": opts.intra_op_threads,
        "inter_op_threads": opts.inter_op_threads,
    }
    if opts.decode_processes != 1:
        params["decode_processes"] = opts.decode_processes
    if opts.execution_env_path:
        params["EXECUTION_ENV_PATH"] = opts.execution_env_path
    set_parameters(config, params)
    _warmup(config, "AUDIO", opts)
    return config


def native_config(name: str, flavour: str, opts: RepositoryOptions, vocab_size: int = len(TOKENS)) -> ModelConfig:
    """Return the config of a native flavour (``onnx`` or ``trt``) with the ONNX contract.

    Clients pad audio themselves and send ``audio_length``; see the module docstring.

    Args:
        name: the Triton model name.
        flavour: ``"onnx"`` (platform onnxruntime_onnx) or ``"trt"`` (platform tensorrt_plan).
        opts: repository options.
        vocab_size: number of output tokens.

    Returns:
        Triton's ``ModelConfig``.
    """
    if flavour == "onnx":
        platform, kind, count = "onnxruntime_onnx", _KINDS[opts.onnx_instance_kind], opts.instance_count
    elif flavour == "trt":
        platform, kind, count = "tensorrt_plan", "KIND_GPU", opts.trt_instance_count
    else:
        raise ValueError(f"not a native flavour: {flavour!r}")
    config = ModelConfig(name=name, platform=platform, max_batch_size=opts.max_batch_size)
    set_version_policy(config, opts.version_policy, latest_n=opts.latest_n)
    config.input.add(name="audio", data_type=pb.TYPE_FP32, dims=[-1])
    config.input.add(name="audio_length", data_type=pb.TYPE_INT64, dims=[1]).reshape.SetInParent()
    config.output.add(name="logprobs", data_type=pb.TYPE_FP32, dims=[-1, vocab_size])
    config.output.add(name="logprob_length", data_type=pb.TYPE_INT64, dims=[1]).reshape.SetInParent()
    _batching(config, opts)
    config.instance_group.add(count=count, kind=pb.ModelInstanceGroup.Kind.Value(kind))
    _warmup(config, "audio", opts, with_length=True)
    return config


# -- file helpers ---------------------------------------------------------------------------------


def _copy_durable(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    with open(dst, "rb+") as fh:
        os.fsync(fh.fileno())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ModelRepository:
    """A Triton model repository on disk, written by :meth:`publish`.

    Args:
        root: the repository directory (created on first publish).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ModelRepository({str(self.root)!r})"

    # -- reading --------------------------------------------------------------------------------

    def models(self) -> list[str]:
        """Return the names of the models (folders holding a ``config.pbtxt``), sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "config.pbtxt").is_file())

    def versions(self, name: str) -> list[int]:
        """Return the published versions of model ``name``, ascending (temp dirs ignored).

        Args:
            name: a Triton model name, e.g. ``"edgeasr"`` or ``"edgeasr_onnx"``.

        Returns:
            Version numbers; empty when the model does not exist.
        """
        folder = self.root / name
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and _VERSION_RE.match(p.name))

    def latest(self, name: str) -> int | None:
        """Return the highest published version of ``name``, or None when there is none.

        Args:
            name: a Triton model name.

        Returns:
            The version, or None.
        """
        found = self.versions(name)
        return found[-1] if found else None

    def version_dir(self, name: str, version: int) -> Path:
        """Return the directory of ``name`` version ``version`` (not checked)."""
        return self.root / name / str(int(version))

    def card(self, name: str, version: int) -> ModelCard:
        """Return the model card of a version.

        Raises:
            IntegrityError: the card is missing or unreadable.
        """
        return ModelCard.from_json(self.version_dir(name, version))

    def load_version(self, name: str, version: int | None = None) -> Path:
        """Return a version's directory after verifying every file against its card.

        Args:
            name: a Triton model name.
            version: the version; None = the latest.

        Returns:
            The verified version directory.

        Raises:
            FileNotFoundError: no such model or version.
            IntegrityError: the files do not match the card.
        """
        if version is None:
            version = self.latest(name)
            if version is None:
                raise FileNotFoundError(f"{self.root / name}: no published versions")
        path = self.version_dir(name, version)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such version (have {self.versions(name)})")
        ModelCard.from_json(path).verify(path)
        return path

    # -- publishing -----------------------------------------------------------------------------

    def publish(
        self,
        name: str,
        onnx_path: str | os.PathLike,
        *,
        card_fields: Mapping[str, Any] | None = None,
        options: RepositoryOptions = RepositoryOptions(),
        plan_path: str | os.PathLike | None = None,
        tokens: Sequence[str] = TOKENS,
        decoder_files: Mapping[str, str | os.PathLike] | None = None,
        flavour_fields: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> int:
        """Publish an exported model as version N+1 of every flavour, atomically.

        Args:
            name: base model name; flavours are ``name``, ``name_onnx`` and ``name_trt``.
            onnx_path: the exported ONNX model (the contract in the module docstring).
            card_fields: :class:`ModelCard` fields (provenance, metrics, ...); ``name``,
                ``version``, ``files`` and ``size_bytes`` are filled in per flavour.
            options: config options for the written ``config.pbtxt`` files.
            plan_path: a TensorRT plan built from the same ONNX; adds the ``trt`` flavour.
            tokens: the model's output vocabulary (written to ``vocab.json``); ``card_fields["tokens"]``
                wins when given.
            decoder_files: files the python flavour decodes with, by name in the version folder
                (``lm.arpa`` and ``decoder.json`` for the beam search; see :mod:`edgeasr.decoding`).
            flavour_fields: card fields that differ per flavour, by flavour (``"python"``,
                ``"onnx"``, ``"trt"``): a TensorRT export stamps its precision on the plan's card
                only, since the python and onnx flavours carry the fp32 ONNX.

        Returns:
            The new version number N+1 (the same for every flavour).

        Raises:
            FileNotFoundError: ``onnx_path`` or ``plan_path`` does not exist.
            FileExistsError: another publisher created version N+1 first.
        """
        onnx_path = Path(onnx_path)
        if not onnx_path.is_file():
            raise FileNotFoundError(f"{onnx_path}: no such ONNX file")
        flavours = list(options.flavours)
        if plan_path is not None:
            plan_path = Path(plan_path)
            if not plan_path.is_file():
                raise FileNotFoundError(f"{plan_path}: no such TensorRT plan")
            if "trt" not in flavours:
                flavours.append("trt")
        elif "trt" in flavours:
            flavours.remove("trt")
        names = {f: name + FLAVOURS[f] for f in flavours}
        created = [self.root / model for model in names.values() if not (self.root / model).exists()]
        for model in names.values():
            (self.root / model).mkdir(parents=True, exist_ok=True)
            self.clean_stale(model)
        version = 1 + max((self.latest(m) or 0) for m in self.family(name))
        fields_ = dict(card_fields or {})
        tokens = tuple(fields_.setdefault("tokens", tuple(tokens)))  # the card and vocab.json agree
        staged: dict[str, Path] = {}
        renamed: list[Path] = []
        try:
            for flavour, model in names.items():
                tmp = self.root / model / f"{_TMP_PREFIX}{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
                tmp.mkdir()
                staged[model] = tmp
                self._write_version(tmp, flavour, onnx_path, plan_path, tokens)
                if flavour == "python":
                    for file_name, src in (decoder_files or {}).items():
                        _copy_durable(Path(src), tmp / file_name)
                own = {**fields_, **dict((flavour_fields or {}).get(flavour, {}))}
                extra = {**dict(own.get("extra") or {}), "flavour": flavour}
                card = ModelCard.for_files(tmp, **{**own, "name": model, "version": version, "extra": extra})
                card.to_json(tmp)
                fsync_dir(tmp)
            for model, tmp in staged.items():
                final = self.root / model / str(version)
                try:
                    os.rename(tmp, final)
                except OSError as exc:
                    raise FileExistsError(f"{final}: version exists already ({exc})") from None
                renamed.append(final)
                fsync_dir(final.parent)
            for flavour, model in names.items():
                self._write_config(model, flavour, options, len(tokens))
            live = live_file_for(self.root, name)
            if (
                "python" in names and not live.exists()
            ):  # the first version is the champion; later ones wait for the canary
                write_live(live, LiveState(model=name, champion=str(version)))
        except BaseException:
            for path in [*staged.values(), *renamed]:
                shutil.rmtree(path, ignore_errors=True)
            for folder in created:  # model folders this publish made: nothing of them stays
                shutil.rmtree(folder, ignore_errors=True)
            raise
        return version

    def family(self, name: str) -> list[str]:
        """The Triton model names of every flavour of ``name`` (``name``, ``name_onnx``, ``name_trt``)."""
        return [name + suffix for suffix in FLAVOURS.values()]

    def _write_version(
        self, tmp: Path, flavour: str, onnx_path: Path, plan_path: Path | None, tokens: Sequence[str]
    ) -> None:
        if flavour == "python":
            for file_name, src in RUNTIME_FILES.items():
                _copy_durable(Path(str(src)), tmp / file_name)
            _copy_durable(onnx_path, tmp / "model.onnx")
            write_atomic(tmp / "vocab.json", json.dumps(list(tokens)).encode("utf-8"))
        elif flavour == "onnx":
            _copy_durable(onnx_path, tmp / "model.onnx")
        elif flavour == "trt":
            assert plan_path is not None
            _copy_durable(plan_path, tmp / "model.plan")

    def _write_config(self, model: str, flavour: str, options: RepositoryOptions, vocab_size: int) -> None:
        folder = self.root / model
        if flavour == "python":
            config = python_config(model, options, vocab_size)
        else:
            config = native_config(model, flavour, options, vocab_size)
            warmup = folder / "warmup"
            warmup.mkdir(exist_ok=True)
            length = int(options.warmup_seconds * SAMPLE_RATE)
            write_atomic(warmup / "audio_length", length.to_bytes(8, "little", signed=True))
        path = folder / CONFIG_FILENAME
        if path.is_file():  # which versions Triton loads is the canary's decision (set_live): keep it
            config.version_policy.CopyFrom(read_config(path).version_policy)
        write_config(path, config)

    def clean_stale(self, name: str) -> list[Path]:
        """Remove temp dirs of ``name`` left by publishers that no longer run.

        Args:
            name: a Triton model name.

        Returns:
            The removed directories.
        """
        removed = []
        folder = self.root / name
        if not folder.is_dir():
            return removed
        for path in folder.glob(f"{_TMP_PREFIX}*"):
            parts = path.name[len(_TMP_PREFIX) :].split("-")
            pid = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else -1
            if pid != os.getpid() and (pid < 0 or not _pid_alive(pid)):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed

    def upgrade_runtime(self, name: str, version: int) -> list[str]:
        """Give a published python-flavour version the serving code of this edgeasr, and re-sign its card.

        The model files (``model.onnx``, ``vocab.json``, the decoder's ``lm.arpa`` and
        ``decoder.json``) are kept byte for byte; the runtime files (:data:`RUNTIME_FILES`) are
        written afresh, files that an older edgeasr shipped as runtime (:data:`OBSOLETE_RUNTIME_FILES`)
        are dropped, and the card's file list is recomputed with every other field kept. The new
        folder is staged beside the old one and swapped in by two renames, so Triton never sees
        half a folder.

        Args:
            name: a python-flavour Triton model name, e.g. ``"edgeasr"``.
            version: the version to upgrade; its files must match its card first.

        Returns:
            The names of the files that changed, were added or were removed.

        Raises:
            FileNotFoundError: no such version.
            IntegrityError: the version does not match its card (nothing is changed).
        """
        path = self.load_version(name, version)
        card = ModelCard.from_json(path)
        tmp = path.with_name(f"{_TMP_PREFIX}up{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        shutil.copytree(path, tmp, ignore=shutil.ignore_patterns("__pycache__"))
        try:
            for obsolete in OBSOLETE_RUNTIME_FILES:
                (tmp / obsolete).unlink(missing_ok=True)
            for file_name, src in RUNTIME_FILES.items():
                _copy_durable(Path(str(src)), tmp / file_name)
            fields_ = {k: v for k, v in card.to_dict().items() if k not in ("files", "size_bytes")}
            new = ModelCard.for_files(tmp, **fields_)
            new.to_json(tmp)
            fsync_dir(tmp)
            changed = sorted(
                rel for rel in set(card.files) | set(new.files) if card.files.get(rel) != new.files.get(rel)
            )
            old = path.with_name(f"{_TMP_PREFIX}old{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
            os.rename(path, old)
            os.rename(tmp, path)
            fsync_dir(path.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(old, ignore_errors=True)
        return changed

    def remove_version(self, name: str, version: int) -> None:
        """Delete a version of every flavour (rename away first, so Triton never sees half a dir).

        Args:
            name: base model name.
            version: the version to delete.
        """
        for model in self.family(name):
            path = self.version_dir(model, version)
            if path.is_dir():
                doomed = path.with_name(f"{_TMP_PREFIX}rm{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
                os.rename(path, doomed)
                with contextlib.suppress(OSError):
                    shutil.rmtree(doomed)
