"""Large exports on the `default` queue: one idempotent task per ExportJob.

The file is written to a temporary name and renamed into place, so a redelivered task (after a worker
died) simply writes the whole file again and a half-written file is never offered for download.
"""
import os
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.utils import timezone

PROGRESS_EVERY = 1000


def export_path(job) -> Path:
    from .exports import SUFFIXES

    return Path("exports") / f"{job.study.slug}-{job.pk}-{SUFFIXES[job.format]}"


def write_export(job_id: int) -> str:
    from .exports import export_size, iter_csv, iter_jsonl, records_for
    from .models import ExportJob

    job = ExportJob.objects.select_related("study").get(pk=job_id)
    total = export_size(job.study, job.format)
    ExportJob.objects.filter(pk=job_id).update(status=ExportJob.Status.RUNNING, started_at=timezone.now(), done=0,
                                               total=total, error="")
    relative = export_path(job)
    target = Path(settings.MEDIA_ROOT) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    written = 0

    def counted(records):
        nonlocal written
        for record in records:
            written += 1
            if written % PROGRESS_EVERY == 0:
                ExportJob.objects.filter(pk=job_id).update(done=min(written, total))
            yield record

    records = counted(records_for(job.study, job.format))
    chunks = iter_csv(records) if job.format == "csv" else iter_jsonl(records)
    with open(partial, "w", encoding="utf-8", newline="") as out:
        for chunk in chunks:
            out.write(chunk)
    os.replace(partial, target)
    # Votes may have arrived while writing: the file holds what was read, and says so in `done`.
    ExportJob.objects.filter(pk=job_id).update(status=ExportJob.Status.DONE, file=str(relative),
                                               done=written, total=max(total, written),
                                               finished_at=timezone.now())
    return str(relative)


@shared_task(bind=True, name="dashboard.tasks.run_export", acks_late=True, reject_on_worker_lost=True,
             max_retries=3, default_retry_delay=10)
def run_export(self, job_id: int) -> str:
    from .models import ExportJob

    try:
        return write_export(job_id)
    except Exception as exc:
        if self.request.is_eager or self.request.retries >= self.max_retries:
            ExportJob.objects.filter(pk=job_id).update(status=ExportJob.Status.FAILED,
                                                       error=f"{exc.__class__.__name__}: {exc}"[:2000],
                                                       finished_at=timezone.now())
            raise
        raise self.retry(exc=exc) from exc
