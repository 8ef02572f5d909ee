"""The layout of ARCHITECTURE.md holds: layered stages, a torch-free runtime core, no import circles.

``lint-imports`` checks the contracts in ``pyproject.toml`` (``[tool.importlinter]``) on the
static import graph, lazy imports inside functions included; the tests below also show that the
check fails when a lower layer imports a higher one or torch leaks into the core, and check at run
time what ``import edgeasr`` and a first transcript actually load.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "edgeasr"
LINT = Path(sys.executable).with_name("lint-imports")


def lint(src_root: Path) -> subprocess.CompletedProcess:
    """Run ``lint-imports`` with the project's contracts on the ``edgeasr`` package under ``src_root``."""
    if not LINT.is_file():
        pytest.skip(reason=f"import-linter is not installed next to {sys.executable} (the dev extra installs it)")
    env = {**os.environ, "PYTHONPATH": str(src_root)}
    return subprocess.run(
        [str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=src_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_import_contracts_hold() -> None:
    result = lint(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        (
            "audio.py",
            "from edgeasr.canary import cli as _upward\n",
            "edgeasr.audio is not allowed to import edgeasr.canary",
        ),
        ("data/synth.py", "from edgeasr.export import repository as _upward\n", "edgeasr.data is not allowed"),
        ("recognizer.py", "import torch as _torch\n", "edgeasr.recognizer is not allowed to import torch"),
        ("export/onnx.py", "from edgeasr.export import pipeline as _circle\n", "No import circle"),
    ],
)
def test_the_check_fails_on_a_violation(tmp_path: Path, module: str, line: str, broken: str) -> None:
    shutil.copytree(SRC, tmp_path / "edgeasr", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "edgeasr" / module
    target.write_text(target.read_text() + "\n" + line)
    result = lint(tmp_path)
    assert result.returncode != 0
    assert broken in " ".join(result.stdout.split()), result.stdout


@pytest.mark.parametrize("path", ["decoding.py", "features.py", "integrity.py", "serving/triton_model.py"])
def test_version_folder_files_stand_alone(path: str) -> None:
    """These files are copied into every version folder and run in Triton's stub, without edgeasr."""
    tree = ast.parse((SRC / path).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not [m for m in imported if m.split(".")[0] == "edgeasr"]
    assert not [m for m in imported if m.split(".")[0] in {"torch", "tritonclient", "scipy"}]


def test_a_first_transcript_loads_no_torch_tritonclient_or_tts() -> None:
    code = (
        "import sys, edgeasr\n"
        "from edgeasr import Recognizer\n"
        "text = Recognizer('triton_models/edgeasr').transcribe('samples/01-flite-rms.wav').text\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'torch', 'torchaudio', 'tritonclient', 'grpc', 'piper', 'kokoro_onnx', 'matplotlib', 'scipy'})\n"
        "print(text); print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    text, heavy = out.stdout.strip().splitlines()[-2:]
    assert text == "is it windy in cincinnati right now"
    assert heavy == "[]"


def _table_rows(text: str, heading: str) -> list[list[str]]:
    """The rows of the first table after ``heading`` in ARCHITECTURE.md, cells stripped."""
    block = text.split(heading, 1)[1]
    rows = []
    for line in block.splitlines():
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # without the header and its rule


def test_the_architecture_page_names_exactly_the_modules_there_are() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    core = {row[0].strip("`") for row in _table_rows(text, "**Runtime core**")}
    on_disk = {p.name for p in SRC.glob("*.py")} - {"__init__.py", "__main__.py", "cli.py"}
    assert core == on_disk
    for row in _table_rows(text, "**Stages**"):
        package = row[0].strip("`/")
        listed = set(re.findall(r"`([a-z_]+)`", row[1]))
        actual = {p.stem for p in (SRC / package).glob("*.py")} - {"__init__", "cli"}
        assert listed == actual, package
        assert (SRC / package / "cli.py").is_file(), f"{package} owns its commands in cli.py"


def test_the_page_and_the_contract_state_the_same_layers() -> None:
    import tomllib

    text = (ROOT / "ARCHITECTURE.md").read_text()
    rows = _table_rows(text, "## Layers and the direction of imports")
    page = ["core" if row[0].startswith("runtime core") else row[0].split("`")[1].rstrip("/") for row in rows]
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c["layers"] for c in contracts if c["type"] == "layers")
    stages = [layer.strip("()").removeprefix("edgeasr.") for layer in layers[2:-1]]
    assert page[1:-1] == stages  # between the entry and the core, the same stages in the same order
    assert (page[0], page[-1]) == ("edgeasr/__main__.py", "core")
