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
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.forms.utils import ErrorDict
from django.db.models import F, Q
from django.utils import timezone

from .models import AnnotatorProfile, InviteLink, Study
from .ratelimit import increment
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
# sign-in with lockout


def client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _username_key(username: str) -> str:
    digest = hashlib.sha256(username.strip().lower().encode("utf-8")).hexdigest()[:32]
    return f"login-fail:user:{digest}"


def _ip_key(ip: str) -> str:
    return f"login-fail:ip:{ip}"


def ip_failure_limit() -> int:
    # Many people may share one address (a lab behind NAT), so an address gets more tries than a name.
    return getattr(settings, "LOGIN_MAX_FAILURES_PER_IP", 4 * settings.LOGIN_MAX_FAILURES)


# With the cache (Redis) down the counters are unreadable: sign-in stays possible (fails open, logged)
# rather than locking every researcher out during an outage.


def is_locked_out(username: str, ip: str) -> bool:
    try:
        return ((cache.get(_username_key(username)) or 0) >= settings.LOGIN_MAX_FAILURES
                or (cache.get(_ip_key(ip)) or 0) >= ip_failure_limit())
    except Exception:  # noqa: BLE001 - any cache backend error
        log.warning("login lockout: cache unavailable, not enforcing", exc_info=True)
        return False


def record_failure(username: str, ip: str) -> None:
    try:
        increment(_username_key(username), settings.LOGIN_LOCKOUT_SECONDS)
        increment(_ip_key(ip), settings.LOGIN_LOCKOUT_SECONDS)
    except Exception:  # noqa: BLE001
        log.warning("login lockout: cache unavailable, failure not counted", exc_info=True)


def clear_failures(username: str) -> None:
    try:
        cache.delete(_username_key(username))
    except Exception:  # noqa: BLE001
        log.warning("login lockout: cache unavailable, failures not cleared", exc_info=True)


class LockoutLoginView(LoginView):
    """Django's sign-in page, refusing a name or an address after too many failed tries (via the cache).

    While locked, even the right password is refused, so guessing gains nothing from the lockout.
    """

    LOCKED_MESSAGE = ("Too many failed sign-in attempts. For your security, sign-in is paused; please try again "
                      "in {minutes} minutes.")

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        if is_locked_out(username, client_ip(request)):
            form = self.get_form()
            form._errors, form.cleaned_data = ErrorDict(), {}  # shown as is: the password is never checked
            form.add_error(None, self.LOCKED_MESSAGE.format(minutes=max(1, settings.LOGIN_LOCKOUT_SECONDS // 60)))
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        record_failure(self.request.POST.get("username", ""), client_ip(self.request))
        return super().form_invalid(form)

    def form_valid(self, form):
        clear_failures(self.request.POST.get("username", ""))
        return super().form_valid(form)
