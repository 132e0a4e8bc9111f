"""Public leaderboard pages: the index of published studies, one study's leaderboard and its JSON."""
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, render

from annotations.models import Study

from .presenters import can_view, leaderboard_payload, page_context, public_studies

__all__ = ["index", "study_leaderboard", "study_leaderboard_json", "leaderboard_payload"]


def _visible_study(request, slug: str) -> Study:
    study = get_object_or_404(Study, slug=slug)
    if not can_view(study, request.user):
        raise Http404("No published leaderboard for this study.")
    return study


def index(request):
    studies = public_studies()
    hidden = None
    if request.user.is_staff:
        hidden = Study.objects.exclude(pk__in=studies.values("pk")).order_by("name", "slug")
    return render(request, "ranking/index.html", {"studies": studies, "hidden_studies": hidden})


def study_leaderboard(request, slug):
    return render(request, "ranking/leaderboard.html", page_context(_visible_study(request, slug)))


def study_leaderboard_json(request, slug):
    return JsonResponse(leaderboard_payload(_visible_study(request, slug)))
