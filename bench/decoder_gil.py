"""Does the beam search release the GIL? A pure-Python spinner's speed while another thread decodes.

If the decoder released the GIL, the spinner would keep most of its speed on a free core; if it
holds it, the spinner runs only between decoder calls. Decoding the rows of a Triton batch in
threads pays only in the first case.

    python bench/decoder_gil.py --model triton_models/edgeasr/2 --manifest work/heldout/train.jsonl \\
        --out bench/results/eval-cpu-2core-epyc/decoder-gil
"""

from __future__ import annotations

import argparse
import threading
import time

from _results import write_results  # bench/_results.py (scripts run as python bench/NAME.py)

from edgeasr.manifest import load_row_audio, read_manifest
from edgeasr.recognizer import Recognizer, RecognizerOptions


def _spin(seconds: float) -> float:
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        n += 1
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="triton_models/edgeasr/2")
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--out", required=True, help="output stem: writes .json and .txt")
    args = parser.parse_args()
    rec = Recognizer(args.model, RecognizerOptions(threads=1))
    rows = read_manifest(args.manifest)[: args.limit]
    logprobs = [rec.logprobs(load_row_audio(r, args.manifest), 16000) for r in rows]
    alone = _spin(1.0)
    done = threading.Event()

    def decode() -> None:
        for lp in logprobs:
            rec.decode(lp)
        done.set()

    thread = threading.Thread(target=decode)
    started = time.perf_counter()
    thread.start()
    spins = 0
    while not done.is_set():
        spins += 1
        time.perf_counter()
    took = time.perf_counter() - started
    thread.join()
    during = spins / took
    result = {"decode_s": round(took, 3), "spins_per_s_alone": round(alone), "spins_per_s_during": round(during),
              "ratio": round(during / alone, 3)}  # fmt: skip
    lines = [
        f"{len(rows)} utterances of {args.manifest} decoded in {took:.2f} s by {args.model}'s beam search in a thread;",
        f"a Python spinner meanwhile ran at {during / alone:.2f} of its speed alone "
        f"({during:.0f} vs {alone:.0f} loops/s)",
    ]
    write_results(args.out, vars(args), [result], lines)


if __name__ == "__main__":
    main()
