"""``edgeasr export``, step by step: trained checkpoint -> checked ONNX (fp32 or int8) -> Triton model repository.

Every export is checked before anything is written:

1. *Parity*: the ONNX graph against the torch model on ``parity_utterances`` utterances of a
   manifest: the largest absolute difference of log-probabilities over valid frames, and
   identical greedy transcripts.
2. *Quantization* (int8 targets): WER of the int8 model against the fp32 model on the check
   manifest; the increase must stay within ``max_wer_increase``.
3. *Decoder* (``decoder = "beam"``): the beam search's ``lm_weight`` and ``word_score`` are chosen
   on the check manifest from the target's grid, and the result must beat greedy decoding there.
   The version folder of the python flavour (and an edge bundle) then carries ``lm.arpa``,
   ``decoder.json``; the version folder runs them with its copy of :mod:`edgeasr.decoding`. With
   ``domain_decoder`` (two n-grams) the choice between the two searches is tuned after them
   (:func:`~edgeasr.export.tuning.tune_domain_choice`, held to ``domain_max_wer`` on
   ``domain_check_manifest``) and the domain search ships as ``lm-domain.arpa`` (with ``lm_binary``:
   ``lm-domain.bin`` and ``lm-domain.words``) and ``decoder-domain.json``.

A failed check writes nothing, prints the numbers, and :class:`ExportCheckError` makes the command
exit non-zero. A passing export becomes version N+1 of the model in the repository (see
:mod:`edgeasr.export.repository`), with a model card that records the numbers.

The feature frontend is part of the graph, in float: int8 quantization leaves every frontend node
alone (``nodes_to_exclude``), so the STFT and mel weights keep their precision.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from edgeasr.decoding import TOKENS, greedy_decode
from edgeasr.export.onnx import check_parity, export_onnx, logprobs_of, onnx_logprobs, onnx_session
from edgeasr.export.quantize import quantize_onnx, store_weights_int8
from edgeasr.export.target import ExportCheckError, ExportResult, ExportTarget
from edgeasr.export.tuning import greedy_wer, noisy_copies, tune_beam_search
from edgeasr.features import pad_room_tone
from edgeasr.manifest import load_row_audio, read_manifest

__all__ = ["build_engine_for_target", "check_engine", "clean_stale_temp_dirs", "export_checkpoint"]


_TEMP_PREFIX = "edgeasr-export-"


def clean_stale_temp_dirs() -> list[Path]:
    """Remove the temp folders of exports whose process is gone (killed mid-export).

    Each export works in ``<tmp>/edgeasr-export-<pid>-*``; one whose pid no longer runs is left
    over from a kill and is removed by the next export.

    Returns:
        The folders removed.
    """
    removed = []
    for path in Path(tempfile.gettempdir()).glob(f"{_TEMP_PREFIX}*"):
        pid = path.name[len(_TEMP_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or not path.is_dir():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # that export is still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _load_check_set(manifest: Path, limit: int) -> tuple[list[np.ndarray], list[str]]:
    rows = read_manifest(manifest)[:limit]
    if not rows:
        raise ExportCheckError(f"{manifest}: the check manifest has no rows")
    waves = [load_row_audio(r, manifest, allow_outside=True) for r in rows]  # the recipe's or the caller's
    return waves, [r["text"] for r in rows]


def _calibration(waves: list[np.ndarray], target: ExportTarget) -> list[np.ndarray]:
    """Static int8 calibration audio: half of ``calibration_utterances`` clean, half their pink-noise copies.

    Activation ranges calibrated on clean speech alone clip noisy speech: on the shipped model (300
    test utterances, beam search), 256 clean utterances gave 9.62% / 13.76% at 10 dB SNR, 128 clean
    plus their copies at 10 dB 9.22% / 13.62%, against 9.35% / 13.22% for fp32.
    """
    half = waves[: max(1, target.calibration_utterances // 2)]
    return half + noisy_copies(half, 10.0)


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
    if target.input_pad_seconds >= 0:  # the target decides how much room the model hears
        model.cfg = dataclasses.replace(model.cfg, input_pad_seconds=target.input_pad_seconds)
    manifest = Path(check_manifest or ckpt["recipe"]["data"]["dev_manifest"])
    waves, refs = _load_check_set(manifest, max(target.max_check_utterances, target.parity_utterances))
    # every check hears the utterances as the runtime will give them to this model
    waves = [pad_room_tone(w, model.input_pad_seconds) for w in waves]
    if target.format == "tensorrt":
        return build_engine_for_target(
            model, ckpt, target, waves, refs, repository, repository_toml, started, checkpoint=checkpoint
        )

    clean_stale_temp_dirs()
    with tempfile.TemporaryDirectory(prefix=f"{_TEMP_PREFIX}{os.getpid()}-") as tmp:
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
        final_logprobs = logprobs_of(fp32, waves)
        fp32_wer = greedy_wer(final_logprobs, refs)
        metrics["wer_fp32"] = fp32_wer
        if target.precision == "int8":
            final = quantize_onnx(
                fp32,
                Path(tmp) / "model_int8.onnx",
                target.quantization,
                _calibration(waves, target),
                target.quantize_ops,
            )
            if target.int8_storage:
                stored = store_weights_int8(final, Path(tmp) / "model_int8_stored.onnx", target.int8_storage)
                final = Path(tmp) / "model_int8_stored.onnx"
                print(
                    f"int8 storage of {', '.join(target.int8_storage)} weights: {len(stored['stored_int8'])} stored, "
                    f"{len(stored['generated'])} position table(s) generated, "
                    f"{stored['bytes_before'] / 2**20:.2f} -> {stored['bytes_after'] / 2**20:.2f} MiB"
                )
            final_logprobs = logprobs_of(final, waves)
            int8_wer = greedy_wer(final_logprobs, refs)
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
            noisy = {f"{snr:g}dB": logprobs_of(final, noisy_copies(waves, snr)) for snr in target.tune_noise_snr}
            domain_logprobs, domain_refs = None, None
            if target.domain_decoder:  # two n-grams: the in-domain utterances the choice must keep right
                domain_waves, domain_refs = _load_check_set(
                    Path(target.domain_check_manifest), target.domain_check_utterances
                )
                domain_logprobs = logprobs_of(final, [pad_room_tone(w, model.input_pad_seconds) for w in domain_waves])
            decoder_files, tuning = tune_beam_search(
                final_logprobs, refs, target, Path(tmp), noisy, domain_logprobs, domain_refs
            )
            metrics["wer_greedy"] = tuning["wer_greedy"]
            metrics["wer"] = tuning["wer_beam"]
            metrics.update({f"wer_{k}": v for k, v in tuning["wer_beam_noisy"].items()})
            decoder_card = {"decoder": "beam", "beam_search": tuning["options"], "tuning_grid": tuning["grid"]}
            if "domain_choice" in tuning:
                metrics["wer_beam_general"] = tuning["domain_choice"]["wer_general_check"]
                metrics["wer_domain"] = tuning["domain_choice"]["wer_domain"]
                decoder_card["domain_choice"] = tuning["domain_choice"]
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
                "quantized_ops": list(target.quantize_ops) if target.precision == "int8" else None,
                "int8_storage": list(target.int8_storage) if target.precision == "int8" else None,
                "recipe": ckpt["recipe"].get("name"),
                "train_steps": ckpt.get("step"),
                # a mean of checkpoints (edgeasr average) reached no step itself: what it was made of
                **({"averaged_from": ckpt["averaged_from"]} if ckpt.get("averaged_from") else {}),
                **({"toward_pretrained": ckpt["toward_pretrained"]} if "toward_pretrained" in ckpt else {}),
                "frontend": dataclasses.asdict(model.frontend.cfg),
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


def check_engine(parity: dict, target: ExportTarget) -> None:
    """Gate a TensorRT plan's numbers: print them, raise if either limit of the target is passed.

    Args:
        parity: ``max_abs_diff`` (plan vs torch), ``wer`` (plan, greedy) and ``wer_fp32_onnx``.
        target: the export target (``max_abs_diff``, ``max_wer_increase``).

    Raises:
        ExportCheckError: the plan differs from the torch model by more than ``max_abs_diff``, or
            its WER exceeds the fp32 ONNX model's by more than ``max_wer_increase``.
    """
    diff, wer, wer_fp32 = parity["max_abs_diff"], parity["wer"], parity["wer_fp32_onnx"]
    print(
        f"TensorRT {target.precision}: max |dlogp| {diff:.3g} (limit {target.max_abs_diff:g}), "
        f"WER {100 * wer:.2f}% vs fp32 {100 * wer_fp32:.2f}% (allowed increase {100 * target.max_wer_increase:.2f})"
    )
    if diff > target.max_abs_diff:
        raise ExportCheckError(
            f"TensorRT {target.precision} log-probabilities differ from torch by {diff:.3g} > {target.max_abs_diff:g}"
        )
    if wer - wer_fp32 > target.max_wer_increase:
        raise ExportCheckError(
            f"TensorRT {target.precision} WER {wer:.4f} exceeds fp32 {wer_fp32:.4f} "
            f"by more than {target.max_wer_increase}"
        )


def build_engine_for_target(
    model,
    ckpt: dict,
    target,
    waves: list[np.ndarray],
    refs: list[str],
    repository: str | Path,
    repository_toml: str | Path | None,
    started: float,
    *,
    checkpoint: str | Path = "",
):
    """``edgeasr export --target export/gpu-*.toml``: build, check and publish a TensorRT engine.

    The plan must agree with the torch model within ``target.max_abs_diff`` (largest |log-prob
    difference| over valid frames) and its greedy WER may exceed the fp32 ONNX model's by at most
    ``target.max_wer_increase`` (:func:`check_engine`). The plan's card says the target's precision;
    the python and onnx flavours published beside it carry the fp32 ONNX and say ``fp32``.

    Returns:
        An :class:`~edgeasr.export.target.ExportResult` for the new version.

    Raises:
        RuntimeError: TensorRT or a GPU is missing here.
        ExportCheckError: parity or WER check failed (nothing written).
    """
    import jiwer
    import torch

    from edgeasr.export.repository import ModelRepository, RepositoryOptions
    from edgeasr.export.tensorrt import EngineProfile, TensorRTRunner, build_engine, unavailable_reason

    reason = unavailable_reason()
    if reason:
        raise RuntimeError(f"cannot build a TensorRT engine here: {reason}")
    options = RepositoryOptions.from_toml(repository_toml) if repository_toml else RepositoryOptions()
    clean_stale_temp_dirs()
    with tempfile.TemporaryDirectory(prefix=f"{_TEMP_PREFIX}{os.getpid()}-trt-") as tmp:
        onnx_path = export_onnx(model, Path(tmp) / "model.onnx", target.opset)
        profile = EngineProfile(max_batch=options.max_batch_size, max_seconds=options.max_audio_seconds)
        build_started = time.time()
        plan = build_engine(onnx_path, target.precision, profile, waves[: target.calibration_utterances])
        build_seconds = time.time() - build_started
        runner = TensorRTRunner(plan)
        session = onnx_session(onnx_path)
        max_diff, hyps, onnx_hyps = 0.0, [], []
        for wave in waves:
            got = runner.run([wave])[0]
            with torch.no_grad():
                lp, ln = model(torch.from_numpy(wave)[None, :], torch.tensor([wave.size]))
            ref = lp[0, : int(ln[0])].numpy()
            max_diff = max(max_diff, float(np.abs(ref - got).max()))
            hyps.append(greedy_decode(got).text)
            onnx_hyps.append(greedy_decode(onnx_logprobs(session, wave)).text)
        wer, wer_fp32 = float(jiwer.wer(refs, hyps)), float(jiwer.wer(refs, onnx_hyps))
        parity = {"max_abs_diff": max_diff, "utterances": len(waves), "wer": wer, "wer_fp32_onnx": wer_fp32}
        check_engine(parity, target)
        plan_path = Path(tmp) / "model.plan"
        plan_path.write_bytes(plan)
        card_fields = {
            "source_checkpoint": str(checkpoint),
            "data_version": ckpt.get("data_version", ""),
            "precision": "fp32",  # the python and onnx flavours: the fp32 ONNX
            "parity": parity,
            "metrics": {"wer": wer, "build_seconds": round(build_seconds, 1)},
            "params": model.num_parameters(),
            "export_seconds": round(time.time() - started, 2),
            "tokens": list(TOKENS),
            "extra": {"target": target.name, "gpu": torch.cuda.get_device_name(0), "profile": profile.shapes()},
        }
        version = ModelRepository(repository).publish(
            target.model_name,
            onnx_path,
            card_fields=card_fields,
            options=options,
            plan_path=plan_path,
            flavour_fields={"trt": {"precision": target.precision}},
        )
    return ExportResult(Path(repository) / f"{target.model_name}_trt" / str(version), version, card_fields)
