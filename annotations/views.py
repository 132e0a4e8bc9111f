"""The annotator pages (/s/<slug>/, the vote endpoint, the done page, invite links) and the staff pages
that set a study up (/studies/...). Thin: the rules live in `queue`, `auth` and `forms`.

Blinding: nothing an annotator receives names a system or carries a system, generation or comparison
id; the only handle on an item is its assignment's opaque token. The templates get the two texts in
display order, never the objects they came from.
"""
from __future__ import annotations

import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from lib.decorators import staff_required
from lib.ratelimit import hit

from . import queue, sql
from .auth import (
    NOT_AVAILABLE,
    SESSION_NEW_REENTRY_KEY,
    ProlificError,
    check_prolific_params,
    enter_from_prolific,
    invite_is_usable,
    invite_stands,
    may_annotate,
    needs_identity_confirmation,
    profile_for_reentry_key,
    profile_of,
    prolific_params,
    record_completion_shown,
    redeem_invite,
    switch_to,
)
from .forms import InviteForm, StudyForm
from .markdown import render_markdown, render_output
from .models import Assignment, Comparison, InviteLink, Study, Vote
from .selection import SelectionError, close_study, open_study

INVITE_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")  # InviteLink.token: token_urlsafe(24)
ANSWER_LABELS = {"left": "Response A", "right": "Response B", "tie": "Tie", "both_bad": "Both bad"}
ANSWERS = (  # (value posted, keyboard shortcut, label); shortcuts stay fixed whatever the study allows
    ("left", "1", "Response A"),
    ("right", "2", "Response B"),
    ("tie", "3", "Tie"),
    ("both_bad", "4", "Both bad"),
)


# --------------------------------------------------------------------------------------------------
# helpers


def is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def message_page(request, title: str, text: str, status: int = 200):
    template = "annotations/_message.html" if is_htmx(request) else "annotations/message.html"
    return render(request, template, {"title": title, "text": text}, status=status)


NOT_AVAILABLE_TITLE = "Not available"
NOT_AVAILABLE_TEXT = "This study does not exist or is not open to you."


class StudyNotAvailable(Exception):
    """Answered the same way whether the study is missing, a draft, or closed to this person, so that
    nobody without access can tell which private study slugs exist."""


def not_available(request):
    return message_page(request, NOT_AVAILABLE_TITLE, NOT_AVAILABLE_TEXT, status=404)


def annotator_study(request, slug: str, check_access: bool = True) -> Study:
    """The study this signed-in person may work in; raises StudyNotAvailable otherwise."""
    study = sql.study_by_slug(slug)
    if study is None or (study.status == Study.Status.DRAFT and not request.user.is_staff):
        raise StudyNotAvailable
    if check_access and not may_annotate(request, study):
        raise StudyNotAvailable
    return study


def item_context(request, study: Study, assignment: Assignment, error: str = "", notice: str = "",
                 rationale: str = "", progress: queue.Progress | None = None) -> dict:
    input_text, text_a, text_b = sql.item_texts(assignment.comparison_id)
    left_text, right_text = (text_a, text_b) if assignment.left_is_a else (text_b, text_a)
    allowed = set(study.allowed_answers) | {"left", "right"}
    return {
        "study_slug": study.slug,
        "token": assignment.token,
        "input_text": input_text,
        "left_text": left_text,
        "right_text": right_text,
        "rendered": study.output_format == "markdown",
        "left_html": render_output(left_text) if study.output_format == "markdown" else "",
        "right_html": render_output(right_text) if study.output_format == "markdown" else "",
        "answers": [{"value": v, "key": k, "label": label} for v, k, label in ANSWERS if v in allowed],
        "rationale_mode": study.rationale,
        "rationale_text": rationale,
        "progress": progress or queue.progress(study, request.user),
        "error": error,
        "notice": notice,
    }


def render_item(request, study: Study, assignment: Assignment, status: int = 200, **extra):
    context = item_context(request, study, assignment, **extra)
    if is_htmx(request):
        return render(request, "annotations/_item.html", context, status=status)
    context["instructions"] = render_markdown(study.instructions)
    return render(request, "annotations/annotate.html", context, status=status)


def next_item_response(request, study: Study, notice: str = "", status: int = 200):
    """After an answer: the next item (htmx swaps it in), or the done page."""
    done_url = reverse("annotations:done", args=[study.slug])
    if not is_htmx(request) and not notice:
        return redirect("annotations:annotate", slug=study.slug, permanent=False)
    assignment = None
    progress = queue.progress(study, request.user)
    if not progress.quota_met and study.status == Study.Status.OPEN:
        assignment = queue.next_assignment(study, request.user, done=progress.done)
    if assignment is None:
        if notice:
            messages.info(request, notice)  # shown on the done page
        if is_htmx(request):  # htmx follows HX-Redirect whatever the status: keep a refusal's status
            return HttpResponse(status=status, headers={"HX-Redirect": done_url})
        return redirect(done_url)
    return render_item(request, study, assignment, status=status, notice=notice, progress=progress)


