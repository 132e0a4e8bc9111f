"""Judge runs: a judge asked about every comparison of a study, in both orders, through the generation
machinery (its endpoints, `generation.clients`, the Redis-shared `generation.limiter`).

A run is split into chunks of comparisons; each chunk is one task (`default` queue for servers, `gpu` for
local folders, as generation's) that asks only for the (comparison, order)s without a stored answer and
stores each answer as a `JudgeVerdict` as soon as it arrives, parsed or not (an unparseable answer is
counted, never guessed, and never becomes a vote). The unique (judge, comparison, order) makes runs
idempotent: a re-run, a retried or a redelivered chunk fills what is missing and never asks twice.

Once both orders of a comparison are answered and at least one parsed, the pair makes the judge's one
`Vote` on it (source `judge`, under the judge's account; one vote per annotator and comparison is the
vote model's rule): the verdict both orders agree on, a tie when they disagree (Zheng et al. 2023),
"both bad" when every parsed answer said so; its assignment's `left_is_a` is the order of the one parsed
answer, A first when both parsed. The tables read the pair itself from the verdicts
(judges.services.study_judge_tables). docs/design.md §4.7.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F
from django.utils import timezone

from annotations.imports.write import HistoricalVotes
from annotations.models import Comparison, Study, Vote
from annotations.signals import votes_changed_on_commit
from generation.clients import EndpointError, EndpointSpec, SampleRequest, SampleResult, api_key_of, client_for
from generation.limiter import Limits, get_limiter
from generation.models import ModelEndpoint
from generation.services import endpoint_problem, queue_for
from lib.tasks import send_tasks

from .metrics import JudgeAnswer, JudgedComparison
from .models import Judge, JudgeFailure, JudgePrompt, JudgeRun, JudgeVerdict
from .prompts import render_prompt, template_problem
from .verdicts import Verdict, parse_verdict

log = logging.getLogger(__name__)

# Tests switch this off to run embedded work inline (a thread cannot see a test's open transaction).
BACKGROUND_WHEN_EAGER = True
CHUNK_COMPARISONS = 25  # settings.JUDGE_CHUNK_COMPARISONS overrides it
ORDERS = (True, False)  # first_is_a: A shown first, then B shown first


class JudgeRunError(ValueError):
    """A run that cannot start, with the reason (nothing was written)."""


@dataclass(frozen=True)
class Chunk:
    index: int
    comparison_ids: list[int]


@dataclass
class JudgeRunSettings:
    temperature: float = 0.0
    max_tokens: int = 1024


@dataclass
class ChunkOutcome:
    created: int = 0
    retryable: list[tuple[int, bool, EndpointError]] = field(default_factory=list)  # (comparison, order, error)


# ------------------------------------------------------------------------------------------------------
# what a judge is asked through


def spec_for(judge: Judge, endpoint: ModelEndpoint | None) -> EndpointSpec:
    """The endpoint's spec; a judge without one is asked at its own base URL with the endpoint defaults."""
    if endpoint is not None:
        return EndpointSpec.of(endpoint)
    return EndpointSpec(name=f"judge-{judge.name}", kind=ModelEndpoint.Kind.OPENAI, model=judge.model,
                        base_url=judge.base_url, api_key_env=judge.api_key_env)


def prompt_for(study: Study, judge: Judge) -> tuple[str, str]:
    """(system prompt, template) the judge is asked in this study: the study's override, else the judge's."""
    override = JudgePrompt.objects.filter(study=study, judge=judge).first()
    if override is not None:
        return override.system_prompt, override.prompt_template
    return judge.system_prompt, judge.prompt_template


def save_prompt(study: Study, judge: Judge, system_prompt: str, prompt_template: str, by=None) -> JudgePrompt:
    """Set the judge's prompt in this study; raises JudgeRunError (writing nothing) for a bad template."""
    problem = template_problem(prompt_template)
    if problem:
        raise JudgeRunError(f"prompt template: {problem}")
    prompt, _ = JudgePrompt.objects.update_or_create(
        study=study, judge=judge, defaults={"system_prompt": system_prompt, "prompt_template": prompt_template,
                                            "updated_by": by})
    return prompt


