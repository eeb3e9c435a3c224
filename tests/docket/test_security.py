"""Security settings and request guards."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import override_settings
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from docket.throttling import ScopedThrottle

ROOT = Path(__file__).resolve().parents[2]


def test_check_deploy_is_clean_under_production_settings():
    # The browser tests' async-unsafe switch is a test-only setting, not deployment's.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env |= {
        "DOCKET_PRODUCTION": "1",
        "DJANGO_SECRET_KEY": "a-long-random-production-secret-" + "x9Q2!" * 10,
        "DJANGO_ALLOWED_HOSTS": "docket.example.org",
        "PLATFORM_WEBHOOK_SECRET": "webhook-secret",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_secret_key():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    env["DOCKET_PRODUCTION"] = "1"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'docket.settings');django.setup()",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


@pytest.mark.django_db
def test_oversized_api_body_is_refused_with_413_and_envelope(client):
    body = b"[" + b"0," * 3_000_000 + b"0]"
    response = client.post("/api/v1/signals/", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


class _Scoped(APIView):
    throttle_scope = "intake"

    def post(self, request):
        return Response({"ok": True})


@pytest.mark.django_db
@override_settings(
    REST_FRAMEWORK={
        **__import__("django.conf").conf.settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"intake": "3/min"},
    }
)
def test_intake_scope_is_rate_limited_per_account_with_429(make_user):
    api_settings.reload()
    ScopedThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    factory = APIRequestFactory()
    one, two = make_user("svc-1", "platform"), make_user("svc-2", "platform")
    keys = [f"throttle_intake_{user.pk}" for user in (one, two)]
    cache.delete_many(keys)
    try:
        responses = []
        for _ in range(4):
            request = factory.post("/x", {}, format="json")
            force_authenticate(request, user=one)
            responses.append(_Scoped.as_view()(request))
        assert [r.status_code for r in responses] == [200, 200, 200, 429]
        assert responses[-1].data["code"] == "throttled"
        request = factory.post("/x", {}, format="json")
        force_authenticate(request, user=two)
        assert _Scoped.as_view()(request).status_code == 200
    finally:
        api_settings.reload()
        ScopedThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
        cache.delete_many(keys)