def open_assignment_for(request, study: Study, token: str) -> Assignment | None:
    if not queue.TOKEN_PATTERN.fullmatch(token or ""):
        return None
    return sql.open_assignment(token, request.user, study)


# --------------------------------------------------------------------------------------------------
# annotator pages


@require_GET
def annotate(request, slug):
    params = prolific_params(request.GET)
    if params is not None:
        return prolific_entry(request, slug, params)
    if not request.user.is_authenticated:  # before looking the study up: the same answer for every slug
        return redirect_to_login(request.get_full_path())
    try:
        study = annotator_study(request, slug)
    except StudyNotAvailable:
        return not_available(request)
    if study.status == Study.Status.CLOSED:
        return redirect("annotations:done", slug=slug)
    progress = queue.progress(study, request.user)
    if progress.quota_met:
        return redirect("annotations:done", slug=slug)
    assignment = queue.next_assignment(study, request.user, done=progress.done)
    if assignment is None:
        return redirect("annotations:done", slug=slug)
    return render_item(request, study, assignment, progress=progress)


@require_http_methods(["GET", "POST"])
def prolific_entry(request, slug, params=None):
    """A participant arriving from Prolific (GET with the three parameters), or confirming (POST) that this
    browser should switch to them from the identity signed in now."""
    confirming = request.method == "POST"
    params = params if params is not None else prolific_params(request.POST)
    if params is None:
        return message_page(request, "This link does not work", NOT_AVAILABLE, status=403)
    study = Study.objects.filter(slug=slug).exclude(status=Study.Status.DRAFT).first()
    try:
        if study is None:
            raise ProlificError(NOT_AVAILABLE)
        check_prolific_params(study, params)
        if not confirming and needs_identity_confirmation(request, params):
            return render(request, "annotations/switch_identity.html", {
                "action": reverse("annotations:prolific_entry", args=[slug]), "fields": params,
                "what": "the Prolific participant named in the link you followed",
            })
        enter_from_prolific(request, study, params)
    except ProlificError as exc:
        return message_page(request, "This link does not work", str(exc), status=403)
    return redirect("annotations:annotate", slug=slug)  # a clean address, without the participant id


@require_POST
def vote(request, slug):
    if not request.user.is_authenticated:
        return message_page(request, "Signed out", "Your session has ended. Please open your study link again.",
                            status=403)
    try:
        study = annotator_study(request, slug)
    except StudyNotAvailable:
        return not_available(request)
    token = request.POST.get("token", "")
    choice = request.POST.get("choice", "")
    rationale = request.POST.get("rationale", "")
    limit = hit("vote", str(request.user.pk), settings.VOTE_RATE_LIMIT)
    if not limit.allowed:
        retry_after = limit.retry_after
        text = f"You are answering faster than we can take answers. Please wait {retry_after} seconds and try again."
        current = open_assignment_for(request, study, token)
        if current is not None:
            response = render_item(request, study, current, status=429, error=text, rationale=rationale)
        else:
            response = message_page(request, "Please slow down", text, status=429)
        response["Retry-After"] = str(retry_after)
        return response
    try:
        if choice == "flag":
            queue.flag_item(study, request.user, token, request.POST.get("flag_reason", ""))
            return next_item_response(request, study, notice="Thank you: the item is reported to the research "
                                      "team and will not count. Here is the next one.")
        result = queue.submit_vote(study, request.user, token, choice, rationale)
    except queue.VoteRejected as exc:
        current = open_assignment_for(request, study, token) if exc.status == 400 else None
        if current is not None:
            return render_item(request, study, current, status=400, error=str(exc), rationale=rationale)
        if study.status != Study.Status.OPEN:
            return message_page(request, "Study closed", str(exc), status=exc.status)
        return next_item_response(request, study, notice=str(exc), status=exc.status)
    if result.replay:  # the same item answered twice (two tabs, a resent form): say which answer counts
        kept = ANSWER_LABELS.get(result.vote.choice, result.vote.choice)
        same = result.vote.choice == choice
        return next_item_response(request, study, notice=(
            "This item was already answered, so nothing changed." if same else
            f"This item was already answered in another tab or window: your first answer, “{kept}”, was kept."))
    return next_item_response(request, study)