def _endpoint_for(judge: Judge | None, name: str, endpoint_name: str) -> ModelEndpoint | None:
    endpoint = None
    if endpoint_name:
        endpoint = ModelEndpoint.objects.filter(name=endpoint_name).select_related("system").first()
        if endpoint is None:
            raise JudgeRunError(f"no endpoint {endpoint_name!r}: add it first (`manage.py add_endpoint` or the admin)")
    if judge is None:
        if endpoint is None:
            raise JudgeRunError(f"no judge {name!r}: give an endpoint to create it")
        return endpoint
    if endpoint is not None and judge.endpoint_id not in (None, endpoint.pk):
        raise JudgeRunError(f"judge {name!r} is asked through endpoint {judge.endpoint.name!r} "  # type: ignore[union-attr]
                            f"(a judge is one model): name another judge for endpoint {endpoint.name!r}")
    endpoint = endpoint or judge.endpoint
    if endpoint is None and not (judge.base_url and judge.model):
        raise JudgeRunError(f"judge {name!r} has no endpoint (and no base URL and model): give one")
    return endpoint


def _spec_problem(spec: EndpointSpec, endpoint: ModelEndpoint | None) -> str | None:
    if endpoint is not None:
        return endpoint_problem(endpoint)
    try:
        api_key_of(spec)
    except EndpointError as error:
        return error.message
    return None


# ------------------------------------------------------------------------------------------------------
# starting


def judgeable_comparisons(study: Study) -> list[int]:
    """The comparisons a judge is asked about: every comparison of the study but the gold ones."""
    return list(Comparison.objects.filter(study=study, is_gold=False).order_by("id").values_list("id", flat=True))


def start_run(study: Study, judge_name: str, endpoint_name: str = "", run_settings: JudgeRunSettings | None = None,
              created_by=None) -> tuple[JudgeRun, list[Chunk]]:
    """Check everything that can be checked before a request, then record the run and its chunks (and a
    new judge, or the endpoint of a judge that had none).

    Raises JudgeRunError, writing nothing, when the judge or endpoint is unknown, the endpoint's key
    variable is unset, a local folder is not a causal LM, the prompt template is invalid, the study has
    nothing to judge or the judge already has a run going in the study."""
    rs = run_settings or JudgeRunSettings()
    name = judge_name.strip()
    if not name:
        raise JudgeRunError("give the judge's name")
    if not 0 <= rs.temperature <= 2:
        raise JudgeRunError("temperature must be in [0, 2]")
    if rs.max_tokens < 1:
        raise JudgeRunError("max tokens must be at least 1")
    judge = Judge.objects.filter(name=name).select_related("endpoint").first()
    endpoint = _endpoint_for(judge, name, endpoint_name.strip())
    probe = judge or Judge(name=name)  # a new judge: the default prompt
    spec = spec_for(probe, endpoint)
    problem = _spec_problem(spec, endpoint)
    if problem:
        raise JudgeRunError(problem)
    system_prompt, template = prompt_for(study, judge) if judge else (probe.system_prompt, probe.prompt_template)
    problem = template_problem(template)
    if problem:
        raise JudgeRunError(f"prompt template of judge {name!r}: {problem}")
    comparison_ids = judgeable_comparisons(study)
    if not comparison_ids:
        raise JudgeRunError(f"study {study.slug!r} has no comparisons to judge yet (open it, or import votes)")
    if judge is not None:
        active = JudgeRun.objects.filter(study=study, judge=judge).exclude(status__in=JudgeRun.FINISHED).first()
        if active is not None:
            raise JudgeRunError(f"judge {name!r} already has run {active.pk} going in study {study.slug!r}: "
                                f"wait for it or cancel it")
    with transaction.atomic():
        if judge is None:
            from .services import get_or_create_judge

            judge = get_or_create_judge(name, endpoint=endpoint,
                                        system=endpoint.system if endpoint is not None else None)
        elif judge.endpoint_id is None and endpoint is not None:
            judge.endpoint = endpoint
            judge.system = judge.system or endpoint.system
            judge.save(update_fields=["endpoint", "system"])
        stored = JudgeVerdict.objects.filter(judge=judge, comparison_id__in=comparison_ids)
        answered: dict[int, int] = dict(stored.values_list("comparison_id").annotate(n=Count("id")))
        existing = sum(answered.values())
        unparseable = stored.filter(verdict="").count()
        missing = [c for c in comparison_ids if answered.get(c, 0) < len(ORDERS)]
        size = getattr(settings, "JUDGE_CHUNK_COMPARISONS", CHUNK_COMPARISONS)
        chunks = [Chunk(i, missing[start:start + size]) for i, start in enumerate(range(0, len(missing), size))]
        run = JudgeRun.objects.create(
            study=study, judge=judge, endpoint=endpoint, temperature=rs.temperature, max_tokens=rs.max_tokens,
            system_prompt=system_prompt, prompt_template=template, total=len(comparison_ids) * len(ORDERS),
            existing=existing, done=existing, unparseable=unparseable, chunks_total=len(chunks),
            created_by=created_by)
    return run, chunks


