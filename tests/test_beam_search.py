"""The lexicon beam search: synthetic emissions, the shipped model's decoder, Triton against device."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flashlight.lib.text.decoder", reason="flashlight-text is not installed")

from ctc_emissions import emissions as _emissions
from ctc_emissions import spell as _spell
from edgeasr.decoding import (
    TOKENS,
    BeamSearchDecoder,
    BeamSearchOptions,
    domain_out_of_reach,
    greedy_decode,
    has_beam_search,
    prefer_domain,
)
from edgeasr.training.language_model import NGramModel
from processes import children, running

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = ["play music", "play some music", "play the news", "call mom", "call my mom", "play music loud"]


@pytest.fixture(scope="module")
def lm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return NGramModel.estimate(SENTENCES, order=3).write_arpa(tmp_path_factory.mktemp("lm") / "lm.arpa")


def test_lexicon_corrects_what_greedy_misspells(lm_path: Path) -> None:
    # "play music" with the "i" of music heard as "e" more than "i"
    logp = _spell("play music", doubtful={8: {"e": 0.5, "i": 0.4}})
    assert greedy_decode(logp).text == "play musec"
    decoder = BeamSearchDecoder(lm_path, list(TOKENS))
    words = decoder.search(logp)
    assert [w for w, _, _ in words] == ["play", "music"]
    (_, s1, e1), (_, s2, e2) = words
    assert 0 < s1 < e1 <= s2 < e2 <= logp.shape[0]  # frame spans in order, inside the audio
    assert e1 - s1 == 7 and e2 - s2 == 9  # "p_l_a_y" and "m_u_s_i_c" on the path


def test_words_outside_the_lexicon_are_never_output(lm_path: Path) -> None:
    decoder = BeamSearchDecoder(lm_path, list(TOKENS))
    logp = _spell("call mum", doubtful={6: {"u": 0.5, "o": 0.4}})
    assert greedy_decode(logp).text == "call mum"
    text = " ".join(w for w, _, _ in decoder.search(logp))
    assert text.split() and set(text.split()) <= set(decoder.vocabulary)
    assert text == "call mom"


def test_phrase_biasing_makes_a_new_name_possible_and_leaves_other_speech_alone(lm_path: Path) -> None:
    decoder = BeamSearchDecoder(lm_path, list(TOKENS))
    logp = _spell("call maggie")
    assert "maggie" not in decoder.vocabulary
    plain = [w for w, _, _ in decoder.search(logp)]
    assert plain and "maggie" not in plain  # the lexicon cannot say it
    biased = decoder.search(logp, bias=["Aunt Maggie"])  # a contact name, given at run time
    assert [w for w, _, _ in biased] == ["call", "maggie"]
    assert biased[1][1] < biased[1][2] <= logp.shape[0]  # timed like any word
    music = _spell("play music")
    assert [w for w, _, _ in decoder.search(music, bias=["maggie", "zebra"])] == ["play", "music"]
    assert [w for w, _, _ in decoder.search(logp)] == plain  # the plain search is unchanged afterwards


def test_biased_searches_are_kept_for_a_few_phrase_sets_only(lm_path: Path) -> None:
    """Each phrase set's search holds a lexicon trie of its own (127 MiB at the default's 103,701 words): a server
    asked for many contact lists keeps the last MAX_BIASED_SEARCHES, and a list asked again is not rebuilt."""
    from edgeasr.decoding import BIAS_BOOST, MAX_BIASED_SEARCHES

    decoder = BeamSearchDecoder(lm_path, list(TOKENS))
    logp = _spell("call maggie")
    names = ["maggie", "maggia", "maggib", "maggic", "maggid", "maggif"]
    for name in names:
        assert next(w for w, _, _ in decoder.search(logp, bias=[name])) == "call"
    assert len(names) > MAX_BIASED_SEARCHES and len(decoder._biased) == MAX_BIASED_SEARCHES
    last = decoder._bias([names[-1]], BIAS_BOOST)[0]
    assert decoder._bias([names[-1]], BIAS_BOOST)[0] is last  # kept, not rebuilt
    assert [w for w, _, _ in decoder.search(logp, bias=[names[0]])] == ["call", "maggie"]  # evicted, built again


def test_the_bias_boost_sets_how_strongly_and_a_bad_one_is_refused(lm_path: Path) -> None:
    from edgeasr.decoding import MAX_BIAS_BOOST, bias_boost

    decoder = BeamSearchDecoder(lm_path, list(TOKENS))
    logp = _spell("call mum", doubtful={6: {"u": 0.5, "o": 0.4}})  # "mom" is the n-gram's, "mum" a new word
    assert [w for w, _, _ in decoder.search(logp, bias=["mum"], boost=0.0)] == ["call", "mom"]  # possible only
    assert [w for w, _, _ in decoder.search(logp, bias=["mum"], boost=MAX_BIAS_BOOST)] == ["call", "mum"]
    assert bias_boost("2.5") == 2.5 and bias_boost(0) == 0.0  # a request parameter's text reads as its number
    for bad in (-0.1, 10.5, float("nan"), "strong", None, True):
        with pytest.raises(ValueError, match=r"bias boost must be a number from 0 to 10 "):
            decoder.search(logp, bias=["mum"], boost=bad)


def _held(text: str, hold: int, last_frame_blank: bool = True) -> np.ndarray:
    """Frames for ``text`` with each word's last letter held for ``hold`` frames, as a CTC model often reads a
    closing consonant ("yes" as ``yy_ee_sss``); no blank after the utterance's last letter unless asked."""
    frames: list[dict[str, float]] = [{"_": 0.95}]
    for word in text.split():
        if len(frames) > 1:
            frames += [{" ": 0.9}, {"_": 0.9}]
        for ch in word[:-1]:
            frames += [{ch: 0.9}, {"_": 0.9}]
        frames += [{word[-1]: 0.97}] * hold
    if last_frame_blank:
        frames.append({"_": 0.9})
    return _emissions(frames)


