"""``edgeasr export``: trained checkpoint -> checked ONNX (fp32 or int8) -> Triton model repository.

Every export is checked before anything is written:

1. *Parity*: the ONNX graph against the torch model on ``parity_utterances`` utterances of a
   manifest: the largest absolute difference of log-probabilities over valid frames, and
   identical greedy transcripts.
2. *Quantization* (int8 targets): WER of the int8 model against the fp32 model on the check
   manifest; the increase must stay within ``max_wer_increase``.
3. *Decoder* (``decoder = "beam"``): the beam search's ``lm_weight`` and ``word_score`` are chosen
   on the check manifest from the target's grid, and the result must beat greedy decoding there.
   The version folder of the python flavour (and an edge bundle) then carries ``lm.arpa``,
   ``decoder.json``; the version folder runs them with its copy of :mod:`edgeasr.decoding`.

A failed check writes nothing, prints the numbers, and :class:`ExportCheckError` makes the command
exit non-zero. A passing export becomes version N+1 of the model in the repository (see
:mod:`edgeasr.export.repository`), with a model card that records the numbers.

The feature frontend is part of the graph, in float: int8 quantization leaves every frontend node
alone (``nodes_to_exclude``), so the STFT and mel weights keep their precision.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import tomllib
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from edgeasr.audio import load_audio
from edgeasr.decoding import TOKENS, greedy_decode
from edgeasr.manifest import read_manifest, resolve_audio_path

__all__ = [
    "ExportCheckError",
    "ExportResult",
    "ExportTarget",
    "check_parity",
    "export_checkpoint",
    "export_onnx",
    "quantize_onnx",
    "tune_beam_search",
]


class ExportCheckError(RuntimeError):
    """An export failed its parity or accuracy check; nothing was written."""


@dataclass(frozen=True)
class ExportTarget:
    """One export target (``export/NAME.toml``, table ``[target]``)."""

    name: str = "cpu-fp32"  # target name, recorded in the card
    format: str = "onnx"  # "onnx" (Triton + device), "edge" (device bundle only) or "tensorrt"
    precision: str = "fp32"  # "fp32", "int8" (ONNX) or "fp16"/"int8" (TensorRT)
    quantization: str = (
        "dynamic"  # int8 only: "dynamic" (weights int8, activations at run time) or "static" (QDQ, calibrated)
    )
    calibration_utterances: int = 64  # static int8: utterances of the check manifest used to calibrate
    opset: int = 18  # ONNX opset (the dynamo exporter writes 18 natively)
    parity_utterances: int = 16  # utterances compared between torch and ONNX
    max_abs_diff: float = 2e-3  # fp32 parity: largest allowed |log-prob difference| over valid frames
    max_wer_increase: float = 0.005  # int8: allowed absolute WER increase over fp32 on the check manifest
    max_check_utterances: int = 200  # utterances of the check manifest used for the WER comparison
    model_name: str = "edgeasr"  # model name in the Triton repository
    decoder: str = "greedy"  # "greedy", or "beam": ship the word n-gram and tuned beam-search settings
    lm: str = ""  # beam: the ARPA word n-gram (``edgeasr lm build``), relative to the working directory
    lm_weights: tuple[float, ...] = (0.6, 0.8, 1.0, 1.2)  # beam: LM weights tried on the check manifest
    word_scores: tuple[float, ...] = (-3.0, -2.0, -1.0, 0.0)  # beam: word insertion scores tried with them
    beam_size: int = 64  # beam: hypotheses kept per frame
    beam_size_token: int = 16  # beam: tokens tried per frame
    beam_threshold: float = 25.0  # beam: pruning threshold (natural log)
    tune_noise_snr: tuple[float, ...] = ()  # beam: also tune on pink-noise copies of the check set at these SNRs (dB)

    @classmethod
    def from_toml(cls, path: str | Path) -> ExportTarget:
        """Load the ``[target]`` table of an export TOML; unknown keys are an error."""
        with open(path, "rb") as fh:
            table = tomllib.load(fh).get("target", {})
        known = {f.name for f in fields(cls)}
        if set(table) - known:
            raise ValueError(f"{path}: unknown [target] field(s): {', '.join(sorted(set(table) - known))}")
        for key in ("lm_weights", "word_scores", "tune_noise_snr"):
            if key in table:
                table[key] = tuple(float(v) for v in table[key])
        target = cls(**table)
        if target.decoder not in ("greedy", "beam"):
            raise ValueError(f"{path}: decoder must be greedy or beam, not {target.decoder!r}")
        if target.decoder == "beam" and not target.lm:
            raise ValueError(f"{path}: decoder = 'beam' needs lm = 'path/to/lm.arpa'")
        if target.format not in ("onnx", "edge", "tensorrt"):
            raise ValueError(f"{path}: format must be onnx, edge or tensorrt, not {target.format!r}")
        if target.precision not in ("fp32", "fp16", "int8"):
            raise ValueError(f"{path}: precision must be fp32, fp16 or int8, not {target.precision!r}")
        return target


@dataclass(frozen=True)
class ExportResult:
    """What an export produced."""

    path: Path  # the version directory (repository export) or bundle folder (edge)
    version: int | None  # the new version number in the repository, None for an edge bundle
    card: dict  # the card fields that were recorded


def export_onnx(model, path: str | Path, opset: int = 18) -> Path:
    """Write ``model`` (a :class:`~edgeasr.training.model.CTCModel` in eval mode) as ONNX with dynamic batch and length.

    Inputs ``audio`` float32 [batch, samples] and ``audio_length`` int64 [batch]; outputs
    ``logprobs`` float32 [batch, frames, vocab] and ``logprob_length`` int64 [batch].
    """
    import torch

    model = model.eval()
    dummy = (torch.zeros(2, 16000), torch.tensor([16000, 12000], dtype=torch.int64))
    # AUTO lets torch.export find the ranges (it specialises away sizes 0 and 1 while tracing, but
    # the ONNX ops broadcast the same way for them; the parity check runs batch 1 to prove it)
    auto = torch.export.Dim.AUTO
    path = Path(path)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            dummy,
            input_names=["audio", "audio_length"],
            output_names=["logprobs", "logprob_length"],
            dynamic_shapes={"audio": {0: auto, 1: auto}, "audio_lengths": {0: auto}},
            opset_version=opset,
            dynamo=True,
            verbose=False,
        )
        program.save(str(path))
    return path


def _session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _onnx_logprobs(session, wave: np.ndarray) -> np.ndarray:
    logp, lengths = session.run(None, {"audio": wave[None, :], "audio_length": np.array([len(wave)], np.int64)})
    return logp[0, : int(lengths[0])]


def check_parity(model, onnx_path: Path, waves: list[np.ndarray]) -> dict:
    """Compare the torch model and its ONNX export on ``waves``; returns the numbers (no verdict)."""
    import torch

    session = _session(onnx_path)
    max_diff, same = 0.0, 0
    for wave in waves:
        with torch.no_grad():
            lp, ln = model(torch.from_numpy(wave)[None, :], torch.tensor([len(wave)]))
        ref = lp[0, : int(ln[0])].numpy()
        got = _onnx_logprobs(session, wave)
        if ref.shape != got.shape:
            return {"max_abs_diff": float("inf"), "identical_transcripts": 0, "utterances": len(waves)}
        max_diff = max(max_diff, float(np.abs(ref - got).max()))
        same += greedy_decode(ref).text == greedy_decode(got).text
    return {"max_abs_diff": max_diff, "identical_transcripts": same, "utterances": len(waves)}


def _frontend_nodes(onnx_path: Path) -> list[str]:
    """Names of the graph nodes that compute the feature frontend (kept in float by quantization).

    The exporter records each node's module scope in its metadata (``pkg.torch.onnx.name_scopes``,
    e.g. ``['', 'frontend', 'matmul']``); node names themselves carry no module path.
    """
    import ast

    import onnx

    names = []
    for node in onnx.load(str(onnx_path)).graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        try:
            scopes = ast.literal_eval(meta.get("pkg.torch.onnx.name_scopes", "[]"))
        except (ValueError, SyntaxError):
            scopes = []
        if "frontend" in scopes or node.name.startswith("/frontend/"):
            names.append(node.name)
    return names


class _CalibrationReader:
    """Feeds calibration utterances to onnxruntime's static quantizer, one at a time."""

    def __init__(self, waves: list[np.ndarray]) -> None:
        self._items = iter(waves)

    def get_next(self) -> dict | None:
        wave = next(self._items, None)
        if wave is None:
            return None
        return {"audio": wave[None, :], "audio_length": np.array([len(wave)], np.int64)}


