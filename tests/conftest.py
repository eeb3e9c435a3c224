import os
import shutil

import pytest
from rest_framework.test import APIClient

from docket.accounts import token_for
from reviews.accounts import user_upsert
from tests.support import signed_in


@pytest.fixture(autouse=True)
def no_qa_sampling(settings):
    """No decision is sampled for blind QA unless the test asks for it (``always_qa``).

    A sampled decision is hidden from everyone who may do its review, so at the installation's rate
    (``DOCKET_QA_SAMPLE_RATE``) a test that decides and reads the decision back would fail now and then.
    """
    settings.DOCKET = {**settings.DOCKET, "QA_SAMPLE_RATE": 0.0}


@pytest.fixture
def always_qa(settings):
    """Every human first decision is sampled for blind QA: for the tests of QA and of what it hides."""
    settings.DOCKET = {**settings.DOCKET, "QA_SAMPLE_RATE": 1.0}


@pytest.fixture
def make_user(db):
    """``make_user("alice", "moderator", clearances=["csam"])`` -> a user with those roles."""

    def make(username, roles, **kwargs):
        role_names = roles.split(",") if isinstance(roles, str) else list(roles)
        return user_upsert(
            username=username, role_names=role_names, password=kwargs.pop("password", "pw-" + username), **kwargs
        )

    return make


@pytest.fixture
def login():
    """``login(user)`` -> a test client with that user's session."""

    return signed_in


@pytest.fixture
def api_for():
    """``api_for(user)`` -> an APIClient authenticated with the user's token."""

    def client(user):
        c = APIClient()
        if user is not None:
            c.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
        return c

    return client


@pytest.fixture
def platform(make_user):
    return make_user("platform-svc", "platform")


@pytest.fixture
def moderator(make_user):
    return make_user("mod", "moderator")


@pytest.fixture
def senior(make_user):
    return make_user("senior", "senior,moderator", clearances=["csam", "cib"])


@pytest.fixture
def policy_admin(make_user):
    return make_user("padmin", "policy_admin")


CHROMIUM = "/usr/bin/chromium"


def chromium_available():
    return shutil.which("chromium") is not None or os.path.exists(CHROMIUM)


def _require_serialized_rollback(items):
    """Every transactional test restores the migrated data (role groups, permissions) when it ends.

    A transactional test flushes the database at teardown. Without ``serialized_rollback`` that
    flush re-runs ``post_migrate``, which recreates the role groups under new ids, and the next
    test that restores the serialized data then collides with them on the group's unique name.
    One test written without it breaks every serialized test after it in the run, far from the
    cause; so the mistake is refused at collection, where it is written.
    """
    wrong = []
    for item in items:
        for marker in item.iter_markers("django_db"):
            if marker.kwargs.get("transaction") and not marker.kwargs.get("serialized_rollback"):
                wrong.append(item.nodeid)
            break
    if wrong:
        raise pytest.UsageError(
            "transactional tests must also set serialized_rollback=True "
            "(@pytest.mark.django_db(transaction=True, serialized_rollback=True)): " + ", ".join(wrong)
        )


def pytest_collection_modifyitems(config, items):
    """Transactional tests restore the migrated data; browser tests skip visibly without Chromium."""
    _require_serialized_rollback(items)
    if chromium_available():
        return
    if os.environ.get("DOCKET_REQUIRE_BROWSER"):
        raise pytest.UsageError("DOCKET_REQUIRE_BROWSER is set but Chromium is not installed")
    skip = pytest.mark.skip(reason="browser test: Debian's chromium is not installed (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)
