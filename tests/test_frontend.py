"""The torch log-mel frontend (edgeasr.training.frontend): parity with torchaudio, padding independence, VTLP."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the frontend is a torch module (train extra)")
torchaudio = pytest.importorskip("torchaudio", reason="parity reference needs torchaudio")

from edgeasr.training.frontend import (  # noqa: E402
    FrontendConfig,
    LogMelFrontend,
    feature_lengths,
    vtlp_matrices,
    vtlp_matrix,
)

# Stated tolerance of the parity with torchaudio: log-mel energies agree to 1e-3 (natural log units)
# wherever the reference mel energy is above 1e-4 (below that the log floor dominates both).
LOG_MEL_TOLERANCE = 1e-3


def _reference(cfg: FrontendConfig) -> torchaudio.transforms.MelSpectrogram:
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=cfg.sample_rate,
        n_fft=cfg.n_fft,
        win_length=cfg.win_length,
        hop_length=cfg.hop_length,
        n_mels=cfg.n_mels,
        f_min=cfg.f_min,
        f_max=cfg.f_max,
        center=True,
        pad_mode="constant",
        power=2.0,
        norm=None,
        mel_scale="htk",
    )


@pytest.mark.parametrize("length", [400, 1601, 16000, 16159, 48000])
def test_log_mel_matches_torchaudio(length: int) -> None:
    torch.manual_seed(length)
    cfg = FrontendConfig()
    audio = 0.1 * torch.randn(2, length)
    ours = LogMelFrontend(cfg).log_mel(audio)
    ref = _reference(cfg)(audio)
    assert ours.shape == ref.shape
    assert ours.shape[-1] == int(feature_lengths(torch.tensor(length)))
    mask = ref > 1e-4
    diff = (ours - torch.log(ref + cfg.log_floor)).abs()[mask]
    assert float(diff.max()) < LOG_MEL_TOLERANCE


def test_padding_does_not_change_features() -> None:
    torch.manual_seed(0)
    front = LogMelFrontend()
    short = 0.1 * torch.randn(1, 12345)
    batch = torch.zeros(2, 20000)
    batch[0, :12345] = short[0]
    batch[1] = 0.1 * torch.randn(20000)
    alone, alone_len = front(short, torch.tensor([12345]))
    padded, lens = front(batch, torch.tensor([12345, 20000]))
    n = int(alone_len[0])
    assert int(lens[0]) == n
    torch.testing.assert_close(padded[0, :, :n], alone[0], atol=1e-5, rtol=0)
    assert float(padded[0, :, n:].abs().max()) == 0.0  # frames past the row's length are zero


def test_garbage_after_length_is_ignored() -> None:
    torch.manual_seed(1)
    front = LogMelFrontend()
    clean = torch.zeros(1, 16000)
    clean[0, :8000] = 0.1 * torch.randn(8000)
    noisy = clean.clone()
    noisy[0, 8000:] = 1.0  # a client that padded with junk
    a, _ = front(clean, torch.tensor([8000]))
    b, _ = front(noisy, torch.tensor([8000]))
    torch.testing.assert_close(a, b)


def test_normalization_is_fixed_and_saved() -> None:
    front = LogMelFrontend()
    front.set_normalization(torch.full((80,), 2.0), torch.full((80,), 4.0))
    state = front.state_dict()
    assert set(state) == {"mean", "std"}  # tables are rebuilt, statistics travel with the model
    other = LogMelFrontend()
    other.load_state_dict(state)
    audio = 0.1 * torch.randn(1, 4000)
    torch.testing.assert_close(front(audio, torch.tensor([4000]))[0], other(audio, torch.tensor([4000]))[0])


def test_unsupported_geometry_is_refused() -> None:
    with pytest.raises(ValueError, match="n_fft=512"):
        LogMelFrontend(FrontendConfig(n_fft=400))


def test_vtlp_of_one_is_the_identity() -> None:
    assert torch.allclose(vtlp_matrix(1.0, 257), torch.eye(257), atol=1e-6)


@pytest.mark.parametrize("alpha", [0.9, 1.12])
def test_vtlp_moves_a_tone_below_the_boundary_by_its_factor(alpha: float) -> None:
    t = torch.arange(16000) / 16000.0
    tone = torch.sin(2 * torch.pi * 1000.0 * t).unsqueeze(0)
    front = LogMelFrontend()
    power = front.power_spectrogram(tone)[0].mean(dim=1)
    warped = vtlp_matrix(alpha, front.n_freqs) @ power
    hz_per_bin = 8000.0 / (front.n_freqs - 1)
    assert float(power.argmax()) * hz_per_bin == pytest.approx(1000.0, abs=hz_per_bin)
    assert float(warped.argmax()) * hz_per_bin == pytest.approx(1000.0 * alpha, abs=hz_per_bin)
    # the band edges stay put: DC maps to DC and Nyquist to Nyquist
    w = vtlp_matrix(alpha, front.n_freqs)
    assert w[0, 0] == pytest.approx(1.0) and w[-1, -1] == pytest.approx(1.0)


def test_warp_of_ones_changes_nothing_and_other_factors_change_the_features() -> None:
    front = LogMelFrontend()
    audio = torch.randn(2, 8000) * 0.1
    lengths = torch.tensor([8000, 6000])
    plain, _ = front(audio, lengths)
    same, _ = front(audio, lengths, torch.ones(2))
    assert torch.allclose(plain, same, atol=1e-5)
    warped, _ = front(audio, lengths, torch.tensor([1.1, 1.0]))
    assert not torch.allclose(plain[0], warped[0], atol=1e-2)
    assert torch.allclose(plain[1], warped[1], atol=1e-5)


def test_vtlp_factor_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="VTLP factor"):
        vtlp_matrix(3.0, 257)
    with pytest.raises(ValueError, match="VTLP factor"):
        vtlp_matrices(torch.tensor([1.0, 0.4]), 257)


def test_a_batch_of_vtlp_matrices_is_each_factor_s_own_matrix() -> None:
    """The batch is built in one pass (on the GPU while training); row by row it is vtlp_matrix."""
    alphas = torch.tensor([0.88, 1.0, 1.12, 0.9, 0.5, 2.0])
    batch = vtlp_matrices(alphas, 257)
    assert batch.shape == (6, 257, 257) and batch.dtype == torch.float32
    for a, w in zip(alphas.tolist(), batch, strict=True):
        assert torch.equal(w, vtlp_matrix(a, 257))
    assert torch.allclose(batch.sum(dim=2), torch.ones(6, 257))  # every output bin reads one unit of input
