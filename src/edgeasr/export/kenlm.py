"""KenLM's binary format for a shipped word n-gram: ``build_binary``, found or built from source.

KenLM parses an ARPA file at every load: the default's general 4-gram (1.14 M n-grams) takes 0.5 to
0.65 s, most of a cold start. The same n-gram in KenLM's binary trie maps in milliseconds, and
flashlight-text's KenLM reads it as it reads ARPA. An export target with ``lm_binary = true``
ships ``lm.bin`` and its lexicon ``lm.words`` (:data:`edgeasr.decoding.KENLM_BINARY_MAGIC`) in place of
``lm.arpa``; the runtime needs nothing new.

KenLM's ``build_binary`` writes the file. No wheel and no Debian package of this machine's
registries ships it, so ``./run setup`` compiles it from the KenLM source on PyPI (``kenlm`` 0.3.0,
checked by its SHA-256; the query-only build, which needs a C++ compiler and nothing else) into
``~/.cache/edgeasr/kenlm/bin`` (:func:`install_build_binary`). It is needed to export such a target,
never to run one. The binary trie is laid out for the machine that wrote it: little-endian,
64-bit (x86-64 and arm64 devices alike).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from edgeasr.decoding import SCORES_SUFFIX, is_kenlm_binary, lexicon_scores, lm_vocabulary, open_arpa

__all__ = [
    "KENLM_SDIST",
    "MAX_QUANTIZE_BITS",
    "BuildBinaryMissing",
    "find_build_binary",
    "install_build_binary",
    "write_binary_lm",
]

MAX_QUANTIZE_BITS = 25
"""The most bits ``build_binary -q/-b`` stores a probability or back-off weight in (:func:`write_binary_lm`)."""

KENLM_SDIST = (
    "https://files.pythonhosted.org/packages/02/6e/f4e159cef39ea4ef2244b4aa32857d447d60a5d0ee269e1b1f8d3723c03e/"
    "kenlm-0.3.0.tar.gz",
    "c4628bb9fb63c8a6f9240035b8b037385cfc404cb72e933cf48878291edac1e8",
)
"""(URL, SHA-256) of the KenLM source that :func:`install_build_binary` compiles (PyPI's ``kenlm`` 0.3.0)."""

_ENV = "EDGEASR_KENLM_BUILD_BINARY"  # an explicit build_binary to use
_HOME = Path.home() / ".cache" / "edgeasr" / "kenlm"


class BuildBinaryMissing(FileNotFoundError):
    """KenLM's ``build_binary`` is not on this machine."""


def find_build_binary() -> Path | None:
    """``build_binary``: ``$EDGEASR_KENLM_BUILD_BINARY``, then the one ``./run setup`` built, then ``PATH``."""
    candidates = [os.environ.get(_ENV, ""), str(_HOME / "bin" / "build_binary"), shutil.which("build_binary") or ""]
    return next((Path(c) for c in candidates if c and os.access(c, os.X_OK) and Path(c).is_file()), None)


def install_build_binary(home: Path = _HOME) -> Path:
    """Download KenLM's source (:data:`KENLM_SDIST`, checked), compile ``build_binary``, return its path.

    The query-only build (KenLM's ``compile_query_only.sh`` list of sources, no Boost, no zlib: this
    module hands it plain ARPA). Takes about a minute on two cores; idempotent.

    Raises:
        RuntimeError: the download does not match its SHA-256, or the compiler fails.
    """
    exe = home / "bin" / "build_binary"
    if exe.is_file():
        return exe
    url, sha256 = KENLM_SDIST
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "kenlm.tar.gz"
        with urllib.request.urlopen(url, timeout=60) as response:
            archive.write_bytes(response.read())
        got = hashlib.sha256(archive.read_bytes()).hexdigest()
        if got != sha256:
            raise RuntimeError(f"{url}: SHA-256 {got}, expected {sha256}")
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        src = next(Path(tmp).glob("kenlm-*"))
        sources = [
            p
            for d in ("util/double-conversion", "util", "lm")
            for p in sorted((src / d).glob("*.cc"))
            if not p.name.endswith(("test.cc", "main.cc"))
        ]
        flags = ["-I.", "-O2", "-DNDEBUG", "-DKENLM_MAX_ORDER=6", "-w"]
        objects = []
        for cc in sources:
            obj = cc.with_suffix(".o")
            _compile(["g++", *flags, "-c", str(cc.relative_to(src)), "-o", str(obj)], src)
            objects.append(str(obj))
        (home / "bin").mkdir(parents=True, exist_ok=True)
        partial = home / "bin" / "build_binary.partial"
        _compile(["g++", "lm/build_binary_main.cc", *objects, "-o", str(partial), *flags, "-lrt"], src)
        partial.replace(exe)
    return exe


def _compile(cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"compiling KenLM's build_binary failed: {' '.join(cmd[:6])} ...\n{done.stderr[-2000:]}")


def write_binary_lm(arpa: str | os.PathLike, out: str | os.PathLike, quantize_bits: int = 0) -> Path:
    """Write ``arpa`` (plain or gzip) as KenLM's binary trie at ``out``, its lexicon beside it (``.words``) and each
    lexicon word's first-word score (``.scores``, :func:`edgeasr.decoding.lexicon_scores`).

    ``quantize_bits`` (1 to 25; 0: none) stores probabilities and back-off weights in that many bits (``build_binary -q
    -b``, with ``-a 22`` to compress the trie's pointers): the file is smaller, and KenLM reads the rounded values.

    The lexicon is the ARPA unigrams in order (:func:`edgeasr.decoding.lm_vocabulary`), so a decoder
    built on the binary spells the same words with the same scores; the stored scores spare a load
    asking KenLM for them word by word.

    Raises:
        BuildBinaryMissing: no ``build_binary`` here (``./run setup`` builds it).
        RuntimeError: ``build_binary`` failed.
    """
    if not 0 <= quantize_bits <= MAX_QUANTIZE_BITS:
        raise ValueError(f"quantize_bits must be 0 (none) or 1 to {MAX_QUANTIZE_BITS}, got {quantize_bits}")
    exe = find_build_binary()
    if exe is None:
        raise BuildBinaryMissing(
            "lm_binary needs KenLM's build_binary: `./run setup` compiles it into ~/.cache/edgeasr/kenlm/bin "
            f"(or set {_ENV})"
        )
    arpa, out = Path(arpa), Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        plain = arpa
        with open(arpa, "rb") as fh:
            compressed = fh.read(2) == b"\x1f\x8b"
        if compressed:  # this build_binary reads plain text only
            plain = Path(tmp) / "lm.arpa"
            with open_arpa(arpa) as src, open(plain, "w", encoding="utf-8") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        built = Path(tmp) / "lm.bin"
        quantize = ["-a", "22", "-q", str(quantize_bits), "-b", str(quantize_bits)] if quantize_bits else []
        cmd = [str(exe), "-T", tmp, *quantize, "trie", str(plain), str(built)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode or not built.is_file():
            raise RuntimeError(f"build_binary {arpa} failed: {done.stderr[-2000:]}")
        if not is_kenlm_binary(built):
            raise RuntimeError(f"build_binary {arpa}: the output is not a KenLM binary")
        built.with_suffix(".words").write_text("\n".join(lm_vocabulary(plain)) + "\n", encoding="utf-8")
        lexicon_scores(built).tofile(built.with_suffix(SCORES_SUFFIX))
        for suffix in (".words", SCORES_SUFFIX):
            built.with_suffix(suffix).replace(out.with_suffix(suffix))
        built.replace(out)
    return out
