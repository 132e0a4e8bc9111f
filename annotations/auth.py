"""Who annotates, and how they get an account: invite links, Prolific participants, and a sign-in page
that locks out password guessing.

Annotator accounts have no usable password; the session cookie set when they arrive (by invite link
or from Prolific) is their credential. An invited annotator also gets a personal re-entry link, shown
once, to come back on another browser; a Prolific participant is bound to the first SESSION_ID they
arrived with, so their PROLIFIC_PID alone opens nothing. No GET ever replaces the identity signed in
on a browser: that takes a confirmation POST. Staff sign in with a password through `LockoutLoginView`
(docs/security.md has the threats these answer).
"""
from __future__ import annotations

import hashlib
import logging
import re
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth.views import LoginView
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.forms.utils import ErrorDict
from django.utils import timezone

from lib.client_ip import client_ip
from lib.ratelimit import Rate, hit, peek, reset, retry_after_text

from .models import AnnotatorProfile, InviteLink, ProlificSession, Study
from .services import new_pseudonym
from .sql import prolific_pid_and_invite_standing

BACKEND = "annotations.backends.AnnotatorSessionBackend"  # how annotator sessions load their user
SESSION_PROLIFIC_STUDIES = "prolific_studies"  # study pks entered through their Prolific link
SESSION_PROLIFIC_SESSION = "prolific_session_id"

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# accounts


def create_annotator(invite: InviteLink | None = None, prolific_pid: str | None = None):
    """A new annotator: User with an unusable password and a profile with a random pseudonym."""
    User = get_user_model()
    for _ in range(5):
        pseudonym = new_pseudonym()
        try:
            with transaction.atomic():
                user = User(username=pseudonym)
                user.set_unusable_password()
                user.save()
                AnnotatorProfile.objects.create(user=user, pseudonym=pseudonym, invite=invite,
                                                prolific_pid=prolific_pid)
                return user
        except IntegrityError:
            if prolific_pid and AnnotatorProfile.objects.filter(prolific_pid=prolific_pid).exists():
                raise
    raise RuntimeError("could not draw a free pseudonym")


def profile_of(user) -> AnnotatorProfile | None:
    if not user.is_authenticated:
        return None
    try:
        return user.annotator
    except AnnotatorProfile.DoesNotExist:
        return None


def may_annotate(request, study: Study) -> bool:
    user = request.user
    if not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    row = prolific_pid_and_invite_standing(study, user)
    if row is None:
        return False
    prolific_pid, invited = row
    if invited:
        return True
    return bool(prolific_pid and study.prolific_study_id
                and study.pk in request.session.get(SESSION_PROLIFIC_STUDIES, []))


def judges(user, study: Study) -> bool:
    """Whether this (non-staff) person is, or may become, one of the study's annotators: their invite
    covers it, they entered it from Prolific, or they were served an item of it. Such a person must not
    see the study's leaderboard or name while it is open (blinding)."""
    profile = profile_of(user)
    if profile is None or user.is_staff:
        return False
    if profile.invite_id and InviteLink.studies.through.objects.filter(
            invitelink_id=profile.invite_id, study_id=study.pk).exists():
        return True
    return (ProlificSession.objects.filter(profile=profile, study=study).exists()
            or study.comparisons.filter(assignments__annotator=user).exists())


def switch_to(request, user) -> None:
    """Sign `user` in on this browser, ending whatever session was there (a fresh session key)."""
    logout(request)
    login(request, user, backend=BACKEND)


# --------------------------------------------------------------------------------------------------
# invite links and the personal re-entry link


REENTRY_KEY = re.compile(r"[A-Za-z0-9_-]{20,64}")
SESSION_NEW_REENTRY_KEY = "new_reentry_key"  # shown once, on the page after the invite is redeemed


def invite_is_usable(invite: InviteLink, now=None) -> bool:
    now = now or timezone.now()
    return invite.active and invite.uses < invite.max_uses and (invite.expires_at is None or invite.expires_at > now)


def invite_stands(invite: InviteLink, now=None) -> bool:
    """Whether the people who joined through this invite may still work through it."""
    now = now or timezone.now()
    return invite.active and (invite.expires_at is None or invite.expires_at > now)


