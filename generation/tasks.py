"""Generation chunk tasks: `default` queue for servers, `gpu` for local folders (services.queue_for).

acks_late + reject_on_worker_lost: a chunk whose worker died is delivered again and asks only for what
is still missing. A chunk with retryable failures (server unreachable, timeouts, 5xx) is retried with
backoff; its last attempt records them on the run."""
from celery import shared_task
from django.conf import settings

from . import services

MAX_RETRIES = 5


def backoff(retries: int) -> int:
    """Seconds before retry number `retries` + 1 (GENERATION_RETRY_SECONDS, the last one repeated)."""
    steps = settings.GENERATION_RETRY_SECONDS
    return int(steps[min(retries, len(steps) - 1)])


@shared_task(bind=True, name="generation.tasks.generate_chunk", acks_late=True, reject_on_worker_lost=True,
             max_retries=MAX_RETRIES)
def generate_chunk(self, run_id: int, chunk_index: int, system_id: int, instance_ids: list[int]) -> int:
    final = self.request.is_eager or self.request.retries >= self.max_retries
    try:
        outcome = services.run_chunk(run_id, chunk_index, system_id, instance_ids, final=final)
    except Exception as exc:
        if final:
            services.record_chunk_error(run_id, chunk_index, system_id, exc)
            raise
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc
    if outcome.retryable:
        first = outcome.retryable[0][2]
        raise self.retry(exc=RuntimeError(first.message), countdown=backoff(self.request.retries))
    return outcome.created
