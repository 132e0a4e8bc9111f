"""Fixtures of the API tests: plain static storage (tests do not run collectstatic), users, MEDIA_ROOT."""
import pytest


@pytest.fixture(autouse=True)
def plain_static(settings):
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def annotator_client(client, django_user_model):
    from tests.dashboard.factories import make_annotator

    client.force_login(make_annotator("plain-annotator"))
    return client