def test_a_held_last_letter_stays_inside_its_word(lm_path: Path) -> None:
    # The shipped settings' beam (10 nats). Reading a held last letter's frames as blanks costs about 8 nats a
    # frame, so a search that closed the word on its last letter's first frame lost the word: version 23 answered
    # nothing for two recordings of "yes" that greedy decoding read right.
    shipped = BeamSearchDecoder(lm_path, list(TOKENS), BeamSearchOptions(beam_threshold=10.0))
    for text in ("call mom", "play music loud", "play the news"):
        for last_blank in (True, False):
            logp = _held(text, hold=4, last_frame_blank=last_blank)
            assert greedy_decode(logp).text == text
            words = shipped.search(logp)
            assert [w for w, _, _ in words] == text.split(), (text, last_blank)
            assert words[-1][2] == logp.shape[0] - last_blank  # the held frames are the word's, the blank is not
    (_, _, first_end), (_, second_start, _) = shipped.search(_held("call mom", hold=4))[:2]
    assert first_end == 1 + 2 * 3 + 4 and second_start == first_end + 2  # "c_a_l" then "llll", a space, a blank


def test_the_search_adds_nothing_to_the_acoustic_score_of_the_path_it_reads(lm_path: Path) -> None:
    # each word closes on the separator, and one certain separator frame closes the utterance's last word: a
    # path that is the greedy one must score exactly the greedy path's log-probability
    decoder = BeamSearchDecoder(lm_path, list(TOKENS))
    for logp in (_spell("play music"), _held("call my mom", hold=3, last_frame_blank=False)):
        words, scores = decoder.search_scored(logp)
        assert " ".join(w for w, _, _ in words) == greedy_decode(logp).text
        assert scores["acoustic"] == pytest.approx(float(logp.max(axis=1).sum()), abs=1e-3)
        assert scores["words"] == len(words) > 0


def test_empty_input_and_wrong_shapes(lm_path: Path) -> None:
    decoder = BeamSearchDecoder(lm_path, list(TOKENS))
    assert decoder.search(np.zeros((0, len(TOKENS)), np.float32)) == []
    assert decoder.search(_emissions([{"_": 0.99}] * 30)) == []  # silence: no words
    with pytest.raises(ValueError, match="frames"):
        decoder.search(np.zeros((10, 5), np.float32))
    with pytest.raises(ValueError, match="frames"):
        decoder.search(np.zeros(10, np.float32))


