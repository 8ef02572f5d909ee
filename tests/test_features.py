"""The frontend's torch-free definition (edgeasr.features): frame counts, constant tables, numpy log-mel."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from edgeasr.features import (
    PAD_SECONDS_KEY,
    ROOM_TONE_DBFS,
    FrontendConfig,
    LevelConfig,
    LevelMeter,
    dft_tables,
    frame_count,
    hann_window,
    input_pad_seconds,
    level_gain_db,
    log_mel,
    mel_filterbank,
    model_input,
    model_pieces,
    pad_room_tone,
    pink_noise,
    prepare_input,
    room_tone,
    speech_segments,
    speech_span,
)


def test_frame_count_is_centred_framing() -> None:
    assert [frame_count(n) for n in (0, 159, 160, 16000, 16159)] == [1, 1, 2, 101, 101]


def test_dft_tables_compute_the_512_point_dft() -> None:
    """Applied as the frontend applies them, the factored tables give numpy's FFT of a frame."""
    t = dft_tables(512)
    x = np.random.default_rng(0).standard_normal(512).astype(np.float32)
    z = x.reshape(16, 32)  # sample n = 32 * n1 + n2
    yr, yi = t["c16"] @ z, -(t["s16"] @ z)
    ar, ai = yr * t["tw_c"] + yi * t["tw_s"], yi * t["tw_c"] - yr * t["tw_s"]
    xr, xi = ar @ t["c32"] + ai @ t["s32"], ai @ t["c32"] - ar @ t["s32"]
    ours = (xr + 1j * xi).T.reshape(-1)  # bin k = k1 + 16 * k2
    np.testing.assert_allclose(ours, np.fft.fft(x), atol=2e-3)
    with pytest.raises(ValueError, match="512 points"):
        dft_tables(400)


def test_window_and_filters() -> None:
    w = hann_window(400)
    assert w.dtype == np.float32 and w[0] == 0.0 and w[200] == pytest.approx(1.0)
    fb = mel_filterbank(FrontendConfig())
    assert fb.shape == (257, 80) and fb.dtype == np.float32
    assert np.all(fb >= 0) and np.all(fb.max(axis=0) > 0.3)  # every band reaches a bin (low bands lie between bins)
    peaks = fb.argmax(axis=0)
    assert np.all(np.diff(peaks) >= 0)  # bands rise in frequency


def test_numpy_log_mel_matches_the_model_frontend() -> None:
    torch = pytest.importorskip("torch", reason="the model's frontend is a torch module (train extra)")
    from edgeasr.training.frontend import LogMelFrontend

    audio = 0.1 * np.random.default_rng(1).standard_normal(16159).astype(np.float32)
    ours = log_mel(audio)
    ref = LogMelFrontend().log_mel(torch.from_numpy(audio)[None, :])[0].numpy()
    assert ours.shape == ref.shape == (80, frame_count(16159))
    np.testing.assert_allclose(ours, ref, atol=1e-3)


def test_the_definition_imports_no_torch() -> None:
    code = "import sys, edgeasr.features; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def _speech(peak_dbfs: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    x = np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (x / np.abs(x).max() * 10 ** (peak_dbfs / 20)).astype(np.float32)


