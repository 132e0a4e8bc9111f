"""The researcher dashboard: thin, staff-only views over `dashboard.queries` and `dashboard.exports`.

Anonymous visitors are sent to the login page; signed-in users who are not staff get 403. Systems are
named freely here: these pages are for researchers, never for annotators.
"""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotations import quality
from annotations.models import AnnotatorExclusion, Dataset, Study, Vote
from lib.decorators import staff_required

from . import analysis, charts, exports, queries
from .models import ExportJob


@require_GET
@staff_required
def index(request):
    from separability.models import SeparabilityRun

    overview = queries.studies_overview()
    datasets = Dataset.objects.order_by("slug")
    active = SeparabilityRun.objects.filter(status__in=(SeparabilityRun.Status.QUEUED, SeparabilityRun.Status.RUNNING))
    return render(request, "dashboard/index.html", {
        "generation_runs": _active_generation_runs(request),
        "overview": overview, "datasets": datasets,
        "active_runs": [{"dataset": run.dataset.slug, "run": queries.run_progress(run)}
                        for run in active.select_related("dataset").order_by("id")],
        "progress_chart": charts.progress_chart(overview),
    })


def _active_generation_runs(request) -> list[dict]:
    """Sampling runs not finished yet, each with its own htmx progress fragment (the generation app's)."""
    from django.template.loader import render_to_string

    from generation.models import GenerationRun
    from generation.views import progress_context

    runs = (GenerationRun.objects.exclude(status__in=GenerationRun.FINISHED).select_related("dataset")
            .order_by("id")[:10])
    return [{"run": run, "fragment": render_to_string("generation/_progress.html", progress_context(run), request)}
            for run in runs]


@require_GET
@staff_required
def study(request, slug):
    study = get_object_or_404(Study.objects.select_related("dataset"), slug=slug)
    progress = queries.study_progress(study)
    computed, stored = analysis.for_page(study, progress["votes"])
    if computed is None:  # a large study never analysed yet: the recompute refreshes the analysis
        from ranking.services import schedule_leaderboard_recompute

        schedule_leaderboard_recompute(study.pk)
        computed = analysis.EMPTY
    exclusions = {x.annotator_id: x for x in AnnotatorExclusion.objects.filter(study=study)}
    annotators = [{**row, "exclusion": exclusions.get(row["annotator_id"])}
                  for row in computed["annotators"][:analysis.ANNOTATOR_ROWS]]
    pairs = computed["consistency"]["pairs"]
    if len(pairs) > analysis.CONSISTENCY_PAIRS:  # 100 systems make 4,950 pairs: draw those with most units
        pairs = sorted(pairs, key=lambda p: -(p.get("n") or 0))[:analysis.CONSISTENCY_PAIRS]
    consistency = {**computed["consistency"], "pairs_total": len(computed["consistency"]["pairs"]), "pairs": pairs}
    for i, pair in enumerate(consistency["pairs"], start=1):
        pair["chart_id"], pair["chart"] = f"scatter-{i}", charts.scatter_chart(pair, consistency["metric"])
    boards = queries.leaderboards(study)
    for i, board in enumerate(boards["comparisons"], start=1):
        board["chart_id"], board["chart"] = f"board-chart-{i}", charts.board_chart(board)
    timeline = computed["timeline"]
    return render(request, "dashboard/study.html", {
        "study": study,
        "progress": progress,
        "analysis": stored,
        "analysis_pending": computed is analysis.EMPTY,
        "annotators": annotators,
        "annotators_total": len(computed["annotators"]),
        "agreement": computed["agreement"],
        "disagreed": computed["disagreed"],
        "consistency": consistency,
        "boards": boards,
        "timeline_chart": charts.timeline_chart(timeline),
        "timeline": timeline,
        "annotator_chart": charts.annotator_chart(annotators),
        "adaptive": computed.get("adaptive"),
        "gain_chart": charts.gain_chart(computed["adaptive"]) if computed.get("adaptive") else None,
        "export_formats": exports.FORMATS,
        "large": progress["votes"] > exports.LARGE_EXPORT_VOTES,
        "large_limit": exports.LARGE_EXPORT_VOTES,
        "jobs": ExportJob.objects.filter(study=study)[:5],
        "flags": queries.item_flags(study),
    })


