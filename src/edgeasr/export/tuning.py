"""Tuning the shipped beam search on the check set: the LM weight and word score that an export ships.

An export target with ``decoder = "beam"`` tries its grid of ``lm_weight`` x ``word_score`` on the
check (dev) utterances' log-probabilities, optionally also on pink-noise copies at
``tune_noise_snr``, keeps the setting with the lowest mean WER, and refuses to ship one that does
not beat greedy decoding.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from edgeasr.decoding import TOKENS, greedy_decode
from edgeasr.export.target import ExportCheckError, ExportTarget

__all__ = ["greedy_wer", "noisy_copies", "tune_beam_search"]


def noisy_copies(waves: list[np.ndarray], snr_db: float) -> list[np.ndarray]:
    """Pink-noise copies of ``waves`` at ``snr_db``, seeded like ``edgeasr eval``'s noisy splits."""
    from edgeasr.data.augment import add_noise, pink_noise
    from edgeasr.training.conditions import NOISE_SEED

    rng = np.random.default_rng(NOISE_SEED)
    return [add_noise(w, pink_noise(w.size, rng), snr_db) for w in waves]


def greedy_wer(logprobs: list[np.ndarray], refs: list[str]) -> float:
    import jiwer

    return float(jiwer.wer(refs, [greedy_decode(lp).text for lp in logprobs]))


def _arpa_order(path: Path) -> int:
    """The highest n-gram order listed in an ARPA file's ``\\data\\`` header."""
    order = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("\\1-grams:"):
                break
            if line.startswith("ngram ") and "=" in line:
                order += 1
    return order


def tune_beam_search(
    logprobs: list[np.ndarray],
    refs: list[str],
    target: ExportTarget,
    out_dir: Path,
    noisy_logprobs: dict[str, list[np.ndarray]] | None = None,
) -> tuple[dict[str, Path], dict]:
    """Choose ``lm_weight`` and ``word_score`` on the check set; write ``decoder.json`` into ``out_dir``.

    The setting with the lowest WER wins; with ``noisy_logprobs`` it is the lowest mean WER over
    the clean check set and each noisy copy, so that a weight that only helps clean speech (a
    lower LM weight usually) does not win at the expense of noisy speech.

    Args:
        logprobs: the exported model's (frames, vocab) log-probabilities of each check utterance.
        refs: their reference texts.
        target: the export target (language model, grid and beam settings).
        out_dir: where ``decoder.json`` is written.
        noisy_logprobs: log-probabilities of noisy copies of the same utterances, by condition
            name (``"10dB"``); empty or None tunes on the clean set alone.

    Returns:
        The decoder files the python flavour ships (``lm.arpa``, ``decoder.json``) and
        the tuning numbers (greedy WER, the grid, the chosen WER and options) for the model card.

    Raises:
        ExportCheckError: the best setting does not beat greedy decoding on the check set.
    """
    import jiwer

    from edgeasr import decoding
    from edgeasr.decoding import BeamSearchDecoder, BeamSearchOptions

    lm = Path(target.lm)
    if not lm.is_file():
        raise FileNotFoundError(f"{lm}: no such language model (build one with `edgeasr lm`)")
    wer_greedy = greedy_wer(logprobs, refs)
    grid = []
    order = _arpa_order(lm)
    for lm_weight in target.lm_weights:
        for word_score in target.word_scores:
            options = BeamSearchOptions(
                lm_order=order,
                beam_size=target.beam_size,
                beam_size_token=target.beam_size_token,
                beam_threshold=target.beam_threshold,
                blank_skip=target.blank_skip,
                lm_weight=lm_weight,
                word_score=word_score,
            )
            decoder = BeamSearchDecoder(lm, list(TOKENS), options)
            wers = {}
            for condition, lps in {"clean": logprobs, **(noisy_logprobs or {})}.items():
                hyps = [" ".join(w for w, _, _ in decoder.search(lp)) for lp in lps]
                wers[condition] = float(jiwer.wer(refs, hyps))
            grid.append((wers["clean"], lm_weight, word_score, options, wers))
    chosen = min(grid, key=lambda g: (sum(g[4].values()) / len(g[4]), g[0]))
    best_wer, lm_weight, word_score, options, wers = chosen
    noisy = ", ".join(f"{k} {100 * v:.2f}%" for k, v in wers.items() if k != "clean")
    print(
        f"beam search on the check set: WER {100 * best_wer:.2f}% (lm_weight {lm_weight}, word_score {word_score}) "
        f"vs greedy {100 * wer_greedy:.2f}%" + (f"; noisy copies: {noisy}" if noisy else "")
    )
    if best_wer > wer_greedy:
        raise ExportCheckError(f"the beam search ({best_wer:.4f}) does not beat greedy decoding ({wer_greedy:.4f})")
    options.to_json(out_dir / decoding.DECODER_FILE)
    files = {
        decoding.LM_FILE: lm,
        decoding.DECODER_FILE: out_dir / decoding.DECODER_FILE,
    }
    tuning = {
        "wer_greedy": wer_greedy,
        "wer_beam": best_wer,
        "wer_beam_noisy": {k: v for k, v in wers.items() if k != "clean"},
        "grid": [
            {"lm_weight": g[1], "word_score": g[2], "wer": g[0]}
            | {f"wer_{k}": v for k, v in g[4].items() if k != "clean"}
            for g in grid
        ],
        "options": asdict(options),
    }
    return files, tuning