def test_options_round_trip_and_refuse_unknown_keys(tmp_path: Path, lm_path: Path) -> None:
    options = BeamSearchOptions(lm_weight=0.8, word_score=-2.0)
    options.to_json(tmp_path / "decoder.json")
    assert BeamSearchOptions.from_json(tmp_path / "decoder.json") == options
    assert "domain_precheck_beam" not in json.loads((tmp_path / "decoder.json").read_text())  # off: earlier readers
    checked = BeamSearchOptions(domain_precheck_beam=50, domain_precheck_margin=3.0)
    checked.to_json(tmp_path / "decoder.json")
    assert BeamSearchOptions.from_json(tmp_path / "decoder.json") == checked
    options.to_json(tmp_path / "decoder.json")
    assert not has_beam_search(tmp_path)
    shutil.copyfile(lm_path, tmp_path / "lm.arpa")
    assert has_beam_search(tmp_path)
    assert BeamSearchDecoder.from_dir(tmp_path, list(TOKENS), beam_size=8).options.beam_size == 8
    (tmp_path / "decoder.json").write_text(json.dumps({"lm_weight": 1.0, "beam_width": 3}))
    with pytest.raises(ValueError, match="beam_width"):
        BeamSearchOptions.from_json(tmp_path / "decoder.json")


def test_a_language_model_the_tokens_cannot_spell_is_refused(tmp_path: Path) -> None:
    arpa = NGramModel.estimate(["über straße"], order=2).write_arpa(tmp_path / "lm.arpa")
    with pytest.raises(ValueError, match="spelled"):
        BeamSearchDecoder(arpa, list(TOKENS))


GENERAL = ["what time is it", "is it late", "it is time", "what is it", "time is money"]
COMMANDS = ["set a timer", "set a timer for ten minutes", "stop the timer", "play music"]


@pytest.fixture(scope="module")
def two_lms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A version folder's decoder files with a general n-gram and a domain (command) n-gram."""
    d = tmp_path_factory.mktemp("two")
    NGramModel.estimate(GENERAL, order=3).write_arpa(d / "lm.arpa")
    NGramModel.estimate(COMMANDS, order=3).write_arpa(d / "lm-domain.arpa")
    BeamSearchOptions().to_json(d / "decoder.json")
    BeamSearchOptions().to_json(d / "decoder-domain.json")
    return d


def _text(words: list[tuple[str, int, int]]) -> str:
    return " ".join(w for w, _, _ in words)


def test_two_n_grams_take_each_utterance_from_the_search_that_explains_it(two_lms: Path) -> None:
    command, question = _spell("set a timer"), _spell("what time is it")
    general_only = BeamSearchDecoder(two_lms / "lm.arpa", list(TOKENS))
    domain_only = BeamSearchDecoder(two_lms / "lm-domain.arpa", list(TOKENS))
    assert _text(general_only.search(command)) != "set a timer"  # each lexicon alone misreads the other's speech
    assert _text(domain_only.search(question)) != "what time is it"
    both = BeamSearchDecoder.from_dir(two_lms, list(TOKENS))
    assert both.domain is not None and both.domain.vocabulary == domain_only.vocabulary
    words, scores = both.search_scored(command)
    assert _text(words) == "set a timer" and scores["domain"] is True
    assert words == domain_only.search(command)  # the domain search's own spans
    assert scores["domain_score"] >= scores["general_score"] > float("-inf")
    words, scores = both.search_scored(question)
    assert _text(words) == "what time is it" and scores["domain"] is False
    assert both.search(question) == general_only.search(question)
    assert both.search(np.zeros((0, len(TOKENS)), np.float32)) == []


