"""Staff study pages /studies/...: the form refuses every setting that would break later, opening
creates the comparisons and shows which policy was applied to what data."""
import pytest
from django.test import Client

from annotations.forms import StudyForm
from annotations.models import Comparison, Dataset, InviteLink, Study, System
from tests.factories import make_annotator, make_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def base():
    """A draft study over a dataset with 3 instances and k = 2 samples per system."""
    return make_study(slug="base", n_instances=3, k=2, systems=("alpha-model", "beta-model", "gamma-model"),
                      open_it=False)


def form_data(base, **overrides):
    data = {
        "slug": "new-study", "name": "New study", "dataset": base.dataset.pk,
        "systems": [s.pk for s in System.objects.filter(name__in=["alpha-model", "beta-model"])],
        "instructions": "Pick the better answer.", "policy": "all", "policy_metric": "bertscore",
        "threshold": "", "top_fraction": "", "sample_size": "", "selection_seed": 0,
        "sample_pairs_per_unit": 1, "votes_per_comparison": 3, "lease_seconds": 600, "quota": 20,
        "allow_tie": "on", "allow_both_bad": "on", "both_bad": "tie", "rationale": "off", "gold_every": 0,
        "too_fast_seconds": 3, "prolific_study_id": "", "prolific_completion_code": "", "prolific_redirect_url": "",
        "leaderboard_public": "on", "leaderboard_release": "on_close", "release_every_hours": 24,
        "release_min_votes": 200, "output_format": "markdown",
    }
    data.update(overrides)
    return data


def errors_for(base, **overrides):
    form = StudyForm(data=form_data(base, **overrides))
    form.is_valid()
    return form.errors


def test_staff_creates_a_draft_study(base, staff_client, staff_user):
    response = staff_client.post("/studies/new/", form_data(base))
    assert response.status_code == 302 and response["Location"] == "/studies/new-study/"
    study = Study.objects.get(slug="new-study")
    assert study.status == Study.Status.DRAFT and study.created_by == staff_user
    assert sorted(study.systems.values_list("name", flat=True)) == ["alpha-model", "beta-model"]
    assert staff_client.get("/studies/new-study/").status_code == 200
    assert "new-study" in staff_client.get("/studies/").content.decode()


def test_study_pages_are_staff_only(base):
    assert Client().get("/studies/new/").status_code == 302
    annotator = Client()
    annotator.force_login(make_annotator())
    for url in ("/studies/", "/studies/new/", "/studies/base/", "/studies/base/edit/"):
        assert annotator.get(url).status_code == 403
    assert annotator.post("/studies/base/open/").status_code == 403
    assert not Comparison.objects.exists()


def test_valid_form_has_no_errors(base):
    assert errors_for(base) == {}


def test_threshold_policy_needs_a_threshold(base):
    assert "threshold" in errors_for(base, policy="threshold")
    assert errors_for(base, policy="threshold", threshold="0.2") == {}


def test_top_fraction_must_be_in_zero_one(base):
    assert "top_fraction" in errors_for(base, policy="top_fraction")
    assert "top_fraction" in errors_for(base, policy="top_fraction", top_fraction="0")
    assert "top_fraction" in errors_for(base, policy="top_fraction", top_fraction="1.5")
    assert errors_for(base, policy="top_fraction", top_fraction="1") == {}


def test_sample_pairs_cannot_exceed_the_smallest_k(base):
    assert errors_for(base, sample_pairs_per_unit=2) == {}
    assert "At most 2" in errors_for(base, sample_pairs_per_unit=3)["sample_pairs_per_unit"][0]
    assert "sample_pairs_per_unit" in errors_for(base, sample_pairs_per_unit=0)


def test_systems_must_have_generations_in_the_dataset(base):
    outsider = System.objects.create(name="delta-model")
    errors = errors_for(base, systems=[System.objects.get(name="alpha-model").pk, outsider.pk])
    assert "delta-model" in errors["systems"][0]
    assert "systems" in errors_for(base, systems=[System.objects.get(name="alpha-model").pk])


def test_slug_or_instructions_naming_a_model_are_refused(base):
    assert "slug" in errors_for(base, slug="alpha-model-vs-beta")
    assert "instructions" in errors_for(base, instructions="Compare Alpha Model with the other one.")
    assert "slug" in errors_for(base, slug="new")


def test_overlap_lease_and_speed_limits(base):
    assert "votes_per_comparison" in errors_for(base, votes_per_comparison=0)
    assert "lease_seconds" in errors_for(base, lease_seconds=5)
    assert "too_fast_seconds" in errors_for(base, too_fast_seconds=-1)


def test_prolific_settings_go_together_and_ids_are_unique(base):
    assert "prolific_completion_code" in errors_for(base, prolific_study_id="abc")
    assert "prolific_study_id" in errors_for(base, prolific_completion_code="CODE")
    assert "prolific_redirect_url" in errors_for(base, prolific_study_id="abc", prolific_completion_code="C",
                                                 prolific_redirect_url="not a url")
    Study.objects.filter(pk=base.pk).update(prolific_study_id="abc")
    assert "prolific_study_id" in errors_for(base, prolific_study_id="abc", prolific_completion_code="C")