@require_GET
@staff_required
def planner(request, slug):
    """The votes-needed planner's fragment on the dashboard's study page (htmx swaps it in)."""
    from .planner import study_plan

    study = get_object_or_404(Study, slug=slug)
    return _planner_fragment(request, study, study_plan(study, queries.study_progress(study)["votes"]))


@require_GET
@staff_required
def form_planner(request):
    """The study form's planner (htmx, the form's selection fields as query parameters): the plan of the
    comparisons those settings would create, saved or not; `study` names the study being edited, whose
    board then stands in as a pilot. Writes nothing; bad settings get the fragment's message."""
    from .planner import form_plan

    study = Study.objects.filter(slug=request.GET.get("study") or None).first()
    current = queries.study_progress(study)["votes"] if study is not None else 0
    unsaved, planned = form_plan(request.GET, study, current)
    return _planner_fragment(request, unsaved, planned)


def _planner_fragment(request, study, planned):
    rows = [] if "error" in planned else [
        {"policy": policy, "separate": planned["separate"][policy], "final": values[-1] if values else None}
        for policy, values in planned["curves"].items()]
    chart = None if "error" in planned else charts.plan_chart(planned)
    if chart is not None and (study is None or study.pk is None):  # a new study has no votes to mark
        chart["options"]["plugins"]["marks"]["lines"] = []
    return render(request, "dashboard/_planner.html", {"study": study, "plan": planned, "rows": rows,
                                                       "plan_chart": chart})


@require_POST
@staff_required
def exclude_annotator(request, slug, user_id):
    """Leave an annotator out of the study's results (reason kept), or bring them back (`restore`)."""
    study = get_object_or_404(Study, slug=slug)
    annotator = get_user_model().objects.filter(pk=user_id).first()
    if annotator is None or not Vote.objects.filter(study=study, annotator=annotator).exists():
        raise Http404("This person has no vote in this study.")
    try:
        if request.POST.get("action") == "restore":
            changed = quality.restore_annotator(study, annotator)
            messages.success(request, f"Annotator restored: {changed} vote{'s' if changed != 1 else ''} count again.")
        else:
            changed = quality.exclude_annotator(study, annotator, request.POST.get("reason", ""), by=request.user)
            messages.success(request, f"Annotator excluded: {changed} vote{'s' if changed != 1 else ''} left out; "
                             "the leaderboards and agreement are recomputed.")
    except quality.QualityError as exc:
        messages.error(request, str(exc))
    return redirect(reverse("dashboard:study", args=[slug]) + "#annotators-h")


@require_GET
@staff_required
def separability(request, slug):
    dataset = get_object_or_404(Dataset, slug=slug)
    counts = queries.separability_pair_counts(dataset)
    metrics = queries.separability_metrics(dataset, counts)
    studies = list(dataset.studies.order_by("slug"))
    default_metric = studies[0].policy_metric if studies else "bertscore"
    metric = request.GET.get("metric") or (default_metric if default_metric in metrics else
                                           (metrics[0] if metrics else default_metric))
    if metrics and metric not in metrics:
        messages.error(request, f"No separability for metric {metric!r}; showing {metrics[0]}.")
        metric = metrics[0]
    pairs = queries.separability_pairs(dataset, metric, counts)
    pair_key = request.GET.get("pair", "all")
    pair = next((p for p in pairs if p["key"] == pair_key), None)
    if pair_key != "all" and pair is None:
        messages.error(request, f"No system pair {pair_key!r} in this dataset; showing all pairs.")
    overview = queries.separability_overview(dataset, metric, pair)
    runs = [queries.run_progress(r) for r in dataset.separability_runs.all()[:10]]
    return render(request, "dashboard/separability.html", {
        "dataset": dataset, "metric": metric, "metrics": metrics, "pairs": pairs, "pair": pair,
        "overview": overview, "runs": runs, "studies": studies,
        "histogram_chart": charts.histogram_chart(overview),
        "extremes": [
            {"id": "lowest", "title": "Lowest separability: near-identical outputs", "units": overview["lowest"]},
            {"id": "highest", "title": "Highest separability: clearly different outputs", "units": overview["highest"]},
        ],
        "any_active": any(r["active"] for r in runs),
    })