def quantize_onnx(fp32_path: Path, int8_path: Path, method: str, calibration: list[np.ndarray]) -> Path:
    """Quantize an fp32 model to int8 with onnxruntime.quantization, keeping the frontend in float.

    Args:
        fp32_path: the checked fp32 ONNX.
        int8_path: where to write the int8 ONNX.
        method: "dynamic" (int8 weights, activations quantized at run time) or "static"
            (QDQ with per-channel weights, activations calibrated on ``calibration``).
        calibration: waveforms for static calibration (ignored for dynamic).
    """
    from onnxruntime import quantization as q

    exclude = _frontend_nodes(fp32_path)
    if method == "dynamic":
        q.quantize_dynamic(
            str(fp32_path),
            str(int8_path),
            weight_type=q.QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=exclude,
        )
    elif method == "static":
        q.quantize_static(
            str(fp32_path),
            str(int8_path),
            _CalibrationReader(calibration),
            quant_format=q.QuantFormat.QDQ,
            per_channel=True,
            activation_type=q.QuantType.QInt8,
            weight_type=q.QuantType.QInt8,
            nodes_to_exclude=exclude,
            calibrate_method=q.CalibrationMethod.MinMax,
        )
    else:
        raise ValueError(f"unknown quantization method {method!r} (dynamic or static)")
    return int8_path


