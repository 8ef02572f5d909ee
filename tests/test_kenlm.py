"""KenLM binary n-grams: found before ARPA, read with their lexicon, the same search as the ARPA they came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeasr.decoding import KENLM_BINARY_MAGIC, TOKENS, find_lm, has_beam_search, lm_vocabulary

ROOT = Path(__file__).resolve().parents[1]
COMMAND = ROOT / "triton_models" / "edgeasr" / "2"  # the command model, its n-gram shipped as ARPA


def test_a_folder_s_binary_n_gram_is_found_before_its_arpa(tmp_path: Path) -> None:
    (tmp_path / "decoder.json").write_text("{}")
    assert find_lm(tmp_path) is None and not has_beam_search(tmp_path)
    (tmp_path / "lm.arpa").write_text("\\data\\\n")
    assert find_lm(tmp_path) == tmp_path / "lm.arpa" and has_beam_search(tmp_path)
    (tmp_path / "lm.bin").write_bytes(KENLM_BINARY_MAGIC + b"\0" * 8)
    assert find_lm(tmp_path) == tmp_path / "lm.bin"
    assert find_lm(tmp_path, "lm-domain.arpa") is None
    (tmp_path / "lm-domain.bin").write_bytes(KENLM_BINARY_MAGIC)
    assert find_lm(tmp_path, "lm-domain.arpa") == tmp_path / "lm-domain.bin"


def test_a_binary_n_gram_without_its_lexicon_is_a_clear_error(tmp_path: Path) -> None:
    binary = tmp_path / "lm.bin"
    binary.write_bytes(KENLM_BINARY_MAGIC + b"\0" * 8)
    with pytest.raises(FileNotFoundError, match=r"lexicon beside it \(lm\.words\)"):
        lm_vocabulary(binary)
    (tmp_path / "lm.words").write_text("call\nmom\n")
    assert lm_vocabulary(binary) == ["call", "mom"]


def test_a_wrong_kenlm_download_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgeasr.export import kenlm

    fake = tmp_path / "kenlm-0.3.0.tar.gz"
    fake.write_bytes(b"not the KenLM source")
    monkeypatch.setattr(kenlm, "KENLM_SDIST", (fake.as_uri(), "0" * 64))
    with pytest.raises(RuntimeError, match="SHA-256"):
        kenlm.install_build_binary(tmp_path / "home")
    assert not (tmp_path / "home" / "bin" / "build_binary").exists()


def _samples_searched(*lms: Path) -> list[list[list[tuple[str, int, int]]]]:
    """Each committed sample's words (with their frames) as the command model's search reads it over each n-gram."""
    from edgeasr.decoding import BeamSearchDecoder, BeamSearchOptions
    from edgeasr.manifest import read_manifest, resolve_audio_path
    from edgeasr.recognizer import Recognizer

    options = BeamSearchOptions.from_json(COMMAND / "decoder.json")
    searches = [BeamSearchDecoder(lm, list(TOKENS), options) for lm in lms]
    rec, samples = Recognizer(COMMAND), ROOT / "samples" / "manifest.jsonl"
    probs = [rec.logprobs(resolve_audio_path(row, samples)) for row in read_manifest(samples)]
    return [[search.search(p) for search in searches] for p in probs]


def test_the_command_n_gram_as_a_binary_reads_the_samples_as_its_arpa(tmp_path: Path) -> None:
    pytest.importorskip("flashlight.lib.text.decoder", reason="flashlight-text is not installed")
    from edgeasr.export.kenlm import find_build_binary, write_binary_lm

    if find_build_binary() is None:
        pytest.skip(reason="KenLM's build_binary is not built here (./run setup builds it)")
    binary = write_binary_lm(COMMAND / "lm.arpa", tmp_path / "lm.bin")
    assert lm_vocabulary(binary) == lm_vocabulary(COMMAND / "lm.arpa") and len(lm_vocabulary(binary)) > 1500
    read = _samples_searched(binary, COMMAND / "lm.arpa")
    assert all(fast == text for fast, text in read)
    assert " ".join(w for w, _, _ in read[0][0]) == "is it windy in cincinnati right now"


def test_a_binary_n_gram_s_stored_scores_are_kenlm_s_own_and_change_no_search(tmp_path: Path) -> None:
    pytest.importorskip("flashlight.lib.text.decoder", reason="flashlight-text is not installed")
    import shutil

    import numpy as np

    from edgeasr.decoding import SCORES_SUFFIX, BeamSearchDecoder, BeamSearchOptions
    from edgeasr.export.kenlm import find_build_binary, write_binary_lm
    from edgeasr.manifest import read_manifest, resolve_audio_path
    from edgeasr.recognizer import Recognizer

    if find_build_binary() is None:
        pytest.skip(reason="KenLM's build_binary is not built here (./run setup builds it)")
    binary = write_binary_lm(COMMAND / "lm.arpa", tmp_path / "stored" / "lm.bin")
    stored = np.fromfile(binary.with_suffix(SCORES_SUFFIX), dtype="<f4")
    options = BeamSearchOptions.from_json(COMMAND / "decoder.json")
    text = BeamSearchDecoder(COMMAND / "lm.arpa", list(TOKENS), options)  # scores asked of KenLM, from the ARPA
    start = text._lm.start(False)
    assert stored.size == len(text.vocabulary) > 1500
    assert stored.tolist() == [text._lm.score(start, i)[1] for i in range(stored.size)]
    assert len(set(stored.tolist())) > 100  # real scores, not one value
    asked = tmp_path / "asked"
    asked.mkdir()
    for suffix in (".bin", ".words"):
        shutil.copy(binary.with_suffix(suffix), asked / f"lm{suffix}")
    fast, slow = (
        BeamSearchDecoder(binary, list(TOKENS), options),
        BeamSearchDecoder(asked / "lm.bin", list(TOKENS), options),
    )
    rec = Recognizer(COMMAND)
    samples = ROOT / "samples" / "manifest.jsonl"
    for row in read_manifest(samples):
        logprobs = rec.logprobs(resolve_audio_path(row, samples))
        assert fast.search_scored(logprobs) == slow.search_scored(logprobs)
    binary.with_suffix(SCORES_SUFFIX).write_bytes(stored[:-1].tobytes())  # one word short
    with pytest.raises(ValueError, match="not 4 per word of its lexicon"):
        BeamSearchDecoder(binary, list(TOKENS), options)


def test_the_shipped_default_stores_its_n_grams_own_first_word_scores() -> None:
    pytest.importorskip("flashlight.lib.text.decoder", reason="flashlight-text is not installed")
    import numpy as np

    from edgeasr.decoding import SCORES_SUFFIX, lexicon_scores
    from edgeasr.recognizer import resolve_model_dir

    default = resolve_model_dir(ROOT / "triton_models" / "edgeasr").parent  # the highest version
    for stem in ("lm", "lm-domain"):
        stored = np.fromfile(default / f"{stem}{SCORES_SUFFIX}", dtype="<f4")
        assert stored.size == len(lm_vocabulary(default / f"{stem}.bin")) > 1500
        assert stored.tolist() == lexicon_scores(default / f"{stem}.bin").tolist()


def test_a_quantized_binary_is_smaller_and_reads_the_samples_as_the_arpa(tmp_path: Path) -> None:
    pytest.importorskip("flashlight.lib.text.decoder", reason="flashlight-text is not installed")
    from edgeasr.export.kenlm import find_build_binary, write_binary_lm

    if find_build_binary() is None:
        pytest.skip(reason="KenLM's build_binary is not built here (./run setup builds it)")
    with pytest.raises(ValueError, match="quantize_bits"):
        write_binary_lm(COMMAND / "lm.arpa", tmp_path / "bad.bin", quantize_bits=26)
    plain = write_binary_lm(COMMAND / "lm.arpa", tmp_path / "plain" / "lm.bin")
    small = write_binary_lm(COMMAND / "lm.arpa", tmp_path / "q8" / "lm.bin", quantize_bits=8)
    assert small.stat().st_size < 0.8 * plain.stat().st_size
    assert lm_vocabulary(small) == lm_vocabulary(COMMAND / "lm.arpa")
    read = [[[w for w, _, _ in words] for words in sample] for sample in _samples_searched(small, COMMAND / "lm.arpa")]
    assert read[0][0] == ["is", "it", "windy", "in", "cincinnati", "right", "now"]
    assert sum(q == t for q, t in read) >= len(read) - 1  # 8-bit scores may move one close call, no more
