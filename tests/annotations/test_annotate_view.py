"""The annotator page /s/<slug>/: what it shows, what it must never show, and who may see it."""
import re

import pytest
from django.db.models import F
from django.test import Client

from annotations.models import (
    AnnotatorProfile,
    Assignment,
    Comparison,
    Dataset,
    Generation,
    Instance,
    InviteLink,
    Study,
    System,
    Vote,
)
from annotations.selection import open_study
from tests.factories import make_annotator, make_study

pytestmark = pytest.mark.django_db

SYSTEM_IDS = (904711, 904733)
GENERATION_BASE = 771100
SCRIPT_TEXT = "Line one\nLine <b>two</b>\n<script>alert(1)</script>"


def invited_client(study, client=None):
    client = client or Client()
    invite = InviteLink.objects.create(max_uses=1)
    invite.studies.add(study)
    assert client.get(f"/invite/{invite.token}/").status_code == 200
    csrf = client.cookies["csrftoken"].value
    response = client.post(f"/invite/{invite.token}/", {"csrfmiddlewaretoken": csrf})
    assert response.status_code == 302
    return client


@pytest.fixture
def blind_study():
    """Distinctive ids and names, so any leak of them into a response is unmistakable."""
    dataset = Dataset.objects.create(slug="blind-data")
    alpha = System.objects.create(pk=SYSTEM_IDS[0], name="Zyxwv-Secret-LLM")
    beta = System.objects.create(pk=SYSTEM_IDS[1], name="Qwerty-Hidden-Model")
    pk = GENERATION_BASE
    for i in range(3):
        instance = Instance.objects.create(pk=660000 + i, dataset=dataset, external_id=f"item-{i}",
                                           input=f"Summarise document {i}.")
        for system in (alpha, beta):
            Generation.objects.create(pk=pk, instance=instance, system=system, sample_index=0,
                                      text=(SCRIPT_TEXT if system is alpha else SCRIPT_TEXT + "\nA second reply.")
                                      if i == 0 else f"Plain answer {i} ({pk % 7}).")
            pk += 1
    study = Study.objects.create(slug="blind", name="Zyxwv-Secret-LLM versus Qwerty-Hidden-Model", dataset=dataset,
                                 instructions="Pick the **better** answer.\n\n<script>alert('x')</script>",
                                 quota=3, rationale=Study.Rationale.OPTIONAL, too_fast_seconds=0)
    study.systems.set([alpha, beta])
    open_study(study)
    Comparison.objects.filter(study=study).update(id=F("id") + 550000)  # nothing refers to them yet
    study.refresh_from_db()
    return study


FORBIDDEN = ("Zyxwv-Secret-LLM", "Qwerty-Hidden-Model", "zyxwv", "qwerty")


def assert_blind(response, study):
    """No system name, system id, generation id or comparison id anywhere in what the annotator receives."""
    body = response.content.decode()
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    for text in (body, headers):
        lowered = text.lower()
        for name in FORBIDDEN:
            assert name.lower() not in lowered
        numbers = set(re.findall(r"\d+", text))
        ids = {str(i) for i in SYSTEM_IDS}
        ids |= {str(g) for g in Generation.objects.filter(instance__dataset=study.dataset).values_list("pk", flat=True)}
        ids |= {str(c) for c in Comparison.objects.filter(study=study).values_list("pk", flat=True)}
        ids |= {str(i) for i in Instance.objects.filter(dataset=study.dataset).values_list("pk", flat=True)}
        assert not numbers & ids, numbers & ids
    assert "item-0" not in body  # the instance's external id is not shown either


