"""The two paths a newcomer walks, in a real browser (Debian's chromium through Playwright) on the demo:

- an annotator follows the demo's invite link and is served a comparison in every demo study, by clicking
  from the tasks page, and the votes are stored;
- a researcher signs in, reaches the studies list from the navigation, creates a study on an imported
  dataset, opens it, makes an invite link and follows it to the dashboard, all by clicking.
"""
import io
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from annotations.models import InviteLink, Study, Vote
from demo.sources import PANDALM_STUDY, PAPER_DEMOS

from .test_browser import assert_no_system_name

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DEMO_STUDIES = [paper.study for paper in PAPER_DEMOS] + [PANDALM_STUDY]


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


@pytest.fixture
def demo(settings):
    settings.VOTE_RATE_LIMIT = "1000/m"
    call_command("load_demo", "--skip-separability", stdout=io.StringIO(), stderr=io.StringIO())
    return InviteLink.objects.get(note="demo")


def test_a_newcomer_annotator_is_served_an_item_in_every_demo_study(page, live_server, demo):
    page.goto(f"{live_server.url}/invite/{demo.token}/")
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(f"{live_server.url}/invite/{demo.token}/")
    assert page.get_by_label("Your personal link").input_value().startswith(f"{live_server.url}/r/")
    for number, slug in enumerate(DEMO_STUDIES, start=1):
        page.goto(f"{live_server.url}/invite/{demo.token}/")
        page.get_by_role("link", name=f"Task {number}", exact=True).click()
        page.wait_for_url(f"{live_server.url}/s/{slug}/")
        expect(page.get_by_role("heading", name="Response A")).to_be_visible()
        assert_no_system_name(page)
        page.keyboard.press("1")
        expect(page.locator("#progress-label")).to_have_text(re.compile(r"\s*1 (of \d+ )?done\s*"))
    assert len(set(Vote.objects.filter(source=Vote.Source.LIVE).values_list("annotator", flat=True))) == 1
    assert sorted(Vote.objects.filter(source=Vote.Source.LIVE).values_list("study__slug", flat=True)) == sorted(
        DEMO_STUDIES)


def test_a_researcher_sets_up_a_study_by_clicking(page, live_server, demo):
    from django.contrib.auth import get_user_model

    researcher = get_user_model().objects.get(username="researcher")
    researcher.set_password("a-long-test-password")
    researcher.save()

    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Username").fill("researcher")
    page.get_by_label("Password").fill("a-long-test-password")
    page.get_by_role("button", name=re.compile("Sign in", re.I)).click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Studies").click()
    page.wait_for_url(f"{live_server.url}/studies/")
    page.get_by_role("link", name="New study").click()

    page.get_by_label("Slug").fill("my-summaries")
    page.get_by_label("Name").fill("My first study")
    page.get_by_label("Dataset").select_option(label="samsum")
    expect(page.get_by_label("mistral-7b")).to_be_visible()  # the dataset's models, loaded by htmx
    expect(page.get_by_label("llama-7b")).to_have_count(0)
    page.get_by_label("mistral-7b").check()
    page.get_by_label("vicuna-7b").check()
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"{live_server.url}/studies/my-summaries/")
    page.get_by_role("button", name=re.compile("Open")).click()
    expect(page.get_by_text(re.compile(r"Study open; \d+ new comparisons"))).to_be_visible()
    page.get_by_role("button", name="Create invite link").click()
    expect(page.get_by_text("Invite link created.")).to_be_visible()
    invite_url = page.locator("code.copyable").first.inner_text()
    assert "/invite/" in invite_url
    page.get_by_role("navigation", name="This study").get_by_role("link", name="Dashboard").click()
    page.wait_for_url(f"{live_server.url}/dashboard/studies/my-summaries/")
    expect(page.get_by_role("heading", name="My first study")).to_be_visible()

    study = Study.objects.get(slug="my-summaries")
    assert study.status == Study.Status.OPEN and study.comparisons.filter(selected=True).exists()
    assert InviteLink.objects.filter(studies=study).count() == 1
