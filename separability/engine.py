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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from lib.vocabulary import Metric

from .rouge import RougeTable, rouge_tokens
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
    prefetch: bool = True,
) -> Iterator[list[PairResult]]:
    """Yield, chunk by chunk, the :class:`PairResult` of every (instance, system pair, metric).

    Within a chunk the order is: instances in input order, pairs in sorted-key order, metrics in the
    order given. ``scorer`` may be None when no BERTScore metric is requested. ``progress(done, None)``
    is called with the number of instances finished so far each time the consumer has taken a chunk
    (when it asks for the next one), so "done" never counts results the consumer has not handled.
    An instance with fewer than two systems yields no pair.

    With ``prefetch`` (the default) the CPU-side preparation of a chunk (BERT tokenisation, ROUGE-1
    tokens and overlaps, word counts) runs in one worker thread, so that it overlaps the encoding of
    the chunk before it (and a chunk's ROUGE-1 its own encoding): the input is read one chunk ahead,
    in the calling thread. The results are the same either way.
    """
    metrics = _check_metrics(metrics)
    if max_texts_per_chunk < 1:
        raise ValueError("max_texts_per_chunk must be >= 1")
    if scorer is None and _BERT_METRICS.intersection(metrics):
        raise ValueError("a SeparabilityScorer is needed for the BERTScore metrics")
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="separability-prep") if prefetch else None

    def start(chunk: list[tuple[InstanceSamples, list[Any]]]) -> _Prepared:
        prep = _Prepared(chunk, scorer, metrics)
        if pool is None:
            prep.tokenize()
            prep.lexical()
        else:  # one worker: a chunk's tokens, then its ROUGE-1, then the next chunk's, in that order
            prep.tokens_ready = pool.submit(prep.tokenize)
            prep.lexical_ready = pool.submit(prep.lexical)
        return prep

    done = 0
    try:
        pending: _Prepared | None = None
        for chunk in _chunks(instances, max_texts_per_chunk):
            nxt = start(chunk)
            if pending is not None:
                out = _score_chunk(pending, scorer, metrics)
                done += len(pending.chunk)
                pending = nxt
                yield out
                if progress is not None:
                    progress(done, None)
            else:
                pending = nxt
        if pending is not None:
            out = _score_chunk(pending, scorer, metrics)
            done += len(pending.chunk)
            pending = None
            yield out
            if progress is not None:
                progress(done, None)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _chunks(
    instances: Iterable[InstanceSamples], max_texts_per_chunk: int
) -> Iterator[list[tuple[InstanceSamples, list[Any]]]]:
    """Group instances (with their sorted systems) into chunks of at most that many distinct texts."""
    chunk: list[tuple[InstanceSamples, list[Any]]] = []
    seen: set[str] = set()
    for inst in instances:
        systems = _check_instance(inst)
        texts = {t for s in systems for t in inst.samples[s]}
        new = texts - seen
        if chunk and len(seen) + len(new) > max_texts_per_chunk:
            yield chunk
            chunk, seen, new = [], set(), texts
        chunk.append((inst, systems))
        seen |= new
    if chunk:
        yield chunk


class _Prepared:
    """The CPU-side work of one chunk, which needs no model: computed ahead of the encoder.

    ``tokens``: the chunk's distinct texts (first-appearance order), bert-score's token ids of each
    and the distinct token sequences (identical sequences, e.g. texts differing only in case, share
    one encoding). ``lexical``: word counts and the ROUGE-1 matrix of each instance.
    """

    def __init__(
        self, chunk: list[tuple[InstanceSamples, list[Any]]], scorer: SeparabilityScorer | None,
        metrics: tuple[str, ...],
    ) -> None:
        self.chunk = chunk
        text_id: dict[str, int] = {}
        for inst, systems in chunk:
            for s in systems:
                for t in inst.samples[s]:
                    text_id.setdefault(t, len(text_id))
        self.text_id = text_id
        self.texts = list(text_id)
        # per instance: the chunk text of each position, and the instance's distinct texts
        self.pos_local: list[list[int]] = []
        self.local_texts: list[list[int]] = []
        for inst, systems in chunk:
            local: dict[int, int] = {}
            self.pos_local.append([local.setdefault(text_id[t], len(local)) for s in systems for t in inst.samples[s]])
            self.local_texts.append(list(local))
        self.seq_of_text: list[int] = []
        self.seqs: list[tuple[int, ...]] = []
        self.words: list[int] = []
        self.rouge: list[np.ndarray] = []
        self._scorer = scorer
        self._metrics = metrics
        self.tokens_ready: Future[None] | None = None  # set when the stage runs in the worker thread
        self.lexical_ready: Future[None] | None = None

    def tokenize(self) -> None:
        if not _BERT_METRICS.intersection(self._metrics):
            return
        assert self._scorer is not None  # compute_separability refuses BERTScore metrics without a scorer
        seq_id: dict[tuple[int, ...], int] = {}
        self.seq_of_text = [seq_id.setdefault(q, len(seq_id)) for q in self._scorer.tokenize_many(self.texts)]
        self.seqs = list(seq_id)

    def lexical(self) -> None:
        if "bertscore_length" in self._metrics:
            self.words = [len(t.split()) for t in self.texts]
        if "rouge1" in self._metrics:
            table = RougeTable([rouge_tokens(t) for t in self.texts])
            self.rouge = [table.matrix(lt) for lt in self.local_texts]