def test_the_domain_bias_moves_the_choice_and_a_missing_settings_file_is_an_error(
    two_lms: Path, tmp_path: Path
) -> None:
    command, question = _spell("set a timer"), _spell("what time is it")
    always = BeamSearchDecoder.from_dir(two_lms, list(TOKENS), domain_word_bias=1e4)
    assert always.search_scored(question)[1]["domain"] is True
    assert _text(always.search(question)) != "what time is it"
    never = BeamSearchDecoder.from_dir(two_lms, list(TOKENS), domain_word_bias=-1e4, beam_size=32)
    assert (never.options.beam_size, never.domain.options.beam_size) == (32, 64)  # overrides: the general search
    assert never.search_scored(command)[1]["domain"] is False
    assert _text(never.search(command)) != "set a timer"
    general, domain = {"acoustic": -10.0, "lm": -2.0}, {"acoustic": -12.0, "lm": -1.0, "words": 2}
    assert prefer_domain(general, domain, BeamSearchOptions()) is False  # -13 against -12
    assert prefer_domain(general, domain, BeamSearchOptions(domain_word_bias=0.4)) is False  # -12.2: per word
    assert prefer_domain(general, domain, BeamSearchOptions(domain_word_bias=0.5)) is True  # -12 ties -12
    assert prefer_domain(general, {**domain, "words": 1}, BeamSearchOptions(domain_word_bias=0.5)) is False
    assert prefer_domain(general, domain, BeamSearchOptions(domain_weight=0.0)) is True  # -12 ties -12
    assert prefer_domain(general, domain, BeamSearchOptions(lm_weight=0.5)) is False  # -13 against -11
    nothing = {"acoustic": float("-inf"), "lm": 0.0}
    assert prefer_domain(nothing, domain, BeamSearchOptions()) is True  # the general search found nothing
    # an empty domain answer never beats a general one with words, however it scores ("yes": not a command)
    silent_domain = {"acoustic": -0.3, "lm": -9.3, "words": 0}
    yes = {"acoustic": -1.5, "lm": -9.5, "words": 1}
    assert prefer_domain(yes, silent_domain, BeamSearchOptions(lm_weight=1.7, domain_weight=0.1)) is False
    assert prefer_domain({**yes, "words": 0}, silent_domain, BeamSearchOptions(lm_weight=1.7, domain_weight=0.1))
    for name in ("lm.arpa", "decoder.json", "lm-domain.arpa"):
        shutil.copyfile(two_lms / name, tmp_path / name)
    with pytest.raises(FileNotFoundError, match=r"decoder-domain\.json"):
        BeamSearchDecoder.from_dir(tmp_path, list(TOKENS))


def test_the_domain_precheck_skips_the_full_domain_search_only_where_the_general_one_wins(two_lms: Path) -> None:
    command, question = _spell("set a timer"), _spell("what time is it")
    full = BeamSearchDecoder.from_dir(two_lms, list(TOKENS))
    checked = BeamSearchDecoder.from_dir(
        two_lms, list(TOKENS), domain_precheck_beam=4, domain_precheck_threshold=5.0, domain_precheck_margin=0.0
    )
    assert full._domain_narrow is None and checked._domain_narrow is not None
    words, scores = checked.search_scored(question)
    assert _text(words) == "what time is it" and scores["domain"] is False and scores["domain_full"] is False
    assert words == full.search(question) and scores["domain_score"] < scores["general_score"]
    words, scores = checked.search_scored(command)
    assert _text(words) == "set a timer" and scores["domain"] is True and scores["domain_full"] is True
    assert words == full.search(command) and full.search_scored(command)[1]["domain_full"] is True
    # a biased search always runs the full domain search
    assert checked.search_scored(question, bias=["time"])[1]["domain_full"] is True
    # a general transcript made of the domain's words alone is searched in full at once: a precheck that would
    # skip every full search (a margin of minus a million) is never asked
    blind = BeamSearchOptions(domain_precheck_beam=4, domain_precheck_margin=-1e6)
    same = BeamSearchDecoder(
        two_lms / "lm-domain.arpa",
        list(TOKENS),
        blind,
        domain=BeamSearchDecoder(two_lms / "lm-domain.arpa", list(TOKENS)),
    )
    words, scores = same.search_scored(command)
    assert _text(words) == "set a timer" and scores["domain_full"] is True
    always = BeamSearchDecoder.from_dir(two_lms, list(TOKENS), domain_precheck_beam=4, domain_precheck_margin=-1e6)
    assert always.search_scored(command)[1]["domain_full"] is False  # asked (no general word is the domain's): skipped
    general, rough = {"acoustic": -10.0, "lm": -2.0, "words": 2}, {"acoustic": -12.0, "lm": -1.0, "words": 2}
    assert domain_out_of_reach(general, rough, BeamSearchOptions(domain_precheck_margin=0.0)) is True  # -13 < -12
    assert domain_out_of_reach(general, rough, BeamSearchOptions(domain_precheck_margin=1.0)) is False  # -13 = -13
    assert domain_out_of_reach(general, {**rough, "words": 0}, BeamSearchOptions(domain_precheck_margin=1e3)) is True
    assert domain_out_of_reach({**general, "words": 0}, {**rough, "words": 0}, BeamSearchOptions()) is False


