"""Generation runs: k samples for every (instance, system) of a dataset, asked of each system's endpoint.

A run is split into chunks of one system and a batch of instances; each chunk is one task (`default`
queue for servers, `gpu` for local folders) that asks only for the samples still missing and stores each
answer with its provenance as soon as it arrives. The natural key of `Generation` (instance, system,
sample_index) makes it idempotent: a re-run, a retried or a redelivered chunk fills what is missing and
never duplicates. The chunk that finishes a run writes its report (empty and identical samples) and,
when the run asks for it, queues the dataset's separability. docs/design.md §6.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F
from django.utils import timezone

from annotations.models import Dataset, Generation, Instance, System
from lib.tasks import send_tasks

from .clients import EndpointError, EndpointSpec, ErrorKind, SampleRequest, SampleResult, client_for
from .limiter import Limits, get_limiter
from .models import GenerationFailure, GenerationRun, ModelEndpoint, SampleProvenance
from .prompts import DEFAULT_PROMPT_TEMPLATE, render_prompt, template_problem

log = logging.getLogger(__name__)

# Tests switch this off to run embedded work inline (a thread cannot see a test's open transaction).
BACKGROUND_WHEN_EAGER = True
IDENTICAL_EXAMPLES = 5


class RunError(ValueError):
    """A run that cannot start, with the reason (nothing was written)."""


@dataclass(frozen=True)
class Chunk:
    index: int
    system_id: int
    instance_ids: list[int]


@dataclass
class RunSettings:
    k: int = 5
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed_policy: str = GenerationRun.SeedPolicy.PER_SAMPLE
    seed: int = 0
    system_prompt: str = ""
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    chain_separability: bool = True


@dataclass
class ChunkOutcome:
    created: int = 0
    retryable: list[tuple[int, int, EndpointError]] = field(default_factory=list)  # (instance, sample, error)


def seed_for(run: GenerationRun, sample_index: int) -> int | None:
    if run.seed_policy == GenerationRun.SeedPolicy.NONE:
        return None
    if run.seed_policy == GenerationRun.SeedPolicy.FIXED:
        return run.seed
    return run.seed + sample_index


def endpoint_problem(endpoint: ModelEndpoint) -> str | None:
    """What stops an endpoint before any request: a missing key variable, a folder that is not a causal LM."""
    from .clients import api_key_of, causal_lm_problem

    spec = EndpointSpec.of(endpoint)
    if spec.kind == ModelEndpoint.Kind.LOCAL:
        problem = causal_lm_problem(spec.model)
        return f"endpoint {spec.name}: {problem}" if problem else None
    try:
        api_key_of(spec)
    except EndpointError as error:
        return error.message
    return None


# ------------------------------------------------------------------------------------------------------
# starting


def _missing_by_system(dataset: Dataset, system_ids: list[int], k: int) -> dict[int, dict[int, int]]:
    """system -> instance -> samples already stored (among indexes 0..k-1)."""
    stored: dict[int, dict[int, int]] = {s: {} for s in system_ids}
    rows = (Generation.objects.filter(instance__dataset=dataset, system_id__in=system_ids, sample_index__lt=k)
            .values("system_id", "instance_id").annotate(n=Count("id")))
    for row in rows:
        stored[row["system_id"]][row["instance_id"]] = row["n"]
    return stored


def start_run(dataset: Dataset, systems: Iterable[System], run_settings: RunSettings | None = None,
              created_by=None) -> tuple[GenerationRun, list[Chunk]]:
    """Check everything that can be checked before a request, then record the run and its chunks.

    Raises RunError (and writes nothing) when a system has no endpoint, an endpoint's key variable is
    unset, a local folder is not a causal LM, the template is invalid or the dataset has no inputs."""
    rs = run_settings or RunSettings()
    systems = sorted(systems, key=lambda s: s.name)
    if not systems:
        raise RunError("choose at least one system")
    problem = template_problem(rs.prompt_template)
    if problem:
        raise RunError(f"prompt template: {problem}")
    if not 1 <= rs.k <= 100:
        raise RunError("k must be between 1 and 100")
    if rs.max_tokens < 1:
        raise RunError("max tokens must be at least 1")
    if not 0 <= rs.temperature <= 2 or not 0 < rs.top_p <= 1:
        raise RunError("temperature must be in [0, 2] and top_p in (0, 1]")
    endpoints = {e.system_id: e for e in ModelEndpoint.objects.filter(system__in=systems)}
    without = [s.name for s in systems if s.pk not in endpoints]
    if without:
        raise RunError(f"no endpoint for system {without[0]!r}: add one (admin, /generation/endpoints/ or "
                       f"`manage.py add_endpoint`) before sampling from it")
    for system in systems:
        problem = endpoint_problem(endpoints[system.pk])
        if problem:
            raise RunError(problem)
    instance_ids = list(Instance.objects.filter(dataset=dataset).order_by("id").values_list("id", flat=True))
    if not instance_ids:
        raise RunError(f"dataset {dataset.slug!r} has no instances: import its prompts first "
                       f"(`manage.py import_prompts`)")
    empty = Instance.objects.filter(dataset=dataset, input="").values_list("external_id", flat=True).first()
    if empty is not None and "input" in rs.prompt_template:
        raise RunError(f"instance {empty!r} of dataset {dataset.slug!r} has no input to send")
    stored = _missing_by_system(dataset, [s.pk for s in systems], rs.k)
    size = settings.GENERATION_CHUNK_INSTANCES
    chunks: list[Chunk] = []
    for system in systems:
        missing = [i for i in instance_ids if stored[system.pk].get(i, 0) < rs.k]
        for start in range(0, len(missing), size):
            chunks.append(Chunk(len(chunks), system.pk, missing[start:start + size]))
    existing = sum(sum(per.values()) for per in stored.values())
    with transaction.atomic():
        run = GenerationRun.objects.create(
            dataset=dataset, k=rs.k, temperature=rs.temperature, top_p=rs.top_p, max_tokens=rs.max_tokens,
            seed_policy=rs.seed_policy, seed=rs.seed, system_prompt=rs.system_prompt,
            prompt_template=rs.prompt_template, chain_separability=rs.chain_separability,
            total=len(instance_ids) * len(systems) * rs.k, existing=existing, done=existing,
            chunks_total=len(chunks), created_by=created_by)
        run.systems.set(systems)
    return run, chunks


def queue_for(endpoint: ModelEndpoint) -> str:
    return "gpu" if endpoint.kind == ModelEndpoint.Kind.LOCAL else "default"


def launch(run: GenerationRun, chunks: list[Chunk]) -> None:
    """Queue the chunks (or, embedded, run them in a background thread of this process)."""
    from .tasks import generate_chunk

    if not chunks:
        finish_run(run.pk)
        return
    queues = {e.system_id: queue_for(e) for e in ModelEndpoint.objects.filter(system__in=run.systems.all())}

    def send_all():
        for chunk in chunks:
            generate_chunk.apply_async((run.pk, chunk.index, chunk.system_id, chunk.instance_ids),
                                       queue=queues[chunk.system_id])

    send_tasks(send_all, f"generation-{run.pk}", BACKGROUND_WHEN_EAGER)


def generate(dataset: Dataset, systems: Iterable[System], run_settings: RunSettings | None = None,
             created_by=None) -> GenerationRun:
    run, chunks = start_run(dataset, systems, run_settings, created_by)
    transaction.on_commit(lambda: launch(run, chunks))
    return run


# ------------------------------------------------------------------------------------------------------
# one chunk


def _store(run: GenerationRun, endpoint: ModelEndpoint, instance_id: int, system_id: int, sample_index: int,
           result: SampleResult) -> bool:
    """Store one sample and its provenance; False when it was already there (a duplicate delivery)."""
    try:
        with transaction.atomic():
            generation, created = Generation.objects.get_or_create(
                instance_id=instance_id, system_id=system_id, sample_index=sample_index,
                defaults={"text": result.text})
            if not created:
                return False
            SampleProvenance.objects.create(
                generation=generation, run=run, endpoint=endpoint.name, request=result.request,
                tokens_in=result.tokens_in, tokens_out=result.tokens_out, latency_ms=result.latency_ms,
                finish_reason=result.finish_reason[:30])
            GenerationRun.objects.filter(pk=run.pk).update(
                done=F("done") + 1, tokens_in=F("tokens_in") + (result.tokens_in or 0),
                tokens_out=F("tokens_out") + (result.tokens_out or 0),
                usage_missing=F("usage_missing") + (1 if result.tokens_out is None else 0))
    except IntegrityError:  # another delivery of the same chunk stored it first
        return False
    return True


def key_values() -> list[str]:
    """The values of the endpoints' key variables in this process's environment (longest first), to
    blot out of every message stored or shown: servers' error messages end up in failures and run errors,
    and some servers quote the key they refused. Values under 8 characters are left alone (no real key is
    that short, and blotting every "a" out of a message would make it unreadable)."""
    import os

    names = ModelEndpoint.objects.exclude(api_key_env="").values_list("api_key_env", flat=True).distinct()
    values = {os.environ.get(name, "") for name in names}
    return sorted((v for v in values if len(v) >= 8), key=len, reverse=True)


def redact(text: str, secrets: list[str] | None = None) -> str:
    for value in key_values() if secrets is None else secrets:
        text = text.replace(value, "[redacted]")
    return text


def record_failure(run_id: int, chunk_index: int, system_id: int, instance_id: int | None,
                   sample_index: int | None, kind: str, message: str) -> None:
    with transaction.atomic():
        _failure, created = GenerationFailure.objects.get_or_create(
            run_id=run_id, system_id=system_id, instance_id=instance_id, sample_index=sample_index,
            defaults={"chunk_index": chunk_index, "kind": kind, "message": redact(message)[:2000]})
        if created and sample_index is not None:
            GenerationRun.objects.filter(pk=run_id).update(failed=F("failed") + 1)


def block_system(run_id: int, chunk_index: int, system_id: int, error: EndpointError) -> None:
    """No sample of this system can be generated: say why once, and let its other chunks stop."""
    with transaction.atomic():
        run = GenerationRun.objects.select_for_update().get(pk=run_id)
        if str(system_id) not in run.blocked:
            run.blocked = {**run.blocked, str(system_id): redact(error.message)}
            run.save(update_fields=["blocked"])
    record_failure(run_id, chunk_index, system_id, None, None, error.kind, error.message)


def _cancelled_or_blocked(run_id: int, system_id: int) -> bool:
    status, blocked = GenerationRun.objects.values_list("status", "blocked").get(pk=run_id)
    return status in (GenerationRun.Status.CANCELLED, GenerationRun.Status.FAILED) or str(system_id) in blocked


def run_chunk(run_id: int, chunk_index: int, system_id: int, instance_ids: list[int], final: bool = True,
              make_client: Callable[[EndpointSpec], object] = client_for) -> ChunkOutcome:
    """Ask for the chunk's missing samples and store each as it arrives.

    Retryable failures (unreachable, timeouts, 5xx, still rate-limited) are returned, not recorded,
    unless `final`: the task retries the chunk later, and the retry asks only for what is still missing.
    A finished chunk (final, or nothing retryable left) is marked done; the last one finishes the run."""
    outcome = ChunkOutcome()
    run = GenerationRun.objects.get(pk=run_id)
    if _cancelled_or_blocked(run_id, system_id):
        _chunk_done(run_id, chunk_index)
        return outcome
    if run.status == GenerationRun.Status.QUEUED:
        GenerationRun.objects.filter(pk=run_id, status=GenerationRun.Status.QUEUED).update(
            status=GenerationRun.Status.RUNNING, started_at=timezone.now())
    endpoint = ModelEndpoint.objects.get(system_id=system_id)
    spec = EndpointSpec.of(endpoint)
    try:
        client: object = make_client(spec)
    except EndpointError as error:
        block_system(run_id, chunk_index, system_id, error)
        _chunk_done(run_id, chunk_index)
        return outcome
    stored = set(Generation.objects.filter(instance_id__in=instance_ids, system_id=system_id,
                                           sample_index__lt=run.k)
                 .values_list("instance_id", "sample_index"))
    instances = {i.pk: i for i in Instance.objects.filter(pk__in=instance_ids).only("id", "external_id", "input",
                                                                                    "reference")}
    todo = [(i, s) for i in instance_ids if i in instances for s in range(run.k) if (i, s) not in stored]
    limiter = get_limiter()
    limits = Limits.of(spec)

    def ask(instance_id: int, sample_index: int) -> SampleResult:
        instance = instances[instance_id]
        request = SampleRequest(
            prompt=render_prompt(run.prompt_template, instance.input, instance.reference, instance.external_id),
            system_prompt=run.system_prompt, temperature=run.temperature, top_p=run.top_p,
            max_tokens=run.max_tokens, seed=seed_for(run, sample_index))
        with limiter.slot(limits, tokens=request.estimated_tokens()):
            return client.sample(request)  # type: ignore[attr-defined]

    workers = 1 if spec.kind == ModelEndpoint.Kind.LOCAL else spec.max_concurrency
    successes = 0
    fatal: EndpointError | None = None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"gen-{spec.name}") as pool:
        pending: dict[Future, tuple[int, int]] = {}
        queue = list(todo)
        stop = False
        while queue or pending:
            while queue and len(pending) < workers and not stop:
                key = queue.pop(0)
                pending[pool.submit(ask, *key)] = key
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            done_now = [(pending.pop(future), future) for future in finished]
            if all(future.exception() is None for _key, future in done_now):
                # The next requests go out before these answers are stored, so the database's time per
                # sample overlaps the server's instead of adding to it (bench/generation.py, chunk path).
                while queue and len(pending) < workers and not stop:
                    key = queue.pop(0)
                    pending[pool.submit(ask, *key)] = key
            for (instance_id, sample_index), future in done_now:
                try:
                    result = future.result()
                except EndpointError as error:
                    # An error on every request before any success: the endpoint is wrong, not busy (a server
                    # that answers 500 to everything, as some do for an unknown model name; or, on the last
                    # attempt, one that cannot be reached at all). Stop asking it, say why once.
                    hopeless = successes == 0 and (error.kind == ErrorKind.SERVER_ERROR
                                                   or (error.retryable and final)) \
                        and not SampleProvenance.objects.filter(run_id=run_id,
                                                                generation__system_id=system_id).exists()
                    if error.fatal or hopeless:
                        fatal = error
                    elif error.retryable and not final:
                        # The server is down or overloaded: the rest of the chunk would fail alike. Stop now;
                        # the task tries again later and asks only for what is still missing.
                        outcome.retryable.append((instance_id, sample_index, error))
                        stop, queue = True, []
                    else:
                        record_failure(run_id, chunk_index, system_id, instance_id, sample_index, error.kind,
                                       error.message)
                    continue
                if not result.text.strip():
                    record_failure(run_id, chunk_index, system_id, instance_id, sample_index,
                                   ErrorKind.EMPTY_ANSWER, f"endpoint {spec.name}: an empty answer (finish "
                                   f"reason {result.finish_reason or 'not given'}); nothing stored, a re-run "
                                   f"asks again")
                    continue
                successes += 1
                outcome.created += _store(run, endpoint, instance_id, system_id, sample_index, result)
            if fatal is not None or _cancelled_or_blocked(run_id, system_id):
                stop, queue = True, []
    if fatal is not None:
        block_system(run_id, chunk_index, system_id, fatal)
    if final or not outcome.retryable:
        _chunk_done(run_id, chunk_index)
    return outcome


def _chunk_done(run_id: int, chunk_index: int) -> None:
    if GenerationRun.mark_chunk_done(run_id, chunk_index):
        finish_run(run_id)


def record_chunk_error(run_id: int, chunk_index: int, system_id: int, error: Exception) -> None:
    """A chunk that raised something unexpected: recorded on the run, and the chunk counts as finished."""
    record_failure(run_id, chunk_index, system_id, None, None, "error", f"{error.__class__.__name__}: {error}")
    _chunk_done(run_id, chunk_index)


# ------------------------------------------------------------------------------------------------------
# finishing, cancelling, reporting


def sample_report(run: GenerationRun) -> dict:
    """Per system: instances whose k samples are all identical (separability is then meaningless), empty
    answers, and samples still missing."""
    report: dict[str, dict] = {}
    empty = dict(GenerationFailure.objects.filter(run=run, kind=ErrorKind.EMPTY_ANSWER)
                 .values_list("system__name").annotate(n=Count("id")))
    n_instances = Instance.objects.filter(dataset=run.dataset).count()
    for system in run.systems.order_by("name"):
        groups = (Generation.objects.filter(instance__dataset=run.dataset, system=system, sample_index__lt=run.k)
                  .values("instance_id").annotate(n=Count("id"), distinct=Count("text", distinct=True)))
        stored = sum(g["n"] for g in groups)
        identical_ids = [g["instance_id"] for g in groups if run.k > 1 and g["n"] > 1 and g["distinct"] == 1]
        examples = list(Instance.objects.filter(pk__in=identical_ids[:IDENTICAL_EXAMPLES])
                        .order_by("id").values_list("external_id", flat=True))
        report[system.name] = {"identical": len(identical_ids), "identical_examples": examples,
                               "empty": empty.get(system.name, 0), "missing": n_instances * run.k - stored}
    return report


def finish_run(run_id: int) -> GenerationRun:
    with transaction.atomic():
        run = GenerationRun.objects.select_for_update().get(pk=run_id)
        if run.finished_at is not None:
            return run
        run.report = sample_report(run)
        missing = sum(r["missing"] for r in run.report.values())
        if run.status == GenerationRun.Status.CANCELLED:
            pass
        elif run.blocked and len(run.blocked) == run.systems.count() and run.done == run.existing:
            run.status = GenerationRun.Status.FAILED
            run.error = "; ".join(run.blocked.values())
        elif missing or run.failed or run.blocked:
            run.status = GenerationRun.Status.INCOMPLETE
        else:
            run.status = GenerationRun.Status.DONE
        run.finished_at = timezone.now()
        run.save(update_fields=["report", "status", "error", "finished_at"])
        chain = run.chain_separability and run.status in (GenerationRun.Status.DONE, GenerationRun.Status.INCOMPLETE)
    if chain:
        transaction.on_commit(lambda: chain_separability(run_id))
    return run


def chain_separability(run_id: int) -> None:
    """Queue the dataset's separability (embedded: compute it here) and link its run to this one."""
    from separability.services import compute_dataset_separability

    run = GenerationRun.objects.select_related("dataset").get(pk=run_id)
    try:
        separability_run = compute_dataset_separability(run.dataset.slug)
    except Exception as error:  # noqa: BLE001 - the generation run says so instead of failing silently
        log.exception("separability after generation run %s failed", run_id)
        GenerationRun.objects.filter(pk=run_id).update(error=f"separability could not start: {error}")
        return
    GenerationRun.objects.filter(pk=run_id).update(separability_run=separability_run)


