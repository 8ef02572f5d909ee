"""Model cards: provenance fields, JSON round trip, and the integrity check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeasr.decoding import TOKENS
from edgeasr.modelcard import CARD_FILENAME, IntegrityError, ModelCard


@pytest.fixture
def version_dir(tmp_path: Path) -> Path:
    d = tmp_path / "1"
    (d / "sub").mkdir(parents=True)
    (d / "model.onnx").write_bytes(b"onnx-bytes")
    (d / "vocab.json").write_text(json.dumps(list(TOKENS)))
    (d / "sub" / "extra.bin").write_bytes(b"\x00\x01")
    return d


def make_card(d: Path) -> ModelCard:
    return ModelCard.for_files(
        d,
        name="edgeasr",
        version=1,
        source_checkpoint="ckpt/step-100.pt",
        data_version="v3",
        precision="int8",
        parity={"max_abs": 1e-5},
        metrics={"wer": 0.2},
        params=1234,
        export_seconds=1.5,
        extra={"note": "test"},
    )


def test_for_files_hashes_every_file(version_dir: Path) -> None:
    card = make_card(version_dir)
    assert sorted(card.files) == ["model.onnx", "sub/extra.bin", "vocab.json"]
    assert all(len(h) == 64 for h in card.files.values())
    assert card.size_bytes == sum((version_dir / f).stat().st_size for f in card.files)
    assert card.tokens == TOKENS
    assert card.created.endswith("+00:00")


def test_json_round_trip(version_dir: Path) -> None:
    card = make_card(version_dir)
    path = card.to_json(version_dir)
    assert path == version_dir / CARD_FILENAME
    assert ModelCard.from_json(version_dir) == card
    assert ModelCard.from_json(path) == card
    assert json.loads(path.read_text())["tokens"] == list(TOKENS)


def test_unknown_keys_go_to_extra(version_dir: Path) -> None:
    data = make_card(version_dir).to_dict() | {"future_field": 7}
    (version_dir / CARD_FILENAME).write_text(json.dumps(data))
    assert ModelCard.from_json(version_dir).extra["future_field"] == 7


def test_verify_accepts_untouched_dir_and_ignores_pycache(version_dir: Path) -> None:
    card = make_card(version_dir)
    card.to_json(version_dir)
    (version_dir / "__pycache__").mkdir()
    (version_dir / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"x")
    card.verify(version_dir)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "model.onnx").write_bytes(b"tampered"), "model.onnx does not match"),
        (lambda d: (d / "sub" / "extra.bin").unlink(), "sub/extra.bin is missing"),
        (lambda d: (d / "stray.txt").write_text("x"), "stray.txt is not listed"),
    ],
)
def test_verify_names_the_bad_file(version_dir: Path, damage, message: str) -> None:
    card = make_card(version_dir)
    card.to_json(version_dir)
    damage(version_dir)
    with pytest.raises(IntegrityError, match=message):
        card.verify(version_dir)


def test_missing_or_broken_card(tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match="missing"):
        ModelCard.from_json(tmp_path)
    (tmp_path / CARD_FILENAME).write_text("{not json")
    with pytest.raises(IntegrityError, match="unreadable"):
        ModelCard.from_json(tmp_path)


def test_field_validation() -> None:
    with pytest.raises(ValueError, match="precision"):
        ModelCard(name="m", version=1, precision="bf13")
    with pytest.raises(ValueError, match="version"):
        ModelCard(name="m", version=0)
    with pytest.raises(IntegrityError, match="lists no files"):
        ModelCard(name="m", version=1).verify(Path(__file__).parent)
