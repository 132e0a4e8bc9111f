"""Every page fits a phone: at 390 x 844 no page scrolls sideways (document scrollWidth <= 390), wide tables
scroll inside their own box, model names wrap at hyphens rather than mid-word, the annotator's answer
buttons stay on screen, and at 1280 px the leaderboard table needs no scrolling at all.

The data is realistic on purpose: five systems with long names, a two-system study, votes from three
annotators on every pair, ROUGE-1 separability (so the weighted boards show their notes), an annotator
item with a long input and outputs holding a long unbroken URL, an invite link and a Prolific set-up.
Screenshots go to the `screenshots` fixture's folder (a temporary one under `make test`).
"""
import os
import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction

from annotations.imports.write import store_historical_vote
from annotations.models import Comparison, Dataset, Generation, Instance, InviteLink, Study, System
from annotations.selection import open_study
from tests.factories import make_account

# Playwright's sync API runs an event loop in this thread; Django would refuse ORM calls next to it.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
FIVE = ("cerebras-gpt-6.7B", "gpt-3.5-turbo-instruct", "meta-llama_Llama-2-70b-chat-hf",
        "mistral-7b-instruct-v0.2", "pythia-6.9b-deduped")
STRENGTH = dict(zip(FIVE, (0.2, 0.9, 0.7, 0.6, 0.1), strict=True))
TWO = ("flan-t5-xxl", "gpt-3.5-turbo-instruct")
URL = ("https://huggingface.co/datasets/abisee/cnn_dailymail/resolve/main/3.0.0/"
       "train-00000-of-00003-2d5a9b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d.parquet"
       "?download=true&revision=96df5e686bee6baa90b8bee7c28b81fa3fa6223d")
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
STAFF = ("phone-staff", "phone-pass-123")

# Elements (and text) that stick out past the page's right edge without a scrolling box around them:
# what makes the page scroll sideways. A box that scrolls (overflow-x other than visible) contains its
# content, unless the content is positioned against something outside it.
OVERFLOWERS = """() => {
  const width = document.documentElement.clientWidth, out = [];
  const inScroller = (el) => {
    // An absolutely positioned element escapes every scroller below its containing block.
    let escapes = ['absolute', 'fixed'].includes(getComputedStyle(el).position);
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const style = getComputedStyle(p);
      if (escapes && (style.position !== 'static' || style.contain.includes('layout') ||
                      style.containerType !== 'normal'))
        escapes = false;
      if (!escapes && style.overflowX !== 'visible') return true;
    }
    return false;
  };
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > width + 0.5 && !inScroller(el)) out.push(describe(el) + ' right=' + Math.round(r.right));
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.textContent.trim()) continue;
    const range = document.createRange();
    range.selectNodeContents(n);
    const r = range.getBoundingClientRect();
    if (r.right > width + 0.5 && !inScroller(n.parentElement))
      out.push('text in ' + describe(n.parentElement) + ' right=' + Math.round(r.right) + ': ' +
               n.textContent.trim().slice(0, 60));
  }
  return out.slice(0, 20);
}"""

# Line breaks inside a name that fall neither after a hyphen, underscore, dot, slash or space: mid-word.
MID_WORD_BREAKS = """(el) => {
  const breaks = [];
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.textContent;
    let top = null;
    for (let i = 0; i < text.length; i++) {
      const range = document.createRange();
      range.setStart(n, i); range.setEnd(n, i + 1);
      const rects = range.getClientRects();
      if (!rects.length || !text[i].trim()) continue;
      const t = rects[0].top;
      if (top !== null && t > top + 2 && !/[-_./\\s]/.test(text[i - 1]))
        breaks.push(text.slice(0, i) + '|' + text.slice(i));
      top = t;
    }
  }
  return breaks;
}"""

CANVASES_DRAWN = """() => [...document.querySelectorAll('canvas')].every(c => c.width > 0 && c.height > 0)"""


# --------------------------------------------------------------------------------------------- data


def long_text(i: int, system: str, sample: int) -> str:
    return (f"Summary {sample + 1} of article {i + 1}. The report, published with its data at {URL} , says that "
            f"the council approved the new transport plan after a two-year consultation; {system} notes that the "
            "budget, the timetable and the list of affected neighbourhoods are in the appendix.\n\n"
            "```\n" + "curl -sSL " + URL + " | python -m pyarrow.parquet --show-schema\n```\n"
            "Key points:\n\n- the plan starts next spring\n- fares stay the same\n- " + "x" * 3 * (i + 1))


def long_input(i: int) -> str:
    return (f"Article {i + 1}. " + "The city council met on Tuesday to discuss the transport plan. " * 12 +
            f"Source and full data: {URL}\n\nThe meeting ended after midnight.")


