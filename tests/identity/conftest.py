import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from django.core.cache import cache

from docket.identity import oidc
from tests.browser.conftest import browser, page, screenshot  # noqa: F401  (the browser fixtures, here too)

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc_provider"
CLIENT_ID, CLIENT_SECRET = "docket-test", "docket-test-secret"
ROLE_MAP = "tns-moderators=moderator,tns-csam=clearance:csam,tns-seniors=senior,tns-admins=policy_admin"


@pytest.fixture(autouse=True)
def private_cache(settings):
    """A per-test in-memory cache: the login throttle never leaks between tests."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "id"}}

    cache.clear()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Provider:
    """The running provider: ``set_groups("maria", [...])`` changes what its next sign-in says."""

    def __init__(self, url, users_file):
        self.url, self.users_file = url, users_file

    def users(self):
        return json.loads(self.users_file.read_text())

    def set_groups(self, login, groups):
        users = self.users()
        users[login]["groups"] = groups
        self.users_file.write_text(json.dumps(users))


@pytest.fixture
def oidc_provider(live_server, settings, tmp_path):
    """A real OpenID Connect provider (npm ``oidc-provider``) on 127.0.0.1, and Docket configured for it.

    Users: ``maria`` (moderators + csam), ``nobody`` (a group Docket does not map).
    """
    node = shutil.which("node")
    if node is None or not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail(f"the test provider is not installed: run `npm ci --prefix {PROVIDER_DIR.relative_to(Path.cwd())}`")
    users_file = tmp_path / "users.json"
    users_file.write_text(
        json.dumps({"maria": {"groups": ["tns-moderators", "tns-csam"]}, "nobody": {"groups": ["marketing"]}})
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "provider.log", "w")  # closed below
    process = subprocess.Popen(
        [
            node,
            "provider.mjs",
            str(port),
            str(users_file),
            CLIENT_ID,
            CLIENT_SECRET,
            f"{live_server.url}/oidc/callback/",
        ],
        cwd=PROVIDER_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "NODE_ENV": "test"},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/.well-known/openid-configuration", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the OpenID Connect provider did not start:\n" + (tmp_path / "provider.log").read_text())
            time.sleep(0.2)
        settings.OIDC_DISCOVERY_URL = f"{url}/.well-known/openid-configuration"
        settings.OIDC_RP_CLIENT_ID = CLIENT_ID
        settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
        settings.OIDC_RP_SCOPES = "openid profile email groups"
        settings.DOCKET_OIDC_ROLE_MAP = ROLE_MAP
        yield Provider(url, users_file)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        oidc._discovered.update(url=None, at=0.0, doc=None)