@require_POST
@staff_required
def start_run(request, slug):
    from .runs import start_separability_run

    dataset = get_object_or_404(Dataset, slug=slug)
    if not dataset.instances.exists():
        messages.error(request, "This dataset has no instances to compute separability for.")
    else:
        try:
            run = start_separability_run(dataset)
        except ValueError as exc:
            messages.error(request, f"Could not start a run: {exc}")
        else:
            messages.success(request, f"Separability run {run.pk} started." if run else "Separability run started.")
    return redirect(reverse("dashboard:separability", args=[slug]))


@require_GET
@staff_required
def run_progress(request, pk):
    from separability.models import SeparabilityRun

    run = get_object_or_404(SeparabilityRun, pk=pk)
    return render(request, "dashboard/_run_progress.html", {"run": queries.run_progress(run)})


def _stream(chunks, filename: str, content_type: str):
    response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@staff_required
def export_votes(request, slug, fmt):
    """Small exports stream at once; large ones ask for confirmation (POST) and run as a task."""
    study = get_object_or_404(Study, slug=slug)
    if fmt not in exports.FORMATS:
        raise Http404("Unknown export format.")
    size = exports.export_size(study, fmt)
    if size <= exports.LARGE_EXPORT_VOTES:
        if request.method not in ("GET", "HEAD"):
            return redirect(request.path)
        return _stream(exports.iter_export_text(study, fmt), exports.export_filename(study.slug, fmt),
                       exports.CONTENT_TYPES[fmt])
    if request.method == "POST":
        job = ExportJob.objects.create(study=study, format=fmt, total=size, created_by=request.user)
        from .tasks import run_export

        try:
            run_export.apply_async((job.pk,), queue="default")
        except Exception as exc:  # noqa: BLE001 - eager failure (recorded on the job) or broker down
            ExportJob.objects.filter(pk=job.pk, status__in=("queued", "running")).update(
                status=ExportJob.Status.FAILED, error=f"could not run the export: {exc}")
        return redirect(reverse("dashboard:export_job", args=[job.pk]))
    return render(request, "dashboard/export_confirm.html", {
        "study": study, "fmt": fmt, "size": size, "limit": exports.LARGE_EXPORT_VOTES})


@require_GET
@staff_required
def export_separability(request, slug):
    dataset = get_object_or_404(Dataset, slug=slug)
    metric = request.GET.get("metric") or None
    if metric and metric not in queries.separability_metrics(dataset):
        raise Http404("No separability for that metric.")
    name = f"{dataset.slug}-separability{'-' + metric if metric else ''}.jsonl"
    return _stream(exports.iter_separability_jsonl(dataset, metric), name, exports.CONTENT_TYPES["jsonl"])


@require_GET
@staff_required
def export_job(request, pk):
    job = get_object_or_404(ExportJob.objects.select_related("study"), pk=pk)
    return render(request, "dashboard/export_job.html", {"job": job})


@require_GET
@staff_required
def export_progress(request, pk):
    job = get_object_or_404(ExportJob.objects.select_related("study"), pk=pk)
    return render(request, "dashboard/_export_progress.html", {"job": job})


@require_GET
@staff_required
def export_download(request, pk):
    job = get_object_or_404(ExportJob.objects.select_related("study"), pk=pk, status=ExportJob.Status.DONE)
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / job.file).resolve()
    if root not in path.parents or not path.is_file():
        raise Http404("The export file is gone; start the export again.")
    response = FileResponse(open(path, "rb"), as_attachment=True, filename=path.name,
                            content_type=exports.CONTENT_TYPES[job.format])
    return response