def cancel_run(run: GenerationRun) -> bool:
    """Stop a run: its remaining chunks do nothing, the samples stored so far stay. False if it had finished."""
    updated = GenerationRun.objects.filter(pk=run.pk).exclude(status__in=GenerationRun.FINISHED).update(
        status=GenerationRun.Status.CANCELLED, finished_at=timezone.now())
    if updated:
        run.refresh_from_db()
        GenerationRun.objects.filter(pk=run.pk).update(report=sample_report(run))
    return bool(updated)


def progress(run: GenerationRun) -> dict:
    run.refresh_from_db()
    return {"status": run.status, "done": run.done, "total": run.total, "failed": run.failed,
            "chunks_done": len(run.chunks_done), "chunks_total": run.chunks_total}


def wait_for(run: GenerationRun, on_progress: Callable[[GenerationRun], None] = lambda run: None,
             poll_seconds: float = 0.5, timeout: float | None = None) -> GenerationRun:
    """Block until the run has finished (and its chained separability, when there is one)."""
    started = time.monotonic()
    while True:
        run.refresh_from_db()
        on_progress(run)
        if run.is_finished:
            return run
        if timeout is not None and time.monotonic() - started > timeout:
            return run
        time.sleep(poll_seconds)


def failures_by_kind(run: Any) -> list[dict]:
    """Each kind of failure with its count and one message (the run page's table). `run` is anything whose
    `failures` has `kind` and `message`: a GenerationRun, or a judges.JudgeRun."""
    rows = []
    for kind, n in run.failures.values_list("kind").annotate(n=Count("id")).order_by("-n", "kind"):
        example = run.failures.filter(kind=kind).values_list("message", flat=True).first()
        rows.append({"kind": kind, "n": n, "example": example})
    return rows
