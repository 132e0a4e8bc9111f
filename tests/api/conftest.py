"""Fixtures of the API tests: users and MEDIA_ROOT (static storage and hashers: tests/conftest.py)."""
import pytest


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def annotator_client(client, django_user_model):
    from tests.dashboard.factories import make_annotator

    client.force_login(make_annotator("plain-annotator"))
    return client
