"""Peer recognizers scored beside edgeasr (edgeasr.training.peers): pocketsphinx and Whisper tiny.en."""

from __future__ import annotations

from pathlib import Path

import jiwer
import pytest

from edgeasr.audio import load_audio
from edgeasr.training.peers import PEERS, PeerUnavailable, load_peer

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "01-flite-rms.wav"
REFERENCE = "is it windy in cincinnati right now"


@pytest.mark.parametrize("name", sorted(PEERS))
def test_a_peer_transcribes_in_the_labelling_convention(name: str) -> None:
    try:
        peer = load_peer(name)
    except PeerUnavailable as exc:
        pytest.skip(reason=f"{name} is not installed here ({exc}); ./run installs the peers extra")
    wave = load_audio(SAMPLE)
    result = peer.transcribe(wave, 16000)
    assert result.text and result.text == result.text.lower() and "?" not in result.text
    assert jiwer.wer(REFERENCE, result.text) <= 0.5, result.text
    assert result.latency_s > 0 and result.model_version
    # any sample rate in, the same answer as at 16 kHz within reason
    from edgeasr.audio import resample

    assert jiwer.wer(REFERENCE, peer.transcribe(resample(wave, 16000, 8000), 8000).text) <= 0.5


def test_unknown_peer() -> None:
    with pytest.raises(ValueError, match="unknown peer"):
        load_peer("siri")
