"""ROUGE-1 F (Porter-stemmed) between all texts of an instance, from the ``rouge-score`` package.

Why this module exists: ``RougeScorer.score(a, b)`` re-tokenises and re-stems both texts on every call,
which for the k*k pairs of separability is most of its cost. Here each distinct text is tokenised once
with rouge-score's own tokenizer (``rouge_score.tokenize.tokenize`` with a Porter stemmer whose results
are memoised per word), and the unigram F of every pair comes from one vectorised count intersection.
The arithmetic is rouge-score's ``_score_ngrams`` (precision = overlap / max(len_pred, 1),
recall = overlap / max(len_target, 1), F = 2PR / (P + R) or 0), so the values are identical to
``RougeScorer(["rouge1"], use_stemmer=True).score(a, b)["rouge1"].fmeasure``. F is symmetric in the
two texts; a text with no tokens scores 0 against everything, itself included.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

__all__ = ["rouge_tokens", "rouge1_matrix", "clear_cache"]


class _CachedPorter:
    """nltk's PorterStemmer (as rouge-score builds it) with a per-word memo."""

    def __init__(self) -> None:
        from nltk.stem import porter

        self._stem = lru_cache(maxsize=1 << 17)(porter.PorterStemmer().stem)

    def stem(self, word: str) -> str:
        stemmed: str = self._stem(word)  # nltk is untyped
        return stemmed


_STEMMER: _CachedPorter | None = None


def clear_cache() -> None:
    """Forget the memoised stems (used by the benchmark to time cold runs)."""
    global _STEMMER
    _STEMMER = None


def rouge_tokens(text: str) -> list[str]:
    """rouge-score's tokens of ``text`` (lower-cased, alphanumeric, stemmed when longer than 3 chars)."""
    global _STEMMER
    from rouge_score import tokenize

    if _STEMMER is None:
        _STEMMER = _CachedPorter()
    tokens: list[str] = tokenize.tokenize(text, _STEMMER)  # rouge-score is untyped
    return tokens


def rouge1_matrix(token_lists: Sequence[Sequence[str]]) -> np.ndarray:
    """m x m ROUGE-1 F between token lists (float64)."""
    m = len(token_lists)
    counters = [Counter(t) for t in token_lists]
    vocab: dict[str, int] = {}
    for c in counters:
        for w in c:
            vocab.setdefault(w, len(vocab))
    C = np.zeros((m, max(1, len(vocab))), dtype=np.int64)
    for u, c in enumerate(counters):
        for w, n in c.items():
            C[u, vocab[w]] = n
    overlap = np.empty((m, m), dtype=np.float64)
    rows = max(1, (1 << 22) // max(1, m * C.shape[1]))  # bound the (rows, m, vocab) temporary
    for s in range(0, m, rows):
        overlap[s : s + rows] = np.minimum(C[s : s + rows, None, :], C[None, :, :]).sum(axis=2)
    n = np.maximum(C.sum(axis=1), 1).astype(np.float64)
    # row u = target, column v = prediction (rouge-score's argument order; F is symmetric anyway)
    precision = overlap / n[None, :]
    recall = overlap / n[:, None]
    denom = precision + recall
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(denom > 0, 2 * precision * recall / np.where(denom > 0, denom, 1.0), 0.0)
    return f
