"""Tuning the shipped beam search on the check set: the LM weight and word score that an export ships.

An export target with ``decoder = "beam"`` tries its grid of ``lm_weight`` x ``word_score`` on the
check (dev) utterances' log-probabilities, optionally also on pink-noise copies at
``tune_noise_snr``, keeps the setting with the lowest mean WER, and refuses to ship one that does
not beat greedy decoding.

With ``domain_decoder`` (two n-grams, :mod:`edgeasr.decoding`) it then searches every check
utterance and every utterance of ``domain_check_manifest`` once more with the domain search, and
chooses the choice's ``domain_weight`` x ``domain_word_bias`` from their grid: the lowest check-set WER
among the settings that keep the in-domain WER at most ``domain_max_wer``; it refuses to ship when
none does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict
from pathlib import Path

import numpy as np

from edgeasr import decoding
from edgeasr.decoding import (
    TOKENS,
    BeamSearchDecoder,
    BeamSearchOptions,
    greedy_decode,
    open_arpa,
    prefer_domain,
)
from edgeasr.export.target import ExportCheckError, ExportTarget

__all__ = ["domain_options", "greedy_wer", "noisy_copies", "tune_beam_search", "tune_domain_choice"]


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
    with open_arpa(path) as fh:
        for line in fh:
            if line.startswith("\\1-grams:"):
                break
            if line.startswith("ngram ") and "=" in line:
                order += 1
    return order


def _lm_files(lm: Path | None, name: str) -> dict[str, Path]:
    """The files of word n-gram ``lm`` shipped as ``name`` (``lm.arpa``; a binary as ``lm.bin`` and ``lm.words``,
    with ``lm.scores`` where it has them: :data:`edgeasr.decoding.SCORES_SUFFIX`)."""
    if lm is None:
        raise FileNotFoundError(f"no word n-gram to ship as {name}")
    if lm.suffix != ".bin":
        return {name: lm}
    stem = Path(name).with_suffix("")
    files = {f"{stem}.bin": lm, f"{stem}.words": lm.with_suffix(".words")}
    if lm.with_suffix(decoding.SCORES_SUFFIX).is_file():
        files[f"{stem}{decoding.SCORES_SUFFIX}"] = lm.with_suffix(decoding.SCORES_SUFFIX)
    return files


def _binary(arpa: Path, out_dir: Path, name: str, quantize_bits: int = 0) -> Path:
    """``arpa`` written as KenLM's binary trie into ``out_dir`` as ``name``'s ``.bin`` (and ``.words``)."""
    from edgeasr.export.kenlm import write_binary_lm

    return write_binary_lm(arpa, out_dir / Path(name).with_suffix(".bin"), quantize_bits=quantize_bits)


def tune_beam_search(
    logprobs: list[np.ndarray],
    refs: list[str],
    target: ExportTarget,
    out_dir: Path,
    noisy_logprobs: dict[str, list[np.ndarray]] | None = None,
    domain_logprobs: list[np.ndarray] | None = None,
    domain_refs: list[str] | None = None,
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
        domain_logprobs: with ``target.domain_decoder``: the in-domain check utterances'
            log-probabilities (:func:`tune_domain_choice`).
        domain_refs: their reference texts.

    Returns:
        The decoder files the python flavour ships (``lm.arpa``, ``decoder.json``, and with a
        domain search ``lm-domain.arpa`` and ``decoder-domain.json``) and the tuning numbers
        (greedy WER, the grid, the chosen WER and options) for the model card.

    Raises:
        ExportCheckError: the best setting does not beat greedy decoding on the check set, or no
            domain choice keeps the in-domain WER at ``target.domain_max_wer``.
    """
    import jiwer

    lm = Path(target.lm)
    if not lm.is_file():
        raise FileNotFoundError(f"{lm}: no such language model (build one with `edgeasr lm`)")
    order = _arpa_order(lm)
    if target.lm_binary:  # the binary trie is what ships, so it is what the grid is tuned on
        lm = _binary(lm, out_dir, decoding.LM_FILE, target.lm_quantize_bits)
    wer_greedy = greedy_wer(logprobs, refs)
    grid, best = [], None  # best: (key, index in grid, decoder, its clean answers); only its decoder is kept
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
                found = [decoder.search_scored(lp) for lp in lps]
                wers[condition] = float(jiwer.wer(refs, [_text(words) for words, _ in found]))
                if condition == "clean":
                    clean = found
            grid.append((wers["clean"], lm_weight, word_score, options, wers))
            key = (sum(wers.values()) / len(wers), wers["clean"])  # mean over conditions, then clean
            if best is None or key < best[0]:
                best = (key, len(grid) - 1, decoder, clean)
            del decoder
    _, index, general, found = best
    best_wer, lm_weight, word_score, options, wers = grid[index]
    noisy = ", ".join(f"{k} {100 * v:.2f}%" for k, v in wers.items() if k != "clean")
    print(
        f"beam search on the check set: WER {100 * best_wer:.2f}% (lm_weight {lm_weight}, word_score {word_score}) "
        f"vs greedy {100 * wer_greedy:.2f}%" + (f"; noisy copies: {noisy}" if noisy else "")
    )
    if best_wer > wer_greedy:
        raise ExportCheckError(f"the beam search ({best_wer:.4f}) does not beat greedy decoding ({wer_greedy:.4f})")
    files = {decoding.DECODER_FILE: out_dir / decoding.DECODER_FILE}
    files.update(_lm_files(lm, decoding.LM_FILE))
    domain: dict = {}
    if target.domain_decoder:
        options, domain = tune_domain_choice(
            general, logprobs, refs, found, domain_logprobs or [], domain_refs or [], target
        )
        best_wer = domain["wer"]
        folder = Path(target.domain_decoder)
        domain_lm = decoding.find_lm(folder)
        if target.lm_binary and domain_lm is not None and domain_lm.suffix != ".bin":
            # the same n-gram as the ARPA the choice was tuned with (KenLM's trie keeps its scores), minus its
            # parse at every load (2.5 MB of command n-gram: 0.02 s of a cold start)
            domain_lm = _binary(domain_lm, out_dir, decoding.DOMAIN_LM_FILE)
        files.update(_lm_files(domain_lm, decoding.DOMAIN_LM_FILE))
        domain_options(target).to_json(out_dir / decoding.DOMAIN_DECODER_FILE)  # as tuned, threshold and all
        files[decoding.DOMAIN_DECODER_FILE] = out_dir / decoding.DOMAIN_DECODER_FILE
    options.to_json(out_dir / decoding.DECODER_FILE)
    tuning = {
        "wer_greedy": wer_greedy,
        "wer_beam": best_wer,
        **({"domain_choice": domain} if domain else {}),
        "wer_beam_noisy": {k: v for k, v in wers.items() if k != "clean"},
        "grid": [
            {"lm_weight": g[1], "word_score": g[2], "wer": g[0]}
            | {f"wer_{k}": v for k, v in g[4].items() if k != "clean"}
            for g in grid
        ],
        "options": asdict(options),
    }
    return files, tuning


