"""Cold start of the on-device path, in fresh processes: ``import edgeasr`` + ``Recognizer(...)`` + the first
transcript (in process), and the whole ``edgeasr transcribe`` command.

Each measurement starts a new interpreter, so nothing is warm but the operating system's file cache (the model
is read once before the measured runs). Python's bytecode caches are used as an installed package uses them
(``bytecode="cached"``): the children run without ``PYTHONDONTWRITEBYTECODE`` and one unmeasured run writes the
caches first, so no measured process compiles edgeasr's modules from source (23 ms of a cold start under
cProfile on a 2-core EPYC). ``bytecode="off"`` keeps the environment as it is.

``edgeasr bench --suite`` measures the served int8 version so (``--cold-start-runs``, budget limits
``max_cold_start_s`` and ``max_cold_start_command_s``); ``bench/cold_start.py`` alternates several models.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

__all__ = ["IN_PROCESS", "cold_start_env", "measure_cold_start", "measure_cold_start_once"]

IN_PROCESS = """
import time
t0 = time.perf_counter()
from edgeasr import Recognizer
text = Recognizer({model!r}).transcribe({audio!r}).text
print(time.perf_counter() - t0, text)
"""
"""The in-process measurement, run with ``python -c`` (``model`` and ``audio`` filled in)."""


def cold_start_env(bytecode: str = "cached") -> dict[str, str]:
    """The environment of the measured children.

    Args:
        bytecode: ``"cached"`` (bytecode caches written and used) or ``"off"`` (the environment as it is).

    Raises:
        ValueError: another value.
    """
    if bytecode not in ("cached", "off"):
        raise ValueError(f"bytecode must be 'cached' or 'off', not {bytecode!r}")
    env = dict(os.environ)
    if bytecode == "cached":
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def measure_cold_start_once(model: str, audio: str, env: dict[str, str]) -> dict:
    """One fresh process for the library, one for the command.

    Returns:
        ``in_process_s``, ``command_s`` (seconds), and the transcripts ``text`` and ``command_text``.

    Raises:
        subprocess.CalledProcessError: either process failed (its stderr is in the exception).
    """
    code = IN_PROCESS.format(model=model, audio=audio)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    seconds, _, text = out.strip().partition(" ")
    started = time.perf_counter()
    cli = subprocess.run(
        [sys.executable, "-m", "edgeasr", "transcribe", audio, "--model", model],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return {
        "model": model,
        "in_process_s": round(float(seconds), 4),
        "command_s": round(time.perf_counter() - started, 4),
        "text": text,
        "command_text": cli.stdout.strip(),
    }


def measure_cold_start(model: str, audio: str, runs: int = 5, bytecode: str = "cached") -> dict:
    """``runs`` fresh processes of each kind, after one unmeasured pair (caches, file cache).

    Args:
        model: a model folder or version folder (:func:`edgeasr.recognizer.resolve_model_dir`).
        audio: the file transcribed first.
        runs: measured processes of each kind (at least 1).
        bytecode: see :func:`cold_start_env`.

    Returns:
        ``cold_start_s`` and ``cold_start_command_s`` (the medians), their ``min`` and ``max`` per kind, the
        ``text`` read and every run's measurements (``rows``).

    Raises:
        ValueError: ``runs`` below 1 or an unknown ``bytecode``.
    """
    if runs < 1:
        raise ValueError(f"runs must be at least 1, not {runs}")
    env = cold_start_env(bytecode)
    measure_cold_start_once(model, audio, env)
    rows = [measure_cold_start_once(model, audio, env) for _ in range(runs)]
    inproc = [r["in_process_s"] for r in rows]
    command = [r["command_s"] for r in rows]
    return {
        "model": model,
        "audio": audio,
        "bytecode": bytecode,
        "cold_start_s": statistics.median(inproc),
        "cold_start_command_s": statistics.median(command),
        "in_process_min_max_s": [min(inproc), max(inproc)],
        "command_min_max_s": [min(command), max(command)],
        "text": rows[0]["text"],
        "rows": rows,
    }
