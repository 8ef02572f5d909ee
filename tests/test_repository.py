"""Model repository: configs Triton accepts, version N+1, atomic publish, integrity, live versions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgeasr import decoding
from edgeasr.export import repository as repo_mod
from edgeasr.export.repository import ModelRepository, RepositoryOptions
from edgeasr.modelcard import IntegrityError, ModelCard

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
text_format = pytest.importorskip("google.protobuf.text_format")


def parse_config(path: Path):
    """Parse a config.pbtxt with Triton's own ModelConfig schema (raises on any unknown field)."""
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    p = tmp_path / "model.plan"
    p.write_bytes(b"not really a plan")
    return p


def test_publish_writes_every_flavour(tmp_path: Path, asr_onnx: Path, plan: Path) -> None:
    repo = ModelRepository(tmp_path / "models")
    assert repo.publish("edgeasr", asr_onnx, card_fields={"data_version": "v1"}, plan_path=plan) == 1
    assert repo.models() == ["edgeasr", "edgeasr_onnx", "edgeasr_trt"]
    assert sorted(p.name for p in repo.version_dir("edgeasr", 1).iterdir()) == [
        "audio.py",
        "decoding.py",
        "features.py",
        "integrity.py",
        "model.onnx",
        "model.py",
        "model_card.json",
        "vocab.json",
    ]
    for name, src in repo_mod.RUNTIME_FILES.items():  # the serving model and its decoder and check, verbatim
        assert (repo.version_dir("edgeasr", 1) / name).read_bytes() == src.read_bytes()
    assert repo_mod.RUNTIME_FILES["decoding.py"].read_bytes() == Path(decoding.__file__).read_bytes()
    assert (repo.version_dir("edgeasr_trt", 1) / "model.plan").is_file()
    card = repo.card("edgeasr_onnx", 1)
    assert (card.name, card.version, card.data_version, card.extra["flavour"]) == (
        "edgeasr_onnx",
        1,
        "v1",
        "onnx",
    )
    for model in repo.models():
        repo.load_version(model, 1)


def test_configs_parse_with_tritons_schema(tmp_path: Path, asr_onnx: Path, plan: Path) -> None:
    repo = ModelRepository(tmp_path)
    repo.publish(
        "asr",
        asr_onnx,
        card_fields={},
        plan_path=plan,
        options=RepositoryOptions(max_batch_size=4, instance_count=2),
    )
    py = parse_config(tmp_path / "asr" / "config.pbtxt")
    assert (py.name, py.backend, py.max_batch_size) == ("asr", "python", 4)
    ragged = {i.name: (i.allow_ragged_batch, i.optional) for i in py.input}
    assert ragged == {"AUDIO": (True, True), "AUDIO_INT16": (True, True), "SAMPLE_RATE": (False, True)}
    assert [o.name for o in py.output] == ["TEXT", "LOGPROBS"]
    assert py.HasField("dynamic_batching") and py.dynamic_batching.max_queue_delay_microseconds == 0
    assert py.instance_group[0].count == 2
    assert py.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    assert py.version_policy.HasField("all")
    assert py.parameters["max_audio_seconds"].string_value == "30"
    assert py.model_warmup[0].inputs["AUDIO"].zero_data

    onnx = parse_config(tmp_path / "asr_onnx" / "config.pbtxt")
    assert onnx.platform == "onnxruntime_onnx"
    assert [i.name for i in onnx.input] == ["audio", "audio_length"]
    warm_file = onnx.model_warmup[0].inputs["audio_length"].input_data_file
    assert int.from_bytes((tmp_path / "asr_onnx" / "warmup" / warm_file).read_bytes(), "little") == 16000

    trt = parse_config(tmp_path / "asr_trt" / "config.pbtxt")
    assert trt.platform == "tensorrt_plan"
    assert trt.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU


def test_options_change_the_config(tmp_path: Path, asr_onnx: Path) -> None:
    opts = RepositoryOptions(
        max_queue_delay_us=500,
        preferred_batch_sizes=(4, 8),
        version_policy="latest",
        latest_n=2,
        warmup_seconds=0,
        execution_env_path="/opt/venv",
    )
    repo = ModelRepository(tmp_path)
    repo.publish("m", asr_onnx, card_fields={}, options=opts)
    cfg = parse_config(tmp_path / "m" / "config.pbtxt")
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 500
    assert list(cfg.dynamic_batching.preferred_batch_size) == [4, 8]
    assert cfg.version_policy.latest.num_versions == 2
    assert not cfg.model_warmup
    assert cfg.parameters["EXECUTION_ENV_PATH"].string_value == "/opt/venv"


