"""Sign-in at /accounts/login/ pauses an account on one address, and an address, after too many failures,
without letting anyone lock the owner out from elsewhere; behind a proxy the client's address counts."""
import time

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.LOGIN_MAX_FAILURES = 3
    settings.LOGIN_LOCKOUT_SECONDS = 60
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; runs before staff_user


def sign_in(client, username, password, ip="10.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password, "next": "/studies/"},
                       REMOTE_ADDR=ip)


def test_login_uses_the_lockout_view():
    from annotations.auth import LockoutLoginView

    response = Client().get("/accounts/login/")
    assert response.status_code == 200
    assert response.resolver_match.func.view_class is LockoutLoginView


def test_correct_password_signs_in(staff_user):
    response = sign_in(Client(), "staff", "staff-pass-123")
    assert response.status_code == 302


def test_username_locked_after_max_failures_even_with_the_right_password(staff_user):
    client = Client()
    for _ in range(3):
        assert sign_in(client, "staff", "wrong").status_code == 200
    locked = sign_in(client, "staff", "staff-pass-123")
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    assert locked["Retry-After"]
    assert sign_in(Client(), "STAFF ", "staff-pass-123").status_code == 429  # the same account, however typed


def test_guessing_from_one_address_does_not_lock_the_owner_out_elsewhere(staff_user):
    """Counting failures per account let anyone lock the owner out by typing wrong passwords."""
    for _ in range(10):
        sign_in(Client(), "staff", "wrong", ip="203.0.113.66")
    assert sign_in(Client(), "staff", "staff-pass-123", ip="203.0.113.66").status_code == 429
    assert sign_in(Client(), "staff", "staff-pass-123", ip="10.9.9.9").status_code == 302


def test_behind_a_proxy_the_client_address_is_counted_not_the_proxy(staff_user, settings):
    """With REMOTE_ADDR the proxy's, one attacker's failures locked out every member of staff."""
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.254"
    for i in range(20):
        Client().post("/accounts/login/", {"username": f"guess{i}", "password": "wrong"}, REMOTE_ADDR=proxy,
                      HTTP_X_FORWARDED_FOR="198.51.100.7")
    owner = Client().post("/accounts/login/", {"username": "staff", "password": "staff-pass-123"},
                          REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="192.0.2.10")
    assert owner.status_code == 302
    # A client cannot choose its own address: only the entry our proxy appended is believed.
    forged = Client().post("/accounts/login/", {"username": "staff", "password": "staff-pass-123"},
                           REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="192.0.2.10, 198.51.100.7")
    assert forged.status_code == 429


def test_address_locked_after_failures_across_many_usernames(staff_user, settings):
    settings.LOGIN_MAX_FAILURES_PER_IP = 4
    for i in range(4):
        sign_in(Client(), f"guess{i}", "wrong", ip="10.0.0.7")
    assert sign_in(Client(), "staff", "staff-pass-123", ip="10.0.0.7").status_code == 429
    assert sign_in(Client(), "staff", "staff-pass-123", ip="10.0.0.8").status_code == 302


def test_success_resets_the_username_counter(staff_user):
    for _ in range(2):
        sign_in(Client(), "staff", "wrong")
    assert sign_in(Client(), "staff", "staff-pass-123").status_code == 302
    for _ in range(2):
        sign_in(Client(), "staff", "wrong")
    assert sign_in(Client(), "staff", "staff-pass-123").status_code == 302


def test_lockout_ends_after_the_lockout_time(staff_user, settings):
    settings.LOGIN_LOCKOUT_SECONDS = 2
    for _ in range(3):
        sign_in(Client(), "staff", "wrong")
    assert sign_in(Client(), "staff", "staff-pass-123").status_code == 429
    time.sleep(2.1)
    assert sign_in(Client(), "staff", "staff-pass-123").status_code == 302
