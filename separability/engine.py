"""Separability of system pairs on test instances (Ghosh et al., EMNLP Findings 2024), computed in bulk.

Why this module exists: it is the pure computational core behind the ``separability`` app (no Django
here), used by the Celery task, the command line, the benchmark and notebooks. Given, per instance,
k >= 2 sampled generations of each system, it computes for every system pair and metric
(docs/design.md §4):

- ``self(A)  = mean over i != j of sim(a_i, a_j)`` (each system with its own k),
- ``cross(A, B) = mean over all ka * kb pairs of sim(a_i, b_j)``,
- ``separability = max(self(A), self(B)) - cross(A, B)`` (raw; may be negative),

for the metrics

- ``bertscore``: BERTScore F1, no idf, no baseline rescaling (values equal ``BERTScorer.score``;
  see :mod:`separability.similarity`),
- ``bertscore_length``: ``F1 * exp(1 - L_long / L_short)`` with L the whitespace word counts
  (``len(text.split())``). Empty texts: if both texts have 0 words the factor is 1, if only one has,
  the factor is 0 (the limit of the formula as L_short -> 0); an empty text's F1 is 0 anyway,
- ``rouge1``: ROUGE-1 F with Porter stemming, from the ``rouge-score`` package
  (see :mod:`separability.rouge`),

all from one pass: every distinct text of a chunk of instances is tokenised and encoded once,
the n x n matrix of each metric over an instance's n generations is built once, and every pair of
systems reads its blocks. A system with fewer than 2 samples has no self-alignment: its pairs come
back with ``separability=None`` and an ``undefined_reason``, never a number.

Memory is bounded by ``max_texts_per_chunk``: instances are grouped into chunks of at most that many
distinct texts (an instance larger than that is a chunk on its own), results are yielded chunk by
chunk and the embeddings of a chunk are dropped before the next one. Peak memory is therefore about
``max_texts_per_chunk * mean_tokens * hidden_size * 4`` bytes of embeddings plus the model, whatever
the number of instances.

:func:`normalise` is the authors' min-max step: raw separability divided by (max - min) of all
self/cross values of that metric in the given result set.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lib.vocabulary import Metric

from .rouge import rouge1_matrix, rouge_tokens
from .similarity import SeparabilityScorer, default_model_path, resolve_device

__all__ = [
    "METRICS",
    "InstanceSamples",
    "PairResult",
    "SeparabilityScorer",
    "alignment_from_matrix",
    "compute_separability",
    "default_model_path",
    "length_factor_matrix",
    "normalise",
    "resolve_device",
]

METRICS = tuple(Metric)  # lib.vocabulary
_BERT_METRICS = {m for m in Metric if m.needs_model}


@dataclass(frozen=True)
class InstanceSamples:
    """One test instance: ``samples[system_key]`` = that system's generations, in sample order.

    System keys must be mutually sortable (all ints or all str); pairs are ``(lower, higher)``.
    """

    key: Any
    samples: dict[Any, list[str]]


@dataclass
class PairResult:
    key: Any
    system_a: Any
    system_b: Any
    metric: str
    self_a: float | None
    self_b: float | None
    cross: float | None
    separability: float | None
    k_a: int
    k_b: int
    undefined_reason: str = ""


# ---------------------------------------------------------------------------- formulas
def alignment_from_matrix(
    sim: np.ndarray, idx_a: Sequence[int], idx_b: Sequence[int]
) -> tuple[float | None, float | None, float | None, float | None]:
    """(self_a, self_b, cross, separability) from a similarity matrix over an instance's generations.

    ``idx_a`` / ``idx_b``: the rows of system A's / B's samples. Self-alignment averages the
    off-diagonal entries (i != j) of a system's block and is None for fewer than 2 samples; cross
    averages the whole A x B block (None if either is empty); separability is
    ``max(self_a, self_b) - cross``, None unless all three are defined.
    """
    sim = np.asarray(sim, dtype=np.float64)
    self_a = _self_alignment(sim, idx_a)
    self_b = _self_alignment(sim, idx_b)
    cross = float(sim[np.ix_(list(idx_a), list(idx_b))].mean()) if len(idx_a) and len(idx_b) else None
    if self_a is None or self_b is None or cross is None:
        return self_a, self_b, cross, None
    return self_a, self_b, cross, max(self_a, self_b) - cross


def _self_alignment(sim: np.ndarray, idx: Sequence[int]) -> float | None:
    k = len(idx)
    if k < 2:
        return None
    block = sim[np.ix_(list(idx), list(idx))]
    return float(block[~np.eye(k, dtype=bool)].mean())


def length_factor_matrix(word_counts: Sequence[int]) -> np.ndarray:
    """``exp(1 - L_long / L_short)`` for every pair; 1 when both have 0 words, 0 when only one has."""
    L = np.asarray(word_counts, dtype=np.float64)
    lo = np.minimum(L[:, None], L[None, :])
    hi = np.maximum(L[:, None], L[None, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.exp(1.0 - hi / np.where(lo > 0, lo, 1.0))
    return np.where(lo > 0, f, np.where(hi == 0, 1.0, 0.0))


def _undefined_reason(a: Any, k_a: int, b: Any, k_b: int) -> str:
    parts = [
        f"system {s!r} has {k} sample{'s' if k != 1 else ''}; self-alignment needs k >= 2"
        for s, k in ((a, k_a), (b, k_b))
        if k < 2
    ]
    return "; ".join(parts)


# ---------------------------------------------------------------------------- bulk computation
def _check_metrics(metrics: Iterable[str]) -> tuple[str, ...]:
    metrics = tuple(dict.fromkeys(metrics))
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {list(METRICS)}")
    if not metrics:
        raise ValueError("no metric requested")
    return metrics


def _check_instance(inst: InstanceSamples) -> list[Any]:
    if not isinstance(inst, InstanceSamples):
        raise TypeError(f"expected InstanceSamples, got {type(inst).__name__}")
    try:
        systems = sorted(inst.samples)
    except TypeError as exc:
        raise TypeError(f"instance {inst.key!r}: system keys are not mutually sortable") from exc
    for s in systems:
        texts = inst.samples[s]
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"instance {inst.key!r}, system {s!r}: samples must be a list of str")
    return systems


def compute_separability(
    instances: Iterable[InstanceSamples],
    scorer: SeparabilityScorer | None,
    metrics: Sequence[str] = METRICS,
    max_texts_per_chunk: int = 2048,
    progress: Callable[[int, int | None], Any] | None = None,
) -> Iterator[list[PairResult]]:
    """Yield, chunk by chunk, the :class:`PairResult` of every (instance, system pair, metric).

    Within a chunk the order is: instances in input order, pairs in sorted-key order, metrics in the
    order given. ``scorer`` may be None when no BERTScore metric is requested. ``progress(done, None)``
    is called with the number of instances finished so far each time the consumer has taken a chunk
    (when it asks for the next one), so "done" never counts results the consumer has not handled.
    An instance with fewer than two systems yields no pair.
    """
    metrics = _check_metrics(metrics)
    if max_texts_per_chunk < 1:
        raise ValueError("max_texts_per_chunk must be >= 1")
    if scorer is None and _BERT_METRICS.intersection(metrics):
        raise ValueError("a SeparabilityScorer is needed for the BERTScore metrics")
    chunk: list[tuple[InstanceSamples, list[Any]]] = []
    seen: set[str] = set()
    done = 0
    for inst in instances:
        systems = _check_instance(inst)
        texts = {t for s in systems for t in inst.samples[s]}
        new = texts - seen
        if chunk and len(seen) + len(new) > max_texts_per_chunk:
            out = _score_chunk(chunk, scorer, metrics)
            done += len(chunk)
            chunk, seen, new = [], set(), texts
            yield out
            if progress is not None:
                progress(done, None)
        chunk.append((inst, systems))
        seen |= new
    if chunk:
        out = _score_chunk(chunk, scorer, metrics)
        done += len(chunk)
        yield out
        if progress is not None:
            progress(done, None)


def _score_chunk(
    chunk: list[tuple[InstanceSamples, list[Any]]], scorer: SeparabilityScorer | None, metrics: tuple[str, ...]
) -> list[PairResult]:
    # Distinct texts of the chunk, in first-appearance order.
    text_id: dict[str, int] = {}
    for inst, systems in chunk:
        for s in systems:
            for t in inst.samples[s]:
                text_id.setdefault(t, len(text_id))
    texts = list(text_id)

    need_bert = bool(_BERT_METRICS.intersection(metrics))
    seq_of_text: list[int] = []
    seqs: list[tuple[int, ...]] = []
    embs: list[Any] = []
    if need_bert:
        assert scorer is not None  # compute_separability refuses BERTScore metrics without a scorer
        seq_id: dict[tuple[int, ...], int] = {}
        for t in texts:  # identical token sequences (e.g. texts differing only in case) share one encoding
            seq_of_text.append(seq_id.setdefault(scorer.tokenize(t), len(seq_id)))
        seqs = list(seq_id)
        embs = scorer.encode(seqs)
    words = [len(t.split()) for t in texts] if "bertscore_length" in metrics else []
    rtoks = [rouge_tokens(t) for t in texts] if "rouge1" in metrics else []

    results: list[PairResult] = []
    for inst, systems in chunk:
        pos_text = [text_id[t] for s in systems for t in inst.samples[s]]
        ranges: dict[Any, list[int]] = {}
        start = 0
        for s in systems:
            ranges[s] = list(range(start, start + len(inst.samples[s])))
            start += len(inst.samples[s])
        mats = _instance_matrices(
            pos_text, metrics, scorer, seq_of_text, seqs, embs, words, rtoks
        )
        for i, a in enumerate(systems):
            for b in systems[i + 1 :]:
                k_a, k_b = len(ranges[a]), len(ranges[b])
                reason = _undefined_reason(a, k_a, b, k_b)
                for metric in metrics:
                    sa, sb, cr, sep = alignment_from_matrix(mats[metric], ranges[a], ranges[b])
                    results.append(
                        PairResult(inst.key, a, b, metric, sa, sb, cr, sep, k_a, k_b, reason)
                    )
    return results


def _instance_matrices(
    pos_text: list[int],
    metrics: tuple[str, ...],
    scorer: SeparabilityScorer | None,
    seq_of_text: list[int],
    seqs: list[tuple[int, ...]],
    embs: list[Any],
    words: list[int],
    rtoks: list[list[str]],
) -> dict[str, np.ndarray]:
    """Metric matrices over an instance's generations (positions), built from its distinct texts."""
    local: dict[int, int] = {}
    pos_local = [local.setdefault(t, len(local)) for t in pos_text]
    ltexts = list(local)
    mats: dict[str, np.ndarray] = {}
    ix = np.ix_(pos_local, pos_local)
    if _BERT_METRICS.intersection(metrics):
        assert scorer is not None  # as in _score_chunk
        lseq: dict[int, int] = {}
        text_seq = [lseq.setdefault(seq_of_text[t], len(lseq)) for t in ltexts]
        useqs = list(lseq)
        D = scorer.f1_from_embeddings([embs[q] for q in useqs], [seqs[q] for q in useqs])
        F = D[np.ix_(text_seq, text_seq)][ix]
        if "bertscore" in metrics:
            mats["bertscore"] = F
        if "bertscore_length" in metrics:
            mats["bertscore_length"] = F * length_factor_matrix([words[t] for t in ltexts])[ix]
    if "rouge1" in metrics:
        mats["rouge1"] = rouge1_matrix([rtoks[t] for t in ltexts])[ix]
    return mats