def build_dataset(slug: str, systems, n_instances: int, k: int) -> Dataset:
    dataset = Dataset.objects.create(slug=slug, name=f"{slug} (phone layout test)")
    system_objs = [System.objects.get_or_create(name=name)[0] for name in systems]
    for i in range(n_instances):
        instance = Instance.objects.create(dataset=dataset, external_id=f"article-{i}", input=long_input(i))
        Generation.objects.bulk_create([
            Generation(instance=instance, system=s, sample_index=j, text=long_text(i, s.name, j))
            for s in system_objs for j in range(k)])
    return dataset


def compute_rouge_separability(dataset: Dataset):
    from separability.engine import compute_separability
    from separability.models import Alignment, SeparabilityRun
    from separability.services import copy_separability_to_comparisons, instance_samples, normalise_dataset

    ids = list(dataset.instances.values_list("id", flat=True))
    run = SeparabilityRun.objects.create(dataset=dataset, metrics=["rouge1"], total=len(ids), done=len(ids),
                                         chunks_total=1, chunks_done=[0], status="done")
    Alignment.objects.bulk_create([
        Alignment(instance_id=r.key, system_a_id=r.system_a, system_b_id=r.system_b, metric=r.metric,
                  self_a=r.self_a, self_b=r.self_b, cross=r.cross, separability=r.separability, k_a=r.k_a,
                  k_b=r.k_b, undefined_reason=r.undefined_reason, run=run)
        for chunk in compute_separability(instance_samples(ids), None, metrics=("rouge1",)) for r in chunk])
    normalise_dataset(dataset)
    copy_separability_to_comparisons(dataset)


def voted_study(slug: str, name: str, systems, n_instances: int, k: int, seed: int) -> Study:
    """An open study over every pair of `systems`, judged by three annotators on every comparison, with
    ROUGE-1 separability and a public release of its leaderboards."""
    from ranking.services import rebuild_study_ratings, release_leaderboard

    rng = random.Random(seed)
    dataset = build_dataset(f"{slug}-data", systems, n_instances, k)
    study = Study.objects.create(slug=slug, name=name, dataset=dataset, sample_pairs_per_unit=k, votes_per_comparison=3,
                                 policy_metric="rouge1", too_fast_seconds=0)
    study.systems.set(System.objects.filter(name__in=systems))
    open_study(study)
    compute_rouge_separability(dataset)
    annotators = [make_account(f"{slug}-annotator-{n}") for n in range(3)]
    number = 0
    for comparison in Comparison.objects.filter(study=study).select_related("system_a", "system_b").order_by("id"):
        a, b = STRENGTH.get(comparison.system_a.name, 0.5), STRENGTH.get(comparison.system_b.name, 0.5)
        for annotator in annotators:
            draw = rng.random()
            winner = "tie" if draw < 0.1 else "a" if draw < 0.1 + 0.9 * (0.5 + (a - b) / 2) else "b"
            store_historical_vote(comparison, annotator, winner, START + timedelta(minutes=number))
            number += 1
    release_leaderboard(study, "staff", rebuild_study_ratings(study, rounds=10))
    return study


@pytest.fixture
def world():
    """Two voted studies (five systems, two systems), an annotator study with a long item, a staff user."""
    from tests.factories import make_study as make_queue_study

    with transaction.atomic():
        five = voted_study("five-models", "Instruction following with five models, each with a long name",
                           FIVE, n_instances=4, k=2, seed=5)
        two = voted_study("cnn-dm-two", "CNN/DailyMail summaries (the separability paper's crowd batch)",
                          TWO, n_instances=6, k=2, seed=2)
        Study.objects.filter(pk=five.pk).update(prolific_study_id="65f1c0ffee0123456789abcd",
                                                prolific_completion_code="C1X2Y3Z4LONGCODE")
        annotate = make_queue_study("phone-annotate", n_instances=3, k=1, systems=TWO, quota=2,
                                    texts=lambda i, system, s: long_text(i, system.name, s),
                                    prolific_completion_code="C1X2Y3Z4", rationale="optional",
                                    instructions="Read both summaries of the same news article and pick the **better "
                                                 "summary**: accurate, complete and concise. Source: " + URL)
        Study.objects.filter(pk=annotate.pk).update(name="CNN/DM summaries (phone)")
        Instance.objects.filter(dataset=annotate.dataset).update(input=long_input(0))
        invite = InviteLink.objects.create(max_uses=5, note="phone test")
        invite.studies.add(annotate)
        get_user_model().objects.create_user(STAFF[0], password=STAFF[1], is_staff=True, is_superuser=True)
    return {"five": five, "two": two, "annotate": annotate, "invite": invite}


# --------------------------------------------------------------------------------------------- helpers


def new_page(browser, viewport):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page, errors