def _long_pauses(text: str, pause: int = 12) -> np.ndarray:
    """``text`` spelled with ``pause`` near-certain blank frames after each character."""
    frames: list[dict[str, float]] = [{"_": 0.9995}] * pause
    for ch in text:
        frames += [{ch: 0.9}] + [{"_": 0.9995}] * pause
    return _emissions(frames)


def test_blank_skip_searches_fewer_frames_with_the_same_words_and_times(lm_path: Path) -> None:
    logp = _long_pauses("call my mom")  # "ll": a skipped run must keep one blank between the two l
    every = BeamSearchDecoder(lm_path, list(TOKENS))
    skipping = BeamSearchDecoder(lm_path, list(TOKENS), BeamSearchOptions(blank_skip=0.99))
    kept = skipping._searched_frames(logp)
    assert every._searched_frames(logp) is None
    assert kept is not None and kept.size == 1 + 2 * len("call my mom")  # each letter, and one frame per pause
    assert skipping.search(logp) == every.search(logp)  # words, and spans in the utterance's own frames
    assert [w for w, _, _ in skipping.search(logp)] == ["call", "my", "mom"]
    assert skipping.search(logp)[-1][2] <= logp.shape[0]


def _sentences() -> list[np.ndarray]:
    doubt = {1: {"l": 0.5, "i": 0.4}}
    return [_spell(s, doubtful=doubt if s.startswith("play") else None) for s in SENTENCES] * 2


def test_a_search_pool_gives_the_words_of_one_process(lm_path: Path) -> None:
    from edgeasr.decoding import SearchPool

    decoder = BeamSearchDecoder(lm_path, list(TOKENS))
    batch = [*_sentences(), np.zeros((10, 5), np.float32)]  # the last is malformed
    alone = [[w for w, _, _ in decoder.search(lp)] for lp in batch[:-1]]
    assert alone[0] == ["play", "music"] and all(alone)
    pool = SearchPool(decoder.search, processes=2)
    try:
        assert len(pool.worker_pids) == 1
        found = pool.map(batch)
        assert [[w for w, _, _ in f] for f in found[:-1]] == alone
        assert isinstance(found[-1], ValueError)  # its own error, the others unharmed
        import os
        import signal

        os.kill(pool.worker_pids[0], signal.SIGKILL)  # a dead worker costs speed, not transcripts
        time.sleep(0.2)
        assert [[w for w, _, _ in f] for f in pool.map(batch[:-1])] == alone
        assert pool.processes == 1 and pool.worker_pids == []
    finally:
        pool.close()
    with pytest.raises(ValueError, match="at least 1"):
        SearchPool(decoder.search, processes=0)


