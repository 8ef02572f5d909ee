"""Prompt generation, user text lists and the sentence split (edgeasr.data.prompts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeasr.data.prompts import (
    DOMAINS,
    PromptOptions,
    generate_prompts,
    load_text_list,
    split_sentences,
    vocabulary,
)
from edgeasr.text import is_normalized


def test_issue_targets_5000_sentences_1000_words_all_domains() -> None:
    prompts = generate_prompts(PromptOptions(num_sentences=5000, seed=0))
    sentences = [s for _, s in prompts]
    assert len(set(sentences)) == 5000
    assert len(vocabulary(sentences)) >= 1000
    assert {d for d, _ in prompts} == set(DOMAINS)
    assert len(DOMAINS) == 11


def test_prompts_are_normalized_and_deterministic() -> None:
    a = generate_prompts(PromptOptions(num_sentences=300, seed=3))
    b = generate_prompts(PromptOptions(num_sentences=300, seed=3))
    c = generate_prompts(PromptOptions(num_sentences=300, seed=4))
    assert a == b
    assert a != c
    assert all(is_normalized(s) for _, s in a)


def test_domain_selection_and_errors() -> None:
    only = generate_prompts(PromptOptions(num_sentences=50, domains=("weather",)))
    assert {d for d, _ in only} == {"weather"}
    with pytest.raises(ValueError, match="unknown prompt domains"):
        generate_prompts(PromptOptions(num_sentences=5, domains=("cooking",)))


def test_split_is_disjoint_and_complete() -> None:
    sentences = [s for _, s in generate_prompts(PromptOptions(num_sentences=1000))]
    split = split_sentences(sentences + sentences[:10], dev_fraction=0.1, test_fraction=0.1, seed=1)
    train, dev, test = set(split.train), set(split.dev), set(split.test)
    assert not (train & test) and not (train & dev) and not (dev & test)
    assert train | dev | test == set(sentences)
    assert len(test) == 100 and len(dev) == 100
    with pytest.raises(ValueError):
        split_sentences(sentences, 0.6, 0.5)


def test_user_text_list_reports_every_rejected_line(tmp_path: Path) -> None:
    path = tmp_path / "mine.txt"
    path.write_text(
        "Turn on the lights\n\nturn on the lights!\nplay 日本 music\n...\nCall 555-0134\n", encoding="utf-8"
    )
    result = load_text_list(path)
    assert result.sentences == ["turn on the lights", "call five five five zero one three four"]
    reasons = {r["line"]: r["reason"] for r in result.rejected}
    assert set(reasons) == {3, 4, 5}
    assert "duplicate" in reasons[3] and "unknown characters" in reasons[4] and "empty" in reasons[5]
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        load_text_list(bad)
