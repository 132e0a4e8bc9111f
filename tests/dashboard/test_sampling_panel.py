"""The dashboard shows the sampling runs in progress, each with its live progress, and drops them once done."""
from __future__ import annotations

import pytest

from generation.models import GenerationRun
from tests.factories import make_prompt_dataset


@pytest.mark.django_db
def test_a_running_sampling_run_is_on_the_dashboard_with_its_live_progress(staff_client):
    dataset = make_prompt_dataset("dash-prompts", n_instances=2)
    run = GenerationRun.objects.create(dataset=dataset, k=3, total=6, done=2, status=GenerationRun.Status.RUNNING)
    page = staff_client.get("/dashboard/").content.decode()
    assert "Sampling in progress" in page and f'href="/generation/runs/{run.pk}/"' in page
    assert f'hx-get="/generation/runs/{run.pk}/progress/"' in page and "2 / 6" in page

    GenerationRun.objects.filter(pk=run.pk).update(status=GenerationRun.Status.DONE, done=6)
    assert "Sampling in progress" not in staff_client.get("/dashboard/").content.decode()
