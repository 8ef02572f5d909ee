"""Word n-gram language models for the beam-search decoder: estimation and the ARPA format.

The decoder (:mod:`edgeasr.decoding`) scores words with KenLM, which reads ARPA files. KenLM's
estimator (``lmplz``) is a C++ program that no Python package ships, so the estimation is written
here: interpolated Kneser-Ney (Chen and Goodman 1998, one discount per order,
``D = n1 / (n1 + 2 n2)``), which suits the small in-domain text a product has (the training
sentences of its corpus, optionally the user's own command list).

    lm = NGramModel.estimate(sentences, order=4)
    lm.write_arpa("lm.arpa")                 # KenLM, flashlight-text and pyctcdecode read it
    lm.vocabulary                            # the lexicon of the decoder

An open vocabulary: ``estimate(..., background=general_english_unigrams(100_000), background_weight=0.1)``
mixes a general English word distribution into the unigrams (every higher order backs off to
them), so the decoder's lexicon holds the 100k most frequent English words and not only the
product's own, while the in-domain n-grams keep their context. The background comes from
``wordfreq`` (word frequencies from subtitles, Wikipedia, news, books and the web; data
CC-BY-SA-4.0), installed with the train extra.

A large n-gram loads slowly (KenLM parses the ARPA text at every start): ``estimate(..., prune=(0, 0, 1))``
drops the 3- and 4-grams seen once and computes each context's back-off weight again over what is
kept (``edgeasr lm --prune 0 0 1``): on the general n-gram, a third of the n-grams and half the load
time, within 0.3 WER points (``bench/results/eval-cpu-2core-epyc/general-lm-pruning.txt``).

Words are what the labelling convention (:mod:`edgeasr.text`) produces: lower case, spelled
numbers, apostrophes. ``<s>``, ``</s>`` and ``<unk>`` are the usual ARPA markers.
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

__all__ = ["BOS", "EOS", "UNK", "NGramModel", "general_english_unigrams", "sentences_from_manifests"]

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
_LOG10_ZERO = -99.0  # ARPA's "never" (the probability of <s> as a predicted word)


def sentences_from_manifests(paths: Iterable[str | os.PathLike]) -> list[str]:
    """The ``text`` of every row of the given manifests (duplicates kept: they are counts)."""
    from edgeasr.manifest import read_manifest

    return [row["text"] for path in paths for row in read_manifest(path) if row.get("text", "").strip()]


def general_english_unigrams(size: int = 100_000) -> dict[str, float]:
    """The ``size`` most frequent English words as a probability distribution (``wordfreq``).

    Only words already in the labelling convention (lower case ``a-z`` and inner apostrophes) are
    kept, so digits, symbols and foreign letters never enter the lexicon.

    Raises:
        ImportError: wordfreq is not installed (``pip install 'edgeasr[train]'``).
    """
    import re

    try:
        from wordfreq import top_n_list, word_frequency
    except ImportError as exc:  # pragma: no cover - part of the train extra
        raise ImportError("a general English vocabulary needs wordfreq: pip install 'edgeasr[train]'") from exc
    ok = re.compile(r"^[a-z]+(?:'[a-z]+)*$")
    words = [w for w in top_n_list("en", int(size * 1.3)) if ok.match(w)][:size]
    freqs = {w: word_frequency(w, "en") for w in words}
    total = sum(freqs.values())
    return {w: f / total for w, f in freqs.items() if f > 0}


def _discount(counts: Iterable[int]) -> float:
    """Kneser-Ney's absolute discount from the counts of counts (clamped to a usable range)."""
    n = Counter(c for c in counts if c <= 2)
    n1, n2 = n.get(1, 0), n.get(2, 0)
    if n1 == 0:
        return 0.5
    return min(max(n1 / (n1 + 2 * n2), 0.05), 0.95)