def claim_invite_use(invite: InviteLink) -> bool:
    """Take one use of the invite with a conditional UPDATE, so the cap holds under any concurrency."""
    now = timezone.now()
    return InviteLink.objects.filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now),
        pk=invite.pk, active=True, uses__lt=F("max_uses"),
    ).update(uses=F("uses") + 1) == 1


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def issue_reentry_key(profile: AnnotatorProfile) -> str:
    """A new personal re-entry key for this annotator (any earlier one stops working); only its hash is kept."""
    key = secrets.token_urlsafe(24)
    AnnotatorProfile.objects.filter(pk=profile.pk).update(reentry_key_hash=_key_hash(key))
    return key


def profile_for_reentry_key(key: str) -> AnnotatorProfile | None:
    if not REENTRY_KEY.fullmatch(key or ""):
        return None
    return (AnnotatorProfile.objects.select_related("user", "invite")
            .filter(reentry_key_hash=_key_hash(key)).first())


def redeem_invite(request, invite: InviteLink):
    """Create and sign in a new annotator for this invite; None when the invite is used up or closed.

    The new annotator's personal re-entry key is left in the session for the next page to show once:
    an invited annotator has no password, so without it a lost cookie (or a switch to another identity)
    would lose their account for good."""
    with transaction.atomic():
        if not claim_invite_use(invite):
            return None
        user = create_annotator(invite=invite)
    switch_to(request, user)
    request.session[SESSION_NEW_REENTRY_KEY] = issue_reentry_key(user.annotator)
    return user


# --------------------------------------------------------------------------------------------------
# Prolific


class ProlificError(Exception):
    """The Prolific parameters do not fit this study (message shown to the participant)."""


PROLIFIC_PID_FORMAT = re.compile(r"[0-9a-f]{24}")  # what Prolific issues: a 24-character hexadecimal id
PROLIFIC_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
PROLIFIC_KEYS = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")


def prolific_params(source) -> dict | None:
    """The three Prolific parameters from a QueryDict (GET, or the confirmation form's POST)."""
    if not any(key in source for key in PROLIFIC_KEYS):
        return None
    return {key: source.get(key, "").strip() for key in PROLIFIC_KEYS}


def _pid_matches(study: Study, pid: str) -> bool:
    if study.prolific_pid_pattern:
        try:
            return re.fullmatch(study.prolific_pid_pattern, pid) is not None
        except re.error:  # the form validates the pattern; an unreadable one accepts nobody
            return False
    return PROLIFIC_PID_FORMAT.fullmatch(pid) is not None


def check_prolific_params(study: Study, params: dict) -> None:
    pid, study_id, session_id = params["PROLIFIC_PID"], params["STUDY_ID"], params["SESSION_ID"]
    if not study.prolific_study_id:
        raise ProlificError(NOT_AVAILABLE)
    if study_id != study.prolific_study_id:
        raise ProlificError("This link belongs to a different Prolific study. Please return to Prolific and "
                            "open the study link from there.")
    if not pid or len(pid) > 64 or not _pid_matches(study, pid):
        raise ProlificError("The link does not carry a valid Prolific ID. Please open the study from Prolific "
                            "again.")
    if not PROLIFIC_SESSION_ID.fullmatch(session_id):
        raise ProlificError("The link does not carry your Prolific session. Please open the study from Prolific "
                            "again.")


NOT_AVAILABLE = "This study is not available."
TAKEOVER_REFUSED = ("This Prolific ID is already taking part in this study in another session. Please continue in "
                    "the browser where you started, or contact the researchers through Prolific.")


def needs_identity_confirmation(request, params: dict) -> bool:
    """Whether following this link would replace the identity signed in on this browser.

    A plain GET must never switch identities (login CSRF: a link could sign an annotator out of their
    own account and into someone else's); the switch needs a confirmation POST."""
    if not request.user.is_authenticated:
        return False
    current = profile_of(request.user)
    return current is None or current.prolific_pid != params["PROLIFIC_PID"]


def _bind_session(profile: AnnotatorProfile, study: Study, session_id: str) -> None:
    """Bind this participant to the first SESSION_ID they arrived with in this study; refuse any other."""
    try:
        with transaction.atomic():
            binding, created = ProlificSession.objects.get_or_create(
                profile=profile, study=study, defaults={"session_id": session_id})
    except IntegrityError:  # two first arrivals at once: the other one won
        binding, created = ProlificSession.objects.get(profile=profile, study=study), False
    if not created and binding.session_id != session_id:
        ProlificSession.objects.filter(pk=binding.pk).update(refused_takeovers=F("refused_takeovers") + 1)
        log.warning("Prolific takeover refused: study %s, participant %s", study.slug, profile.pseudonym)
        raise ProlificError(TAKEOVER_REFUSED)