def test_options_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "serve.toml"
    path.write_text("[repository]\nmax_batch_size = 32\npreferred_batch_sizes = [8, 16]\n")
    opts = RepositoryOptions.from_toml(path)
    assert (opts.max_batch_size, opts.preferred_batch_sizes, opts.instance_count) == (32, (8, 16), 1)
    path.write_text("[repository]\nmax_batchsize = 32\n")
    with pytest.raises(ValueError, match="unknown"):
        RepositoryOptions.from_toml(path)
    with pytest.raises(ValueError, match="version_policy"):
        RepositoryOptions(version_policy="newest")


def test_next_version_goes_beside_the_live_one(tmp_path: Path, asr_onnx: Path) -> None:
    repo = ModelRepository(tmp_path)
    assert repo.latest("edgeasr") is None
    assert repo.publish("edgeasr", asr_onnx, card_fields={}) == 1
    before = (repo.version_dir("edgeasr", 1) / "model_card.json").read_bytes()
    assert repo.publish("edgeasr", asr_onnx, card_fields={}) == 2
    assert repo.versions("edgeasr") == repo.versions("edgeasr_onnx") == [1, 2]
    assert repo.latest("edgeasr") == 2
    assert (repo.version_dir("edgeasr", 1) / "model_card.json").read_bytes() == before


def test_failure_mid_publish_leaves_nothing(tmp_path: Path, asr_onnx: Path, monkeypatch) -> None:
    repo = ModelRepository(tmp_path)
    repo.publish("edgeasr", asr_onnx, card_fields={})
    real = ModelCard.for_files
    calls = []

    def failing(version_dir, **fields):
        calls.append(version_dir)
        if len(calls) == 2:  # the second flavour: the first is fully staged by now
            raise OSError("disk full (injected)")
        return real(version_dir, **fields)

    monkeypatch.setattr(ModelCard, "for_files", failing)
    with pytest.raises(OSError, match="injected"):
        repo.publish("edgeasr", asr_onnx, card_fields={})
    for model in ("edgeasr", "edgeasr_onnx"):
        assert repo.versions(model) == [1]
        assert sorted(p.name for p in (tmp_path / model).iterdir()) in (
            ["1", "config.pbtxt", "live.json"],  # the first publish named version 1 the champion
            ["1", "config.pbtxt", "warmup"],
        )
        repo.load_version(model, 1)


def test_stale_temp_dirs_are_ignored_then_cleaned(tmp_path: Path, asr_onnx: Path) -> None:
    repo = ModelRepository(tmp_path)
    repo.publish("edgeasr", asr_onnx, card_fields={})
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / "edgeasr" / f".tmp-2-{int(dead.stdout)}-deadbeef"
    stale.mkdir()
    (stale / "model.onnx").write_bytes(b"half")
    assert repo.versions("edgeasr") == [1]
    assert repo.publish("edgeasr", asr_onnx, card_fields={}) == 2
    assert not stale.exists()
    repo.load_version("edgeasr", 2)


def test_load_version_refuses_tampered_files(tmp_path: Path, asr_onnx: Path) -> None:
    repo = ModelRepository(tmp_path)
    repo.publish("edgeasr", asr_onnx, card_fields={})
    assert repo.load_version("edgeasr") == repo.version_dir("edgeasr", 1)
    with (repo.version_dir("edgeasr", 1) / "model.onnx").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(IntegrityError, match=r"model\.onnx"):
        repo.load_version("edgeasr", 1)
    with pytest.raises(FileNotFoundError):
        repo.load_version("edgeasr", 9)


def test_upgrade_runtime_replaces_the_serving_code_and_keeps_the_model(tmp_path: Path, asr_onnx: Path) -> None:
    repo = ModelRepository(tmp_path)
    repo.publish("edgeasr", asr_onnx, card_fields={"data_version": "dv-x"})
    folder = repo.version_dir("edgeasr", 1)
    # what an older edgeasr shipped: its own model.py and a beam_search.py, signed by the card
    (folder / "model.py").write_text("# an older serving model\n")
    (folder / "beam_search.py").write_text("# an older decoder\n")
    (folder / "decoding.py").unlink()
    (folder / "features.py").unlink()
    old = ModelCard.from_json(folder)
    fields = {k: v for k, v in old.to_dict().items() if k not in ("files", "size_bytes")}
    ModelCard.for_files(folder, **fields).to_json(folder)
    onnx_bytes = (folder / "model.onnx").read_bytes()

    assert repo.upgrade_runtime("edgeasr", 1) == ["beam_search.py", "decoding.py", "features.py", "model.py"]
    new = repo.card("edgeasr", 1)
    new.verify(folder)
    assert not (folder / "beam_search.py").exists()
    for name, src in repo_mod.RUNTIME_FILES.items():
        assert (folder / name).read_bytes() == src.read_bytes()
    assert (folder / "model.onnx").read_bytes() == onnx_bytes
    assert (new.data_version, new.created) == ("dv-x", old.created)
    assert not [p for p in (tmp_path / "edgeasr").iterdir() if p.name.startswith(".")]  # no staging left
    assert repo.upgrade_runtime("edgeasr", 1) == []  # already current

    (folder / "model.onnx").write_bytes(onnx_bytes + b"\0")  # a damaged version is refused, untouched
    with pytest.raises(IntegrityError, match=r"model\.onnx"):
        repo.upgrade_runtime("edgeasr", 1)
    assert (folder / "model.onnx").read_bytes() == onnx_bytes + b"\0"


