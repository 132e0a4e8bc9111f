"""Annotator sessions load their user through `AnnotatorSessionBackend` (one plain statement per request);
staff passwords, permissions and sessions stored with Django's ModelBackend keep working."""
import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, authenticate, get_user_model
from django.test import Client

from annotations.backends import AnnotatorSessionBackend
from annotations.models import AnnotatorProfile, InviteLink
from tests.factories import make_account, make_study

pytestmark = pytest.mark.django_db

BACKEND_PATH = "annotations.backends.AnnotatorSessionBackend"


@pytest.fixture
def study():
    return make_study(slug="sess", n_instances=2)


def signed_in_by_invite(study) -> tuple[Client, object]:
    invite = InviteLink.objects.create()
    invite.studies.add(study)
    client = Client()
    assert client.post(f"/invite/{invite.token}/").status_code == 302
    return client, AnnotatorProfile.objects.get(invite=invite).user


def test_an_invited_annotator_is_loaded_by_the_session_backend_on_each_request(study):
    client, user = signed_in_by_invite(study)
    assert client.session[BACKEND_SESSION_KEY] == BACKEND_PATH
    page = client.get("/s/sess/")
    assert page.status_code == 200
    assert page.wsgi_request.user.pk == user.pk and page.wsgi_request.user.is_authenticated


def test_a_deactivated_annotator_is_signed_out_by_their_next_request(study):
    client, user = signed_in_by_invite(study)
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    page = client.get("/s/sess/")
    assert not page.wsgi_request.user.is_authenticated
    assert page.status_code in (302, 403, 404)


def test_the_backend_loads_the_same_user_as_the_orm_and_nothing_for_odd_ids(study):
    _, user = signed_in_by_invite(study)
    backend = AnnotatorSessionBackend()
    loaded = backend.get_user(str(user.pk))  # sessions store the id as a string
    stored = get_user_model().objects.get(pk=user.pk)
    assert loaded is not None
    assert {f.attname: getattr(loaded, f.attname) for f in stored._meta.concrete_fields} == \
        {f.attname: getattr(stored, f.attname) for f in stored._meta.concrete_fields}
    assert backend.get_user("not-a-number") is None
    assert backend.get_user(10**9) is None


def test_the_session_backend_accepts_no_password_and_staff_still_sign_in_with_theirs():
    staff = make_account("researcher", staff=True)
    staff.set_password("a long staff password")
    staff.save()
    assert AnnotatorSessionBackend().authenticate(None, username="researcher",
                                                  password="a long staff password") is None
    assert authenticate(username="researcher", password="a long staff password") == staff
    client = Client()
    assert client.login(username="researcher", password="a long staff password")
    assert client.session[BACKEND_SESSION_KEY] == "django.contrib.auth.backends.ModelBackend"
    assert client.get("/studies/").status_code == 200


def test_a_session_stored_with_django_model_backend_stays_signed_in(study):
    client, user = signed_in_by_invite(study)
    session = client.session
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"  # as stored before this backend
    session.save()
    page = client.get("/s/sess/")
    assert page.status_code == 200 and page.wsgi_request.user.pk == user.pk