def test_form_errors_are_shown_on_the_page(base, staff_client):
    response = staff_client.post("/studies/new/", form_data(base, policy="threshold"))
    assert response.status_code == 200
    assert "needs a threshold" in response.content.decode()
    assert not Study.objects.filter(slug="new-study").exists()


def test_opening_creates_comparisons_and_shows_the_selection_summary(base, staff_client):
    response = staff_client.post("/studies/base/open/")
    assert response.status_code == 302
    base.refresh_from_db()
    assert base.status == Study.Status.OPEN
    assert Comparison.objects.filter(study=base).count() == 9  # 3 instances x 3 system pairs x 1 sample pair
    html = staff_client.get("/studies/base/").content.decode()
    assert "policy &#x27;All units&#x27;" in html and "chose 9 of 9 units" in html
    assert "known for 0 of them" in html  # policy "all" opens before any separability exists
    assert base.selection_summary in html.replace("&#x27;", "'")


def test_opening_with_a_separability_policy_before_separability_says_why(base, staff_client):
    Study.objects.filter(pk=base.pk).update(policy="threshold", threshold=0.1)
    page = staff_client.post("/studies/base/open/", follow=True).content.decode()
    assert "was not opened" in page and "compute it first" in page
    assert Study.objects.get(pk=base.pk).status == Study.Status.DRAFT


def test_edit_cannot_move_an_opened_study_to_another_dataset(base, staff_client):
    staff_client.post("/studies/base/open/")
    other = Dataset.objects.create(slug="elsewhere")
    data = form_data(base, slug="base", dataset=other.pk)
    response = staff_client.post("/studies/base/edit/", data)
    assert response.status_code == 200 and "cannot change" in response.content.decode()
    data = form_data(base, slug="base", systems=[System.objects.get(name="alpha-model").pk,
                                                 System.objects.get(name="beta-model").pk])
    response = staff_client.post("/studies/base/edit/", data)
    assert "gamma-model" in response.content.decode() and "cannot be removed" in response.content.decode()
    ok = staff_client.post("/studies/base/edit/", form_data(base, slug="base", name="Renamed",
                                                           systems=[s.pk for s in System.objects.all()]))
    assert ok.status_code == 302 and Study.objects.get(pk=base.pk).name == "Renamed"


def test_close_stops_the_study(base, staff_client):
    staff_client.post("/studies/base/open/")
    staff_client.post("/studies/base/close/")
    assert Study.objects.get(pk=base.pk).status == Study.Status.CLOSED


def test_staff_creates_invite_links_from_the_study_page(base, staff_client):
    response = staff_client.post("/studies/base/invites/", {"max_uses": 25, "note": "lab members"})
    assert response.status_code == 302
    invite = InviteLink.objects.get()
    assert invite.max_uses == 25 and list(invite.studies.all()) == [base]
    assert f"/invite/{invite.token}/" in staff_client.get("/studies/base/").content.decode()
    staff_client.post("/studies/base/invites/", {"max_uses": 0})
    assert InviteLink.objects.count() == 1


def test_form_refuses_instructions_with_images_from_other_sites(staff_client):
    from annotations.forms import _remote_images

    assert _remote_images("![a](https://tracker.example/p.png) ![b](/static/x.png) <img src='//t.example/q'>") == [
        "https://tracker.example/p.png", "//t.example/q"]
    assert _remote_images("no images, a [link](https://example.org)") == []


def test_the_form_lists_only_the_chosen_datasets_models(base, staff_client):
    other = make_study(slug="elsewhere", n_instances=1, systems=("omega-model", "psi-model"))
    page = staff_client.get(f"/studies/{base.slug}/edit/").content.decode()
    assert "alpha-model" in page and "omega-model" not in page
    fragment = staff_client.get("/studies/new/systems/", {"dataset": other.dataset.pk}).content.decode()
    assert "omega-model" in fragment and "alpha-model" not in fragment
    assert 'id="field-systems"' in fragment and "<legend>Systems</legend>" in fragment  # the label heads the list
    assert "alpha-model" in staff_client.get("/studies/new/systems/").content.decode()  # no dataset yet: all


def test_the_studies_list_costs_the_same_statements_for_more_studies_and_votes(base, staff_client,
                                                                               django_assert_max_num_queries):
    staff_client.get("/studies/")
    with django_assert_max_num_queries(8) as few:
        staff_client.get("/studies/")
    for i in range(4):
        make_study(slug=f"more-{i}", n_instances=3)
    with django_assert_max_num_queries(len(few.captured_queries)):
        staff_client.get("/studies/")


def test_the_adaptive_policy_is_validated_like_the_others(base, staff_client):
    assert errors_for(base, policy="adaptive") == {}
    assert "policy" in errors_for(base, policy="greedy")
    response = staff_client.post("/studies/new/", form_data(base, policy="adaptive"))
    assert response.status_code == 302
    study = Study.objects.get(slug="new-study")
    assert study.policy == Study.Policy.ADAPTIVE
    staff_client.post("/studies/new-study/open/")
    study.refresh_from_db()
    # Every unit is selected, whatever its separability (here unknown): the order comes from the votes.
    assert study.status == Study.Status.OPEN and Comparison.objects.filter(study=study, selected=True).count() == 3