def _text(words: list[tuple[str, int, int]]) -> str:
    return " ".join(w for w, _, _ in words)


def domain_options(target: ExportTarget) -> BeamSearchOptions:
    """The domain search's settings a version ships: ``target.domain_decoder``'s ``decoder.json``, with the
    target's ``domain_beam_threshold`` in place of its own where set (0 keeps it)."""
    options = BeamSearchOptions.from_json(Path(target.domain_decoder) / decoding.DECODER_FILE)
    if target.domain_beam_threshold:
        options = dataclasses.replace(options, beam_threshold=target.domain_beam_threshold)
    return options


def tune_domain_choice(
    general: BeamSearchDecoder,
    logprobs: list[np.ndarray],
    refs: list[str],
    general_found: list[tuple[list, dict]],
    domain_logprobs: list[np.ndarray],
    domain_refs: list[str],
    target: ExportTarget,
) -> tuple[BeamSearchOptions, dict]:
    """Choose the two-n-gram choice's ``domain_weight`` and ``domain_word_bias`` (a grid on two sets).

    Every check utterance and every in-domain utterance is searched with the general search (its
    chosen settings) and with the domain search of ``target.domain_decoder`` once; each grid point
    then only re-runs :func:`~edgeasr.decoding.prefer_domain`. The point with the lowest check-set
    WER among those whose in-domain WER is at most ``target.domain_max_wer`` wins (ties: the lower
    in-domain WER).

    Args:
        general: the general :class:`~edgeasr.decoding.BeamSearchDecoder` with its chosen settings.
        logprobs: the check set's log-probabilities.
        refs: its references.
        general_found: the general search's ``search_scored`` answers on the check set (reused).
        domain_logprobs: the in-domain check utterances' log-probabilities.
        domain_refs: their references.
        target: the export target (the domain folder, the grid and the limit).

    Returns:
        The general search's options with the chosen weight and bias, and the numbers for the
        model card (each search alone and the choice, on both sets; the grid).

    Raises:
        ExportCheckError: no in-domain utterances, or no grid point within ``domain_max_wer``.
    """
    import jiwer

    if not domain_logprobs:
        raise ExportCheckError("domain_decoder needs in-domain check utterances (domain_check_manifest)")
    folder = Path(target.domain_decoder)
    # the files the version will ship as lm-domain.arpa (or .bin) and decoder-domain.json
    domain = BeamSearchDecoder(decoding.find_lm(folder), list(TOKENS), domain_options(target))
    answers = {  # per set: references, general answers, domain answers
        "check": (refs, general_found, [domain.search_scored(lp) for lp in logprobs]),
        "domain": (
            domain_refs,
            [general.search_scored(lp) for lp in domain_logprobs],
            [domain.search_scored(lp) for lp in domain_logprobs],
        ),
    }

    def wer(name: str, options) -> float:
        ref, gen, dom = answers[name]
        hyps = [_text(d[0] if prefer_domain(g[1], d[1], options) else g[0]) for g, d in zip(gen, dom, strict=True)]
        return float(jiwer.wer(ref, hyps))

    grid = []
    for weight in target.domain_weights:
        for bias in target.domain_word_biases:
            options = dataclasses.replace(general.options, domain_weight=weight, domain_word_bias=bias)
            grid.append(
                {
                    "domain_weight": weight,
                    "domain_word_bias": bias,
                    "wer": wer("check", options),
                    "wer_domain": wer("domain", options),
                }
            )
    alone = {
        f"wer_{which}_{name}": float(jiwer.wer(answers[name][0], [_text(a[0]) for a in answers[name][column]]))
        for name in answers
        for which, column in (("general", 1), ("domain_search", 2))
    }
    allowed = [g for g in grid if g["wer_domain"] <= target.domain_max_wer]
    print(
        "two n-grams, each search alone (check / in-domain): general "
        f"{100 * alone['wer_general_check']:.2f}% / {100 * alone['wer_general_domain']:.2f}%, domain "
        f"{100 * alone['wer_domain_search_check']:.2f}% / {100 * alone['wer_domain_search_domain']:.2f}%"
    )
    if not allowed:
        raise ExportCheckError(
            f"no domain choice keeps the in-domain WER at {target.domain_max_wer} "
            f"(best {min(g['wer_domain'] for g in grid):.4f}); widen domain_word_biases or use one n-gram"
        )
    pick = min(allowed, key=lambda g: (g["wer"], g["wer_domain"]))
    print(
        f"two n-grams: domain_weight {pick['domain_weight']}, domain_word_bias {pick['domain_word_bias']}: check "
        f"{100 * pick['wer']:.2f}%, in-domain {100 * pick['wer_domain']:.2f}% "
        f"(limit {100 * target.domain_max_wer:.1f}%)"
    )
    options = dataclasses.replace(
        general.options, domain_weight=pick["domain_weight"], domain_word_bias=pick["domain_word_bias"]
    )
    precheck = {}
    if target.domain_precheck_beam:
        options = dataclasses.replace(
            options,
            domain_precheck_beam=target.domain_precheck_beam,
            domain_precheck_threshold=target.domain_precheck_threshold,
            domain_precheck_margin=target.domain_precheck_margin,
        )
        precheck = _check_precheck(general, domain, options, logprobs, refs, domain_logprobs, domain_refs, pick, target)
    return options, {**pick, **alone, **precheck, "utterances_domain": len(domain_refs), "grid": grid}