def launch(run: JudgeRun, chunks: list[Chunk]) -> None:
    """Queue the chunks (or, embedded, run them in a background thread of this process)."""
    from .tasks import judge_chunk

    if not chunks:
        finish_run(run.pk)
        return
    queue = queue_for(run.endpoint) if run.endpoint is not None else "default"

    def send_all():
        for chunk in chunks:
            judge_chunk.apply_async((run.pk, chunk.index, chunk.comparison_ids), queue=queue)

    send_tasks(send_all, f"judge-run-{run.pk}", BACKGROUND_WHEN_EAGER)


def judge_study(study: Study, judge_name: str, endpoint_name: str = "", run_settings: JudgeRunSettings | None = None,
                created_by=None) -> JudgeRun:
    """Start a run and launch it once the transaction commits."""
    run, chunks = start_run(study, judge_name, endpoint_name, run_settings, created_by)
    transaction.on_commit(lambda: launch(run, chunks))
    return run


# ------------------------------------------------------------------------------------------------------
# one chunk


def pair_vote(answers: list[JudgeAnswer]) -> tuple[str, bool] | None:
    """(winner, left_is_a) of the vote a comparison's answers make, or None when none parsed."""
    parsed = [a for a in answers if a.verdict is not None]
    if not parsed:
        return None
    left_is_a = parsed[0].first_is_a if len(parsed) == 1 else True
    if all(a.verdict == Verdict.BOTH_BAD for a in parsed):
        return Vote.Winner.BOTH_BAD, left_is_a
    label = JudgedComparison(None, tuple(answers)).judge_label
    return str(label), left_is_a


def _store(run: JudgeRun, comparison: Comparison, first_is_a: bool, result: SampleResult) -> bool:
    """Store one answer; False when it was already there (a duplicate delivery)."""
    parsed = parse_verdict(result.text)
    try:
        with transaction.atomic():
            _verdict, created = JudgeVerdict.objects.get_or_create(
                judge_id=run.judge_id, comparison=comparison, first_is_a=first_is_a,
                defaults={"run": run, "answer": result.text, "verdict": parsed.verdict.value if parsed.verdict else "",
                          "shape": parsed.shape[:100], "request": result.request, "tokens_in": result.tokens_in,
                          "tokens_out": result.tokens_out, "latency_ms": result.latency_ms,
                          "finish_reason": result.finish_reason[:30]})
            if created:
                JudgeRun.objects.filter(pk=run.pk).update(
                    done=F("done") + 1, unparseable=F("unparseable") + (0 if parsed.parsed else 1),
                    tokens_in=F("tokens_in") + (result.tokens_in or 0),
                    tokens_out=F("tokens_out") + (result.tokens_out or 0))
    except IntegrityError:  # another delivery of the same chunk stored it first
        return False
    return created


