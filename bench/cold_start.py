"""Cold start in fresh processes: import + ``Recognizer(...)`` + the first transcript, and ``edgeasr transcribe``.

    python bench/cold_start.py --model triton_models/edgeasr --audio samples/01-flite-rms.wav \\
        --runs 5 --out bench/results/cold-start-cpu-2core-epyc/cold-start
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="triton_models/edgeasr")
    parser.add_argument("--audio", default="samples/01-flite-rms.wav")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", required=True, help="output stem: writes .json and .txt")
    args = parser.parse_args()
    rows = []
    for _ in range(args.runs):
        code = IN_PROCESS.format(model=args.model, audio=args.audio)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        seconds, text = out.strip().split(" ", 1)
        started = time.perf_counter()
        cli = subprocess.run(
            [sys.executable, "-m", "edgeasr", "transcribe", args.audio, "--model", args.model],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(
            {
                "in_process_s": round(float(seconds), 4),
                "command_s": round(time.perf_counter() - started, 4),
                "text": text,
                "command_text": cli.stdout.strip(),
            }
        )
    inproc = sorted(r["in_process_s"] for r in rows)
    command = sorted(r["command_s"] for r in rows)
    lines = [
        f"{args.runs} fresh processes each; {args.model}, {args.audio}: {rows[0]['text']!r}",
        f"in process (import + Recognizer + first transcript): min {inproc[0]:.3f} s, median "
        f"{inproc[len(inproc) // 2]:.3f} s, max {inproc[-1]:.3f} s",
        f"`python -m edgeasr transcribe` (whole command): min {command[0]:.3f} s, median "
        f"{command[len(command) // 2]:.3f} s, max {command[-1]:.3f} s",
    ]
    write_results(args.out, vars(args), rows, lines)


if __name__ == "__main__":
    main()
