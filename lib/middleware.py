"""Request hygiene and response hardening that every page of the site needs, whatever view answers.

`RequestHygieneMiddleware` refuses requests carrying a NUL character. PostgreSQL cannot store NUL in
text ("A string literal cannot contain NUL (0x00) characters"), so any view that puts a path segment, a
query parameter, a form field or a cookie into a query (an invite token, a dashboard `?metric=`, an admin
list filter, a session key) turned such a request into a 500. No legitimate browser sends NUL in
those places, so one 400 here fixes the whole class instead of each view guarding its own inputs.

`ResponseHardeningMiddleware` adds the Content-Security-Policy to HTML pages, and `Cache-Control:
no-store, private` to anything answered to a signed-in user (session or API token) and to every file
download: those may hold votes, rationales or staff-only numbers that no shared or browser cache
should keep.
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError

NUL = "\x00"
NUL_DETAIL = "The request contains a NUL character, which this site does not accept."


def _bad_request(request: HttpRequest, detail: str) -> HttpResponse:
    """The API's error shape under /api/ (its schema documents `{"detail": ...}`), plain text elsewhere."""
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": detail}, status=400)
    return HttpResponseBadRequest(f"Bad request: {detail}\n", content_type="text/plain; charset=utf-8")


def _has_nul(pairs) -> bool:
    return any(NUL in key or NUL in value for key, value in pairs)


def _query_pairs(querydict):
    return ((key, value) for key, values in querydict.lists() for value in values)


def _form_has_nul(request: HttpRequest) -> bool:
    """Form keys and values, urlencoded or multipart. Not uploaded files: their contents are the
    importers' to judge, and Django's multipart parser already drops unprintable characters from
    their names.

    Reading request.POST here is what CsrfViewMiddleware does for every form post as well; the parsed
    data is cached on the request, so the view does not parse the body twice, and DRF reuses it too."""
    if request.method != "POST":
        return False
    return _has_nul(_query_pairs(request.POST))


class RequestHygieneMiddleware:
    """400 for a NUL in the path, a query-string key or value, a form key or value, or a cookie."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = self.refusal(request)
        return refusal if refusal is not None else self.get_response(request)

    def refusal(self, request: HttpRequest) -> HttpResponse | None:
        if NUL in request.path_info or NUL in request.path:
            return _bad_request(request, NUL_DETAIL)
        if _has_nul(_query_pairs(request.GET)) or _has_nul(request.COOKIES.items()):
            return _bad_request(request, NUL_DETAIL)
        try:
            form_has_nul = _form_has_nul(request)
        except MultiPartParserError:
            # An unreadable multipart body is the view's to refuse, after its own checks (the API answers
            # 401 to an anonymous caller before it looks at the body). Django has marked the form empty,
            # and that empty form is all a view or DRF gets from it, so nothing unchecked gets through.
            return None
        except SuspiciousOperation as exc:
            # Too big, or too many fields. A urlencoded body is cached: the view meets the same error
            # where it met it before. A multipart stream is spent, so it is handled the way Django
            # handles a malformed one (an empty form), and logged where Django would have logged it.
            if request.content_type == "multipart/form-data":
                request._mark_post_parse_error()  # type: ignore[attr-defined]  # private, not in django-stubs
                logging.getLogger(f"django.security.{exc.__class__.__name__}").error(str(exc))
            return None
        return _bad_request(request, NUL_DETAIL) if form_has_nul else None


def content_security_policy(directives: dict[str, list[str]]) -> str:
    """`{"script-src": ["'self'"], ...}` as the header value `script-src 'self'; ...`."""
    return "; ".join(" ".join([name, *sources]) for name, sources in directives.items())


def _is_authenticated(request: HttpRequest) -> bool:
    """Signed in by session, or by an API token (DRF sets `request.user` on the Django request when it
    authenticates). A request that never reached the authentication middleware (a static file served by
    WhiteNoise, a refused request) has no user and needs none; an Authorization header counts even
    when the token was wrong, since whatever was answered to it was meant for one client."""
    if request.META.get("HTTP_AUTHORIZATION"):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


def _is_download(response: HttpResponse) -> bool:
    return response.get("Content-Disposition", "").lower().startswith("attachment")


class ResponseHardeningMiddleware:
    """Content-Security-Policy on HTML responses; `Cache-Control: no-store, private` on private ones.

    A small middleware rather than django-csp: the policy is one fixed string (no nonces or hashes,
    since no page has an inline script or style element), the same for every page, so the library's
    machinery (nonces, per-view decorators, report-only variants) would add a dependency and buy
    nothing. The directives live in settings.CONTENT_SECURITY_POLICY_DIRECTIVES."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = content_security_policy(settings.CONTENT_SECURITY_POLICY_DIRECTIVES)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self._wants_policy(response):
            response["Content-Security-Policy"] = self.policy
        if _is_download(response) or _is_authenticated(request):
            # Replaces whatever a view set (e.g. never_cache's longer form): nothing private is stored.
            response["Cache-Control"] = "no-store, private"
        return response

    @staticmethod
    def _wants_policy(response: HttpResponse) -> bool:
        if not response.get("Content-Type", "").startswith("text/html") or "Content-Security-Policy" in response:
            return False
        # templates/500.html styles itself inline on purpose (it must render when the static files are what
        # failed) and holds nothing from the request; with DEBUG on, Django's own 404 page is styled inline too.
        if response.status_code == 500:
            return False
        return not (settings.DEBUG and response.status_code == 404)
