"""Staff pages of the generation app: model endpoints, starting a run from a form, and a run's page whose
progress fragment htmx polls every 2 s while the run (or the separability it chains) is still going.

Thin, staff-only views over `generation.services` and `generation.forms`: a bad form or a run that cannot
start (`RunError`) is shown on the form and writes nothing. Systems are named freely here: these pages are
for researchers, never for annotators. docs/design.md §6.
"""
from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotations.models import System
from lib.decorators import staff_required

from . import services
from .forms import EndpointForm, RunForm
from .models import GenerationRun, ModelEndpoint

RUNS_SHOWN = 50


@require_GET
@staff_required
def index(request):
    runs = (GenerationRun.objects.select_related("dataset").prefetch_related("systems")
            .order_by("-created_at", "-id")[:RUNS_SHOWN])
    return render(request, "generation/index.html", {
        "runs": runs, "runs_shown": RUNS_SHOWN, "endpoints": ModelEndpoint.objects.count()})


@require_http_methods(["GET", "POST"])
@staff_required
def new_run(request):
    if request.method == "POST":
        form = RunForm(request.POST)
        if form.is_valid():
            try:
                run = services.generate(form.cleaned_data["dataset"], form.cleaned_data["systems"],
                                        form.run_settings(), created_by=request.user)
            except services.RunError as error:
                form.add_error(None, f"The run could not start: {error}. Nothing was written.")
            else:
                messages.success(request, f"Generation run {run.pk} started: {run.total} samples "
                                          f"({run.existing} already stored).")
                return redirect("generation:run", pk=run.pk)
    else:
        form = RunForm(initial={"dataset": request.GET.get("dataset")} if request.GET.get("dataset") else None)
    return render(request, "generation/run_form.html", {
        "form": form, "has_endpoints": ModelEndpoint.objects.filter(system__isnull=False).exists()})


def progress_context(run: GenerationRun) -> dict:
    """Everything the progress fragment shows; `live` says whether htmx should ask again in 2 s."""
    from separability.models import SeparabilityRun

    names = dict(System.objects.filter(pk__in=[int(k) for k in run.blocked]).values_list("pk", "name"))
    blocked = [{"system": names.get(int(k), f"system {k}"), "message": v} for k, v in sorted(run.blocked.items())]
    new = run.done - run.existing
    separability = run.separability_run
    chain_pending = (run.chain_separability and separability is None and not run.error
                     and run.status in (GenerationRun.Status.DONE, GenerationRun.Status.INCOMPLETE))
    if chain_pending and run.finished_at is not None:  # embedded, it computes before the link is written
        separability = (SeparabilityRun.objects.filter(dataset=run.dataset, created_at__gte=run.finished_at)
                        .order_by("id").first())
    separability_active = separability is not None and separability.status in ("queued", "running")
    return {
        "run": run,
        "blocked": blocked,
        "failure_kinds": services.failures_by_kind(run),
        "new_samples": new,
        "usage_unreported": new > 0 and run.usage_missing == new,
        "report": sorted(run.report.items()),
        "report_problems": any(r["identical"] or r["empty"] or r["missing"] for r in run.report.values()),
        "separability": separability,
        "chain_pending": chain_pending,
        "live": not run.is_finished or chain_pending or separability_active,
    }


def _run(pk: int) -> GenerationRun:
    return get_object_or_404(GenerationRun.objects.select_related("dataset", "separability_run", "created_by"),
                             pk=pk)


@require_GET
@staff_required
def run_detail(request, pk):
    run = _run(pk)
    return render(request, "generation/run.html", {**progress_context(run), "systems": run.systems.order_by("name")})


@require_GET
@staff_required
def run_progress(request, pk):
    return render(request, "generation/_progress.html", progress_context(_run(pk)))


@require_POST
@staff_required
def cancel(request, pk):
    run = _run(pk)
    if services.cancel_run(run):
        messages.success(request, f"Run {run.pk} cancelled: its remaining chunks stop; the {run.done} samples "
                                  f"stored so far stay.")
    else:
        messages.info(request, f"Run {run.pk} had already finished ({run.get_status_display().lower()}): "
                               f"there is nothing to cancel.")
    return redirect("generation:run", pk=run.pk)


@require_GET
@staff_required
def endpoint_list(request):
    endpoints = ModelEndpoint.objects.select_related("system").order_by("name")
    return render(request, "generation/endpoints.html", {"endpoints": endpoints})


@require_http_methods(["GET", "POST"])
@staff_required
def endpoint_form(request, name=None):
    endpoint = get_object_or_404(ModelEndpoint, name=name) if name is not None else None
    form = EndpointForm(request.POST or None, instance=endpoint)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        messages.success(request, f"Endpoint {saved.name} {'saved' if endpoint else 'added'}"
                                  f"{f' for system {saved.system.name}' if saved.system else ''}.")
        return redirect(reverse("generation:endpoints") + f"#endpoint-{saved.name}")
    return render(request, "generation/endpoint_form.html", {"form": form, "endpoint": endpoint})
