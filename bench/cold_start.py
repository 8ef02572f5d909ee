"""Cold start in fresh processes: import + ``Recognizer(...)`` + the first transcript, and ``edgeasr transcribe``.

Each ``--model`` is measured in turn, round after round, so that several (a version and the one before it)
share whatever the machine is doing; each round runs every model once in process and once as the command.
The measurement itself is :mod:`edgeasr.bench.coldstart` (``edgeasr bench --suite`` measures the served int8
version the same way); ``--bytecode`` is its ``bytecode`` (``cached``, the default: caches written first and
used, as an installed package runs; ``off``: the environment as it is, as the committed runs up to
``cold-start-v13-v15`` were measured, on machines that set ``PYTHONDONTWRITEBYTECODE=1``).

    python bench/cold_start.py --model triton_models/edgeasr/13 --model triton_models/edgeasr/15 \\
        --audio samples/01-flite-rms.wav --runs 7 --out bench/results/cold-start-cpu-2core-epyc/cold-start
"""

from __future__ import annotations

import argparse

from _results import write_results  # bench/_results.py (scripts run as python bench/NAME.py)

from edgeasr.bench.coldstart import cold_start_env, measure_cold_start_once


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
    env = cold_start_env(args.bytecode)
    if args.bytecode == "cached":
        for model in models:  # writes the caches; not measured
            measure_cold_start_once(model, args.audio, env)
    rows = [measure_cold_start_once(model, args.audio, env) for _ in range(args.runs) for model in models]
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
