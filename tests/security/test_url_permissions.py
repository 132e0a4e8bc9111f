"""Every URL of the site, asked as anonymous, annotator and staff: the answer each role gets.

The table must name every URL pattern (a new URL without a row fails `test_every_url_is_in_the_table`),
so nobody adds a page without deciding who may see it. State-changing endpoints are also posted to
without a CSRF token: the answer must be 403 and nothing may change.
"""
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from annotations.models import AnnotatorProfile, InviteLink, Study, Vote
from dashboard.models import ExportJob
from generation.models import GenerationRun
from ranking.services import release_leaderboard
from separability.models import SeparabilityRun
from tests.factories import make_endpoint, make_study

ANON, ANNOTATOR, STAFF = "anonymous", "annotator", "staff"
LOGIN = "login"  # a redirect to the login page
OK, FORBIDDEN, NOT_ALLOWED, UNAUTHENTICATED = 200, 403, 405, (401, 403)

# url name (namespace:name or name) -> (path template, {role: expected})
TABLE = {
    "home": ("/", {ANON: OK, ANNOTATOR: OK, STAFF: OK}),
    "healthz": ("/healthz", {ANON: OK, ANNOTATOR: OK, STAFF: OK}),
    "favicon": ("/favicon.ico", {ANON: 301, ANNOTATOR: 301, STAFF: 301}),
    "login": ("/accounts/login/", {ANON: OK, ANNOTATOR: OK, STAFF: OK}),
    "logout": ("/accounts/logout/", {ANON: NOT_ALLOWED, ANNOTATOR: NOT_ALLOWED, STAFF: NOT_ALLOWED}),
    "admin-login": ("/admin/login/", {ANON: 302, ANNOTATOR: 302, STAFF: 302}),
    "admin": ("/admin/", {ANON: LOGIN, ANNOTATOR: LOGIN, STAFF: OK}),
    "admin-votes": ("/admin/annotations/vote/", {ANON: LOGIN, ANNOTATOR: LOGIN, STAFF: OK}),
    "admin-import": ("/admin/annotations/import/", {ANON: LOGIN, ANNOTATOR: LOGIN, STAFF: OK}),
    "dashboard:index": ("/dashboard/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "dashboard:study": ("/dashboard/studies/{study}/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "dashboard:planner": ("/dashboard/studies/{study}/planner/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "dashboard:form_planner": ("/dashboard/plan/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "judges:study": ("/judges/{study}/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "judges:start_run": ("/judges/{study}/runs/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: NOT_ALLOWED}),
    "judges:run_progress": ("/judges/{study}/runs/0/progress/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: 404}),
    "judges:cancel_run": ("/judges/{study}/runs/0/cancel/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: NOT_ALLOWED}),
    "judges:save_prompt": ("/judges/{study}/prompt/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: NOT_ALLOWED}),
    "dashboard:export_votes": ("/dashboard/studies/{study}/export/csv/",
                               {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "dashboard:separability": ("/dashboard/datasets/{dataset}/separability/",
                               {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "dashboard:start_run": ("/dashboard/datasets/{dataset}/separability/run/",
                            {ANON: NOT_ALLOWED, ANNOTATOR: NOT_ALLOWED, STAFF: NOT_ALLOWED}),
    "dashboard:export_separability": ("/dashboard/datasets/{dataset}/separability/export/",
                                      {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "dashboard:run_progress": ("/dashboard/runs/{run}/progress/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "dashboard:export_job": ("/dashboard/exports/{job}/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "dashboard:export_progress": ("/dashboard/exports/{job}/progress/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "dashboard:exclude_annotator": ("/dashboard/studies/{study}/annotators/{annotator_pk}/exclusion/",
                                    {ANON: NOT_ALLOWED, ANNOTATOR: NOT_ALLOWED, STAFF: NOT_ALLOWED}),
    "api:study_exclusions": ("/api/v1/studies/{study}/exclusions/",
                             {ANON: UNAUTHENTICATED, ANNOTATOR: FORBIDDEN, STAFF: NOT_ALLOWED}),
    "dashboard:export_download": ("/dashboard/exports/{job}/download/",
                                  {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: 404}),
    "api:root": ("/api/v1/", {ANON: UNAUTHENTICATED, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "api:token": ("/api/v1/token/", {ANON: UNAUTHENTICATED, ANNOTATOR: FORBIDDEN, STAFF: NOT_ALLOWED}),
    "api:datasets": ("/api/v1/datasets/", {ANON: UNAUTHENTICATED, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "api:dataset": ("/api/v1/datasets/{dataset}/", {ANON: UNAUTHENTICATED, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "api:dataset_import": ("/api/v1/datasets/{dataset}/import/",
                           {ANON: UNAUTHENTICATED, ANNOTATOR: FORBIDDEN, STAFF: NOT_ALLOWED}),
    "api:dataset_separability": ("/api/v1/datasets/{dataset}/separability/",
                                 {ANON: UNAUTHENTICATED, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "api:studies": ("/api/v1/studies/", {ANON: UNAUTHENTICATED, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "api:study": ("/api/v1/studies/{study}/", {ANON: UNAUTHENTICATED, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "api:study_comparisons": ("/api/v1/studies/{study}/comparisons/",
                              {ANON: UNAUTHENTICATED, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "api:study_votes": ("/api/v1/studies/{study}/votes/", {ANON: UNAUTHENTICATED, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "api:study_leaderboards": ("/api/v1/studies/{study}/leaderboards/",
                               {ANON: UNAUTHENTICATED, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "api:endpoints": ("/api/v1/endpoints/", {ANON: UNAUTHENTICATED, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "api:endpoint": ("/api/v1/endpoints/{endpoint}/", {ANON: UNAUTHENTICATED, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "api:generation_runs": ("/api/v1/generation-runs/", {ANON: UNAUTHENTICATED, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "api:generation_run": ("/api/v1/generation-runs/{gen_run}/",
                           {ANON: UNAUTHENTICATED, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "api:generation_run_cancel": ("/api/v1/generation-runs/{gen_run}/cancel/",
                                  {ANON: UNAUTHENTICATED, ANNOTATOR: FORBIDDEN, STAFF: NOT_ALLOWED}),
    "api:schema": ("/api/schema/", {ANON: OK, ANNOTATOR: OK, STAFF: OK}),
    "api:docs": ("/api/docs/", {ANON: OK, ANNOTATOR: OK, STAFF: OK}),
    "ranking:index": ("/leaderboard/", {ANON: OK, ANNOTATOR: OK, STAFF: OK}),
    # The world's study is released; its annotator judges it while it is open, so sees no board of it.
    "ranking:study": ("/leaderboard/{study}/", {ANON: OK, ANNOTATOR: 404, STAFF: OK}),
    "ranking:study_json": ("/leaderboard/{study}.json", {ANON: OK, ANNOTATOR: 404, STAFF: OK}),
    "ranking:release": ("/leaderboard/{study}/release/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: NOT_ALLOWED}),
    "annotations:annotate": ("/s/{study}/", {ANON: LOGIN, ANNOTATOR: OK, STAFF: OK}),
    "annotations:vote": ("/s/{study}/vote/", {ANON: NOT_ALLOWED, ANNOTATOR: NOT_ALLOWED, STAFF: NOT_ALLOWED}),
    "annotations:done": ("/s/{study}/done/", {ANON: LOGIN, ANNOTATOR: OK, STAFF: OK}),
    "annotations:invite": ("/invite/{invite}/", {ANON: OK, ANNOTATOR: OK, STAFF: OK}),
    "annotations:prolific_entry": ("/s/{study}/enter/", {ANON: FORBIDDEN, ANNOTATOR: FORBIDDEN, STAFF: FORBIDDEN}),
    "annotations:reenter": ("/r/{reentry}/", {ANON: 404, ANNOTATOR: 404, STAFF: 404}),
    "annotations:invite_toggle": ("/studies/{study}/invites/{invite_pk}/toggle/",
                                  {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: NOT_ALLOWED}),
    "annotations:study_list": ("/studies/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "annotations:study_create": ("/studies/new/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "annotations:study_form_systems": ("/studies/new/systems/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "annotations:study_detail": ("/studies/{study}/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "annotations:study_edit": ("/studies/{study}/edit/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "annotations:study_open": ("/studies/{study}/open/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: NOT_ALLOWED}),
    "annotations:study_close": ("/studies/{study}/close/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: NOT_ALLOWED}),
    "annotations:invite_create": ("/studies/{study}/invites/",
                                  {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: NOT_ALLOWED}),
    "generation:index": ("/generation/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "generation:new_run": ("/generation/new/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "generation:run": ("/generation/runs/{gen_run}/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "generation:run_progress": ("/generation/runs/{gen_run}/progress/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "generation:cancel": ("/generation/runs/{gen_run}/cancel/",
                          {ANON: NOT_ALLOWED, ANNOTATOR: NOT_ALLOWED, STAFF: NOT_ALLOWED}),
    "generation:endpoints": ("/generation/endpoints/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "generation:endpoint_new": ("/generation/endpoints/new/", {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
    "generation:endpoint_edit": ("/generation/endpoints/{endpoint}/edit/",
                                 {ANON: LOGIN, ANNOTATOR: FORBIDDEN, STAFF: OK}),
}

# State-changing endpoints: a POST without a CSRF token from a signed-in session must be refused.
STATE_CHANGING = [
    ("/accounts/logout/", STAFF),
    ("/s/{study}/vote/", ANNOTATOR),
    ("/invite/{invite}/", ANON),
    ("/studies/new/", STAFF),
    ("/studies/{study}/edit/", STAFF),
    ("/studies/{study}/open/", STAFF),
    ("/studies/{study}/close/", STAFF),
    ("/studies/{study}/invites/", STAFF),
    ("/studies/{study}/invites/{invite_pk}/toggle/", STAFF),
    ("/leaderboard/{study}/release/", STAFF),
    ("/dashboard/studies/{study}/annotators/{annotator_pk}/exclusion/", STAFF),
    ("/api/v1/studies/{study}/exclusions/", STAFF),
    ("/s/{study}/enter/", ANNOTATOR),
    ("/r/{reentry}/", ANNOTATOR),
    ("/dashboard/datasets/{dataset}/separability/run/", STAFF),
    ("/judges/{study}/runs/", STAFF),
    ("/judges/{study}/runs/0/cancel/", STAFF),
    ("/judges/{study}/prompt/", STAFF),
    ("/admin/annotations/import/", STAFF),
    ("/api/v1/token/", STAFF),
    ("/api/v1/datasets/{dataset}/import/", STAFF),
    ("/api/v1/endpoints/", STAFF),
    ("/api/v1/generation-runs/", STAFF),
    ("/api/v1/generation-runs/{gen_run}/cancel/", STAFF),
    ("/generation/new/", STAFF),
    ("/generation/runs/{gen_run}/cancel/", STAFF),
    ("/generation/endpoints/new/", STAFF),
    ("/generation/endpoints/{endpoint}/edit/", STAFF),
]


def walk_patterns(patterns, prefix="", namespace=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if str(pattern.pattern) == "admin/":
                continue  # Django's own admin: represented by the admin rows above
            ns = f"{pattern.namespace}:" if pattern.namespace else namespace
            yield from walk_patterns(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), (namespace + pattern.name) if pattern.name else None


def test_every_url_is_in_the_table():
    names = {name for _, name in walk_patterns(get_resolver().url_patterns)}
    unnamed = [path for path, name in walk_patterns(get_resolver().url_patterns) if name is None]
    assert unnamed == ["admin/login/"], unnamed
    missing = sorted(n for n in names - {None} if n not in TABLE)
    assert not missing, f"URLs without a permission row: {missing}"


@pytest.fixture
def world(db):
    study = make_study(slug="perm-study", n_instances=3, quota=5)
    study.leaderboard_public = True
    study.save(update_fields=["leaderboard_public"])
    User = get_user_model()
    annotator = User.objects.create_user("annotator-1")
    AnnotatorProfile.objects.create(user=annotator, pseudonym="ann-perm")
    staff = User.objects.create_user("staff-1", password="x", is_staff=True, is_superuser=True)
    invite = InviteLink.objects.create(max_uses=10)
    invite.studies.add(study)
    annotator.annotator.invite = invite
    annotator.annotator.save()
    release_leaderboard(study, "staff")
    run = SeparabilityRun.objects.create(dataset=study.dataset, total=3)
    job = ExportJob.objects.create(study=study, format=ExportJob.Format.CSV)  # queued: no file to download yet
    gen_run = GenerationRun.objects.create(dataset=study.dataset, total=3)
    endpoint = make_endpoint("perm-endpoint", "http://127.0.0.1:9/v1", "tiny", system_name="perm-endpoint-system")
    return {"study": study.slug, "dataset": study.dataset.slug, "invite": invite.token, "run": run.pk,
            "job": job.pk, "invite_pk": invite.pk, "reentry": "k" * 32, "annotator_pk": annotator.pk,
            "gen_run": gen_run.pk, "endpoint": endpoint.name,
            "users": {ANNOTATOR: annotator, STAFF: staff}}


def client_for(role, world, enforce_csrf=False):
    client = Client(enforce_csrf_checks=enforce_csrf)
    if role != ANON:
        client.force_login(world["users"][role])
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(TABLE))
@pytest.mark.parametrize("role", [ANON, ANNOTATOR, STAFF])
def test_each_role_gets_the_expected_answer(world, name, role):
    template, expected = TABLE[name]
    path = template.format(**world)
    response = client_for(role, world).get(path)
    want = expected[role]
    if want == LOGIN:
        assert response.status_code == 302, (path, role, response.status_code)
        assert "login" in response["Location"], (path, role, response["Location"])
    elif isinstance(want, tuple):
        assert response.status_code in want, (path, role, response.status_code)
    else:
        assert response.status_code == want, (path, role, response.status_code)


@pytest.mark.django_db
@pytest.mark.parametrize("template,role", STATE_CHANGING)
def test_post_without_csrf_token_is_refused_and_changes_nothing(world, template, role):
    from tests.annotations.test_import_commands import row_counts

    path = template.format(**world)
    before = (row_counts(), Study.objects.get(slug=world["study"]).status, InviteLink.objects.get().uses)
    response = client_for(role, world, enforce_csrf=True).post(path, {"choice": "left", "name": "x"})
    assert response.status_code == 403, (path, response.status_code)
    after = (row_counts(), Study.objects.get(slug=world["study"]).status, InviteLink.objects.get().uses)
    assert after == before


@pytest.mark.django_db
def test_vote_records_cannot_be_added_or_deleted_in_the_admin(world):
    client = client_for(STAFF, world)
    assert client.get("/admin/annotations/vote/add/").status_code == 403
    assert client.post("/admin/annotations/vote/", {"action": "delete_selected", "_selected_action": []}).status_code \
        in (200, 302)
    assert Vote.objects.count() == 0