@dataclass(frozen=True)
class NGramModel:
    """An estimated back-off n-gram model, held as ARPA entries.

    ``entries[n - 1]`` maps each n-gram (a tuple of n words) to ``(log10 probability, log10
    back-off)``; the back-off is 0.0 for n-grams that are never a context.
    """

    order: int  # the longest n-gram
    entries: tuple[dict[tuple[str, ...], tuple[float, float]], ...]  # one dict per order
    sentences: int  # training sentences the counts came from

    @property
    def vocabulary(self) -> list[str]:
        """Every word the model knows, without the ARPA markers, sorted."""
        return sorted(w for (w,) in self.entries[0] if w not in (BOS, EOS, UNK))

    @classmethod
    def estimate(
        cls,
        sentences: Iterable[str],
        order: int = 4,
        background: Mapping[str, float] | None = None,
        background_weight: float = 0.0,
        prune: Sequence[int] = (),
    ) -> NGramModel:
        """Interpolated Kneser-Ney estimation from whitespace-tokenized sentences.

        Args:
            sentences: one utterance each (already normalized by the labelling convention).
            order: the longest n-gram (3 or 4 suit a few thousand command sentences).
            background: a word distribution (e.g. :func:`general_english_unigrams`) mixed into
                the unigrams; its words join the vocabulary.
            background_weight: the mixing weight of ``background`` in the unigrams (0 to 1).
            prune: count cut-offs per order, from the unigrams on (``lmplz --prune``'s convention;
                missing orders repeat the last): an n-gram of order 2 or more seen at most that many
                times in the text is dropped, and the back-off weight of every context is computed
                again over what is kept, so each context's distribution still sums to one. ``(0, 1, 1,
                1)`` drops the singletons from the bigrams up. Unigrams are never pruned.

        Raises:
            ValueError: no words at all, an order below 1, a weight out of range, or cut-offs that
                prune unigrams, are negative or fall with the order.
        """
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if not 0.0 <= background_weight < 1.0:
            raise ValueError(f"background_weight must be in [0, 1), got {background_weight}")
        cut = [int(c) for c in prune][:order]
        cut += [cut[-1] if cut else 0] * (order - len(cut))
        if cut[0] != 0 or any(c < 0 for c in cut) or any(b < a for a, b in pairwise(cut)):
            raise ValueError(f"prune must be 0 for unigrams and non-decreasing non-negative counts, got {list(prune)}")
        raw: list[Counter] = [Counter() for _ in range(order)]
        n_sentences = 0
        for sentence in sentences:
            words = sentence.split()
            if not words:
                continue
            n_sentences += 1
            padded = [BOS, *words, EOS]
            for n in range(1, order + 1):
                for i in range(len(padded) - n + 1):
                    gram = tuple(padded[i : i + n])
                    if gram != (BOS,):
                        raw[n - 1][gram] += 1
        if not raw[0]:
            raise ValueError("no words to estimate a language model from")

        # Kneser-Ney's adjusted counts: the highest order keeps raw counts; a lower-order n-gram
        # counts the distinct words seen before it (n-grams starting with <s> keep raw counts).
        adjusted: list[Counter] = [Counter() for _ in range(order)]
        adjusted[order - 1] = raw[order - 1]
        for n in range(order - 1, 0, -1):
            continuation = Counter(gram[1:] for gram in raw[n])
            for gram, count in raw[n - 1].items():
                adjusted[n - 1][gram] = count if gram[0] == BOS else continuation.get(gram, 0)
            adjusted[n - 1] = Counter({g: c for g, c in adjusted[n - 1].items() if c > 0})
        adjusted[0][(BOS,)] = 0  # <s> is a context only, never predicted

        discounts = [_discount(adjusted[n].values()) for n in range(order)]
        prob: list[dict[tuple[str, ...], float]] = [dict() for _ in range(order)]
        backoff: list[dict[tuple[str, ...], float]] = [dict() for _ in range(order)]

        # Unigrams, interpolated with the uniform distribution over the vocabulary (+ <unk>).
        uni = adjusted[0]
        total = sum(uni.values())
        types = sum(1 for c in uni.values() if c > 0)
        vocab_size = types + 1
        d = discounts[0]
        floor = d * types / total / vocab_size
        for gram, count in uni.items():
            prob[0][gram] = max(count - d, 0) / total + floor if gram != (BOS,) else 0.0
        prob[0][(UNK,)] = floor
        if background and background_weight > 0.0:
            # (1 - w) * in-domain unigrams + w * background: still a distribution, so every
            # higher order, which backs off to it, stays normalized
            mass = sum(p for w, p in background.items() if w not in (BOS, EOS, UNK))
            for gram in list(prob[0]):
                prob[0][gram] *= 1.0 - background_weight
            for word, p in background.items():
                if word not in (BOS, EOS, UNK) and p > 0.0:
                    gram = (word,)
                    prob[0][gram] = prob[0].get(gram, 0.0) + background_weight * p / mass

        # Higher orders: discounted estimate plus the context's back-off mass times the lower order.
        for n in range(1, order):
            d = discounts[n]
            totals: defaultdict[tuple, int] = defaultdict(int)
            followers: defaultdict[tuple, int] = defaultdict(int)
            for gram, count in adjusted[n].items():
                totals[gram[:-1]] += count
                followers[gram[:-1]] += 1
            for context, t in totals.items():
                backoff[n - 1][context] = d * followers[context] / t
            for gram, count in adjusted[n].items():
                context = gram[:-1]
                lower = cls._interpolated(prob, backoff, gram[1:])
                prob[n][gram] = max(count - d, 0) / totals[context] + backoff[n - 1][context] * lower

        if any(cut):
            cls._prune(prob, backoff, raw, cut)

        entries = []
        for n in range(order):
            table = {}
            for gram, p in prob[n].items():
                logp = _LOG10_ZERO if gram == (BOS,) else math.log10(p)
                bo = backoff[n].get(gram)
                table[gram] = (logp, math.log10(bo) if bo else 0.0)
            entries.append(table)
        return cls(order=order, entries=tuple(entries), sentences=n_sentences)

    @classmethod
    def _prune(cls, prob: list[dict], backoff: list[dict], raw: list[Counter], cut: list[int]) -> None:
        """Drop the n-grams seen at most ``cut[n - 1]`` times and renormalise every context, in place.

        A kept n-gram keeps its probability. A context's back-off weight becomes (1 - the mass of its
        kept followers) / (1 - what the shorter context gives those followers), computed from the
        shortest contexts up, so the shorter model it backs off to is already final. Non-decreasing
        cut-offs keep every prefix and suffix of a kept n-gram, as the ARPA format needs.
        """
        for n in range(1, len(prob)):
            if cut[n] > 0:
                prob[n] = {g: p for g, p in prob[n].items() if raw[n][g] > cut[n]}
        for k in range(1, len(prob)):  # contexts of k words, their followers in prob[k]
            kept: defaultdict[tuple, list] = defaultdict(list)
            for gram in prob[k]:
                kept[gram[:-1]].append(gram)
            weights = {}
            for context, grams in kept.items():
                mass = sum(prob[k][g] for g in grams)
                lower = sum(cls._interpolated(prob, backoff, g[1:]) for g in grams)
                weights[context] = max(1.0 - mass, 1e-12) / max(1.0 - lower, 1e-12)
            backoff[k - 1] = weights

    @staticmethod
    def _interpolated(prob: list[dict], backoff: list[dict], gram: tuple[str, ...]) -> float:
        """p(gram[-1] | gram[:-1]) from the orders estimated so far, backing off as ARPA does."""
        n = len(gram)
        if gram in prob[n - 1]:
            return prob[n - 1][gram]
        if n == 1:
            return prob[0][(UNK,)]
        return backoff[n - 2].get(gram[:-1], 1.0) * NGramModel._interpolated(prob, backoff, gram[1:])

    def log10_prob(self, words: tuple[str, ...]) -> float:
        """log10 p(words[-1] | words[:-1]) with ARPA back-off (for checks; KenLM does this at run time)."""
        words = tuple(w if (w,) in self.entries[0] else UNK for w in words)[-self.order :]
        penalty = 0.0
        while words not in self.entries[len(words) - 1]:
            context = words[:-1]
            if context:
                penalty += self.entries[len(context) - 1].get(context, (0.0, 0.0))[1]
            words = words[1:]
        return penalty + self.entries[len(words) - 1][words][0]

    def write_arpa(self, path: str | os.PathLike) -> Path:
        """Write the model in the ARPA text format (sorted, so the file is reproducible).

        A path ending in ``.gz`` is written gzip-compressed (about a third of the size; KenLM and
        :mod:`edgeasr.decoding` read both, so a version folder may ship it as ``lm.arpa``).
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write("\\data\\\n")
            for n, table in enumerate(self.entries, 1):
                fh.write(f"ngram {n}={len(table)}\n")
            for n, table in enumerate(self.entries, 1):
                fh.write(f"\n\\{n}-grams:\n")
                for gram in sorted(table):
                    logp, bo = table[gram]
                    line = f"{logp:.6f}\t{' '.join(gram)}"
                    if n < self.order and bo != 0.0:
                        line += f"\t{bo:.6f}"
                    fh.write(line + "\n")
            fh.write("\n\\end\\\n")
        if path.name.endswith(".gz"):  # no name or time in the header: the same model, the same bytes
            packed = path.with_name(path.name + ".tmpgz")
            with (
                open(tmp, "rb") as src,
                open(packed, "wb") as raw,
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out,
            ):
                shutil.copyfileobj(src, out, 1 << 20)
            os.replace(packed, tmp)
        os.replace(tmp, path)
        return path