def _score_chunk(prep: _Prepared, scorer: SeparabilityScorer | None, metrics: tuple[str, ...]) -> list[PairResult]:
    need_bert = bool(_BERT_METRICS.intersection(metrics))
    embs: list[Any] = []
    if prep.tokens_ready is not None:
        prep.tokens_ready.result()  # re-raises what the worker raised
    if need_bert:
        assert scorer is not None  # as in _Prepared.tokenize
        embs = scorer.encode(prep.seqs)  # meanwhile the worker computes ROUGE-1 and the next chunk's tokens
    if prep.lexical_ready is not None:
        prep.lexical_ready.result()

    results: list[PairResult] = []
    for n, (inst, systems) in enumerate(prep.chunk):
        pos_local, ltexts = prep.pos_local[n], prep.local_texts[n]
        ix = np.ix_(pos_local, pos_local)
        mats: dict[str, np.ndarray] = {}
        if need_bert:
            assert scorer is not None
            lseq: dict[int, int] = {}
            text_seq = [lseq.setdefault(prep.seq_of_text[t], len(lseq)) for t in ltexts]
            useqs = list(lseq)
            D = scorer.f1_from_embeddings([embs[q] for q in useqs], [prep.seqs[q] for q in useqs])
            F = D[np.ix_(text_seq, text_seq)][ix]
            if "bertscore" in metrics:
                mats["bertscore"] = F
            if "bertscore_length" in metrics:
                mats["bertscore_length"] = F * length_factor_matrix([prep.words[t] for t in ltexts])[ix]
        if "rouge1" in metrics:
            mats["rouge1"] = prep.rouge[n][ix]
        sizes = [len(inst.samples[s]) for s in systems]
        table = {metric: _block_alignments(mats[metric], sizes) for metric in metrics}
        for i, a in enumerate(systems):
            for j in range(i + 1, len(systems)):
                b = systems[j]
                k_a, k_b = sizes[i], sizes[j]
                reason = _undefined_reason(a, k_a, b, k_b)
                for metric in metrics:
                    self_, cross = table[metric]
                    sa, sb, cr = self_[i], self_[j], cross[i][j]
                    sep = max(sa, sb) - cr if sa is not None and sb is not None and cr is not None else None
                    results.append(PairResult(inst.key, a, b, metric, sa, sb, cr, sep, k_a, k_b, reason))
    return results


def _block_alignments(
    sim: np.ndarray, sizes: list[int]
) -> tuple[list[float | None], list[list[float | None]]]:
    """Every system's self-alignment and every pair's cross-alignment from an instance's matrix at once.

    The systems' samples are consecutive rows (``sizes`` each). Same values as
    :func:`alignment_from_matrix` (a block's sum minus its diagonal instead of the mean of the
    off-diagonal entries: equal up to float64 rounding, ~1e-16), without its per-pair indexing.
    """
    s = len(sizes)
    owner = np.repeat(np.arange(s), sizes)
    G = np.zeros((int(sum(sizes)), s), dtype=np.float64)
    G[np.arange(owner.shape[0]), owner] = 1.0
    sim = np.asarray(sim, dtype=np.float64)
    blocks = G.T @ sim @ G
    diag = G.T @ np.diagonal(sim)
    k = np.asarray(sizes, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        self_v = ((np.diagonal(blocks) - diag) / (k * (k - 1))).tolist()
        cross_v = (blocks / (k[:, None] * k[None, :])).tolist()
    self_out: list[float | None] = [v if n >= 2 else None for v, n in zip(self_v, sizes, strict=True)]
    cross_out: list[list[float | None]] = [
        [v if sizes[i] and sizes[j] else None for j, v in enumerate(row)] for i, row in enumerate(cross_v)
    ]
    return self_out, cross_out


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
