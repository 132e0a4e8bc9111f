"""The annotator page in a real browser (Debian's chromium driven by Playwright) on real demo texts:
an invited annotator and a Prolific participant each vote through a study with the keyboard, see the
progress advance without a page reload, and reach the done page with the completion code; the page
never names a system; the two responses sit side by side, and stack on a narrow screen; buttons show
keyboard focus.

Its screenshot becomes docs/screenshots/annotator.png under `make screenshots`.
"""
import os
import re
from pathlib import Path

import pytest
from django.core.management import call_command

from annotations.models import InviteLink, Study, Vote
from annotations.selection import open_study

# Playwright's sync API runs an event loop in this thread; Django would refuse ORM calls next to it.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
CNN = ROOT / "demo/data/separability-paper/flan-t5-xxl_gpt-3.5_turbo_instruct_cnn_dm_pref_data.csv"
SYSTEMS = ("flan-t5-xxl", "gpt-3.5-turbo-instruct")


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def cnn_study(tmp_path):
    """A study over the paper's CNN/DailyMail summaries: quota 3, every answer allowed, a completion code."""
    with open(tmp_path / "import.log", "w") as log:
        call_command("import_pairwise_csv", str(CNN), "--dataset", "cnn-browser", "--study", "cnn-history",
                     "--systems", ",".join(SYSTEMS), stdout=log, stderr=log)
    history = Study.objects.get(slug="cnn-history")

    def make(slug, **fields):
        study = Study.objects.create(
            slug=slug, name="CNN/DM summaries (browser test)", dataset=history.dataset, quota=3,
            votes_per_comparison=1, too_fast_seconds=0, prolific_completion_code="C1X2Y3Z4",
            instructions="Read both summaries of the same news article and pick the **better summary**: accurate, "
                         "complete and concise. Choose *Tie* only if you truly cannot decide.", **fields)
        study.systems.set(history.systems.all())
        open_study(study)
        return study
    return make


def assert_no_system_name(page):
    html = page.content().lower()
    for name in SYSTEMS + ("flan-t5", "gpt-3.5"):
        assert name.lower() not in html, name


def vote_with_keys(page, keys, quota):
    for done, key in enumerate(keys):
        expect_progress(page, f"{done} of {quota} done")
        assert_no_system_name(page)
        page.keyboard.press(key)
    page.wait_for_url(re.compile(r".*/done/$"))


def expect_progress(page, text):
    from playwright.sync_api import expect

    expect(page.locator("#progress-label")).to_have_text(text)


def assert_layout(page):
    """Side by side on a wide screen, stacked on a phone; the buttons show a focus ring."""
    a, b = (page.locator(".response").nth(i).bounding_box() for i in (0, 1))
    assert abs(a["y"] - b["y"]) < 2 and b["x"] > a["x"] + a["width"] - 1
    page.set_viewport_size({"width": 390, "height": 844})
    a, b = (page.locator(".response").nth(i).bounding_box() for i in (0, 1))
    assert b["y"] >= a["y"] + a["height"] - 1
    page.set_viewport_size({"width": 1280, "height": 860})
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.tagName") == "BUTTON":
            break
    assert page.evaluate("document.activeElement.textContent").strip().endswith("Response A")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.evaluate("document.activeElement.blur()")


def test_invited_annotator_votes_with_the_keyboard_to_the_done_page(page, live_server, cnn_study, screenshots):
    study = cnn_study("cnn-keyboard")
    invite = InviteLink.objects.create(max_uses=5)
    invite.studies.add(study)
    page.goto(f"{live_server.url}/invite/{invite.token}/")
    assert_no_system_name(page)
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(f"{live_server.url}/invite/{invite.token}/")
    assert "/r/" in page.get_by_label("Your personal link").input_value()  # shown once, to come back later
    page.get_by_role("link", name="Task 1").click()
    page.wait_for_url(f"{live_server.url}/s/cnn-keyboard/")
    expect_progress(page, "0 of 3 done")
    assert page.get_by_role("heading", name="Response A").is_visible()
    assert page.get_by_role("button", name=re.compile("Response B")).is_visible()
    page.screenshot(path=str(screenshots / "annotator.png"))
    assert_layout(page)

    page.evaluate("window.__samePage = true")  # survives htmx swaps, not a reload
    first_texts = page.locator(".response .generation").all_inner_texts()
    page.keyboard.press("1")
    expect_progress(page, "1 of 3 done")
    assert page.evaluate("window.__samePage === true")
    assert page.locator(".response .generation").all_inner_texts() != first_texts
    assert_no_system_name(page)
    page.keyboard.press("2")
    expect_progress(page, "2 of 3 done")
    page.keyboard.press("3")
    page.wait_for_url(f"{live_server.url}/s/cnn-keyboard/done/")
    assert page.locator("#completion-code").inner_text() == "C1X2Y3Z4"
    assert_no_system_name(page)

    votes = Vote.objects.filter(study=study).order_by("submitted_at")
    assert [v.choice for v in votes] == ["left", "right", "tie"]
    assert len({v.annotator_id for v in votes}) == 1
    assert all(v.duration_seconds is not None for v in votes)


def test_prolific_participant_votes_to_the_completion_code(page, live_server, cnn_study):
    study = cnn_study("cnn-prolific", prolific_study_id="6650aa11bb22cc33dd44ee55",
                      prolific_redirect_url="https://app.prolific.com/submissions/complete?cc=C1X2Y3Z4")
    page.goto(f"{live_server.url}/s/cnn-prolific/?PROLIFIC_PID=5f0e1d2c3b4a596877665544"
              f"&STUDY_ID=6650aa11bb22cc33dd44ee55&SESSION_ID=abcdef0123")
    page.wait_for_url(f"{live_server.url}/s/cnn-prolific/")  # the participant id leaves the address bar
    vote_with_keys(page, ["2", "1", "4"], quota=3)
    assert page.locator("#completion-code").inner_text() == "C1X2Y3Z4"
    link = page.get_by_role("link", name="Return to Prolific to finish")
    assert link.get_attribute("href") == "https://app.prolific.com/submissions/complete?cc=C1X2Y3Z4"
    assert Vote.objects.filter(study=study, annotator__annotator__prolific_pid="5f0e1d2c3b4a596877665544").count() == 3