@require_GET
def done(request, slug):
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    try:
        study = annotator_study(request, slug)
    except StudyNotAvailable:
        return not_available(request)
    progress = queue.progress(study, request.user)
    status = queue.availability(study, request.user, progress)
    states = queue.Availability
    # Finished = did what was asked: the quota, or (without a quota) everything there was for them.
    # A study closed under an annotator's feet counts as finished for what they did: a Prolific participant
    # gets the code (and the way back) rather than being stranded by the researchers' decision.
    finished = status.state == states.QUOTA_MET or (progress.done > 0 and status.state == states.CLOSED) or (
        not study.quota and progress.done > 0 and status.state in (states.COMPLETE, states.JUDGED_ALL))
    completion_code = study.prolific_completion_code if finished else ""
    if completion_code:
        record_completion_shown(study, request.user)
    return render(request, "annotations/done.html", {
        "study_slug": study.slug,
        "progress": progress,
        "finished": finished,
        "state": status.state,
        "retry_minutes": status.retry_minutes,
        "completion_code": completion_code,
        "redirect_url": study.prolific_redirect_url if finished else "",
    })


INVITE_GONE = ("Invite no longer valid", "This invite link is no longer valid. Please ask the research team for a "
               "new one.")


@require_http_methods(["GET", "POST"])
def invite(request, token):
    invite_link = InviteLink.objects.filter(token=token).first() if INVITE_TOKEN.fullmatch(token) else None
    if invite_link is None:
        raise Http404("No such invite.")
    profile = profile_of(request.user)
    mine = profile is not None and profile.invite_id == invite_link.pk
    if mine and not invite_stands(invite_link):
        return message_page(request, *INVITE_GONE, status=410)
    studies = list(invite_link.studies.filter(status=Study.Status.OPEN).order_by("pk"))
    if request.method == "POST":
        if not mine:
            if not studies:  # nothing to do: do not spend a use of the invite on it
                return message_page(request, "Nothing to do right now", "No task of this invite is open at the "
                                    "moment. Please come back later: your link still works.")
            if redeem_invite(request, invite_link) is None:
                return message_page(request, *INVITE_GONE, status=410)
        return redirect("annotations:invite", token=token)
    if not mine and not invite_is_usable(invite_link):
        return message_page(request, *INVITE_GONE, status=410)
    tasks = []
    if mine:
        for number, study in enumerate(studies, start=1):
            tasks.append({"number": number, "slug": study.slug, "progress": queue.progress(study, request.user)})
    reentry_key = request.session.pop(SESSION_NEW_REENTRY_KEY, "") if mine else ""
    return render(request, "annotations/invite.html", {
        "mine": mine, "tasks": tasks, "study_count": len(studies),
        "signed_in_elsewhere": request.user.is_authenticated and not mine,
        "reentry_url": request.build_absolute_uri(reverse("annotations:reenter", args=[reentry_key]))
        if reentry_key else "",
    })


@require_http_methods(["GET", "POST"])
def reenter(request, key):
    """An invited annotator's personal link back into their account (any browser, after a lost cookie)."""
    profile = profile_for_reentry_key(key)
    if profile is None or profile.invite is None or not invite_stands(profile.invite):
        return message_page(request, "This link does not work", "This personal link is not valid (any more). "
                            "Please ask the research team for help.", status=404)
    current = profile_of(request.user)
    if current is not None and current.pk == profile.pk:
        return redirect("annotations:invite", token=profile.invite.token)
    if request.method == "GET" and request.user.is_authenticated:
        return render(request, "annotations/switch_identity.html", {
            "action": reverse("annotations:reenter", args=[key]), "fields": {},
            "what": "the annotator whose personal link you followed",
        })
    switch_to(request, profile.user)
    return redirect("annotations:invite", token=profile.invite.token)


# --------------------------------------------------------------------------------------------------
# staff pages


@staff_required
def study_list(request):
    # One aggregate over each study's comparisons: live votes are counted by Comparison.votes_count, the
    # others (imported, judges') through the partial index vote_not_live. Counting votes directly read
    # every vote (280 ms at 1,000,000 votes, bench/scale.py); Count() over both joins multiplied
    # comparisons by votes (5-70 s for the demo's 4,500 votes).
    per_study = Comparison.objects.filter(study=OuterRef("pk")).order_by().values("study")
    comparisons = per_study.annotate(n=Count("id")).values("n")
    live = per_study.annotate(n=Sum("votes_count")).values("n")
    others = (Vote.objects.filter(study=OuterRef("pk")).exclude(source=Vote.Source.LIVE).order_by().values("study")
              .annotate(n=Count("id")).values("n"))
    studies = (Study.objects.select_related("dataset")
               .annotate(n_comparisons=Coalesce(Subquery(comparisons), 0),
                         n_votes=Coalesce(Subquery(live), 0) + Coalesce(Subquery(others), 0))
               .order_by("slug"))
    return render(request, "annotations/study_list.html", {"studies": studies})


