"""The study form's votes-needed planner (issue 17, docs/design.md §5.1): before a study has comparisons,
the plan is of the comparisons that opening it would create (annotations.selection.candidate_units), for a
saved draft or for the form's unsaved settings, and asking for it writes nothing. The last test clicks the
form's button in chromium (tests/conftest.py `browser`)."""
import os

import pytest
from django.apps import apps
from django.test import Client

from annotations.models import Comparison, Study
from annotations.selection import open_study
from dashboard import planner
from tests.factories import make_account, make_study, make_voted_study

pytestmark = pytest.mark.django_db

# Playwright's sync API runs an event loop in this thread; Django would refuse ORM calls next to it.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

URL = "/dashboard/plan/"
SYSTEMS = ("alpha-model", "beta-model", "gamma-model")


def row_counts():
    return {model._meta.label: model.objects.count() for model in apps.get_models()}


def form_params(source, **changes):
    params = {"dataset": source.dataset_id, "systems": list(source.systems.values_list("id", flat=True)),
              "policy": "all", "policy_metric": "bertscore", "threshold": "", "top_fraction": "", "sample_size": "",
              "selection_seed": 0, "sample_pairs_per_unit": 1, "votes_per_comparison": 2}
    params.update(changes)
    return params


def test_planning_an_unsaved_study_from_the_forms_fields_gives_a_curve_per_policy_and_writes_nothing(staff_client):
    source = make_study("plan-source", n_instances=5, systems=SYSTEMS, open_it=False)
    before = row_counts()
    fragment = staff_client.get(URL, form_params(source))
    assert fragment.status_code == 200
    planned = fragment.context["plan"]
    assert set(planned["curves"]) == set(planner.POLICIES)
    assert all(len(values) == len(planned["votes"]) for values in planned["curves"].values())
    assert planned["units"] == 5 * 3  # every pair of the three models on each of the five instances
    assert planned["current"] == 0 and "prior" in planned["source"]
    html = fragment.content.decode()
    assert 'id="planner-table"' in html and "would create" in html and "votes so far" not in html
    assert fragment.context["study"].pk is None
    assert row_counts() == before


def test_a_draft_without_comparisons_plans_the_comparisons_opening_it_creates(staff_client):
    study = make_study("draft-plan", n_instances=3, k=2, pairs=2, systems=SYSTEMS, open_it=False)
    fragment = staff_client.get(f"/dashboard/studies/{study.slug}/planner/")
    planned = fragment.context["plan"]
    assert "error" not in planned and "candidate units" in planned["basis"]
    assert not study.comparisons.exists()
    open_study(study)
    # Two shared sample indexes per unit, both taken (sample_pairs_per_unit 2): the plan counted them.
    assert planned["units"] == Comparison.objects.filter(study=study, selected=True, is_gold=False).count() == 18


def test_the_forms_policy_selects_the_planned_units(staff_client):
    source = make_study("plan-proportional", n_instances=4, systems=SYSTEMS, open_it=False)
    planned = planner.draft_plan(source)
    assert planned["units"] == 12
    Study.objects.filter(pk=source.pk).update(policy="threshold", threshold=0.5)
    source.refresh_from_db()
    # No separability computed: the threshold policy cannot select, and says why.
    assert "needs separability" in planner.draft_plan(source)["error"]


@pytest.mark.parametrize("changes, message", [
    ({"dataset": ""}, planner.CHOOSE),
    ({"dataset": "999999"}, planner.CHOOSE),
    ({"systems": []}, planner.CHOOSE),
    ({"systems": "one"}, planner.CHOOSE),
    ({"threshold": "high", "policy": "threshold"}, "Threshold: Enter a number."),
    ({"policy": "threshold"}, "needs a threshold"),
    ({"policy": "top_fraction", "top_fraction": "1.5"}, "fraction in (0, 1]"),
    ({"votes_per_comparison": "0"}, "Votes per comparison: At least 1."),
    ({"policy": "no-such-policy"}, "Policy:"),
])
def test_bad_settings_get_a_message_in_the_fragment_and_change_nothing(staff_client, changes, message):
    source = make_study("plan-bad", n_instances=2, systems=SYSTEMS, open_it=False)
    before = row_counts()
    params = form_params(source, **changes)
    if params["systems"] == "one":
        params["systems"] = [source.systems.order_by("id").first().pk]
    fragment = staff_client.get(URL, params)
    assert fragment.status_code == 200
    html = fragment.content.decode()
    assert 'id="planner-error"' in html and message in fragment.context["plan"]["error"]
    assert row_counts() == before


def test_editing_a_study_plans_the_forms_settings_with_its_votes_and_leaves_it_unchanged(staff_client):
    study = make_voted_study("plan-edit", n_instances=3, annotators=2)
    fragment = staff_client.get(URL, form_params(study, study=study.slug, policy="adaptive"))
    planned = fragment.context["plan"]
    assert "error" not in planned and planned["current"] == study.votes.count()
    assert fragment.context["study"].policy == "adaptive"
    study.refresh_from_db()
    assert study.policy == "all"


def test_the_study_form_has_the_plan_button_and_sends_only_the_selection_fields(staff_client):
    html = staff_client.get("/studies/new/").content.decode()
    assert 'id="plan-votes"' in html and 'hx-get="/dashboard/plan/"' in html
    assert 'type="button" id="plan-votes"' in html  # it never submits the form (which needs no JavaScript)
    params = html.split('hx-params="', 1)[1].split('"', 1)[0].split(",")
    assert set(params) == set(planner.PLAN_FIELDS)  # no CSRF token, no instructions in the address
    study = make_study("plan-form-edit", open_it=False)
    edit = staff_client.get(f"/studies/{study.slug}/edit/").content.decode()
    assert "study" in edit.split('hx-params="', 1)[1].split('"', 1)[0].split(",")
    assert f'"study": "{study.slug}"' in edit


def test_the_form_planner_is_staff_only():
    source = make_study("plan-access", n_instances=2, open_it=False)
    assert Client().get(URL, form_params(source)).status_code == 302
    annotator = Client()
    annotator.force_login(make_account("plan-annotator"))
    assert annotator.get(URL, form_params(source)).status_code == 403


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_plan_button_draws_the_curves_on_the_new_study_form(browser, live_server, screenshots):
    source = make_study("plan-browser", n_instances=4, systems=SYSTEMS, open_it=False)
    make_account("planning-researcher", staff=True)
    for width in (1280, 390):
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        page.set_default_timeout(20_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
        page.goto(f"{live_server.url}/accounts/login/?next=/studies/new/")
        page.fill("#id_username", "planning-researcher")
        page.fill("#id_password", "annotator-pass-123")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/studies/new/")
        page.locator("#plan-votes").click()
        assert "Choose a dataset" in page.locator("#planner-error").inner_text()
        page.select_option("#id_dataset", str(source.dataset_id))
        page.wait_for_selector("#field-systems input[type=checkbox]")
        for box in page.locator("#field-systems input[type=checkbox]").all():
            box.check()
        page.locator("#plan-votes").click()
        page.wait_for_selector("#planner canvas[data-drawn]")
        assert page.locator("#planner-table tbody tr").count() == len(planner.POLICIES)
        box = page.locator("#planner canvas").bounding_box()
        assert box and box["width"] > 200 and box["height"] > 100
        page.locator(".form-planner").screenshot(path=str(screenshots / f"study-form-planner-{width}.png"))
        context.close()
        assert not errors, errors
    assert not Study.objects.exclude(pk=source.pk).exists()  # planning saved nothing
