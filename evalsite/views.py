"""Site-wide pages that belong to no app: the home page and the health check."""
import uuid

from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.defaults import page_not_found

from annotations.models import Study
from ranking.presenters import public_studies


def studies_for_annotator(user):
    """Open studies an annotator can work on: their invite's and those they already worked in."""
    open_studies = Study.objects.filter(status=Study.Status.OPEN)
    profile = getattr(user, "annotator", None)
    invited = open_studies.filter(invites__annotators=profile) if profile else open_studies.none()
    worked = open_studies.filter(comparisons__assignments__annotator=user)
    return (invited | worked).distinct().order_by("slug")


def home(request):
    """Staff see every open study by name; annotators only theirs, as numbered tasks (a name or slug may
    reveal models), and no leaderboard of an open study they judge (ranking.presenters.public_studies)."""
    if request.user.is_staff:
        studies = Study.objects.filter(status=Study.Status.OPEN).order_by("slug")
    elif request.user.is_authenticated:
        studies = studies_for_annotator(request.user)
    else:
        studies = Study.objects.none()
    return render(request, "home.html", {"studies": studies, "public_studies": public_studies(request.user)})


def check_cache() -> str:
    """Write a key and read it back. The cache holds the rate-limit windows, so one that answers but
    keeps nothing is as broken as one that does not answer."""
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    cache = caches["default"]
    key = f"healthz:{uuid.uuid4().hex}"
    try:
        cache.set(key, "ok", timeout=30)
        value = cache.get(key)
        cache.delete(key)
    except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
        return f"error: {exc.__class__.__name__}"
    if value != "ok":
        return "error: a value written was not read back"
    # Said plainly: local memory is per process, so gunicorn's workers do not share rate limits.
    return "ok (local memory)" if isinstance(cache, LocMemCache) else "ok"


def healthz(request):
    """Database, cache and broker reachability; 200 when all answer (or the broker is the embedded one)."""
    from django.conf import settings

    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
        checks["database"] = f"error: {exc.__class__.__name__}"
    checks["cache"] = check_cache()
    if settings.CELERY_BROKER_URL:
        try:
            from evalsite.celery import app

            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            checks["broker"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["broker"] = f"error: {exc.__class__.__name__}"
    else:
        checks["broker"] = "embedded (eager tasks)"
    healthy = all(not str(v).startswith("error") for v in checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", "checks": checks}, status=200 if healthy else 503)


def not_found(request, exception):
    """The 404 of an address no route matches: under /api/ the API's JSON error (`{"detail": ...}`, as its
    schema documents), elsewhere the site's page (templates/404.html)."""
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
