"""Judge chunk tasks: `default` queue for servers, `gpu` for local folders (runs.launch picks it).

acks_late + reject_on_worker_lost: a chunk whose worker died is delivered again and asks only for the
(comparison, order)s still unanswered. A chunk with retryable failures (server unreachable, timeouts,
5xx) is retried with generation's backoff; its last attempt records them on the run."""
from celery import shared_task

from generation.tasks import MAX_RETRIES, backoff

from . import runs


@shared_task(bind=True, name="judges.tasks.judge_chunk", acks_late=True, reject_on_worker_lost=True,
             max_retries=MAX_RETRIES)
def judge_chunk(self, run_id: int, chunk_index: int, comparison_ids: list[int]) -> int:
    final = self.request.is_eager or self.request.retries >= self.max_retries
    try:
        outcome = runs.run_chunk(run_id, chunk_index, comparison_ids, final=final)
    except Exception as exc:
        if final:
            runs.record_chunk_error(run_id, chunk_index, exc)
            raise
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc
    if outcome.retryable:
        first = outcome.retryable[0][2]
        raise self.retry(exc=RuntimeError(first.message), countdown=backoff(self.request.retries))
    return outcome.created