def enter_from_prolific(request, study: Study, params: dict):
    """Sign in the participant named by PROLIFIC_PID (creating their one account on first visit).

    The caller has checked the parameters (`check_prolific_params`) and, when another identity is
    signed in, had the switch confirmed by a POST. A PID is bound to the first SESSION_ID it came with
    in this study: a second client naming the same PID with another session is refused before it is
    signed in, so it can neither see the participant's items nor store a vote."""
    pid = params["PROLIFIC_PID"]
    profile = AnnotatorProfile.objects.filter(prolific_pid=pid).select_related("user").first()
    if profile is None:
        try:
            user = create_annotator(prolific_pid=pid)
        except IntegrityError:  # the same participant arrived twice at once
            user = AnnotatorProfile.objects.get(prolific_pid=pid).user
        profile = user.annotator
    _bind_session(profile, study, params["SESSION_ID"])
    current = profile_of(request.user)
    if current is None or current.pk != profile.pk:
        switch_to(request, profile.user)
    entered = request.session.get(SESSION_PROLIFIC_STUDIES, [])
    if study.pk not in entered:
        request.session[SESSION_PROLIFIC_STUDIES] = entered + [study.pk]
    request.session[SESSION_PROLIFIC_SESSION] = params["SESSION_ID"]
    return request.user


def record_completion_shown(study: Study, user) -> None:
    """The participant saw the completion code (staff see who never did)."""
    ProlificSession.objects.filter(study=study, profile__user=user, completion_shown_at__isnull=True).update(
        completion_shown_at=timezone.now())


# --------------------------------------------------------------------------------------------------
# sign-in throttle


def _account_and_address(username: str, ip: str) -> str:
    digest = hashlib.sha256(f"{username.strip().lower()}\x1f{ip}".encode()).hexdigest()[:32]
    return digest


def _failure_rates() -> tuple[Rate, Rate]:
    """(per account and address, per address): failures allowed in any LOGIN_LOCKOUT_SECONDS."""
    period = settings.LOGIN_LOCKOUT_SECONDS
    per_ip = getattr(settings, "LOGIN_MAX_FAILURES_PER_IP", 4 * settings.LOGIN_MAX_FAILURES)
    return Rate(settings.LOGIN_MAX_FAILURES, period), Rate(per_ip, period)


# Counted per (account, address) and per address, never per account alone: counting per account let
# anyone lock the owner out by typing wrong passwords for their name. Many people may share one
# address (a lab behind NAT), so an address gets more tries than an account on it. Counters live in
# the cache, and in the database while the cache is down (lib.ratelimit): guessing never becomes free.


def sign_in_refused_for(username: str, ip: str) -> int:
    """Seconds to wait when sign-in for this account from this address is paused now; 0 when allowed."""
    pair_rate, ip_rate = _failure_rates()
    pair = peek("login-fail", _account_and_address(username, ip), pair_rate)
    address = peek("login-fail-ip", ip, ip_rate)
    return max(pair.retry_after if not pair.allowed else 0, address.retry_after if not address.allowed else 0)


def record_failure(username: str, ip: str) -> None:
    pair_rate, ip_rate = _failure_rates()
    hit("login-fail", _account_and_address(username, ip), pair_rate)
    hit("login-fail-ip", ip, ip_rate)


def clear_failures(username: str, ip: str) -> None:
    reset("login-fail", _account_and_address(username, ip), _failure_rates()[0])


class LockoutLoginView(LoginView):
    """Django's sign-in page, pausing an account on one address, or an address, after too many failures.

    While paused, even the right password is refused (it is never checked), so guessing gains nothing."""

    LOCKED_MESSAGE = ("Too many failed sign-in attempts from your network. For your security, sign-in is paused; "
                      "please try again in {wait}.")

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        wait = sign_in_refused_for(username, client_ip(request))
        if wait:
            form = self.get_form()
            form._errors, form.cleaned_data = ErrorDict(), {}  # shown as is: the password is never checked
            form.add_error(None, self.LOCKED_MESSAGE.format(wait=retry_after_text(wait)))
            response = self.render_to_response(self.get_context_data(form=form), status=429)
            response["Retry-After"] = str(wait)
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        record_failure(self.request.POST.get("username", ""), client_ip(self.request))
        return super().form_invalid(form)

    def form_valid(self, form):
        clear_failures(self.request.POST.get("username", ""), client_ip(self.request))
        return super().form_valid(form)
