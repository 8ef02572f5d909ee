"""Prompt generation, user text lists and the sentence split (edgeasr.data.prompts)."""

from __future__ import annotations

import random
import re
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from edgeasr.data import prompts
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
    sourced = tmp_path / "sourced.txt"
    sourced.write_text("# source: bible, read prose; licence: public domain\n# hello there\nLet there be light.\n")
    result = load_text_list(sourced)  # a source line is not a sentence; any other "#" line still is
    assert result.sources == [{"source": "bible, read prose", "licence": "public domain"}]
    assert result.sentences == ["hello there", "let there be light"]
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        load_text_list(bad)


def _data_file(name: str) -> str:
    return resources.files("edgeasr.data").joinpath("prompt_lists").joinpath(name).read_text(encoding="utf-8")


def test_word_lists_and_templates_load_from_package_data() -> None:
    texts = {name: _data_file(name) for name in ("wordlists.toml", "templates.toml")}
    assert all(text.startswith("# ") for text in texts.values())  # each says what it is
    word_lists = tomllib.loads(texts["wordlists.toml"])
    templates = tomllib.loads(texts["templates.toml"])
    assert len(word_lists) == 30 and len(templates) == 11
    for name, words in word_lists.items():
        assert words and all(isinstance(w, str) and w.strip() == w and w for w in words), name
        assert len(set(words)) == len(words), f"{name} has duplicates"
        assert getattr(prompts, name.upper()) == words  # the old module-level names still work
    # Templates may repeat on purpose (a repeated template is drawn more often), so no uniqueness check.
    assert templates == DOMAINS
    assert PromptOptions().domains == tuple(templates)
    with pytest.raises(AttributeError):
        _ = prompts.NO_SUCH_LIST


def test_every_template_placeholder_has_a_filler() -> None:
    placeholder = re.compile(r"\{([^{}]*)\}")
    for domain, templates in DOMAINS.items():
        assert templates, domain
        for template in templates:
            slots = placeholder.findall(template)
            assert template.count("{") == template.count("}") == len(slots), template
            assert set(slots) <= set(prompts._SLOTS), f"{domain}: {template!r} names an unknown slot"
    rng = random.Random(0)
    for slot, fill in prompts._SLOTS.items():  # each filler's word lists exist and yield text
        assert all(fill(rng).strip() for _ in range(50)), slot


def test_import_does_not_read_the_data_files() -> None:
    code = (
        "import edgeasr.data.prompts as m; "
        "assert m._word_lists.cache_info().currsize == 0 and m._templates.cache_info().currsize == 0"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
