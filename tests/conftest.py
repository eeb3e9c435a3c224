import os
import shutil

import pytest
from rest_framework.test import APIClient

from docket.accounts import token_for, user_upsert


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


def pytest_collection_modifyitems(config, items):
    """Browser tests skip visibly without Chromium, unless CI demands them."""
    if chromium_available():
        return
    if os.environ.get("DOCKET_REQUIRE_BROWSER"):
        raise pytest.UsageError("DOCKET_REQUIRE_BROWSER is set but Chromium is not installed")
    skip = pytest.mark.skip(reason="browser test: Debian's chromium is not installed (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)
