"""Separability tasks on the `gpu` queue: one chunk of instances per task, retried, redelivered on a
worker's death (acks_late + reject_on_worker_lost), and idempotent (rows are upserted)."""
from celery import shared_task

from . import services


@shared_task(bind=True, name="separability.tasks.compute_separability_chunk", acks_late=True,
             reject_on_worker_lost=True, max_retries=3, default_retry_delay=10)
def compute_separability_chunk(self, run_id: int, chunk_index: int, instance_ids: list[int]) -> int:
    try:
        return services.compute_chunk(run_id, chunk_index, instance_ids)
    except Exception as exc:
        if self.request.is_eager or self.request.retries >= self.max_retries:
            services.record_chunk_failure(run_id, chunk_index, f"{exc.__class__.__name__}: {exc}")
            raise
        raise self.retry(exc=exc) from exc


@shared_task(name="separability.tasks.warm_up_model", acks_late=True)
def warm_up_model() -> str:
    """Load the model in this worker process (useful right after a GPU worker starts)."""
    scorer = services.get_scorer()
    return f"{scorer.model_path} on {scorer.device}"
