"""Beam-search settings on one version's own log-probabilities: WER and decoder speed per split.

The acoustic model runs once per utterance; each candidate (overrides of the version's
``decoder.json``, the first line is the version as shipped) then decodes every split, fastest of two
rounds. A split named ``NAME@10`` is the manifest's pink-noise copy at 10 dB (as the export tunes).
Prints one JSON line per candidate: {split: [WER %, decoder x real time]}.

    python bench/decoder_settings.py triton_models/edgeasr/1 \\
        '[{"blank_skip": 0.99}, {"blank_skip": 0.99, "word_score": 0.0}]' \\
        test=work/corpus/test.jsonl heldout=work/heldout/train.jsonl
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace

import jiwer

from edgeasr.decoding import TOKENS, BeamSearchDecoder, BeamSearchOptions, find_lm
from edgeasr.export.tuning import noisy_copies
from edgeasr.manifest import load_row_audio, read_manifest
from edgeasr.recognizer import Recognizer, RecognizerOptions


def main() -> None:
    model, candidates, specs = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
    rec = Recognizer(model, RecognizerOptions(threads=1, decoder="greedy"))
    shipped = BeamSearchOptions.from_json(f"{model}/decoder.json")
    data = {}
    for spec in specs:
        name, manifest = spec.split("=", 1)
        rows = read_manifest(manifest)[:300]
        waves = [load_row_audio(r, manifest, allow_outside=True) for r in rows]
        if name.endswith("@10"):
            waves = noisy_copies(waves, 10.0)
        logprobs = [rec.logprobs(w, 16000) for w in waves]
        data[name] = ([r["text"] for r in rows], logprobs, sum(w.size for w in waves) / 16000)
    for overrides in [{}, *candidates]:
        decoder = BeamSearchDecoder(find_lm(model), list(TOKENS), replace(shipped, **overrides))
        out = {"cand": overrides}
        for name, (refs, logprobs, audio_s) in data.items():
            best = float("inf")
            for _ in range(2):
                started = time.perf_counter()
                hyps = [" ".join(w for w, _, _ in decoder.search(lp)) for lp in logprobs]
                best = min(best, time.perf_counter() - started)
            out[name] = (round(jiwer.wer(refs, hyps) * 100, 2), round(audio_s / best))
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
