"""Cold start in fresh processes: import + ``Recognizer(...)`` + the first transcript, and ``edgeasr transcribe``.

Each ``--model`` is measured in turn, round after round, so that several (a version and the one before it)
share whatever the machine is doing; each round runs every model once in process and once as the command.

Python's bytecode caches are used as an installed package uses them (``--bytecode cached``, the default): the
children run without ``PYTHONDONTWRITEBYTECODE`` and one unmeasured run per model writes the caches first, so no
measured process compiles edgeasr's modules from source (23 ms of a cold start under cProfile on a 2-core EPYC). ``--bytecode off`` keeps
the environment as it is (the committed runs up to ``cold-start-v13-v15`` were measured with the environment as it
was; this project's machines set ``PYTHONDONTWRITEBYTECODE=1``).

    python bench/cold_start.py --model triton_models/edgeasr/13 --model triton_models/edgeasr/15 \\
        --audio samples/01-flite-rms.wav --runs 7 --out bench/results/cold-start-cpu-2core-epyc/cold-start
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from _results import write_results  # bench/_results.py (scripts run as python bench/NAME.py)

IN_PROCESS = """
import time
t0 = time.perf_counter()
from edgeasr import Recognizer
text = Recognizer({model!r}).transcribe({audio!r}).text
print(time.perf_counter() - t0, text)
"""


def _measure(model: str, audio: str, env: dict[str, str]) -> dict:
    """One fresh process for the library, one for the command."""
    code = IN_PROCESS.format(model=model, audio=audio)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    seconds, text = out.strip().split(" ", 1)
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


def _spread(values: list[float]) -> str:
    v = sorted(values)
    return f"min {v[0]:.3f} s, median {v[len(v) // 2]:.3f} s, max {v[-1]:.3f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="a model (repeat to alternate several); default the default")
    parser.add_argument("--audio", default="samples/01-flite-rms.wav")
    parser.add_argument("--runs", type=int, default=5, help="rounds: each model this many fresh processes of each kind")
    parser.add_argument("--bytecode", choices=("cached", "off"), default="cached", help="see the module's docstring")
    parser.add_argument("--out", required=True, help="output stem: writes .json and .txt")
    args = parser.parse_args()
    models = args.model or ["triton_models/edgeasr"]
    env = dict(os.environ)
    if args.bytecode == "cached":
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for model in models:  # writes the caches; not measured
            _measure(model, args.audio, env)
    rows = [_measure(model, args.audio, env) for _ in range(args.runs) for model in models]
    lines = [f"{args.runs} rounds of fresh processes, the models in turn, bytecode {args.bytecode}; {args.audio}"]
    for model in models:
        mine = [r for r in rows if r["model"] == model]
        lines += [
            f"{model}: {mine[0]['text']!r}",
            f"  in process (import + Recognizer + first transcript): {_spread([r['in_process_s'] for r in mine])}",
            f"  `python -m edgeasr transcribe` (whole command): {_spread([r['command_s'] for r in mine])}",
        ]
    write_results(args.out, vars(args), rows, lines)


if __name__ == "__main__":
    main()
