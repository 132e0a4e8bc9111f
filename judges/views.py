"""The study's judges page (staff only): the human leaderboard beside each judge's, and the judge table
(agreement with the human majority, Cohen's kappa, position consistency, position bias, length bias,
self-preference; each with its n and 95% bootstrap interval); judge runs (start one, follow its progress,
cancel it) and each judge's prompt for the study. A GET never writes; the POSTs are thin over judges.runs."""
from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from annotations.models import Study
from generation.services import failures_by_kind
from lib.decorators import staff_required
from ranking.presenters import method_payload, study_snapshots

from . import runs
from .forms import JudgePromptForm, JudgeRunForm
from .metrics import Estimate, SideBias
from .models import Judge, JudgeRun
from .services import study_judge_tables

RUNS_SHOWN = 10


def _figure(estimate: Estimate, scale: float = 1.0, lower: float = 0.0) -> dict[str, Any]:
    """An estimate for the template, with the positions (percent of a [lower, lower + scale] axis) of its
    point and interval for the bar that draws it."""
    def at(value: float | None) -> float | None:
        return None if value is None else max(0.0, min(100.0, 100.0 * (value - lower) / scale))

    low, high, point = at(estimate.low), at(estimate.high), at(estimate.value)
    return {"value": estimate.value, "n": estimate.n, "low": estimate.low, "high": estimate.high,
            "bar_left": low, "bar_width": None if low is None or high is None else high - low, "point": point}


def _side(bias: SideBias | None) -> dict[str, Any] | None:
    if bias is None:
        return None
    return {"judge": _figure(bias.judge), "human": _figure(bias.human),
            "difference": _figure(bias.difference, scale=2.0, lower=-1.0)}


def _run_context(run: JudgeRun) -> dict[str, Any]:
    # generation's table reads only `run.failures`, whose rows have the same kind and message
    return {"run": run, "failures": failures_by_kind(run)}


def _prompt_form(study: Study, judge_name: str) -> JudgePromptForm | None:
    judge = Judge.objects.filter(name=judge_name).first() or Judge.objects.order_by("name").first()
    if judge is None:
        return None
    system_prompt, template = runs.prompt_for(study, judge)
    return JudgePromptForm(initial={"judge": judge.name, "system_prompt": system_prompt,
                                    "prompt_template": template})


@require_GET
@staff_required
def study_judges(request, slug):
    study = get_object_or_404(Study.objects.select_related("dataset"), slug=slug)
    human = method_payload(study_snapshots(study)["bt"])
    human_rows = {row["system"]: row for row in human.get("ratings", [])}
    judges = []
    for table in study_judge_tables(study):
        report = table.report
        judge_rows = {row["system"]: row for row in (table.board or {}).get("ratings", [])}
        boards = [{"system": system, "human": human_rows.get(system), "judge": judge_rows.get(system)}
                  for system in sorted(set(human_rows) | set(judge_rows),
                                       key=lambda s: (human_rows.get(s, {}).get("rank", 10**6), s))]
        judges.append({
            "name": table.name, "judge": table.judge, "comparisons": table.comparisons,
            "answers": report.answers, "unparseable": report.unparseable,
            "agreement": _figure(report.agreement), "kappa": _figure(report.cohen_kappa, scale=2.0, lower=-1.0),
            "position_consistency": _figure(report.position_consistency),
            "position_bias": _figure(report.position_bias),
            "length_bias": _side(report.length_bias), "self_preference": _side(report.self_preference),
            "confusion": report.confusion, "board_error": table.board_error, "boards": boards,
        })
    judge_runs = [_run_context(run) for run in
                  JudgeRun.objects.filter(study=study).select_related("judge", "endpoint", "study")[:RUNS_SHOWN]]
    return render(request, "judges/study.html", {
        "study": study, "human": human, "judges": judges, "runs": judge_runs, "run_form": JudgeRunForm(),
        "judge_names": list(Judge.objects.order_by("name").values_list("name", flat=True)),
        "prompt_form": _prompt_form(study, request.GET.get("prompt_judge", "")),
    })


@staff_required
@require_POST
def start_run(request, slug):
    study = get_object_or_404(Study, slug=slug)
    form = JudgeRunForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items())
        messages.error(request, f"Could not start a judge run: {problems}")
        return redirect("judges:study", slug)
    try:
        with transaction.atomic():
            run = runs.judge_study(study, form.cleaned_data["judge"], form.endpoint_name(), form.run_settings(),
                                   created_by=request.user)
    except runs.JudgeRunError as error:
        messages.error(request, f"Could not start a judge run: {error}")
    else:
        messages.success(request, f"Judge run {run.pk} started: {run.total} answers, {run.existing} already stored.")
    return redirect("judges:study", slug)


@require_GET
@staff_required
def run_progress(request, slug, pk):
    run = get_object_or_404(JudgeRun.objects.select_related("judge", "endpoint", "study"), pk=pk, study__slug=slug)
    return render(request, "judges/_run_progress.html", _run_context(run))


@staff_required
@require_POST
def cancel_run(request, slug, pk):
    run = get_object_or_404(JudgeRun, pk=pk, study__slug=slug)
    if runs.cancel_run(run):
        messages.success(request, f"Judge run {run.pk} cancelled; the answers stored so far stay.")
    else:
        messages.error(request, f"Judge run {run.pk} had already finished.")
    return redirect("judges:study", slug)


@staff_required
@require_POST
def save_prompt(request, slug):
    study = get_object_or_404(Study, slug=slug)
    form = JudgePromptForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items())
        messages.error(request, f"The prompt was not saved: {problems}")
        return redirect("judges:study", slug)
    judge = form.cleaned_data["judge"]
    runs.save_prompt(study, judge, form.cleaned_data["system_prompt"], form.cleaned_data["prompt_template"],
                     by=request.user)
    messages.success(request, f"{judge.name}'s prompt for this study saved; answers already stored are kept "
                              f"(a run asks only for missing ones).")
    return redirect(f"{reverse('judges:study', args=[slug])}?{urlencode({'prompt_judge': judge.name})}")
