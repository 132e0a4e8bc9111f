"""ROUGE-1 F (Porter-stemmed) between texts, with rouge-score's tokens and arithmetic, computed in bulk.

Why this module exists: ``RougeScorer.score(a, b)`` re-tokenises and re-stems both texts on every call
and intersects two ``Counter`` objects in Python, which for the k*k pairs of separability (times all
system pairs, times every instance) is most of its cost. Here each distinct text is tokenised once with
rouge-score's own tokenizer (``rouge_score.tokenize.tokenize``'s steps with nltk's Porter stemmer,
memoised per word), and turned once into a row of a sparse 0/1 matrix whose columns are "the j-th occurrence of
stemmed word w". Two texts share ``min(count_u(w), count_v(w))`` such columns for every word, so one
sparse product ``E @ E.T`` gives the unigram overlap of every pair, in exact integer arithmetic.

The F measure is then rouge-score's ``_score_ngrams`` term for term (precision = overlap /
max(len_pred, 1), recall = overlap / max(len_target, 1), F = 2PR / (P + R), or 0 when P + R = 0), in
float64 as Python floats are, so the values are identical (``==``) to
``RougeScorer(["rouge1"], use_stemmer=True).score(a, b)["rouge1"].fmeasure``. F is symmetric in the
two texts; a text with no tokens scores 0 against everything, itself included.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["RougeTable", "clear_cache", "rouge1_matrix", "rouge_tokens"]


class _Tokens:
    """rouge-score's ``tokenize(text, PorterStemmer())`` with its per-word steps memoised.

    Why ``rouge_score.tokenize.tokenize`` is not called as is: past lower-casing and splitting (done
    here with its own compiled patterns), everything it does is per word (stem words longer than 3
    characters with nltk's Porter stemmer, drop what is not alphanumeric), so one dict look-up per word
    replaces a stemmer call, a regex match and two list passes. Same tokens; the tests compare.
    """

    def __init__(self) -> None:
        from nltk.stem import porter
        from rouge_score import tokenize

        self._stem = porter.PorterStemmer().stem
        self._split = tokenize.SPACES_RE.split
        self._non_alnum = tokenize.NON_ALPHANUM_RE.sub
        self._valid = tokenize.VALID_TOKEN_RE.match
        self._word: dict[str, str] = {}  # raw word -> its token, "" when rouge-score drops it

    def _final(self, word: str) -> str:
        token: str = self._stem(word) if len(word) > 3 else word  # nltk is untyped
        return token if self._valid(token) else ""

    def __call__(self, text: str) -> list[str]:
        memo = self._word
        out: list[str] = []
        for w in self._split(self._non_alnum(" ", text.lower())):
            token = memo.get(w)
            if token is None:
                if len(memo) >= _MEMO_WORDS:  # bound a long-lived worker's memory
                    memo.clear()
                token = memo[w] = self._final(w)
            if token:
                out.append(token)
        return out


_MEMO_WORDS = 1 << 18
_TOKENS: _Tokens | None = None


def clear_cache() -> None:
    """Forget the memoised stems (used by the benchmark to time cold runs)."""
    global _TOKENS
    _TOKENS = None


def rouge_tokens(text: str) -> list[str]:
    """rouge-score's tokens of ``text`` (lower-cased, alphanumeric, stemmed when longer than 3 chars)."""
    global _TOKENS
    if _TOKENS is None:
        _TOKENS = _Tokens()
    return _TOKENS(text)


class RougeTable:
    """The unigram counts of many texts as one sparse occurrence matrix, for ROUGE-1 F of any subset.

    Row u has a 1 in column c for each (stemmed word w, occurrence j <= count_u(w)) that c stands
    for, so ``E[u] . E[v] = sum_w min(count_u(w), count_v(w))``, rouge-score's overlap.
    """

    def __init__(self, token_lists: Sequence[Sequence[str]]) -> None:
        from scipy import sparse

        column: dict[tuple[str, int], int] = {}
        indptr = [0]
        indices: list[int] = []
        for tokens in token_lists:
            seen: dict[str, int] = {}
            for w in tokens:
                j = seen.get(w, 0)
                seen[w] = j + 1
                indices.append(column.setdefault((w, j), len(column)))
            indptr.append(len(indices))
        n = len(token_lists)
        self._E: Any = sparse.csr_matrix(  # scipy is untyped
            (np.ones(len(indices), dtype=np.int32), np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
            shape=(n, max(1, len(column))),
        )
        self.lengths = np.diff(np.asarray(indptr, dtype=np.int64))

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    def matrix(self, rows: Sequence[int] | None = None) -> np.ndarray:
        """m x m ROUGE-1 F (float64) between the texts ``rows`` (default: all), in that order."""
        E = self._E if rows is None else self._E[np.asarray(rows, dtype=np.int64)]
        n = self.lengths if rows is None else self.lengths[np.asarray(rows, dtype=np.int64)]
        overlap = np.asarray((E @ E.T).toarray(), dtype=np.float64)  # exact: small integers
        return _fmeasure(overlap, np.maximum(n, 1).astype(np.float64))


def _fmeasure(overlap: np.ndarray, n: np.ndarray) -> np.ndarray:
    # row u = target, column v = prediction (rouge-score's argument order; F is symmetric anyway)
    precision = overlap / n[None, :]
    recall = overlap / n[:, None]
    denom = precision + recall
    with np.errstate(invalid="ignore", divide="ignore"):
        f: np.ndarray = np.where(denom > 0, 2 * precision * recall / np.where(denom > 0, denom, 1.0), 0.0)
    return f


def rouge1_matrix(token_lists: Sequence[Sequence[str]]) -> np.ndarray:
    """m x m ROUGE-1 F between token lists (float64)."""
    return RougeTable(token_lists).matrix()
