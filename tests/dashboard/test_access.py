"""Who may open what: every dashboard, export and API URL, and a representative set of admin pages,
asked as an anonymous visitor, as a signed-in annotator (not staff) and as staff."""
import pytest
from django.urls import reverse

from dashboard.models import ExportJob
from dashboard.tasks import write_export
from generation.models import GenerationRun
from separability.models import SeparabilityRun
from tests.factories import make_endpoint, make_voted_study

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


@pytest.fixture
def objects(media_root, monkeypatch):
    from dashboard import runs
    from separability import services

    study = make_voted_study("access")
    run = SeparabilityRun.objects.create(dataset=study.dataset, metrics=["rouge1"], total=4)
    job = ExportJob.objects.create(study=study, format="csv")
    write_export(job.pk)

    def fake_compute(slug, metrics=None):  # the real one loads a model; access is what is tested here
        return SeparabilityRun.objects.create(dataset=study.dataset, metrics=["rouge1"], total=4)

    monkeypatch.setattr(runs, "BACKGROUND_WHEN_EAGER", False)
    monkeypatch.setattr(services, "compute_dataset_separability", fake_compute)
    voter = study.votes.order_by("id").values_list("annotator_id", flat=True).first()
    endpoint = make_endpoint("access-endpoint", "http://127.0.0.1:9/v1", "some-model")
    generation_run = GenerationRun.objects.create(dataset=study.dataset, total=2, status=GenerationRun.Status.RUNNING)
    return {"study": study.slug, "dataset": study.dataset.slug, "run": run.pk, "job": job.pk, "annotator": voter,
            "endpoint": endpoint.name, "generation_run": generation_run.pk}


# (kind, method, url template, staff status). kind: dashboard (login redirect / 403), admin (admin login
# redirect for both), api (401 or 403 / 403), public (open to everyone).
ROUTES = [
    ("dashboard", "get", "/dashboard/", 200),
    ("dashboard", "get", "/dashboard/studies/{study}/", 200),
    ("dashboard", "get", "/dashboard/studies/{study}/planner/", 200),
    ("dashboard", "get", "/dashboard/plan/?study={study}", 200),  # the study form's planner (no dataset: a message)
    ("dashboard", "get", "/dashboard/datasets/{dataset}/separability/", 200),
    ("dashboard", "get", "/dashboard/datasets/{dataset}/separability/?metric=rouge1&pair=all", 200),
    ("dashboard", "post", "/dashboard/datasets/{dataset}/separability/run/", 302),
    ("dashboard", "get", "/dashboard/runs/{run}/progress/", 200),
    ("dashboard", "get", "/dashboard/studies/{study}/export/csv/", 200),
    ("dashboard", "get", "/dashboard/studies/{study}/export/jsonl/", 200),
    ("dashboard", "get", "/dashboard/studies/{study}/export/dpo/", 200),
    ("dashboard", "get", "/dashboard/datasets/{dataset}/separability/export/", 200),
    ("dashboard", "get", "/dashboard/exports/{job}/", 200),
    ("dashboard", "get", "/dashboard/exports/{job}/progress/", 200),
    ("dashboard", "get", "/dashboard/exports/{job}/download/", 200),
    ("dashboard", "post", "/dashboard/studies/{study}/annotators/{annotator}/exclusion/", 302),  # no reason: refused
    ("admin", "get", "/admin/", 200),
    ("admin", "get", "/admin/annotations/study/", 200),
    ("admin", "get", "/admin/annotations/dataset/", 200),
    ("admin", "get", "/admin/annotations/comparison/", 200),
    ("admin", "get", "/admin/annotations/vote/", 200),
    ("admin", "get", "/admin/annotations/annotatorprofile/", 200),
    ("admin", "get", "/admin/annotations/import/", 200),
    ("api", "get", "/api/v1/", 200),
    ("api", "get", "/api/v1/datasets/", 200),
    ("api", "get", "/api/v1/datasets/{dataset}/", 200),
    ("api", "get", "/api/v1/datasets/{dataset}/separability/", 200),
    ("api", "post", "/api/v1/datasets/{dataset}/import/", 400),  # staff: no file given
    ("api", "get", "/api/v1/studies/", 200),
    ("api", "get", "/api/v1/studies/{study}/", 200),
    ("api", "get", "/api/v1/studies/{study}/comparisons/", 200),
    ("api", "get", "/api/v1/studies/{study}/votes/", 200),
    ("api", "get", "/api/v1/studies/{study}/votes/?format=csv", 200),
    ("api", "get", "/api/v1/studies/{study}/leaderboards/", 200),
    ("api", "post", "/api/v1/studies/{study}/exclusions/", 400),  # staff: nothing named
    ("api", "post", "/api/v1/token/", 201),
    ("api", "get", "/api/v1/endpoints/", 200),
    ("api", "get", "/api/v1/endpoints/{endpoint}/", 200),
    ("api", "get", "/api/v1/generation-runs/", 200),
    ("api", "get", "/api/v1/generation-runs/{generation_run}/", 200),
    ("api", "post", "/api/v1/generation-runs/{generation_run}/cancel/", 200),
    ("public", "get", "/api/schema/", 200),
    ("public", "get", "/api/docs/", 200),
]


