"""Sign-in throttling: an atomic count per account and address, and a deliberate answer when Redis is down."""

import threading
import uuid
from contextlib import contextmanager

import pytest
import requests
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.test import Client, RequestFactory, override_settings

from docket.conf import setting
from docket.security import login_attempt_key
from tests.reliability.test_faults import free_port

WRONG = "Please enter a correct username and password"
THROTTLED = "Too many failed sign-in attempts"
FAILURE_LIMIT = setting("LOGIN_FAILURE_LIMIT")  # the throttle reads it on every check
UNAVAILABLE = "Sign-in is unavailable for a moment"


@pytest.fixture
def account(make_user):
    """A fresh username (the Redis database is shared: keys never collide between runs), and its cleanup."""
    name = f"thr-{uuid.uuid4().hex[:8]}"
    make_user(name, "moderator", password="right-password")
    used = []

    def key(address):
        used.append(login_attempt_key(RequestFactory().post("/login/", REMOTE_ADDR=address), name))
        return used[-1]

    yield name, key
    for k in used:  # only our keys: the Redis database also holds Celery's broker
        cache.delete(k)


@contextmanager
def password_checks():
    """Counts the password checks Django makes (failed and successful), across every thread."""
    seen = {"failed": 0, "ok": 0}
    lock = threading.Lock()

    def failed(**kwargs):
        with lock:
            seen["failed"] += 1

    def ok(**kwargs):
        with lock:
            seen["ok"] += 1

    user_login_failed.connect(failed, dispatch_uid="count-failed")
    user_logged_in.connect(ok, dispatch_uid="count-ok")
    try:
        yield seen
    finally:
        user_login_failed.disconnect(dispatch_uid="count-failed")
        user_logged_in.disconnect(dispatch_uid="count-ok")


def sign_in(name, password, *, address="198.51.100.7", path="/login/"):
    """The page, and whether the password was accepted (on to the home page or to the second factor)."""
    client = Client(REMOTE_ADDR=address)
    page = client.post(path, {"username": name, "password": password})
    return page.content.decode(), page.status_code == 302


@pytest.mark.django_db
def test_five_failures_refuse_even_the_right_password_from_that_address(account):
    name, key = account
    key("198.51.100.7")
    with password_checks() as checks:
        for _ in range(FAILURE_LIMIT):
            assert WRONG in sign_in(name, "wrong")[0]
        page, signed_in = sign_in(name, "right-password")

    assert THROTTLED in page and not signed_in
    assert checks == {"failed": FAILURE_LIMIT, "ok": 0}  # the sixth password was never checked


@pytest.mark.django_db
def test_the_limit_is_the_setting_read_on_each_check(account):
    name, key = account
    key("198.51.100.7")
    with override_settings(DOCKET={**settings.DOCKET, "LOGIN_FAILURE_LIMIT": 2}), password_checks() as checks:
        for _ in range(2):
            assert WRONG in sign_in(name, "wrong")[0]
        assert THROTTLED in sign_in(name, "right-password")[0]
    assert checks == {"failed": 2, "ok": 0}


@pytest.mark.django_db
def test_failures_lock_only_that_account_from_that_address(account, make_user):
    name, key = account
    key("198.51.100.7"), key("203.0.113.9")
    colleague = f"thr-{uuid.uuid4().hex[:8]}"
    make_user(colleague, "moderator", password="colleague-password")
    for _ in range(FAILURE_LIMIT):
        sign_in(name, "wrong", address="198.51.100.7")
    try:
        # a colleague behind the same address (an office, a proxy) signs in
        assert sign_in(colleague, "colleague-password", address="198.51.100.7")[1]
        # the account itself, from elsewhere, signs in
        assert sign_in(name, "right-password", address="203.0.113.9")[1]
        # and the username's case does not open a fresh count
        assert THROTTLED in sign_in(name.upper(), "right-password", address="198.51.100.7")[0]
    finally:
        cache.delete(login_attempt_key(RequestFactory().post("/", REMOTE_ADDR="198.51.100.7"), colleague))


@pytest.mark.django_db
def test_a_successful_sign_in_starts_the_count_afresh(account):
    name, key = account
    key("198.51.100.7")
    for _ in range(FAILURE_LIMIT - 1):
        sign_in(name, "wrong")
    assert sign_in(name, "right-password")[1]
    for _ in range(FAILURE_LIMIT - 1):
        sign_in(name, "wrong")
    assert sign_in(name, "right-password")[1]


@pytest.mark.django_db
def test_the_admin_sign_in_is_throttled_too(account, make_user):
    name, key = account
    key("198.51.100.7")
    make_user(name, "policy_admin", password="right-password")
    for _ in range(FAILURE_LIMIT):
        sign_in(name, "wrong", path="/admin/login/")
    page, signed_in = sign_in(name, "right-password", path="/admin/login/")
    assert THROTTLED in page and not signed_in


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_forty_parallel_attempts_check_at_most_five_passwords(account, live_server):
    """Forty clients, each on its own connection to a threaded server, guess at once: five are checked."""
    name, key = account
    key("127.0.0.1")
    barrier = threading.Barrier(40)
    answers, errors = [], []

    def guess(n):
        try:
            with requests.Session() as session:
                session.get(f"{live_server.url}/login/", timeout=30)
                token = session.cookies["csrftoken"]
                barrier.wait(timeout=60)
                page = session.post(
                    f"{live_server.url}/login/",
                    {"username": name, "password": f"guess-{n}", "csrfmiddlewaretoken": token},
                    headers={"Referer": f"{live_server.url}/login/"},
                    timeout=120,
                )
                answers.append(page.text)
        except Exception as e:
            errors.append(repr(e))

    with password_checks() as checks:
        threads = [threading.Thread(target=guess, args=(n,)) for n in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    assert errors == []
    assert checks == {"failed": FAILURE_LIMIT, "ok": 0}
    assert sum(WRONG in a for a in answers) == FAILURE_LIMIT
    assert sum(THROTTLED in a for a in answers) == 40 - FAILURE_LIMIT


@pytest.mark.django_db
def test_with_redis_down_sign_in_fails_closed_and_checks_no_password(account):
    name, key = account
    dead = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}}

    with override_settings(CACHES=dead), password_checks() as checks:
        ui_page, ui_in = sign_in(name, "right-password")
        admin_page, admin_in = sign_in(name, "right-password", path="/admin/login/")

    assert UNAVAILABLE in ui_page and not ui_in
    assert UNAVAILABLE in admin_page and not admin_in
    assert checks == {"failed": 0, "ok": 0}
    key("198.51.100.7")
    assert sign_in(name, "right-password")[1]  # Redis is back: sign-in works again