def _check_precheck(
    general: BeamSearchDecoder,
    domain: BeamSearchDecoder,
    options: BeamSearchOptions,
    logprobs: list[np.ndarray],
    refs: list[str],
    domain_logprobs: list[np.ndarray],
    domain_refs: list[str],
    pick: dict,
    target: ExportTarget,
) -> dict:
    """Both check sets searched as the version will search them, with the narrow domain precheck.

    Raises:
        ExportCheckError: the precheck raises either set's WER by more than
            ``target.domain_precheck_max_wer_increase`` over the full choice (``pick``).
    """
    import jiwer

    searched = BeamSearchDecoder(general.lm_path, list(general.tokens), options, domain=domain)
    numbers = {}
    for name, lps, ref, full in (
        ("check", logprobs, refs, pick["wer"]),
        ("domain", domain_logprobs, domain_refs, pick["wer_domain"]),
    ):
        found = [searched.search_scored(lp) for lp in lps]
        wer = float(jiwer.wer(ref, [_text(words) for words, _ in found]))
        skipped = sum(not scores["domain_full"] for _, scores in found) / max(len(found), 1)
        numbers[name] = {"wer": wer, "wer_full": full, "skipped": skipped}
        print(
            f"domain precheck (beam {options.domain_precheck_beam}, threshold {options.domain_precheck_threshold}, "
            f"margin {options.domain_precheck_margin}) on the {name} set: WER {100 * wer:.2f}% against "
            f"{100 * full:.2f}% with the full search everywhere; the full search skipped on {100 * skipped:.0f}%"
        )
        if wer - full > target.domain_precheck_max_wer_increase:
            raise ExportCheckError(
                f"the domain precheck raises the {name} set's WER by {100 * (wer - full):.2f} points "
                f"(limit {100 * target.domain_precheck_max_wer_increase:.2f}); raise domain_precheck_margin"
            )
    return {"precheck": numbers}