def ask(client, method, url):
    response = getattr(client, method)(url)
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)
    return response


@pytest.mark.parametrize("kind,method,template,staff_status", ROUTES, ids=[f"{m} {t}" for _, m, t, _ in ROUTES])
def test_access(client, django_user_model, objects, kind, method, template, staff_status):
    from tests.factories import make_account

    url = template.format(**objects)

    anonymous = ask(client, method, url)
    if kind == "dashboard":
        assert anonymous.status_code == 302 and anonymous["Location"].startswith(LOGIN), url
    elif kind == "admin":
        assert anonymous.status_code == 302 and anonymous["Location"].startswith(ADMIN_LOGIN), url
    elif kind == "api":
        assert anonymous.status_code in (401, 403), url
    else:
        assert anonymous.status_code == 200, url

    client.force_login(make_account("someone"))
    as_annotator = ask(client, method, url)
    if kind in ("dashboard", "api"):
        assert as_annotator.status_code == 403, url
    elif kind == "admin":
        assert as_annotator.status_code == 302 and as_annotator["Location"].startswith(ADMIN_LOGIN), url
    else:
        assert as_annotator.status_code == 200, url

    staff = django_user_model.objects.create_user("boss", password="staff-pass-123", is_staff=True, is_superuser=True)
    client.force_login(staff)
    as_staff = ask(client, method, url)
    assert as_staff.status_code == staff_status, (url, as_staff.status_code,
                                                  getattr(as_staff, "content", b"")[:300])


def test_every_dashboard_and_api_route_is_in_the_table():
    """A new URL must be added to the access table above."""
    from api.urls import urlpatterns as api_patterns
    from dashboard.urls import urlpatterns as dashboard_patterns

    templates = {t.split("?")[0] for _, _, t, _ in ROUTES}
    for prefix, patterns in (("/dashboard/", dashboard_patterns), ("/api/", api_patterns)):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            route = (route.replace("<slug:slug>", "{x}").replace("<int:pk>", "{x}").replace("<str:fmt>", "csv")
                     .replace("<slug:name>", "{x}")
                     .replace("<int:user_id>", "{x}"))
            normalised = {t.replace("{study}", "{x}").replace("{dataset}", "{x}").replace("{run}", "{x}")
                          .replace("{job}", "{x}").replace("{annotator}", "{x}").replace("{endpoint}", "{x}")
                          .replace("{generation_run}", "{x}") for t in templates}
            assert route in normalised, f"{route} is not in the access table"


def test_login_redirect_comes_back_to_the_dashboard(client, django_user_model):
    response = client.get(reverse("dashboard:index"))
    assert response["Location"] == f"{LOGIN}?next=/dashboard/"