def vote_if_paired(judge: Judge, comparison_id: int) -> bool:
    """The judge's vote on a comparison once both orders are answered (`pair_vote`); True when created.

    Called after the answer's own transaction committed, under a lock on the comparison: of two orders
    answered at once, the later one sees both, and the lock and the vote's uniqueness keep it to one."""
    try:
        with transaction.atomic():
            comparison = Comparison.objects.select_for_update().get(pk=comparison_id)
            answers = [JudgeAnswer(first_is_a, Verdict(verdict) if verdict else None) for first_is_a, verdict in
                       JudgeVerdict.objects.filter(judge=judge, comparison_id=comparison_id)
                       .values_list("first_is_a", "verdict")]
            if len(answers) < len(ORDERS):
                return False
            vote = pair_vote(answers)
            if vote is None or Vote.objects.filter(comparison_id=comparison_id, annotator_id=judge.account_id).exists():
                return False  # nothing parsed, or the judge's verdict was imported before (import_votes --judge)
            votes = HistoricalVotes(Vote.Source.JUDGE)
            votes.add(comparison, judge.account, vote[0], timezone.now(), left_is_a=vote[1])
            votes.write()
    except IntegrityError:
        return False
    return True


def record_failure(run_id: int, chunk_index: int, comparison_id: int | None, first_is_a: bool | None, kind: str,
                   message: str) -> None:
    with transaction.atomic():
        _failure, created = JudgeFailure.objects.get_or_create(
            run_id=run_id, comparison_id=comparison_id, first_is_a=first_is_a,
            defaults={"chunk_index": chunk_index, "kind": kind, "message": message[:2000]})
        if created and comparison_id is not None:
            JudgeRun.objects.filter(pk=run_id).update(failed=F("failed") + 1)


def block_run(run_id: int, chunk_index: int, error: EndpointError) -> None:
    """No answer of this endpoint can come (a missing key, a refused key, an unknown model): say why once,
    and let the other chunks stop."""
    JudgeRun.objects.filter(pk=run_id, error="").update(error=error.message[:2000])
    record_failure(run_id, chunk_index, None, None, error.kind, error.message)


def _stopped(run_id: int) -> bool:
    status, error = JudgeRun.objects.values_list("status", "error").get(pk=run_id)
    return status in (JudgeRun.Status.CANCELLED, JudgeRun.Status.FAILED) or bool(error)