def test_level_normalization_brings_quiet_speech_to_the_training_level() -> None:
    from edgeasr.features import LEVEL_FRAME

    cfg = LevelConfig()
    for peak in (-45.0, -30.0, -20.0):
        x = _speech(peak)
        y = x * 10 ** (level_gain_db(x) / 20)
        frames = (y[: y.size // LEVEL_FRAME * LEVEL_FRAME].reshape(-1, LEVEL_FRAME) ** 2).mean(axis=1)
        db = 10 * np.log10(frames + 1e-12)
        active = frames[db >= db.max() - cfg.active_db]
        assert 10 * np.log10(active.mean()) == pytest.approx(cfg.target_dbfs, abs=0.1)
    assert level_gain_db(_speech(-1.0)) < 0  # loud input is turned down, never clipped up
    assert level_gain_db(_speech(-0.5)) <= cfg.peak_dbfs + 0.5  # and its peak stays under the limit


def test_silence_and_room_tone_get_no_gain() -> None:
    assert level_gain_db(np.zeros(16000, np.float32)) == 0.0
    tone = (10 ** (-72 / 20) * np.random.default_rng(0).standard_normal(32000)).astype(np.float32)
    assert level_gain_db(tone) == 0.0  # loudest frame under the floor: nothing to blow up into words
    assert level_gain_db(_speech(-66.0)) == 0.0  # nor is speech quieter than the floor
    assert level_gain_db(_speech(-45.0), LevelConfig(max_gain_db=10.0)) == pytest.approx(10.0)  # capped
    off = LevelConfig(normalize=False)
    assert level_gain_db(_speech(-45.0), off) == 0.0


def test_a_stream_measured_in_chunks_gets_the_gain_of_the_whole() -> None:
    x = _speech(-40.0, seconds=2.3)
    meter = LevelMeter()
    gains = [meter.update(x[i : i + 2560]).gain_db() for i in range(0, x.size, 2560)]
    assert gains[-1] == pytest.approx(level_gain_db(x), abs=1e-9)  # the same computation, chunked
    assert all(g > 10 for g in gains)  # quiet from the first chunk on: it is amplified at once


def test_room_tone_is_quiet_pink_and_the_same_every_time() -> None:
    lead, trail = room_tone(8000)
    again, _ = room_tone(8000)
    assert lead.size == trail.size == 8000 and np.array_equal(lead, again) and not np.array_equal(lead, trail)
    both = np.concatenate([lead, trail]).astype(np.float64)
    assert 20 * np.log10(np.sqrt(np.mean(both**2))) == pytest.approx(ROOM_TONE_DBFS, abs=0.1)
    power = np.abs(np.fft.rfft(both)) ** 2
    assert power[10:200].mean() > 10 * power[-2000:].mean()  # pink: far more low than high energy
    with pytest.raises(ValueError):
        lead[0] = 1.0  # read-only: a caller cannot change what every other path lays down
    assert [a.size for a in room_tone(0)] == [0, 0]


def test_padding_surrounds_the_recording_and_the_gain_is_the_recordings_own() -> None:
    rng = np.random.default_rng(0)
    speech = (0.01 * rng.standard_normal(16000)).astype(np.float32)  # quiet: it gets gain
    padded = pad_room_tone(speech, 0.5)
    lead, trail = room_tone(8000)
    assert padded.size == 32000 and np.array_equal(padded[8000:24000], speech)
    assert np.array_equal(padded[:8000], lead) and np.array_equal(padded[24000:], trail)
    assert np.array_equal(pad_room_tone(speech, 0.0), speech)
    gain = level_gain_db(speech)
    assert gain > 10  # the speech is brought up; the tone stays at its level beside it, however quiet the input
    heard = model_input(speech, 0.5)
    np.testing.assert_allclose(heard[8000:24000], speech * np.float32(10 ** (gain / 20)), rtol=1e-6)
    assert np.array_equal(heard[:8000], lead) and np.array_equal(heard[24000:], trail)
    np.testing.assert_allclose(model_input(speech, 0.0), heard[8000:24000], rtol=1e-6)


def test_the_padding_a_model_asks_for_is_read_from_its_metadata() -> None:
    assert input_pad_seconds({}) == 0.0
    assert input_pad_seconds({PAD_SECONDS_KEY: "0.5"}) == 0.5
    for bad in ("-0.1", "7", "nan", "half a second"):
        with pytest.raises(ValueError, match=PAD_SECONDS_KEY):
            input_pad_seconds({PAD_SECONDS_KEY: bad})


def _words_in_a_room(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """(speech, the same speech with ``seconds`` of -70 dBFS pink room tone before and after it)."""
    rng = np.random.default_rng(3)
    t = np.arange(24000) / 16000  # 1.5 s rising and falling at a syllable rate, at about -23 dBFS
    speech = (0.1 * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)) * rng.standard_normal(t.size)).astype(np.float32)
    n = round(seconds * 16000)
    tone = pink_noise(2 * n, rng) * np.float32(10 ** (-70 / 20))
    return speech, np.concatenate([tone[:n], speech, tone[n:]]).astype(np.float32)


def test_the_quiet_ends_are_cut_by_the_rule_the_corpora_were_cut_with() -> None:
    from edgeasr.data.conditioning import ConditionOptions, trim_silence

    _, roomy = _words_in_a_room(2.0)
    start, end = speech_span(roomy)
    # cut down to 0.15 s on each side of the speech, to the 20 ms frame
    assert abs(start - (32000 - 2400)) <= 320 and abs(end - (32000 + 24000 + 2400)) <= 320
    # the data stage's trim (35 dB, -60 dBFS, 0.15 s) keeps exactly these samples
    kept = trim_silence(roomy, ConditionOptions(pad=False))
    assert np.array_equal(kept, roomy[start:end])
    # what the model hears: the kept part, leveled, with the room tone its model asks for around it
    heard, first = prepare_input(roomy, 0.5)
    assert first == start and heard.size == (end - start) + 16000
    np.testing.assert_array_equal(heard[8000:-8000], roomy[start:end])
    assert model_input(roomy * np.float32(0.03), 0.5).size == heard.size  # 30 dB quieter: the same cut
    assert speech_span(roomy, LevelConfig(trim=False)) == (0, roomy.size)


def test_nothing_is_cut_from_speech_in_noise_silence_or_a_tight_clip() -> None:
    speech, roomy = _words_in_a_room(0.4)
    assert speech_span(roomy) == (0, roomy.size)  # quiet ends of half a second or less are heard as they are
    rng = np.random.default_rng(4)
    noisy = np.concatenate([np.zeros(16000, np.float32), speech, np.zeros(16000, np.float32)])
    noisy += (0.01 * rng.standard_normal(noisy.size)).astype(np.float32)  # 20 dB below the speech, throughout
    assert speech_span(noisy) == (0, noisy.size)
    silence = (1e-5 * rng.standard_normal(32000)).astype(np.float32)  # no frame above -60 dBFS
    assert speech_span(silence) == (0, silence.size)
    assert speech_span(speech) == (0, speech.size)
    assert speech_span(np.zeros(0, np.float32)) == (0, 0)


def _phrases_with_pauses(pauses: list[float]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """1.5 s phrases of :func:`_words_in_a_room`'s speech in a room, ``pauses`` (s) of room tone
    between them and 1 s before and after; and where each phrase lies (samples)."""
    speech, _ = _words_in_a_room(0.0)
    tone = pink_noise(16000 * (2 + int(np.ceil(sum(pauses)))), np.random.default_rng(9)) * np.float32(10 ** (-70 / 20))
    parts, where, at, used = [tone[:16000]], [], 16000, 16000
    for pause in [*pauses, None]:
        parts.append(speech)
        where.append((at, at + speech.size))
        at += speech.size
        gap = 16000 if pause is None else round(pause * 16000)
        parts.append(tone[used : used + gap])
        used, at = used + gap, at + gap
    return np.concatenate(parts).astype(np.float32), where


def test_a_recording_is_cut_into_pieces_at_its_pauses_with_the_margins_of_the_corpora() -> None:
    audio, where = _phrases_with_pauses([0.8, 0.2, 0.45])
    pieces = speech_segments(audio)  # pauses of 0.3 s or more cut (features.PAUSE_SECONDS)
    assert len(pieces) == 3  # the 0.2 s pause does not cut
    expected = [(where[0][0], where[0][1]), (where[1][0], where[2][1]), (where[3][0], where[3][1])]
    for (start, end), (first, last) in zip(pieces, expected, strict=True):
        assert abs(start - (first - 2400)) <= 320 and abs(end - (last + 2400)) <= 320  # 0.15 s each side
    # the first piece starts and the last ends where speech_span cuts the recording
    assert (pieces[0][0], pieces[-1][1]) == speech_span(audio)
    assert speech_segments(audio, pause_seconds=0.5) == [pieces[0], (pieces[1][0], pieces[2][1])]
    assert speech_segments(audio, pause_seconds=0.0) == [speech_span(audio)]
    # a pause shorter than the two margins never cuts (the pieces would overlap)
    assert len(speech_segments(audio, pause_seconds=0.1)) == 3


def test_one_phrase_is_one_piece_exactly_as_speech_span_cuts_it() -> None:
    speech, roomy = _words_in_a_room(2.0)
    assert speech_segments(roomy) == [speech_span(roomy)]
    _, tight = _words_in_a_room(0.4)
    assert speech_segments(tight) == [(0, tight.size)] == [speech_span(tight)]
    assert speech_segments(speech, LevelConfig(trim=False)) == [(0, speech.size)]
    assert speech_segments(np.zeros(0, np.float32)) == [(0, 0)]
    silence = (1e-5 * np.random.default_rng(2).standard_normal(32000)).astype(np.float32)
    assert speech_segments(silence) == [(0, silence.size)]


def test_a_recording_heard_from_a_later_start_is_cut_on_the_recordings_own_frames() -> None:
    """A stream that let a quiet lead go cuts where offline decoding of the whole recording cuts."""
    audio, _ = _phrases_with_pauses([0.8, 0.45])
    whole = speech_segments(audio)
    start = whole[0][0]  # what a stream keeps: from 0.15 s before the first word
    assert start % 320 != 0  # not on the 20 ms grid
    later = speech_segments(audio[start:], origin=start)
    assert [(a + start, b + start) for a, b in later] == whole
    # measured on a grid of its own, the same audio is cut a frame away
    assert [(a + start, b + start) for a, b in speech_segments(audio[start:])] != whole


def test_what_a_model_hears_piece_by_piece() -> None:
    """One piece (prepare_input's) for a finite receptive field; speech_segments' pieces for a whole-input model."""
    audio, _ = _phrases_with_pauses([0.8, 0.45])
    ((heard, start),) = model_pieces(audio, 0.5)
    expected, first = prepare_input(audio, 0.5)
    assert start == first and np.array_equal(heard, expected)
    pieces = model_pieces(audio, 0.5, whole_input=True)
    spans = speech_segments(audio)
    assert len(pieces) == len(spans) == 3
    for (piece, begin), (s, e) in zip(pieces, spans, strict=True):
        assert begin == s and piece.size == (e - s) + 16000
        np.testing.assert_array_equal(piece[8000:-8000], audio[s:e])
    assert len(model_pieces(audio, 0.5, whole_input=True, pause_seconds=0.0)) == 1
