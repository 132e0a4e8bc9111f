"""Public leaderboard pages: the index of published studies, one study's leaderboard and its JSON.

Staff see live standings; everybody else the latest release (see ranking.presenters)."""
from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotations.models import Study
from lib.decorators import staff_required

from .presenters import leaderboard_payload, page_context, public_release, public_studies, release_payload
from .services import release_leaderboard

__all__ = ["index", "study_leaderboard", "study_leaderboard_json", "release_now", "leaderboard_payload"]


def _shown(request, slug: str):
    """(study, release): release None means the live standings (staff only); 404 when nothing may be shown."""
    study = get_object_or_404(Study, slug=slug)
    if request.user.is_staff:
        return study, None
    release = public_release(study, request.user)
    if release is None:
        raise Http404("No published leaderboard for this study.")
    return study, release


def index(request):
    studies = public_studies(request.user)
    hidden = None
    if request.user.is_staff:
        hidden = Study.objects.exclude(pk__in=studies.values("pk")).order_by("name", "slug")
    return render(request, "ranking/index.html", {"studies": studies, "hidden_studies": hidden})


def study_leaderboard(request, slug):
    study, release = _shown(request, slug)
    return render(request, "ranking/leaderboard.html", page_context(study, release))


def study_leaderboard_json(request, slug):
    study, release = _shown(request, slug)
    return JsonResponse(release_payload(release) if release is not None else leaderboard_payload(study))


@staff_required
@require_POST
def release_now(request, slug):
    """Staff publish the current standings now (their call: it can tell recent annotators something)."""
    study = get_object_or_404(Study, slug=slug)
    release_leaderboard(study, "staff")
    messages.success(request, "The current standings are now the public leaderboard.")
    return redirect("ranking:study", slug=slug)