# ---------------------------------------------------------------------------- normalisation
def metric_ranges(results: Iterable[PairResult]) -> dict[str, float]:
    """Each metric's (max - min) over every defined self/cross value in ``results`` (also those of pairs
    whose separability is undefined): the denominator of `normalise`."""
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    for r in results:
        for v in (r.self_a, r.self_b, r.cross):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            lo[r.metric] = min(lo.get(r.metric, v), v)
            hi[r.metric] = max(hi.get(r.metric, v), v)
    return {metric: hi[metric] - lo[metric] for metric in lo}


def normalise(results: Iterable[PairResult]) -> dict[tuple[Any, Any, Any, str], float | None]:
    """Raw separability / (max - min) of all self/cross values of the same metric in ``results``.

    Equivalent to the authors' min-max scaling of self and cross before taking max(self) - cross.
    Undefined separability stays None. A zero range (all values equal, so every separability is 0)
    gives 0.0. What the site stores (`separability.services.normalise_dataset`) is this.
    """
    results = list(results)
    span = metric_ranges(results)
    out: dict[tuple[Any, Any, Any, str], float | None] = {}
    for r in results:
        key = (r.key, r.system_a, r.system_b, r.metric)
        if r.separability is None:
            out[key] = None
            continue
        width = span.get(r.metric, 0.0)
        out[key] = r.separability / width if width > 0 else 0.0
    return out
