"""The examples in the package's docstrings run and print what they say (doctest, from the repository root)."""

from __future__ import annotations

import doctest
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