def _logprobs_of(onnx_path: Path, waves: list[np.ndarray]) -> list[np.ndarray]:
    session = _session(onnx_path)
    return [_onnx_logprobs(session, w) for w in waves]


def _noisy_copies(waves: list[np.ndarray], snr_db: float) -> list[np.ndarray]:
    """Pink-noise copies of ``waves`` at ``snr_db``, seeded like ``edgeasr eval``'s noisy splits."""
    from edgeasr.data.augment import add_noise, pink_noise
    from edgeasr.training.evaluate import NOISE_SEED

    rng = np.random.default_rng(NOISE_SEED)
    return [add_noise(w, pink_noise(w.size, rng), snr_db) for w in waves]


def _greedy_wer(logprobs: list[np.ndarray], refs: list[str]) -> float:
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
    greedy_wer = _greedy_wer(logprobs, refs)
    grid = []
    order = _arpa_order(lm)
    for lm_weight in target.lm_weights:
        for word_score in target.word_scores:
            options = BeamSearchOptions(
                lm_order=order,
                beam_size=target.beam_size,
                beam_size_token=target.beam_size_token,
                beam_threshold=target.beam_threshold,
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
        f"vs greedy {100 * greedy_wer:.2f}%" + (f"; noisy copies: {noisy}" if noisy else "")
    )
    if best_wer > greedy_wer:
        raise ExportCheckError(f"the beam search ({best_wer:.4f}) does not beat greedy decoding ({greedy_wer:.4f})")
    options.to_json(out_dir / decoding.DECODER_FILE)
    files = {
        decoding.LM_FILE: lm,
        decoding.DECODER_FILE: out_dir / decoding.DECODER_FILE,
    }
    tuning = {
        "wer_greedy": greedy_wer,
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


def _load_check_set(manifest: Path, limit: int) -> tuple[list[np.ndarray], list[str]]:
    rows = read_manifest(manifest)[:limit]
    if not rows:
        raise ExportCheckError(f"{manifest}: the check manifest has no rows")
    waves = [load_audio(resolve_audio_path(r, manifest)) for r in rows]
    return waves, [r["text"] for r in rows]


def export_checkpoint(
    checkpoint: str | Path,
    target: ExportTarget,
    *,
    check_manifest: str | Path | None = None,
    repository: str | Path = "triton_models",
    repository_toml: str | Path | None = None,
    out: str | Path | None = None,
) -> ExportResult:
    """Export, check and publish one checkpoint for one target.

    Args:
        checkpoint: a ``best.pt`` from ``edgeasr train``.
        target: the export target.
        check_manifest: utterances for the parity and quantization checks; defaults to the dev
            manifest named in the checkpoint's recipe.
        repository: the Triton model repository (``format = "onnx"``).
        repository_toml: TOML with a ``[repository]`` table (batching, instances, version policy).
        out: the bundle folder (``format = "edge"``); must not exist yet.

    Raises:
        ExportCheckError: a check failed (nothing written).
        RuntimeError: the target needs something this machine lacks (TensorRT, a GPU).
    """
    from edgeasr.training.train import load_model

    started = time.time()
    model, ckpt = load_model(checkpoint)
    manifest = Path(check_manifest or ckpt["recipe"]["data"]["dev_manifest"])
    waves, refs = _load_check_set(manifest, max(target.max_check_utterances, target.parity_utterances))
    if target.format == "tensorrt":
        from edgeasr.export.tensorrt import build_engine_for_target

        return build_engine_for_target(model, ckpt, target, waves, refs, repository, repository_toml, started)

    with tempfile.TemporaryDirectory(prefix="edgeasr-export-") as tmp:
        fp32 = export_onnx(model, Path(tmp) / "model_fp32.onnx", target.opset)
        parity = check_parity(model, fp32, waves[: target.parity_utterances])
        print(
            f"parity torch vs onnx: max |dlogp| {parity['max_abs_diff']:.2e} (limit {target.max_abs_diff:.0e}), "
            f"identical transcripts {parity['identical_transcripts']}/{parity['utterances']}"
        )
        if parity["max_abs_diff"] > target.max_abs_diff or parity["identical_transcripts"] != parity["utterances"]:
            raise ExportCheckError(f"ONNX parity check failed: {parity}")
        final = fp32
        metrics = {"check_manifest": str(manifest), "check_utterances": len(waves)}
        final_logprobs = _logprobs_of(fp32, waves)
        fp32_wer = _greedy_wer(final_logprobs, refs)
        metrics["wer_fp32"] = fp32_wer
        if target.precision == "int8":
            final = quantize_onnx(
                fp32, Path(tmp) / "model_int8.onnx", target.quantization, waves[: target.calibration_utterances]
            )
            final_logprobs = _logprobs_of(final, waves)
            int8_wer = _greedy_wer(final_logprobs, refs)
            metrics["wer_int8"] = int8_wer
            metrics["size_ratio_int8_fp32"] = final.stat().st_size / fp32.stat().st_size
            print(
                f"int8 ({target.quantization}) vs fp32 WER: {100 * int8_wer:.2f}% vs {100 * fp32_wer:.2f}% "
                f"(allowed increase {100 * target.max_wer_increase:.2f}), "
                f"size ratio {metrics['size_ratio_int8_fp32']:.2f}"
            )
            if int8_wer - fp32_wer > target.max_wer_increase:
                raise ExportCheckError(
                    f"int8 WER {int8_wer:.4f} exceeds fp32 {fp32_wer:.4f} by more than {target.max_wer_increase}"
                )
        elif target.precision != "fp32":
            raise ValueError(f"ONNX export supports fp32 and int8, not {target.precision}")
        metrics["wer"] = metrics.get("wer_int8", fp32_wer)
        decoder_files: dict[str, Path] = {}
        decoder_card: dict = {"decoder": "greedy"}
        if target.decoder == "beam":
            noisy = {f"{snr:g}dB": _logprobs_of(final, _noisy_copies(waves, snr)) for snr in target.tune_noise_snr}
            decoder_files, tuning = tune_beam_search(final_logprobs, refs, target, Path(tmp), noisy)
            metrics["wer_greedy"] = tuning["wer_greedy"]
            metrics["wer"] = tuning["wer_beam"]
            metrics.update({f"wer_{k}": v for k, v in tuning["wer_beam_noisy"].items()})
            decoder_card = {"decoder": "beam", "beam_search": tuning["options"], "tuning_grid": tuning["grid"]}
        card_fields = {
            "source_checkpoint": str(checkpoint),
            "data_version": ckpt.get("data_version", ""),
            "precision": target.precision,
            "parity": parity,
            "metrics": metrics,
            "params": model.num_parameters(),
            "export_seconds": round(time.time() - started, 2),
            "tokens": list(TOKENS),
            "extra": {
                "target": target.name,
                "quantization": target.quantization if target.precision == "int8" else None,
                "recipe": ckpt["recipe"].get("name"),
                "train_steps": ckpt.get("step"),
                "frontend": ckpt["recipe"]["model"]["frontend"],
                **decoder_card,
            },
        }
        if target.format == "edge":
            return _write_edge_bundle(
                final, Path(out or f"{target.model_name}-{target.name}"), target, card_fields, decoder_files
            )
        from edgeasr.export.repository import ModelRepository, RepositoryOptions

        options = RepositoryOptions.from_toml(repository_toml) if repository_toml else RepositoryOptions()
        repo = ModelRepository(repository)
        version = repo.publish(
            target.model_name, final, card_fields=card_fields, options=options, decoder_files=decoder_files
        )
        return ExportResult(Path(repository) / target.model_name / str(version), version, card_fields)


def _write_edge_bundle(
    onnx_path: Path, out: Path, target: ExportTarget, card_fields: dict, decoder_files: dict[str, Path]
) -> ExportResult:
    """A self-contained device bundle: model.onnx, vocab.json, the decoder files, model_card.json (no torch)."""
    from edgeasr.modelcard import ModelCard

    if out.exists():
        raise FileExistsError(f"{out}: already exists; an edge bundle is never written over")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copyfile(onnx_path, tmp / "model.onnx")
    (tmp / "vocab.json").write_text(json.dumps(list(TOKENS)))
    for name, src in decoder_files.items():
        shutil.copyfile(src, tmp / name)
    card = ModelCard.for_files(tmp, name=target.model_name, version=1, **card_fields)
    card.to_json(tmp / "model_card.json")
    tmp.rename(out)
    return ExportResult(out, None, card_fields)