def test_page_shows_input_and_two_responses_labelled_a_and_b(blind_study):
    client = invited_client(blind_study)
    response = client.get("/s/blind/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Response A" in html and "Response B" in html
    assert html.count('class="generation raw-text"') == 3  # input + two responses, as written
    assert html.count('class="generation formatted"') == 2  # the responses rendered (Markdown), raw text a click away
    assert re.search(r"Summarise document \d\.", html)
    assert 'name="token"' in html


def test_page_never_names_a_system_before_or_after_voting(blind_study):
    client = invited_client(blind_study)
    for _ in range(3):
        page = client.get("/s/blind/")
        assert_blind(page, blind_study)
        token = re.search(r'name="token" value="([^"]+)"', page.content.decode()).group(1)
        voted = client.post("/s/blind/vote/", {"token": token, "choice": "left"}, HTTP_HX_REQUEST="true")
        assert voted.status_code == 200
        assert_blind(voted, blind_study)
    done = client.get("/s/blind/done/")
    assert_blind(done, blind_study)
    assert Vote.objects.count() == 3


def test_study_name_is_not_shown_to_annotators(blind_study):
    client = invited_client(blind_study)
    invite = InviteLink.objects.get()
    assert blind_study.name not in client.get(f"/invite/{invite.token}/").content.decode()
    assert blind_study.name not in client.get("/s/blind/").content.decode()


def test_generation_markup_is_escaped_and_line_breaks_kept(blind_study):
    user = make_annotator()
    AnnotatorProfile.objects.filter(user=user).update(invite=InviteLink.objects.create(max_uses=1))
    user.annotator.refresh_from_db()
    user.annotator.invite.studies.add(blind_study)
    script_comparison = Comparison.objects.get(study=blind_study, generation_a__text=SCRIPT_TEXT)
    Comparison.objects.filter(study=blind_study).exclude(pk=script_comparison.pk).update(selected=False)
    client = Client()
    client.force_login(user)
    html = client.get("/s/blind/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Line one\nLine &lt;b&gt;two&lt;/b&gt;" in html  # the newline is kept; CSS pre-wrap shows it


def test_instructions_markdown_is_rendered_and_sanitised(blind_study):
    client = invited_client(blind_study)
    html = client.get("/s/blind/").content.decode()
    assert "<strong>better</strong>" in html
    assert "alert('x')" not in html and "<script>alert" not in html


def test_buttons_show_keyboard_shortcuts_and_respect_allowed_answers(blind_study):
    client = invited_client(blind_study)
    html = client.get("/s/blind/").content.decode()
    for key, label in (("1", "Response A"), ("2", "Response B"), ("3", "Tie"), ("4", "Both bad")):
        assert re.search(rf'data-key="{key}"[^>]*>\s*<kbd aria-hidden="true">{key}</kbd> {label}', html), label
    Study.objects.filter(pk=blind_study.pk).update(allow_tie=False, allow_both_bad=False)
    html = client.get("/s/blind/").content.decode()
    assert 'value="tie"' not in html and 'value="both_bad"' not in html
    assert '<script src="/static/js/annotate.js"' in html and "/static/css/annotate.css" in html


def test_rationale_box_follows_the_study_setting(blind_study):
    client = invited_client(blind_study)
    assert 'name="rationale"' in client.get("/s/blind/").content.decode()
    Study.objects.filter(pk=blind_study.pk).update(rationale=Study.Rationale.REQUIRED)
    html = client.get("/s/blind/").content.decode()
    assert re.search(r'<textarea[^>]*name="rationale"[^>]*required', html)
    Study.objects.filter(pk=blind_study.pk).update(rationale=Study.Rationale.OFF)
    assert 'name="rationale"' not in client.get("/s/blind/").content.decode()


def test_progress_bar_shows_done_of_quota(blind_study):
    client = invited_client(blind_study)
    html = client.get("/s/blind/").content.decode()
    assert "0 of 3 done" in html and 'aria-valuenow="0"' in html
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    html = client.post("/s/blind/vote/", {"token": token, "choice": "right"}, HTTP_HX_REQUEST="true").content.decode()
    assert "1 of 3 done" in html and 'aria-valuenow="1"' in html
    assert "<html" not in html  # htmx gets the item fragment only


def test_served_time_is_taken_on_the_server_when_the_page_is_rendered(blind_study):
    client = invited_client(blind_study)
    client.get("/s/blind/")
    assignment = Assignment.objects.get()
    assert assignment.served_at is not None and assignment.expires_at > assignment.served_at


def test_anonymous_visitor_is_sent_to_sign_in(blind_study):
    response = Client().get("/s/blind/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_annotator_not_invited_to_the_study_is_refused(blind_study):
    other = make_study(slug="other-study", n_instances=2)
    client = invited_client(other)
    refused = client.get("/s/blind/")
    missing = client.get("/s/no-such-study/")
    assert refused.status_code == missing.status_code == 404
    without_tokens = lambda r: re.sub(rb'[A-Za-z0-9]{64}', b"", r.content)  # noqa: E731 - the CSRF tokens differ
    assert without_tokens(refused) == without_tokens(missing)  # nobody without access learns which slugs exist
    assert client.post("/s/blind/vote/", {"token": "x", "choice": "left"}).status_code == 404


def test_draft_study_is_hidden_and_closed_study_says_so(blind_study):
    client = invited_client(blind_study)
    Study.objects.filter(pk=blind_study.pk).update(status=Study.Status.DRAFT)
    assert client.get("/s/blind/").status_code == 404
    Study.objects.filter(pk=blind_study.pk).update(status=Study.Status.CLOSED)
    response = client.get("/s/blind/", follow=True)
    assert response.status_code == 200 and "This study is closed" in response.content.decode()


def test_quota_met_leads_to_done_page(blind_study):
    Study.objects.filter(pk=blind_study.pk).update(quota=1, prolific_completion_code="C0DE42",
                                                    prolific_study_id="p-study")
    client = invited_client(blind_study)
    token = re.search(r'name="token" value="([^"]+)"', client.get("/s/blind/").content.decode()).group(1)
    response = client.post("/s/blind/vote/", {"token": token, "choice": "left"}, HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"] == "/s/blind/done/"
    assert client.get("/s/blind/")["Location"] == "/s/blind/done/"
    assert "C0DE42" in client.get("/s/blind/done/").content.decode()


def test_done_page_before_quota_offers_to_continue_without_code(blind_study):
    Study.objects.filter(pk=blind_study.pk).update(prolific_completion_code="C0DE42", prolific_study_id="p-study")
    client = invited_client(blind_study)
    html = client.get("/s/blind/done/").content.decode()
    assert "C0DE42" not in html and "Continue" in html


def test_staff_can_preview_the_page(blind_study, staff_client):
    response = staff_client.get("/s/blind/")
    assert response.status_code == 200 and "Response A" in response.content.decode()


def test_instructions_load_nothing_from_other_sites(blind_study):
    """A remote image in the instructions would tell its host every annotator's address."""
    Study.objects.filter(pk=blind_study.pk).update(instructions=(
        "Read carefully. ![logo](https://tracker.example/pixel.png) ![also](//tracker.example/p.png) "
        '<img src="http://tracker.example/x.gif"> ![ours](/static/img/example.png)'))
    html = invited_client(blind_study).get("/s/blind/").content.decode()
    assert "tracker.example" not in html
    assert 'src="/static/img/example.png"' in html
