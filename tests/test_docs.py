"""The examples in the package's docstrings run and print what they say (doctest, from the repository root), and
every command the recipes, export targets and data script document parses with the real command line."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

import edgeasr
from edgeasr import decoding

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module", [edgeasr, decoding], ids=lambda m: m.__name__)
def test_docstring_examples_run(module, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 3
    assert result.failed == 0


def _documented_commands(path: Path) -> list[str]:
    """The ``edgeasr`` command lines a recipe header or a data script gives (continuations joined)."""
    lines = path.read_text().splitlines()
    commands: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i].lstrip("#").strip() if path.suffix == ".toml" else lines[i]
        start = line.find("$EDGEASR ") if path.suffix == ".sh" else (0 if line.startswith("edgeasr ") else -1)
        if start < 0:
            i += 1
            continue
        text = line[start:]
        while text.endswith("\\") and i + 1 < len(lines):
            i += 1
            text = text[:-1] + " " + (lines[i].lstrip("#").strip() if path.suffix == ".toml" else lines[i].strip())
        for end in ("; }", ";", " > ", " 2>"):
            text = text.split(end)[0]
        commands.append(text.replace("$EDGEASR", "edgeasr").strip())
        i += 1
    return commands


DOCUMENTED = [
    *sorted((ROOT / "recipes").glob("*.toml")),
    *sorted((ROOT / "export").glob("*.toml")),
    *sorted((ROOT / "recipes").glob("*-data.sh")),
]


@pytest.mark.parametrize("path", DOCUMENTED, ids=lambda p: p.name)
def test_documented_commands_parse(path: Path) -> None:
    """Every ``edgeasr`` command a recipe, export target or data script documents parses with the real CLI."""
    import shlex

    from edgeasr.cli import build_parser

    commands = _documented_commands(path)
    if path.suffix == ".sh":
        assert commands, path.name  # a data script is its commands
    if path.name == "general-data.sh":
        assert len(commands) >= 20, commands  # the script's every step
    for command in commands:
        command = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", command)  # ${WORKERS:-2}: the script's default
        argv = shlex.split(command.replace("$W", "work").replace("$RS", "../shared/data/real-speech"))
        assert argv[0] == "edgeasr"
        try:
            build_parser().parse_args(argv[1:])
        except SystemExit as exc:  # argparse exits on an unknown flag or a missing argument
            raise AssertionError(f"{path.name}: {command!r} does not parse") from exc