@staff_required
@require_http_methods(["GET", "POST"])
def study_create(request):
    form = StudyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        study = form.save(commit=False)
        study.created_by = request.user
        study.save()
        form.save_m2m()
        messages.success(request, "Study saved as a draft. Open it to create its comparisons.")
        return redirect("annotations:study_detail", slug=study.slug)
    return render(request, "annotations/study_form.html", {"form": form, "study": None})


@staff_required
@require_GET
def study_form_systems(request):
    """The study form's model list for the dataset just chosen (htmx swaps it in)."""
    form = StudyForm(initial={"dataset": request.GET.get("dataset") or None})
    return render(request, "annotations/_study_field.html", {"field": form["systems"]})


@staff_required
@require_http_methods(["GET", "POST"])
def study_edit(request, slug):
    study = get_object_or_404(Study, slug=slug)
    form = StudyForm(request.POST or None, instance=study)
    if request.method == "POST" and form.is_valid():
        study = form.save()
        note = " Open it again to apply a changed selection policy." if study.status != Study.Status.DRAFT else ""
        messages.success(request, "Study saved." + note)
        return redirect("annotations:study_detail", slug=study.slug)
    return render(request, "annotations/study_form.html", {"form": form, "study": study})


@staff_required
@require_GET
def study_detail(request, slug):
    study = get_object_or_404(Study.objects.select_related("dataset"), slug=slug)
    counts = study.comparisons.aggregate(
        n_total=Count("id"), n_served=Count("id", filter=Q(selected=True, is_gold=False)),
        n_gold=Count("id", filter=Q(is_gold=True)),
        n_complete=Count("id", filter=Q(selected=True, is_gold=False,
                                        votes_count__gte=study.votes_per_comparison)))
    comparisons = {key[2:]: value for key, value in counts.items()}
    invites = [{"link": link, "url": request.build_absolute_uri(reverse("annotations:invite", args=[link.token])),
                "stands": invite_stands(link)}
               for link in study.invites.annotate(joined=Count("annotators")).order_by("-created_at")]
    participants = (study.prolific_sessions.select_related("profile")
                    .annotate(n_votes=Count("profile__user__votes", filter=Q(profile__user__votes__study=study)))
                    .order_by("completion_shown_at", "first_seen_at"))
    return render(request, "annotations/study_detail.html", {
        "study": study, "systems": study.systems.order_by("name"), "comparisons": comparisons,
        "votes": study.votes.count(), "invites": invites, "invite_form": InviteForm(),
        "participants": participants,
        "instructions": render_markdown(study.instructions),
        "annotate_url": request.build_absolute_uri(reverse("annotations:annotate", args=[study.slug])),
    })


@staff_required
@require_POST
def study_open(request, slug):
    study = get_object_or_404(Study, slug=slug)
    try:
        created = open_study(study)
    except SelectionError as exc:
        messages.error(request, f"The study was not opened: {exc}")
    else:
        messages.success(request, f"Study open; {created} new comparisons.")
    return redirect("annotations:study_detail", slug=slug)


@staff_required
@require_POST
def study_close(request, slug):
    study = get_object_or_404(Study, slug=slug)
    if close_study(study):
        messages.success(request, "Study closed: annotators get no new items. The final leaderboard is computed and "
                         "released to the public (if the leaderboard is public).")
    else:
        messages.error(request, "The study is not open.")
    return redirect("annotations:study_detail", slug=slug)


@staff_required
@require_POST
def invite_create(request, slug):
    study = get_object_or_404(Study, slug=slug)
    form = InviteForm(request.POST)
    if form.is_valid():
        link = form.save(commit=False)
        link.created_by = request.user
        link.save()
        link.studies.add(study)
        messages.success(request, "Invite link created.")
    else:
        messages.error(request, "Invite not created: " + "; ".join(
            f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()))
    return redirect("annotations:study_detail", slug=slug)


@staff_required
@require_POST
def invite_toggle(request, slug, pk):
    """Withdraw an invite link (everyone who joined through it loses access) or restore it."""
    study = get_object_or_404(Study, slug=slug)
    link = get_object_or_404(InviteLink, pk=pk, studies=study)
    link.active = not link.active
    link.save(update_fields=["active"])
    messages.success(request, "Invite link restored: its annotators may work again." if link.active else
                     "Invite link withdrawn: nobody can join through it, and the annotators who did cannot "
                     "work any more.")
    return redirect("annotations:study_detail", slug=slug)
