"""Each installation signs with its own secret key, generated once and kept private in the data folder."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.messages import constants
from django.contrib.messages.storage.base import Message
from django.contrib.messages.storage.cookie import CookieStorage
from django.test import Client, override_settings
from django.utils.safestring import mark_safe

from docket.keys import installation_secret_key

ROOT = Path(__file__).resolve().parents[2]
# The key every installation shared before keys were generated per installation.
PUBLIC_KEY = "docket-insecure-development-key-change-me-in-production-0123456789"


def test_a_key_is_generated_once_kept_private_and_differs_per_installation(tmp_path):
    key = installation_secret_key(tmp_path / "one")

    path = tmp_path / "one" / "secret-key"
    assert len(key) >= 50
    assert installation_secret_key(tmp_path / "one") == key == path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert installation_secret_key(tmp_path / "two") != key
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["secret-key"]


def test_processes_starting_at_once_agree_on_one_key(tmp_path):
    script = "import sys; from docket.keys import installation_secret_key as k; print(k(sys.argv[1]))"
    processes = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    keys = {p.communicate(timeout=60)[0].strip() for p in processes}

    assert len(keys) == 1 and keys == {(tmp_path / "secret-key").read_text().strip()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret-key"]  # no temporary file left behind


def test_a_damaged_key_file_is_a_clear_error_not_a_weak_key(tmp_path):
    (tmp_path / "secret-key").write_text("short\n")
    with pytest.raises(RuntimeError, match="holds no usable secret key"):
        installation_secret_key(tmp_path)


def test_settings_without_a_configured_key_use_the_installations_own(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SECRET_KEY", "DOCKET_PRODUCTION"}}
    env["DOCKET_DATA_DIR"] = str(tmp_path)
    script = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env | {"DJANGO_SETTINGS_MODULE": "docket.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (tmp_path / "secret-key").read_text().strip()
    assert settings.SECRET_KEY != PUBLIC_KEY


@pytest.mark.django_db
def test_a_messages_cookie_forged_with_the_old_public_key_runs_nothing(make_user):
    make_user("mod", "moderator")
    with override_settings(SECRET_KEY=PUBLIC_KEY):
        storage = CookieStorage(None)
        forged = storage._encode([Message(constants.ERROR, mark_safe("<script>alert('forged')</script>"))])
        assert storage._decode(forged)  # what the attacker could sign before
    client = Client()
    client.cookies["messages"] = forged

    page = client.get("/login/")

    assert page.status_code == 200
    assert "forged" not in page.content.decode()