@pytest.fixture
def phone(browser):
    context, page, errors = new_page(browser, PHONE)
    yield page
    context.close()
    assert not errors, errors


def settle(page):
    page.wait_for_load_state("networkidle")
    page.wait_for_function(CANVASES_DRAWN)
    page.wait_for_timeout(150)  # Chart.js resizes on the next animation frame


class Layout:
    """Layout checks made as the pages are visited and reported together at the end of the test, so that one
    run lists every page that does not fit (with what sticks out), not just the first."""

    def __init__(self, screenshots):
        self.screenshots, self.problems = screenshots, []

    def expect(self, condition, message):
        if not condition:
            self.problems.append(str(message))

    def fits(self, page, name, width=PHONE["width"], full_page=True):
        settle(page)
        scroll_width = page.evaluate("() => document.documentElement.scrollWidth")
        print(f"width at {width}: {name}: {scroll_width}")
        prefix = "phone" if width == PHONE["width"] else "desktop"
        page.screenshot(path=str(self.screenshots / f"{prefix}-{name}.png"), full_page=full_page)
        self.expect(scroll_width <= width,
                    f"{name} is {scroll_width}px wide at {width}px: {page.evaluate(OVERFLOWERS)}")
        # What a wide table hides: each scrolling box, scrolled to its end (then back).
        for i, box in enumerate(page.locator(".table-scroll").all()):
            if box.is_visible() and box.evaluate("(el) => el.scrollWidth > el.clientWidth"):
                box.evaluate("(el) => { el.scrollLeft = el.scrollWidth; }")
                box.screenshot(path=str(self.screenshots / f"{prefix}-{name}-table{i + 1}-scrolled.png"))
                box.evaluate("(el) => { el.scrollLeft = 0; }")

    def visit(self, page, url, name):
        response = page.goto(url)
        assert response.status == 200, (url, response.status)
        self.fits(page, name)

    def names_break_at_hyphens(self, page, selector):
        cells = page.locator(selector)
        assert cells.count() > 0, selector
        for i in range(cells.count()):
            breaks = cells.nth(i).evaluate(MID_WORD_BREAKS)
            self.expect(not breaks, f"{page.url} {selector}: breaks mid-word: {breaks}")

    def within_viewport(self, page, locator, what, viewport=PHONE):
        box = locator.bounding_box()
        self.expect(box and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"] + 0.5
                    and box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"] + 0.5,
                    f"{page.url} {what} is not on screen: {box}")

    def assert_all_fine(self):
        assert not self.problems, "\n".join(self.problems)


@pytest.fixture
def layout(screenshots):
    return Layout(screenshots)