def test_the_shipped_versions_run_the_current_serving_code() -> None:
    """The shipped python-flavour versions carry exactly this checkout's runtime files (upgrade_runtime)."""
    shipped = ModelRepository(Path(__file__).resolve().parents[1] / "triton_models")
    versions = shipped.versions("edgeasr")
    assert versions
    for version in versions:
        folder = shipped.load_version("edgeasr", version)  # verifies the card too
        for name, src in repo_mod.RUNTIME_FILES.items():
            assert (folder / name).read_bytes() == src.read_bytes(), f"version {version}: {name} is stale"


def test_publish_keeps_the_live_version_and_the_version_policy(tmp_path: Path, asr_onnx: Path) -> None:
    from edgeasr.canary.versions import live_policy, set_live
    from edgeasr.serving.live import live_file_for, read_live

    repo = ModelRepository(tmp_path)
    assert repo.publish("edgeasr", asr_onnx, card_fields={}) == 1
    assert read_live(live_file_for(tmp_path, "edgeasr")).champion == "1"
    assert repo.publish("edgeasr", asr_onnx, card_fields={}) == 2
    assert read_live(live_file_for(tmp_path, "edgeasr")).champion == "1"  # a new version is not live
    set_live(repo, "edgeasr", [1])
    assert repo.publish("edgeasr", asr_onnx, card_fields={}) == 3
    assert live_policy(tmp_path, "edgeasr") == "specific [1]"  # the rollback survives the export
    assert live_policy(tmp_path, "edgeasr_onnx") == "specific [1]"


def test_per_flavour_card_fields(tmp_path: Path, asr_onnx: Path) -> None:
    """A TensorRT export stamps its precision on the plan only: the other flavours carry fp32."""
    from edgeasr.bench.suite import find_precision_versions

    plan = tmp_path / "model.plan"
    plan.write_bytes(b"plan")
    repo = ModelRepository(tmp_path / "repo")
    version = repo.publish(
        "edgeasr",
        asr_onnx,
        card_fields={"precision": "fp32"},
        plan_path=plan,
        flavour_fields={"trt": {"precision": "fp16"}},
    )
    assert repo.card("edgeasr", version).precision == "fp32"
    assert repo.card("edgeasr_onnx", version).precision == "fp32"
    assert repo.card("edgeasr_trt", version).precision == "fp16"
    assert find_precision_versions(repo.root, "edgeasr") == {"fp32": version}


def test_a_full_disk_mid_publish_leaves_no_model_folder(tmp_path: Path, asr_onnx: Path, monkeypatch) -> None:
    import errno

    import edgeasr.export.repository as repository_module

    real = repository_module._copy_durable
    calls = []

    def disk_full(src: Path, dst: Path) -> None:
        calls.append(dst)
        if dst.name == "model.onnx" and len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        real(src, dst)

    monkeypatch.setattr(repository_module, "_copy_durable", disk_full)
    repo = ModelRepository(tmp_path / "fresh")
    with pytest.raises(OSError, match="No space left"):
        repo.publish("edgeasr", asr_onnx, card_fields={})
    assert not (tmp_path / "fresh" / "edgeasr").exists() and not (tmp_path / "fresh" / "edgeasr_onnx").exists()


def test_stale_export_temp_folders_are_removed_by_the_next_export(tmp_path: Path) -> None:
    import subprocess
    import sys
    import tempfile

    from edgeasr.export.pipeline import clean_stale_temp_dirs

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = Path(tempfile.mkdtemp(prefix=f"edgeasr-export-{dead.pid}-"))
    mine = Path(tempfile.mkdtemp(prefix=f"edgeasr-export-{os.getpid()}-"))
    try:
        assert stale in clean_stale_temp_dirs()
        assert not stale.exists() and mine.exists()  # a running export's folder is left alone
    finally:
        shutil.rmtree(mine, ignore_errors=True)
