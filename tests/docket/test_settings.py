"""One settings accessor: Docket's settings and their defaults live in docket/settings.py only.

Code reads ``DOCKET[...]`` through ``docket.conf.setting`` and Docket's top-level settings as plain attributes
(``settings.DSA_TDB_URL``), never with a default of its own: a default restated beside a reader drifts from the
one in settings.py, and an operator's environment variable or a test's override would reach some readers only.
"""

import re
from pathlib import Path

from django.conf import settings

from docket.conf import setting

ROOT = Path(__file__).resolve().parents[2]
APPS = ["docket", "policies", "casework", "reviews", "appeals", "investigations", "transparency", "oversight"]
# Docket's own names: DOCKET[...], DOCKET_*, DSA_*, and the sign-in settings settings.py defines.
OWN = r"DOCKET\w*|DSA_\w+|OIDC_DISCOVERY_URL|OIDC_RP_CLIENT_ID|LANGUAGE_CODE"
RESTATED = re.compile(rf"getattr\(settings, \"({OWN})\"|settings\.DOCKET(\.get\(|\[)")


def restated_defaults():
    found = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in ("docket/settings.py", "docket/conf.py") or "/migrations/" in relative:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if RESTATED.search(line) and "settings.DOCKET[" not in line.split("=")[0]:
                    found.append(f"{relative}:{number}")
    return found


def test_no_module_reads_a_docket_setting_past_the_accessor_or_with_a_default_of_its_own():
    assert restated_defaults() == []


def test_the_pattern_finds_a_restated_default():
    assert RESTATED.search('limit = getattr(settings, "DOCKET_LOGIN_FAILURE_LIMIT", 5)')
    assert RESTATED.search('window = settings.DOCKET.get("APPEAL_WINDOW_DAYS", 180)')
    assert RESTATED.search('base = settings.DOCKET["WEBHOOK_BACKOFF_SECONDS"]')
    assert not RESTATED.search('base = setting("WEBHOOK_BACKOFF_SECONDS")')


def test_the_accessor_reads_the_one_dict():
    assert setting("LOGIN_FAILURE_LIMIT") == settings.DOCKET["LOGIN_FAILURE_LIMIT"]