def test_search_pool_workers_exit_with_their_parent(lm_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "import os, signal, sys\n"
        "from edgeasr.decoding import TOKENS, BeamSearchDecoder, SearchPool\n"
        "pool = SearchPool(BeamSearchDecoder(sys.argv[1], list(TOKENS)).search, processes=3)\n"
        "print(*pool.worker_pids, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(lm_path)], capture_output=True, text=True, timeout=60)
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 2, out.stderr

    deadline = time.monotonic() + 10
    while any(running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(running(p) for p in pids), "search workers outlived the process that forked them"


# -- the shipped default model ----------------------------------------------------------------

SHIPPED = ROOT / "triton_models" / "edgeasr"
COMMAND = SHIPPED / "2"  # the command model: one closed n-gram of 1,531 words (the default's domain search)
SAMPLES = ROOT / "samples" / "manifest.jsonl"


def _shipped_version() -> Path:
    from edgeasr.recognizer import resolve_model_dir

    return resolve_model_dir(SHIPPED).parent


shipped = pytest.mark.skipif(
    not SHIPPED.is_dir() or not SAMPLES.is_file(), reason="the shipped model or samples are not in this checkout"
)


@shipped
def test_shipped_model_decodes_with_its_beam_search_and_beats_greedy() -> None:
    import jiwer

    from edgeasr.audio import load_audio
    from edgeasr.manifest import read_manifest, resolve_audio_path
    from edgeasr.recognizer import Recognizer, RecognizerOptions

    assert has_beam_search(_shipped_version()), "the shipped default version ships no lm.arpa/decoder.json"
    beam = Recognizer(SHIPPED, RecognizerOptions(decoder="auto"))
    # heard whole, as logprobs() hears it (transcribe cuts a whole-input model's recording at its pauses)
    greedy = Recognizer(SHIPPED, RecognizerOptions(decoder="greedy", pause_seconds=0.0))
    assert (beam.decoder_name, greedy.decoder_name) == ("beam", "greedy")
    assert Recognizer(SHIPPED, RecognizerOptions(beam_size=8)).beam_search.options.beam_size == 8
    rows = read_manifest(SAMPLES)
    refs, by_beam, by_greedy = [], [], []
    for row in rows:
        wave = load_audio(resolve_audio_path(row, SAMPLES))
        refs.append(row["text"])
        by_beam.append(beam.transcribe(wave, 16000))
        by_greedy.append(greedy.transcribe(wave, 16000).text)
        assert by_greedy[-1] == greedy_decode(greedy.logprobs(wave, 16000)).text
    assert jiwer.wer(refs, [t.text for t in by_beam]) < jiwer.wer(refs, by_greedy)
    for t in by_beam:  # word timestamps lie in order inside the audio
        ends = [(w.start, w.end) for w in t.words]
        assert all(0 <= s < e for s, e in ends) and ends == sorted(ends)
    # streaming ends with the same decoder as offline
    stream = beam.create_stream()
    wave = load_audio(resolve_audio_path(rows[0], SAMPLES))
    for i in range(0, wave.size, 2560):
        stream.accept_waveform(wave[i : i + 2560])
    assert stream.finish().text == by_beam[0].text


def test_beam_decoder_on_a_model_without_one_is_a_clear_error(tiny_repository: Path) -> None:
    from edgeasr.recognizer import Recognizer, RecognizerOptions

    assert Recognizer(tiny_repository / "edgeasr").decoder_name == "greedy"
    with pytest.raises(FileNotFoundError, match=r"lm\.arpa"):
        Recognizer(tiny_repository / "edgeasr", RecognizerOptions(decoder="beam"))
    with pytest.raises(ValueError, match="auto, greedy or beam"):
        Recognizer(tiny_repository / "edgeasr", RecognizerOptions(decoder="viterbi"))


@shipped
@pytest.mark.triton
def test_triton_serves_the_same_beam_search_text_as_the_device(tmp_path: Path) -> None:
    from edgeasr.audio import load_audio
    from edgeasr.client import ClientError, TritonClient
    from edgeasr.manifest import read_manifest, resolve_audio_path
    from edgeasr.recognizer import Recognizer
    from edgeasr.serving.server import ServerError, TritonServer, find_tritonserver

    try:
        find_tritonserver()
    except ServerError as exc:
        pytest.skip(reason=f"no bundled Triton server: {exc}")
    version = _shipped_version()
    root = tmp_path / "triton_models"
    shutil.copytree(SHIPPED, root / "edgeasr", ignore=shutil.ignore_patterns(*[
        p.name for p in SHIPPED.iterdir() if p.name.isdigit() and p.name != version.name
    ]))  # fmt: skip
    config = (root / "edgeasr" / "config.pbtxt").read_text()
    assert 'key: "decode_processes" value: { string_value: "2" }' in config  # the shipped config shares out searches
    device = Recognizer(root / "edgeasr")
    server = TritonServer(root)
    server.start(timeout_s=120)
    try:
        client = TritonClient(server.grpc_url, "edgeasr")
        waves, expected = [], []
        for row in read_manifest(SAMPLES):
            waves.append(load_audio(resolve_audio_path(row, SAMPLES)))
            expected.append(device.transcribe(waves[-1], 16000).text)
            assert client.transcribe(waves[-1]).text == expected[-1]
        assert all(expected)
        workers = children(children(server.pid))  # the stub's search worker
        assert len(workers) == 1, workers
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(8) as pool:  # concurrent requests batch: their searches are shared out
            for _ in range(3):
                assert list(pool.map(lambda w: client.transcribe(w).text, waves)) == expected
        # phrase biasing as a request parameter, the same on both paths (a word the lexicon lacks: the
        # command model's test_transcribe_command_takes_bias_phrases below)
        wave = load_audio(ROOT / "samples" / "real" / "02-cathy.flac")  # a real speaker's read sentence
        # the biased word wins where the unbiased search hears "great be": the reference, word for word (version 29,
        # with the n-gram before, also heard "bulls" for "balls", which version 31's n-gram now reads)
        expected = "clubs and balls and cities grew to be only memories"
        assert device.transcribe(wave, 16000, bias=["grew"]).text == expected
        assert client.transcribe(wave, bias=["grew"]).text == expected
        assert client.transcribe(wave).text == "clubs and balls and cities great be only memories"  # per request only
        # how strongly, per request: 0 makes the word possible without favouring it; out of range is refused with
        # the device's message, and the server goes on serving
        weak = device.transcribe(wave, 16000, bias=["grew"], bias_boost=0.0).text
        assert "grew" not in weak.split() and client.transcribe(wave, bias=["grew"], bias_boost=0.0).text == weak
        with pytest.raises(ValueError, match="bias boost must be") as refused:
            device.transcribe(wave, 16000, bias=["grew"], bias_boost=11.0)
        with pytest.raises(ClientError, match=re.escape(str(refused.value))):
            client.transcribe(wave, bias=["grew"], bias_boost=11.0)
        # a long recording of many commands: heard in pieces cut at its pauses, as on device
        pause = np.zeros(4800, np.float32)
        joined = np.concatenate([x for w in waves for x in (w, pause)])  # 23 s
        text = device.transcribe(joined, 16000).text
        assert text.startswith("is it windy in cincinnati right now when does the sun set")
        assert client.transcribe(joined).text == text
        wave = load_audio(ROOT / "samples" / "01-flite-rms.wav")
        import tritonclient.grpc as grpcclient

        raw = grpcclient.InferenceServerClient(server.grpc_url)
        audio = grpcclient.InferInput("AUDIO", [1, wave.size], "FP32")
        audio.set_data_from_numpy(wave[None, :])
        with pytest.raises(Exception, match="JSON list"):
            raw.infer("edgeasr", [audio], parameters={"bias": "not json"})
        assert client.transcribe(wave).text == "is it windy in cincinnati right now"  # still serving
    finally:
        server.stop()
    time.sleep(1.0)
    assert not [p for p in workers if running(p)], "a search worker outlived the server"


def _two_n_gram_repository(root: Path, with_domain: bool = True) -> Path:
    """The command model (version 2) as a repository whose general n-gram lacks the samples' words.

    With ``with_domain`` the shipped closed n-gram and its settings ride along as the domain search
    (``lm-domain.arpa``, ``decoder-domain.json``); the card is re-signed, as the runtime checks it.
    """
    from edgeasr.modelcard import ModelCard

    version = COMMAND
    folder = root / "edgeasr" / "1"
    shutil.copytree(version, folder)
    shutil.copyfile(SHIPPED / "config.pbtxt", root / "edgeasr" / "config.pbtxt")
    shipped_options = json.loads((version / "decoder.json").read_text())
    if with_domain:
        (folder / "lm.arpa").rename(folder / "lm-domain.arpa")
        (folder / "decoder.json").rename(folder / "decoder-domain.json")
    NGramModel.estimate(GENERAL, order=3).write_arpa(folder / "lm.arpa")
    options = {**shipped_options, "domain_weight": shipped_options["lm_weight"]}
    BeamSearchOptions(**options).to_json(folder / "decoder.json")
    card = ModelCard.from_json(folder)
    fields = {k: v for k, v in card.to_dict().items() if k not in ("files", "size_bytes")}
    ModelCard.for_files(folder, **fields).to_json(folder)
    return root / "edgeasr"


def _sample_waves() -> list[np.ndarray]:
    from edgeasr.audio import load_audio
    from edgeasr.manifest import read_manifest, resolve_audio_path

    return [load_audio(resolve_audio_path(row, SAMPLES)) for row in read_manifest(SAMPLES)]


@shipped
def test_a_model_with_two_n_grams_answers_commands_from_its_domain_search(tmp_path: Path) -> None:
    """The command model's closed n-gram as the domain search beside a general one that lacks the samples' words."""
    from edgeasr.recognizer import Recognizer

    general = Recognizer(_two_n_gram_repository(tmp_path / "general", with_domain=False))
    two = Recognizer(_two_n_gram_repository(tmp_path / "two"))
    shipped_model = Recognizer(COMMAND)
    waves = _sample_waves()
    assert general.transcribe(waves[0], 16000).text != "is it windy in cincinnati right now"  # not in its lexicon
    for wave in waves:  # the shipped search's words, each time
        assert two.transcribe(wave, 16000).text == shipped_model.transcribe(wave, 16000).text


@shipped
@pytest.mark.triton
def test_triton_serves_the_two_n_gram_choice_of_the_device(tmp_path: Path) -> None:
    from edgeasr.client import TritonClient
    from edgeasr.recognizer import Recognizer
    from edgeasr.serving.server import ServerError, TritonServer, find_tritonserver

    try:
        find_tritonserver()
    except ServerError as exc:
        pytest.skip(reason=f"no bundled Triton server: {exc}")
    model = _two_n_gram_repository(tmp_path / "triton_models")
    device = Recognizer(model)
    assert device.beam_search.domain is not None
    waves = _sample_waves()
    expected = [device.transcribe(w, 16000).text for w in waves]
    assert expected[0] == "is it windy in cincinnati right now"  # only the domain search can say it
    server = TritonServer(model.parent)
    server.start(timeout_s=120)
    try:
        client = TritonClient(server.grpc_url, "edgeasr")
        assert [client.transcribe(w).text for w in waves] == expected
    finally:
        server.stop()


@shipped
def test_a_bad_bias_boost_is_the_same_error_from_the_recognizer_and_the_cli(tmp_path: Path) -> None:
    import subprocess
    import sys

    from edgeasr.recognizer import Recognizer

    wav = ROOT / "samples" / "01-flite-rms.wav"
    with pytest.raises(ValueError, match="bias boost must be a number from 0 to 10") as refused:
        Recognizer(COMMAND).transcribe(wav, bias=["sinsanaki"], bias_boost=-1.0)
    run = [sys.executable, "-m", "edgeasr", "transcribe", str(wav), "--model", str(COMMAND), "--bias", "sinsanaki"]
    done = subprocess.run([*run, "--bias-boost", "-1"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == f"edgeasr transcribe: {refused.value}".replace("-1.0", "-1")
    # the shipped default on a real speaker's "clubs and balls and cities grew to be only memories": a boost of 0
    # makes "grew" possible without favouring it, 4 favours it (the default, 2, too: the Triton test below)
    cathy = [sys.executable, "-m", "edgeasr", "transcribe", str(ROOT / "samples" / "real" / "02-cathy.flac")]
    said = {
        boost: subprocess.run([*cathy, "--bias", "grew", "--bias-boost", boost], capture_output=True, text=True)
        for boost in ("0", "4")
    }
    assert [d.returncode for d in said.values()] == [0, 0]
    assert "grew" not in said["0"].stdout.split() and "great" in said["0"].stdout.split()
    assert "cities grew to be" in said["4"].stdout


def test_transcribe_command_takes_bias_phrases() -> None:
    import subprocess
    import sys

    wav = str(ROOT / "samples" / "01-flite-rms.wav")  # the command model: "sinsanaki" is not in its lexicon
    run = [sys.executable, "-m", "edgeasr", "transcribe", wav, "--model", str(COMMAND)]
    biased = subprocess.run([*run, "--bias", "sinsanaki"], capture_output=True, text=True, check=True).stdout
    plain = subprocess.run(run, capture_output=True, text=True, check=True).stdout
    assert biased.split("\t")[1].strip() == "is it windy in sinsanaki right now"
    assert plain.split("\t")[1].strip() == "is it windy in cincinnati right now"
