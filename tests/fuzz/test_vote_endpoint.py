"""The vote endpoint POST /s/<slug>/vote/ fed arbitrary form fields (choice, token and rationale of
any unicode and size, missing, repeated or extra fields, form or multipart encoding, with or without
htmx): never a 500, never a partial write, and a vote is stored exactly when the answer is valid.

The oracle: a vote is stored iff the token is the annotator's open item, the choice is one the study
allows and the rationale (stripped) fits; then it is stored once, decoded to the right winner, with
its rationale, its assignment completed, its comparison counted and its ratings moved. Whatever is
posted, the database invariants hold after every request.
"""
from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from django.db.models import Count, F
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from annotations.models import Assignment, Comparison, Vote
from annotations.queue import RATIONALE_MAX_CHARS, decode_choice
from ranking.models import RatingState
from tests.annotations.test_annotate_view import invited_client
from tests.factories import make_study

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r'name="token" value="([^"]+)"')
SLUG = "fuzz-vote"
URL = f"/s/{SLUG}/vote/"
ALLOWED = {"left", "right", "tie"}  # the fuzz study has "both bad" switched off
OK_STATUSES = {200, 302, 400, 403, 404, 409, 429}

# NUL is left out: on PostgreSQL it is a known crash (tests/fuzz/test_known_bugs.py).
text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=80)
valid_choices = st.sampled_from(sorted(ALLOWED))
choices = st.one_of(valid_choices, valid_choices,
                    st.sampled_from(["both_bad", "LEFT", " left", "left ", "a", "b", "1", "", "none", "left\n"]), text)
rationales = st.one_of(
    text,
    st.sampled_from(["", "   ", "\n\t ", "Because A is shorter.", "<script>alert(1)</script>", "'; DROP TABLE x; --"]),
    st.tuples(st.sampled_from([RATIONALE_MAX_CHARS - 1, RATIONALE_MAX_CHARS, RATIONALE_MAX_CHARS + 1, 20_000]),
              st.sampled_from(["x", "é", "😀", " "])).map(lambda t: "y" + t[1] * (t[0] - 1)),
)
token_kinds = st.sampled_from(["current"] * 6 + ["previous", "foreign", "mutated", "truncated",
                               "random", "empty", "missing", "huge"])


@st.composite
def submissions(draw):
    fields = {"choice": draw(choices), "rationale": draw(rationales)}
    for name in ("choice", "rationale"):
        if draw(st.integers(0, 9)) == 0:
            del fields[name]
    extras = draw(st.dictionaries(st.sampled_from(["csrfmiddlewaretoken", "study", "winner", "annotator", "x"]),
                                  text, max_size=2))
    return {
        "token_kind": draw(token_kinds),
        "token_text": draw(text),
        "fields": fields,
        "extras": extras,
        "repeat": draw(st.sampled_from([None, None, None, "choice", "token"])),
        "repeat_value": draw(choices),
        "multipart": draw(st.booleans()),
        "htmx": draw(st.booleans()),
    }


def current_token(client) -> str | None:
    page = client.get(f"/s/{SLUG}/")
    match = TOKEN.search(page.content.decode()) if page.status_code == 200 else None
    return match.group(1) if match else None


def check_invariants(study) -> None:
    votes = Vote.objects.filter(study=study)
    assert not Assignment.objects.filter(comparison__study=study, completed_at__isnull=False,
                                         vote__isnull=True).exists()
    assert not votes.filter(assignment__completed_at__isnull=True).exists()
    counted = Comparison.objects.filter(study=study).annotate(n=Count("votes"))
    assert not counted.exclude(votes_count=F("n")).exists(), "votes_count differs from the stored votes"
    assert not counted.filter(n__gt=study.votes_per_comparison).exists(), "a comparison is over its overlap"
    rated = sum(RatingState.objects.filter(study=study, method="elo").values_list("votes", flat=True))
    assert rated == 2 * votes.count(), "a vote without its rating update (or the reverse)"


@pytest.fixture
def fuzz_setup(settings):
    settings.VOTE_RATE_LIMIT = "1000000/m"
    study = make_study(slug=SLUG, n_instances=40, systems=("alpha-model", "beta-model", "gamma-model"), overlap=2,
                       rationale="optional", allow_both_bad=False)
    annotator, other = invited_client(study), invited_client(study)
    state = {"previous": None, "foreign": current_token(other)}
    return study, annotator, state


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(submission=submissions())
def test_any_form_fields_give_no_500_and_no_partial_write(fuzz_setup, submission):
    study, client, state = fuzz_setup
    current = current_token(client)
    if current is None:
        return  # every item done (does not happen with this pool, but would not be a failure)
    kind = submission["token_kind"]
    token = {
        "current": current, "previous": state["previous"] or current, "foreign": state["foreign"],
        "mutated": current[:-1] + ("A" if current[-1] != "A" else "B"), "truncated": current[:8],
        "random": submission["token_text"], "empty": "", "huge": current * 200,
    }.get(kind)
    fields = dict(submission["fields"], **submission["extras"])
    if token is not None:
        fields["token"] = token
    if submission["repeat"]:  # a repeated field: Django reads the last value
        name = submission["repeat"]
        fields[name] = [submission["repeat_value"], fields.get(name, "")]
    posted = {k: (v[-1] if isinstance(v, list) else v) for k, v in fields.items()}
    headers = {"HTTP_HX_REQUEST": "true"} if submission["htmx"] else {}

    before = Vote.objects.filter(study=study).count()
    previous = state["previous"]
    assignment = Assignment.objects.get(token=current)
    if submission["multipart"]:
        response = client.post(URL, fields, **headers)
    else:
        response = client.post(URL, urlencode(fields, doseq=True), content_type="application/x-www-form-urlencoded",
                               **headers)
    assert response.status_code in OK_STATUSES, response.status_code
    event(f"status {response.status_code}")

    rationale = posted.get("rationale", "").strip()
    valid = (posted.get("token") == current and posted.get("choice") in ALLOWED
             and len(rationale) <= RATIONALE_MAX_CHARS)
    after = Vote.objects.filter(study=study).count()
    if valid:
        assert after == before + 1, f"a valid answer was not stored ({response.status_code})"
        assert response.status_code in (200, 302)
        vote = Vote.objects.get(assignment=assignment)
        assert vote.choice == posted["choice"]
        assert vote.winner == decode_choice(posted["choice"], assignment.left_is_a)
        assert vote.rationale == rationale
        state["previous"] = current
    else:
        assert after == before, f"an invalid answer changed the votes ({response.status_code}: {submission})"
        replay = previous is not None and posted.get("token") == previous
        assert replay or response.status_code not in (200, 302), "an answer that stored nothing got a success status"
    check_invariants(study)
