"""Who annotates, and how they get an account: invite links, Prolific participants, and a sign-in page
that locks out password guessing.

Annotator accounts have no usable password; the session cookie set when they arrive (by invite link
or from Prolific) is their credential. Staff sign in with a password through `LockoutLoginView`.
"""
from __future__ import annotations

import hashlib
import logging
import re

from django.conf import settings
from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth.views import LoginView
from django.db import IntegrityError, connection, transaction
from django.forms.utils import ErrorDict
from django.db.models import F, Q
from django.utils import timezone

from lib.client_ip import client_ip
from lib.ratelimit import Rate, hit, peek, reset, retry_after_text

from .models import AnnotatorProfile, InviteLink, Study
from .services import new_pseudonym

BACKEND = "django.contrib.auth.backends.ModelBackend"
PROLIFIC_PID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
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
    # One plain query on every vote (through the ORM, with an Exists annotation, it cost 7% of the
    # server's CPU per annotator cycle: bench/web_load.py --profile-cpu): the annotator's Prolific id,
    # and whether their invite covers this study.
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT p.prolific_pid, EXISTS (SELECT 1 FROM "{InviteLink.studies.through._meta.db_table}" s '
            "WHERE s.invitelink_id = p.invite_id AND s.study_id = %s) "
            f'FROM "{AnnotatorProfile._meta.db_table}" p WHERE p.user_id = %s', [study.pk, user.pk])
        row = cursor.fetchone()
    if row is None:
        return False
    prolific_pid, invited = row
    if invited:
        return True
    return bool(prolific_pid and study.prolific_study_id
                and study.pk in request.session.get(SESSION_PROLIFIC_STUDIES, []))


# --------------------------------------------------------------------------------------------------
# invite links


def invite_is_usable(invite: InviteLink, now=None) -> bool:
    now = now or timezone.now()
    return invite.active and invite.uses < invite.max_uses and (invite.expires_at is None or invite.expires_at > now)


def claim_invite_use(invite: InviteLink) -> bool:
    """Take one use of the invite with a conditional UPDATE, so the cap holds under any concurrency."""
    now = timezone.now()
    return InviteLink.objects.filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now),
        pk=invite.pk, active=True, uses__lt=F("max_uses"),
    ).update(uses=F("uses") + 1) == 1


def redeem_invite(request, invite: InviteLink):
    """Create and sign in a new annotator for this invite; None when the invite is used up or closed."""
    with transaction.atomic():
        if not claim_invite_use(invite):
            return None
        user = create_annotator(invite=invite)
    logout(request)
    login(request, user, backend=BACKEND)
    return user


# --------------------------------------------------------------------------------------------------
# Prolific


class ProlificError(Exception):
    """The Prolific parameters do not fit this study (message shown to the participant)."""


def prolific_params(request) -> dict | None:
    if not any(key in request.GET for key in ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")):
        return None
    return {key: request.GET.get(key, "").strip() for key in ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")}


def enter_from_prolific(request, study: Study, params: dict):
    """Sign in the participant named by PROLIFIC_PID (creating their one account on first visit).

    Whoever is signed in with another identity is signed out first, so a participant id never continues
    someone else's session, and nobody continues a participant's session with another participant id.
    """
    pid, study_id = params["PROLIFIC_PID"], params["STUDY_ID"]
    if not study.prolific_study_id:
        raise ProlificError("This study does not take participants from Prolific.")
    if study_id != study.prolific_study_id:
        raise ProlificError("This link belongs to a different Prolific study. Please return to Prolific and "
                            "open the study link from there.")
    if not PROLIFIC_PID.match(pid):
        raise ProlificError("The link is missing your Prolific ID. Please open the study from Prolific again.")
    current = profile_of(request.user)
    if current is None or current.prolific_pid != pid:
        profile = AnnotatorProfile.objects.filter(prolific_pid=pid).select_related("user").first()
        if profile is None:
            try:
                user = create_annotator(prolific_pid=pid)
            except IntegrityError:  # the same participant arrived twice at once
                user = AnnotatorProfile.objects.get(prolific_pid=pid).user
        else:
            user = profile.user
        logout(request)
        login(request, user, backend=BACKEND)
    entered = request.session.get(SESSION_PROLIFIC_STUDIES, [])
    if study.pk not in entered:
        request.session[SESSION_PROLIFIC_STUDIES] = entered + [study.pk]
    request.session[SESSION_PROLIFIC_SESSION] = params["SESSION_ID"][:128]
    return request.user


# --------------------------------------------------------------------------------------------------
# sign-in throttle


def _account_and_address(username: str, ip: str) -> str:
    digest = hashlib.sha256(f"{username.strip().lower()}\x1f{ip}".encode("utf-8")).hexdigest()[:32]
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
