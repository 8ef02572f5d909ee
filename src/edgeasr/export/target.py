"""Export targets and results: what one ``export/NAME.toml`` asks for, and what an export produced."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from edgeasr.export.kenlm import MAX_QUANTIZE_BITS

__all__ = ["ExportCheckError", "ExportResult", "ExportTarget"]


class ExportCheckError(RuntimeError):
    """An export failed its parity or accuracy check; nothing was written."""


@dataclass(frozen=True)
class ExportTarget:
    """One export target (``export/NAME.toml``, table ``[target]``)."""

    name: str = "cpu-fp32"  # target name, recorded in the card
    format: str = "onnx"  # "onnx" (Triton + device), "edge" (device bundle only) or "tensorrt"
    precision: str = "fp32"  # "fp32", "int8" (ONNX) or "fp16"/"int8" (TensorRT)
    quantization: str = (
        "static"  # int8 only: "static" (QDQ, activations calibrated) or "dynamic" (activations at run time)
    )
    # int8 only: the operator types that run in int8 (() : every kind onnxruntime quantizes); e.g.
    # ["MatMul"] keeps convolutions in float where ConvInteger is slower than float (x86 without VNNI)
    quantize_ops: tuple[str, ...] = ()
    # int8 only: operator types whose float weights are stored in int8 (one scale per output channel) and
    # widened back to float as onnxruntime loads the model: a smaller file, the same float kernels (e.g.
    # ["Conv"] beside quantize_ops = ["MatMul"]); a sinusoidal position table is then generated in the
    # graph instead of stored (edgeasr.export.quantize.store_weights_int8)
    int8_storage: tuple[str, ...] = ()
    calibration_utterances: int = 64  # static int8: calibration audio: half check utterances, half their 10 dB copies
    opset: int = 18  # ONNX opset (the dynamo exporter writes 18 natively)
    parity_utterances: int = 16  # utterances compared between torch and ONNX
    max_abs_diff: float = 2e-3  # parity: largest allowed |log-prob difference| over valid frames (fp32, TensorRT)
    max_wer_increase: float = 0.005  # int8, TensorRT: allowed absolute WER increase over fp32 on the check manifest
    max_check_utterances: int = 200  # utterances of the check manifest used for the WER comparison
    model_name: str = "edgeasr"  # model name in the Triton repository
    decoder: str = "greedy"  # "greedy", or "beam": ship the word n-gram and tuned beam-search settings
    lm: str = ""  # beam: the ARPA word n-gram (``edgeasr lm build``), relative to the working directory
    # beam: ship the n-gram as KenLM's binary trie (lm.bin and its lexicon lm.words: it loads in milliseconds
    # where ARPA takes tenths of a second) in place of lm.arpa; needs build_binary (edgeasr.export.kenlm)
    lm_binary: bool = False
    # beam, lm_binary: store the n-gram's probabilities and back-off weights in this many bits (KenLM's
    # ``build_binary -q N -b N``, with ``-a 22`` pointer compression, edgeasr.export.kenlm): about half the file of a
    # large n-gram; 0 keeps 32-bit floats (bench/results/eval-cpu-2core-xeon/general-text-lm.txt)
    lm_quantize_bits: int = 0
    lm_weights: tuple[float, ...] = (0.6, 0.8, 1.0, 1.2)  # beam: LM weights tried on the check manifest
    word_scores: tuple[float, ...] = (-3.0, -2.0, -1.0, 0.0)  # beam: word insertion scores tried with them
    beam_size: int = 64  # beam: hypotheses kept per frame
    beam_size_token: int = 16  # beam: tokens tried per frame
    beam_threshold: float = 25.0  # beam: pruning threshold (natural log)
    blank_skip: float = 0.0  # beam: a run of frames with blank probability above this is searched once (0: off)
    tune_noise_snr: tuple[float, ...] = ()  # beam: also tune on pink-noise copies of the check set at these SNRs (dB)
    # two n-grams (edgeasr.decoding): a folder shipping a domain search (its lm.arpa and decoder.json,
    # the shipped version folder say) searched beside ``lm``; each utterance takes the transcript of
    # the search the choice prefers; "" ships one search
    domain_decoder: str = ""
    domain_weights: tuple[float, ...] = (1.2, 1.5, 1.8)  # two n-grams: domain_weight values tried
    domain_word_biases: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0)  # two n-grams: domain_word_bias values tried
    domain_check_manifest: str = ""  # two n-grams: in-domain utterances whose WER the choice must keep low
    domain_check_utterances: int = 300  # two n-grams: how many of them
    domain_max_wer: float = 0.10  # two n-grams: the highest WER the chosen setting may make on them
    # two n-grams: the domain search's pruning threshold (natural log), written into the version's
    # decoder-domain.json in place of the domain folder's own; 0 keeps the folder's
    domain_beam_threshold: float = 0.0
    # two n-grams: a narrow domain search first, the full one only where it comes within the margin of the
    # general search (edgeasr.decoding.domain_out_of_reach): its beam (0: off), threshold and margin, shipped in
    # decoder.json and checked on both check sets, each of whose WER it may raise by at most the last key
    domain_precheck_beam: int = 0
    domain_precheck_threshold: float = 16.0
    domain_precheck_margin: float = 5.0
    domain_precheck_max_wer_increase: float = 0.003
    # room tone (s) the runtime lays before and after each utterance, recorded in the model file
    # (edgeasr.features.PAD_SECONDS_KEY); negative: the checkpoint's own model.input_pad_seconds
    input_pad_seconds: float = -1.0

    @classmethod
    def from_toml(cls, path: str | Path) -> ExportTarget:
        """Load the ``[target]`` table of an export TOML; unknown keys are an error."""
        with open(path, "rb") as fh:
            table = tomllib.load(fh).get("target", {})
        known = {f.name for f in fields(cls)}
        if set(table) - known:
            raise ValueError(f"{path}: unknown [target] field(s): {', '.join(sorted(set(table) - known))}")
        for key in ("lm_weights", "word_scores", "tune_noise_snr", "domain_weights", "domain_word_biases"):
            if key in table:
                table[key] = tuple(float(v) for v in table[key])
        for key in ("quantize_ops", "int8_storage"):
            if key in table:
                table[key] = tuple(str(v) for v in table[key])
        target = cls(**table)
        if target.decoder not in ("greedy", "beam"):
            raise ValueError(f"{path}: decoder must be greedy or beam, not {target.decoder!r}")
        if target.int8_storage and target.precision != "int8":
            raise ValueError(f"{path}: int8_storage needs precision = 'int8'")
        if target.decoder == "beam" and not target.lm:
            raise ValueError(f"{path}: decoder = 'beam' needs lm = 'path/to/lm.arpa'")
        if target.lm_quantize_bits and not target.lm_binary:
            raise ValueError(f"{path}: lm_quantize_bits needs lm_binary = true")
        if not 0 <= target.lm_quantize_bits <= MAX_QUANTIZE_BITS:
            raise ValueError(
                f"{path}: lm_quantize_bits must be 0 (none) or 1 to {MAX_QUANTIZE_BITS}, not {target.lm_quantize_bits}"
            )
        if target.domain_decoder and (target.decoder != "beam" or not target.domain_check_manifest):
            raise ValueError(f"{path}: domain_decoder needs decoder = 'beam' and a domain_check_manifest")
        if target.format not in ("onnx", "edge", "tensorrt"):
            raise ValueError(f"{path}: format must be onnx, edge or tensorrt, not {target.format!r}")
        if target.domain_precheck_beam and not target.domain_decoder:
            raise ValueError(f"{path}: domain_precheck_beam needs a domain_decoder")
        if target.domain_precheck_beam < 0 or target.domain_precheck_margin < 0:
            raise ValueError(f"{path}: domain_precheck_beam and domain_precheck_margin must be at least 0")
        if target.domain_beam_threshold < 0:
            raise ValueError(f"{path}: domain_beam_threshold must be at least 0 (0: the domain folder's own)")
        if target.domain_beam_threshold and not target.domain_decoder:
            raise ValueError(f"{path}: domain_beam_threshold needs a domain_decoder")
        if target.input_pad_seconds > 5.0:
            raise ValueError(f"{path}: input_pad_seconds must be at most 5 s, not {target.input_pad_seconds}")
        if target.precision not in ("fp32", "fp16", "int8"):
            raise ValueError(f"{path}: precision must be fp32, fp16 or int8, not {target.precision!r}")
        return target


@dataclass(frozen=True)
class ExportResult:
    """What an export produced."""

    path: Path  # the version directory (repository export) or bundle folder (edge)
    version: int | None  # the new version number in the repository, None for an edge bundle
    card: dict  # the card fields that were recorded