def run_chunk(run_id: int, chunk_index: int, comparison_ids: list[int], final: bool = True,
              make_client: Callable[[EndpointSpec], object] = client_for) -> ChunkOutcome:
    """Ask for the chunk's missing (comparison, order)s and store each answer as it arrives.

    Retryable failures (unreachable, timeouts, 5xx, still rate-limited) are returned, not recorded,
    unless `final`: the task retries the chunk later, and the retry asks only for what is still missing.
    A finished chunk (final, or nothing retryable left) is marked done; the last one finishes the run."""
    outcome = ChunkOutcome()
    run = JudgeRun.objects.select_related("judge__account", "endpoint").get(pk=run_id)
    if _stopped(run_id):
        _chunk_done(run_id, chunk_index)
        return outcome
    if run.status == JudgeRun.Status.QUEUED:
        JudgeRun.objects.filter(pk=run_id, status=JudgeRun.Status.QUEUED).update(
            status=JudgeRun.Status.RUNNING, started_at=timezone.now())
    spec = spec_for(run.judge, run.endpoint)
    try:
        client: object = make_client(spec)
    except EndpointError as error:
        block_run(run_id, chunk_index, error)
        _chunk_done(run_id, chunk_index)
        return outcome
    stored = set(JudgeVerdict.objects.filter(judge_id=run.judge_id, comparison_id__in=comparison_ids)
                 .values_list("comparison_id", "first_is_a"))
    comparisons = {c.pk: c for c in Comparison.objects.filter(pk__in=comparison_ids).select_related(
        "instance", "generation_a", "generation_b")}
    todo = [(c, order) for c in comparison_ids if c in comparisons for order in ORDERS if (c, order) not in stored]
    # A redelivered chunk whose worker died between an answer and its vote: the pair's vote first.
    paired = {c for c in comparisons if all((c, order) in stored for order in ORDERS)}
    voted = set(Vote.objects.filter(comparison_id__in=paired, annotator_id=run.judge.account_id)
                .values_list("comparison_id", flat=True))
    votes = sum(vote_if_paired(run.judge, c) for c in sorted(paired - voted))
    limiter = get_limiter()
    limits = Limits.of(spec)

    def ask(comparison_id: int, first_is_a: bool) -> SampleResult:
        comparison = comparisons[comparison_id]
        a, b = comparison.generation_a.text, comparison.generation_b.text
        first, second = (a, b) if first_is_a else (b, a)
        request = SampleRequest(prompt=render_prompt(run.prompt_template, comparison.instance.input, first, second),
                                system_prompt=run.system_prompt, temperature=run.temperature,
                                max_tokens=run.max_tokens, seed=0)
        with limiter.slot(limits, tokens=request.estimated_tokens()):
            return client.sample(request)  # type: ignore[attr-defined]

    workers = 1 if spec.kind == ModelEndpoint.Kind.LOCAL else spec.max_concurrency
    fatal: EndpointError | None = None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"judge-{spec.name}") as pool:
        pending: dict[Future, tuple[int, bool]] = {}
        queue = list(todo)
        while queue or pending:
            while queue and len(pending) < workers:
                key = queue.pop(0)
                pending[pool.submit(ask, *key)] = key
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                comparison_id, first_is_a = pending.pop(future)
                try:
                    result = future.result()
                except EndpointError as error:
                    if error.fatal:
                        fatal = error
                    elif error.retryable and not final:
                        outcome.retryable.append((comparison_id, first_is_a, error))
                    else:
                        record_failure(run_id, chunk_index, comparison_id, first_is_a, error.kind, error.message)
                    continue
                if _store(run, comparisons[comparison_id], first_is_a, result):
                    outcome.created += 1
                    votes += vote_if_paired(run.judge, comparison_id)
            if fatal is not None or _stopped(run_id):
                queue = []
    if votes:
        votes_changed_on_commit(run.study_id)
    if fatal is not None:
        block_run(run_id, chunk_index, fatal)
    if final or not outcome.retryable:
        _chunk_done(run_id, chunk_index)
    return outcome


def _chunk_done(run_id: int, chunk_index: int) -> None:
    if JudgeRun.mark_chunk_done(run_id, chunk_index):
        finish_run(run_id)


def record_chunk_error(run_id: int, chunk_index: int, error: Exception) -> None:
    """A chunk that raised something unexpected: recorded on the run, and the chunk counts as finished."""
    record_failure(run_id, chunk_index, None, None, "error", f"{error.__class__.__name__}: {error}")
    _chunk_done(run_id, chunk_index)


# ------------------------------------------------------------------------------------------------------
# finishing, cancelling, reporting


def finish_run(run_id: int) -> JudgeRun:
    with transaction.atomic():
        run = JudgeRun.objects.select_for_update().get(pk=run_id)
        if run.finished_at is not None:
            return run
        if run.status == JudgeRun.Status.CANCELLED:
            pass
        elif run.error and run.done == run.existing:
            run.status = JudgeRun.Status.FAILED
        elif run.done < run.total or run.failed or run.error or run.failures.exists():
            run.status = JudgeRun.Status.INCOMPLETE
        else:
            run.status = JudgeRun.Status.DONE
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "finished_at"])
    return run


def cancel_run(run: JudgeRun) -> bool:
    """Stop a run: its remaining chunks ask nothing, the answers stored so far stay. False if it had finished."""
    updated = JudgeRun.objects.filter(pk=run.pk).exclude(status__in=JudgeRun.FINISHED).update(
        status=JudgeRun.Status.CANCELLED, finished_at=timezone.now())
    run.refresh_from_db()
    return bool(updated)


def progress(run: JudgeRun) -> dict:
    run.refresh_from_db()
    return {"status": run.status, "done": run.done, "total": run.total, "unparseable": run.unparseable,
            "failed": run.failed, "chunks_done": len(run.chunks_done), "chunks_total": run.chunks_total,
            "percent": run.percent}
