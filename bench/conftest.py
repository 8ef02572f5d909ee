"""pytest configuration of the micro-benchmarks in ``bench/`` (not part of the default test run).

Saved runs go to ``bench/baselines/`` wherever pytest is started from, unless
``--benchmark-storage`` is given; see ``bench/README.md`` for saving and comparing baselines.
"""

from __future__ import annotations

from pathlib import Path

import pytest

BASELINES = Path(__file__).resolve().parent / "baselines"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Point pytest-benchmark's storage at ``bench/baselines`` when left at its default."""
    if getattr(config.option, "benchmark_storage", None) == "file://./.benchmarks":
        config.option.benchmark_storage = f"file://{BASELINES}"