def sign_in(page, base_url):
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", STAFF[0])
    page.fill("#id_password", STAFF[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/(dashboard/)?$"))


# --------------------------------------------------------------------------------------------- tests


def test_annotator_pages_fit_a_phone(phone, live_server, world, layout, screenshots):
    page, invite = phone, world["invite"]
    layout.visit(page, f"{live_server.url}/invite/{invite.token}/", "invite")
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(f"{live_server.url}/invite/{invite.token}/")
    layout.fits(page, "invite-tasks")
    page.get_by_role("link", name="Task 1").click()
    page.wait_for_url(f"{live_server.url}/s/phone-annotate/")
    layout.fits(page, "annotate", full_page=False)  # what the phone shows: the answer bar sticks to its bottom
    assert URL[:40] in page.locator(".input-text").inner_text()

    # The answers are on screen from the start, thumb-sized, and leave most of the screen to the texts ...
    buttons = page.locator(".answers button")
    assert buttons.count() == 4
    for i in range(buttons.count()):
        layout.within_viewport(page, buttons.nth(i), f"answer button {i + 1}")
        layout.expect(buttons.nth(i).bounding_box()["height"] >= 40, f"answer button {i + 1} is small")
    bar = page.locator(".answer-form").bounding_box()
    layout.expect(bar["height"] <= PHONE["height"] * 0.4, f"the answer bar takes {bar['height']}px of 844")
    # ... and stay there while the annotator reads down to the end of the second response.
    page.locator(".response").nth(1).scroll_into_view_if_needed()
    page.mouse.wheel(0, 500)
    page.wait_for_timeout(200)
    for i in range(buttons.count()):
        layout.within_viewport(page, buttons.nth(i), f"answer button {i + 1} (scrolled)")
    page.screenshot(path=str(screenshots / "phone-annotate-scrolled.png"))

    buttons.nth(0).click()
    page.wait_for_function("() => document.querySelector('#progress-label').textContent.includes('1 of 2')")
    layout.fits(page, "annotate-second", full_page=False)
    page.locator(".answers button").nth(1).click()
    page.wait_for_url(re.compile(r".*/done/$"))
    layout.fits(page, "done")
    assert page.locator("#completion-code").is_visible()
    layout.assert_all_fine()


def test_public_pages_fit_a_phone(phone, live_server, world, layout):
    page = phone
    layout.visit(page, f"{live_server.url}/", "home")
    layout.visit(page, f"{live_server.url}/accounts/login/", "login")
    layout.visit(page, f"{live_server.url}/leaderboard/", "leaderboard-index")
    for key, systems in (("five", FIVE), ("two", TWO)):
        study = world[key]
        layout.visit(page, f"{live_server.url}/leaderboard/{study.slug}/", f"leaderboard-{study.slug}")
        assert page.locator("table.leaderboard tbody tr").count() == len(systems)
        assert "Vote weight" in page.locator("dl.methods").inner_text()  # the weighted methods' notes
        layout.names_break_at_hyphens(page, "table.leaderboard th")  # the headings too: "Bradley-|Terry"
        layout.names_break_at_hyphens(page, "table.heatmap th")
        # The caption reads without scrolling the table: it is as wide as the box the table scrolls in.
        caption, box = page.locator("table.leaderboard caption"), page.locator(".table-scroll").first
        layout.expect(caption.bounding_box()["width"] <= box.bounding_box()["width"] + 0.5,
                      f"{study.slug}: the caption is wider than its box ({caption.bounding_box()['width']}px)")
        for canvas in page.locator("canvas").all():
            layout.expect(canvas.bounding_box()["width"] <= PHONE["width"] - 16,
                          f"{study.slug}: a chart is {canvas.bounding_box()['width']}px wide")
    layout.assert_all_fine()


def test_staff_pages_fit_a_phone(phone, live_server, world, layout):
    page, five = phone, world["five"]
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/studies/{five.slug}/")
    page.get_by_role("button", name="Create invite link").click()  # a long invite URL in the table
    page.wait_for_load_state()
    layout.visit(page, f"{live_server.url}/dashboard/", "dashboard")
    for study in (world["five"], world["two"], world["annotate"]):
        layout.visit(page, f"{live_server.url}/dashboard/studies/{study.slug}/", f"dashboard-{study.slug}")
        if study != world["annotate"]:
            layout.names_break_at_hyphens(page, "table.leaderboard th")
    layout.visit(page, f"{live_server.url}/studies/", "studies")
    layout.visit(page, f"{live_server.url}/studies/{five.slug}/", f"study-{five.slug}")
    assert page.locator("code.copyable").count() >= 1
    layout.visit(page, f"{live_server.url}/studies/new/", "study-new")
    layout.visit(page, f"{live_server.url}/studies/{five.slug}/edit/", f"study-edit-{five.slug}")
    layout.visit(page, f"{live_server.url}/dashboard/datasets/{five.dataset.slug}/separability/",
                 f"separability-{five.dataset.slug}")
    layout.visit(page, f"{live_server.url}/leaderboard/", "leaderboard-index-staff")
    layout.visit(page, f"{live_server.url}/leaderboard/{five.slug}/", f"leaderboard-staff-{five.slug}")
    layout.assert_all_fine()


def test_wide_screen_needs_no_scrolling_at_1280(browser, live_server, world, layout):
    """At 1280 px the leaderboard table (and the staff tables) fit: nothing scrolls, not even inside its box."""
    context, page, errors = new_page(browser, DESKTOP)

    def nothing_scrolls(name):
        for i, box in enumerate(page.locator(".table-scroll").all()):
            sizes = box.evaluate("(el) => [el.scrollWidth, el.clientWidth]")
            layout.expect(sizes[0] <= sizes[1], f"{name}: table {i + 1} scrolls at 1280 px: {sizes}")

    try:
        for study in (world["five"], world["two"]):
            page.goto(f"{live_server.url}/leaderboard/{study.slug}/")
            layout.fits(page, f"leaderboard-{study.slug}", width=DESKTOP["width"])
            nothing_scrolls(study.slug)
            layout.names_break_at_hyphens(page, "table.leaderboard th")
            charts = page.locator(".charts section")  # side by side, as before
            a, b = charts.nth(0).bounding_box(), charts.nth(1).bounding_box()
            layout.expect(abs(a["y"] - b["y"]) < 2 and b["x"] > a["x"] + a["width"] - 1,
                          f"{study.slug}: the charts are not side by side: {a} {b}")
        sign_in(page, live_server.url)
        for path, name in (("/dashboard/", "dashboard"),
                           (f"/dashboard/studies/{world['five'].slug}/", "dashboard-study"),
                           ("/studies/", "studies"), (f"/studies/{world['five'].slug}/", "study")):
            page.goto(live_server.url + path)
            layout.fits(page, name, width=DESKTOP["width"])
            nothing_scrolls(name)
    finally:
        context.close()
    assert not errors, errors
    layout.assert_all_fine()
