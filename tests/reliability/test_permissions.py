"""Every API endpoint and UI page, asked by every role: allowed or refused as designed.

The matrix lists, per probe, what each role gets, in the order of ``ROLES``:
anonymous, platform, moderator, moderator cleared for csam+cib, senior (cleared), appeals, policy admin.

API outcomes are status codes. UI outcomes are a status code, ``login`` (redirect to the sign-in page),
``refused`` (redirect with an error message: the UI shows service refusals as messages, never an error
page), ``lost`` (the lease fragment's "you no longer hold this case") or ``302`` (redirect, no error).
Every probe runs in a savepoint that is rolled back, so each role meets the same world; on every
refusal (and every other 4xx) the database fingerprint of ``db_state()`` must not move.

The URL patterns are read from the resolver: an endpoint added without a matrix entry fails
``test_every_url_pattern_has_a_matrix_entry``.
"""

import re
import uuid
from dataclasses import dataclass, field

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.messages import constants, get_messages
from django.core.cache import cache
from django.db import transaction
from django.test import Client, RequestFactory
from django.urls import URLResolver, get_resolver, resolve

from appeals.services import appeal_claim, appeal_file
from casework.models import Subject
from docket.security import login_attempt_key

from .conftest import ROLES, api_client, changed_tables, db_state, rule_of, ui_client, violation_of

pytestmark = pytest.mark.django_db

API_REFUSALS = {"401", "403", "404"}
UI_REFUSALS = {"login", "403", "404", "refused", "lost"}


@dataclass(frozen=True)
class Probe:
    method: str
    url: str  # formatted with the world's object ids: "{spam_open}" is the pk of world.spam_open
    expect: tuple  # one outcome per role of ROLES
    body: object = None  # a dict, or a callable of the world
    ui: bool = False
    note: str = field(default="", compare=False)

    def __post_init__(self):
        assert len(self.expect) == len(ROLES), self


def api(method, url, *expect, body=None, note=""):
    return Probe(method, url, tuple(str(e) for e in expect), body, False, note)


def ui(method, url, *expect, body=None, note=""):
    return Probe(method, url, tuple(str(e) for e in expect), body, True, note)


def _decision(kind):
    return lambda w: {"action": violation_of(kind), "rule": rule_of(kind), "rationale": "matrix"}


def _bulk(kind, case):
    return lambda w: {**_decision(kind)(w), "cases": [getattr(w, case).pk]}


SIGNAL = {
    "source": "user-reports",
    "external_id": "matrix-1",
    "threat_class": "spam",
    "subject": {"kind": "account", "external_id": "u-matrix"},
    "reporter": "u-reporter",
    "reason": "spam",
}
ESCALATE = {"queue": "escalations", "reason": "needs a senior"}
RESOLVE = {"outcome": "upheld", "rationale": "the decision stands"}
#                    anon  platform  mod  mod+clr  senior  appeals  padmin
STAFF_READ = (401, 403, 200, 200, 200, 200, 200)
CLEARED_READ = (401, 403, 404, 200, 200, 404, 404)
ADMIN_ONLY = (401, 403, 403, 403, 403, 403, 200)
ADMIN_POST = (401, 403, 403, 403, 403, 403, 201)
SENIOR_POST = (401, 403, 403, 403, 201, 403, 403)
APPEALS_ONLY = (401, 403, 403, 403, 403, 200, 403)
UI_STAFF = ("login", 403, 200, 200, 200, 200, 200)
UI_CLEARED = ("login", 403, 404, 200, 200, 404, 404)
UI_APPEALS = ("login", 403, 403, 403, 403, 200, 403)

MATRIX = [
    # --- intake and cases -------------------------------------------------------------------------------------
    api("post", "/api/v1/signals/", 401, 201, 403, 403, 403, 403, 403, body=SIGNAL),
    api("get", "/api/v1/cases/", *STAFF_READ),
    api("get", "/api/v1/cases/{spam_open}/", *STAFF_READ),
    api("get", "/api/v1/cases/{csam_open}/", *CLEARED_READ),
    api("get", "/api/v1/cases/{spam_open}/events/", *STAFF_READ),
    api("get", "/api/v1/cases/{cib_open}/events/", *CLEARED_READ),
    api("get", "/api/v1/cases/{spam_decided}/export/", 401, 403, 403, 403, 200, 403, 200),
    api("get", "/api/v1/cases/{csam_decided}/export/", 401, 403, 403, 403, 200, 403, 404),
    # --- queues, claims, leases -------------------------------------------------------------------------------
    api("get", "/api/v1/queues/", *STAFF_READ),
    api("post", "/api/v1/queues/spam/claim/", 401, 403, 201, 201, 201, 403, 403),
    api("post", "/api/v1/queues/csam/claim/", 401, 403, 403, 201, 201, 403, 403, note="clearance_required"),
    api("post", "/api/v1/assignments/{a_mod}/renew/", 401, 403, 200, 403, 403, 403, 403),
    api("post", "/api/v1/assignments/{a_mod}/release/", 401, 403, 200, 403, 403, 403, 403),
    api("post", "/api/v1/assignments/{a_mod}/skip/", 401, 403, 200, 403, 403, 403, 403),
    # Another's assignment on a case hidden from the caller answers like a missing one (no existence oracle).
    api("post", "/api/v1/assignments/{a_modc}/renew/", 401, 403, 404, 200, 403, 403, 403),
    api("post", "/api/v1/cases/{spam_open}/assign/", *SENIOR_POST, body={"reviewer": "r-moderator"}),
    api("post", "/api/v1/cases/{csam_open}/assign/", *SENIOR_POST, body={"reviewer": "r-senior"}),
    # --- decisions -------------------------------------------------------------------------------------------
    api("post", "/api/v1/cases/{spam_held}/decision/", 401, 403, 201, 403, 403, 403, 403, body=_decision("spam")),
    api("post", "/api/v1/cases/{csam_held}/decision/", 401, 403, 404, 201, 403, 403, 403, body=_decision("csam")),
    api("post", "/api/v1/cases/{spam_held}/escalate/", 401, 403, 200, 403, 200, 403, 403, body=ESCALATE),
    # d_spam and d_csam wait for a blind QA review and a relabel: hidden from every reviewer who may
    # do it; the platform and a policy admin (no reviewer profile) read them. d_cib is under none.
    api("get", "/api/v1/decisions/{d_spam}/", 401, 200, 404, 404, 404, 404, 200, note="blind"),
    api("get", "/api/v1/decisions/{d_csam}/", 401, 404, 404, 404, 404, 404, 404, note="blind, restricted"),
    api("get", "/api/v1/decisions/{d_spam}/statement-of-reasons/", 401, 200, 404, 404, 404, 404, 200, note="blind"),
    api("get", "/api/v1/decisions/{d_cib}/statement-of-reasons/", 401, 404, 404, 200, 200, 404, 404),
    api("get", "/api/v1/quality-reviews/", 401, 403, 200, 200, 200, 403, 403),
    api(
        "post",
        "/api/v1/quality-reviews/{qa_spam}/complete/",
        401,
        403,
        200,
        200,
        200,
        403,
        403,
        body={"action": "remove", "rule": ""},
    ),  # fmt: skip
    api(
        "post",
        "/api/v1/quality-reviews/{qa_csam}/complete/",
        401,
        403,
        404,
        200,
        200,
        403,
        403,
        body={"action": "remove", "rule": ""},
    ),  # fmt: skip
    # --- campaigns ------------------------------------------------------------------------------------------
    api("get", "/api/v1/campaigns/", *STAFF_READ),
    api("get", "/api/v1/campaigns/{camp_spam}/", *STAFF_READ),
    api("get", "/api/v1/campaigns/{camp_cib}/", *CLEARED_READ),
    api("post", "/api/v1/campaigns/{camp_spam}/decision/", *SENIOR_POST, body=_decision("spam")),
    api("post", "/api/v1/campaigns/{camp_spam}/dismiss/", 401, 403, 403, 403, 200, 403, 403),
    # --- sources and governance ------------------------------------------------------------------------------
    api("get", "/api/v1/sources/", *STAFF_READ),
    api("post", "/api/v1/sources/", *ADMIN_POST, body={"slug": "new-source", "kind": "classifier", "trust": 0.5}),
    api("post", "/api/v1/sources/spam-clf/confirm/", *ADMIN_ONLY),
    api("post", "/api/v1/sources/spam-clf/quarantine/", *ADMIN_ONLY),
    api("get", "/api/v1/thresholds/", *ADMIN_ONLY),
    api("get", "/api/v1/threshold-changes/", *ADMIN_ONLY),
    api(
        "post",
        "/api/v1/threshold-changes/",
        *ADMIN_POST,
        body={"source": "spam-clf", "threat_class": "spam", "auto_action_at": 0.95, "review_at": 0.4, "reason": "x"},
    ),  # fmt: skip
    api("get", "/api/v1/threshold-changes/{change}/", *ADMIN_ONLY),
    api("post", "/api/v1/threshold-changes/{change}/approve/", *ADMIN_ONLY),
    api("post", "/api/v1/threshold-changes/{change}/reject/", *ADMIN_ONLY),
    api("post", "/api/v1/threshold-changes/{change}/rollback/", 401, 403, 403, 403, 403, 403, 409),
    api("get", "/api/v1/relabels/", 401, 403, 200, 200, 200, 200, 403),
    api(
        "post",
        "/api/v1/relabels/{relabel_spam}/complete/",
        401,
        403,
        200,
        200,
        200,
        200,
        403,
        body={"action": "remove"},
    ),  # fmt: skip
    api(
        "post",
        "/api/v1/relabels/{relabel_csam}/complete/",
        401,
        403,
        404,
        200,
        200,
        404,
        403,
        body={"action": "remove"},
    ),  # fmt: skip
    api("get", "/api/v1/metrics/", *STAFF_READ),
    api("get", "/api/v1/access-log/", *ADMIN_ONLY),
    api("get", "/api/v1/transparency-report/?from=2026-01-01&to=2026-03-31", *ADMIN_ONLY),
    api("get", "/api/v1/policies/", 401, 200, 200, 200, 200, 200, 200),
    api("get", "/api/v1/policies/spam/", 401, 200, 200, 200, 200, 200, 200),
    api("get", "/api/v1/policies/csam/", 401, 404, 404, 200, 200, 404, 404),
    # --- investigations ---------------------------------------------------------------------------------------
    api("get", "/api/v1/subjects/?q=u-matrix", *STAFF_READ),
    api("get", "/api/v1/subjects/account/u-matrix-spam/", *STAFF_READ),
    api("get", "/api/v1/subjects/account/u-matrix-csam/", *CLEARED_READ),
    # --- appeals ----------------------------------------------------------------------------------------------
    api("get", "/api/v1/appeals/", *APPEALS_ONLY),
    api(
        "post",
        "/api/v1/appeals/",
        401,
        201,
        403,
        403,
        403,
        403,
        403,
        body=lambda w: {"decision": w.d_spam.pk, "appellant": "u-second", "statement": "again"},
    ),  # fmt: skip
    api("post", "/api/v1/appeals/claim/", 401, 403, 403, 403, 403, 201, 403),
    api("get", "/api/v1/appeals/{ap_spam}/", 401, 200, 403, 403, 403, 200, 403),
    api("get", "/api/v1/appeals/{ap_csam}/", 401, 404, 403, 403, 403, 404, 403),
    api("post", "/api/v1/appeals/{ap_held}/resolve/", *APPEALS_ONLY, body=RESOLVE),
    api("post", "/api/v1/appeals/{ap_held}/release/", *APPEALS_ONLY),
    api("get", "/api/schema/", 401, 200, 200, 200, 200, 200, 200, note="documentation, for signed-in accounts"),
    ui("get", "/api/docs/", "login", 200, 200, 200, 200, 200, 200, note="documentation, for signed-in accounts"),
    # --- moderator UI -----------------------------------------------------------------------------------------
    ui("get", "/", "login", 200, 200, 200, 200, 302, 200, note="platform: the API-account page; appeals: their queue"),
    ui("get", "/login/", 200, 302, 302, 302, 302, 302, 302),
    # The second-factor steps need a password accepted a moment ago (in this session): nobody here has one.
    ui("get", "/login/second-factor/", "login", "login", "login", "login", "login", "login", "login"),
    ui(
        "post",
        "/login/second-factor/",
        "login",
        "login",
        "login",
        "login",
        "login",
        "login",
        "login",
        body={"code": "123456"},
    ),
    ui("get", "/login/enrol/", "login", "login", "login", "login", "login", "login", "login"),
    ui("post", "/login/enrol/", "login", "login", "login", "login", "login", "login", "login", body={"code": "123456"}),
    # Single sign-on is not configured in this matrix (tests/identity drives a real provider).
    ui("get", "/oidc/authenticate/", 404, 404, 404, 404, 404, 404, 404),
    ui("get", "/oidc/callback/", 400, 400, 400, 400, 400, 400, 400, note="no code: the provider-error page"),
    ui("get", "/admin/login/", 200, 200, 200, 200, 200, 200, 200, note="the admin signs in through Docket's page"),
    ui("post", "/logout/", "login", "login", "login", "login", "login", "login", "login"),
    ui("get", "/dashboard/", *UI_STAFF),
    ui("get", "/escalations/", "login", 403, "refused", "refused", 200, "refused", "refused"),
    ui("get", "/queues/spam/", *UI_STAFF),
    ui("get", "/queues/csam/", *UI_CLEARED),
    ui("post", "/queues/spam/claim/", "login", 403, 302, 302, 302, "refused", "refused"),
    ui("post", "/queues/csam/claim/", "login", 403, "refused", 302, 302, "refused", "refused"),
    ui(
        "post",
        "/queues/spam/bulk-decision/",
        "login",
        403,
        403,
        403,
        302,
        403,
        403,
        body=_bulk("spam", "spam_open"),
        note="a refused bulk decision re-renders the page with the selection and the input kept",
    ),  # fmt: skip
    ui("get", "/sources/", *UI_STAFF),
    ui("get", "/campaigns/", *UI_STAFF),
    ui("get", "/qa/", "login", 403, 200, 200, 200, 403, 403),
    ui("get", "/qa/{qa_spam}/", "login", 403, 200, 200, 200, 403, 403),
    ui("get", "/qa/{qa_csam}/", "login", 403, 404, 200, 200, 403, 403),
    ui("post", "/qa/{qa_spam}/", "login", 403, 302, 302, 302, 403, 403, body={"action": "remove"}),
    ui("get", "/relabel/", "login", 403, 200, 200, 200, 200, 403),
    ui("get", "/relabel/{relabel_spam}/", "login", 403, 200, 200, 200, 200, 403),
    ui("get", "/relabel/{relabel_csam}/", "login", 403, 404, 200, 200, 404, 403),
    ui("get", "/decisions/mine/", "login", 403, 200, 200, 200, 403, 403),
    ui("get", "/thresholds/", "login", 403, 403, 403, 403, 403, 200),
    ui("get", "/transparency/", "login", 403, 403, 403, 403, 403, 200),
    ui("get", "/threshold-changes/{change}/", "login", 403, 403, 403, 403, 403, 200),
    ui("post", "/threshold-changes/{change}/approve/", "login", 403, 403, 403, 403, 403, 302),
    ui("post", "/threshold-changes/{change}/reject/", "login", 403, 403, 403, 403, 403, 302),
    ui("get", "/sources/user-reports/", *UI_STAFF),
    ui("post", "/sources/user-reports/confirm/", "login", 403, "refused", "refused", "refused", "refused", 302),
    ui("post", "/sources/user-reports/quarantine/", "login", 403, "refused", "refused", "refused", "refused", 302),
    ui(
        "post",
        "/sources/user-reports/resolve-incident/",
        "login",
        403,
        "refused",
        "refused",
        "refused",
        "refused",
        "refused",
        note="no open incident: the admin's refusal is a message too",
    ),  # fmt: skip
    ui("get", "/campaigns/{camp_spam}/", *UI_STAFF),
    ui(
        "post",
        "/campaigns/{camp_spam}/dismiss/",
        "login",
        403,
        "refused",
        "refused",
        302,
        "refused",
        "refused",
        body={"confirm": "yes"},
    ),  # fmt: skip
    ui(
        "post", "/campaigns/{camp_cib}/dismiss/", "login", 403, 404, "refused", 302, 404, 404, body={"confirm": "yes"}
    ),  # fmt: skip
    ui("get", "/campaigns/{camp_cib}/", *UI_CLEARED),
    ui(
        "post",
        "/campaigns/{camp_spam}/bulk-decision/",
        "login",
        403,
        403,
        403,
        302,
        403,
        403,
        body=_bulk("spam", "spam_open"),
    ),  # fmt: skip
    ui(
        "post",
        "/campaigns/{camp_cib}/bulk-decision/",
        "login",
        403,
        404,
        403,
        302,
        404,
        404,
        body=_bulk("cib", "cib_open"),
    ),  # fmt: skip
    ui("get", "/cases/{spam_open}/", *UI_STAFF),
    ui("get", "/search/?q=u-matrix", *UI_STAFF),
    ui("get", "/subjects/account/u-matrix-spam/", *UI_STAFF),
    ui("get", "/subjects/account/u-matrix-csam/", *UI_CLEARED),
    ui("post", "/cases/{spam_open}/reveal/", "login", 403, 204, 204, 204, 204, 204),
    ui("post", "/cases/{csam_open}/reveal/", "login", 403, 404, 204, 204, 404, 404),
    ui("get", "/cases/{csam_open}/", *UI_CLEARED),
    ui(
        "post",
        "/cases/{spam_held}/decision/",
        "login",
        403,
        302,
        403,
        403,
        403,
        403,
        body=_decision("spam"),
        note="a refusal re-renders the case page with the form bound and the reason on it",
    ),  # fmt: skip
    ui(
        "post",
        "/cases/{csam_held}/decision/",
        "login",
        403,
        404,
        302,
        403,
        404,
        404,
        body=_decision("csam"),
    ),  # fmt: skip
    ui(
        "post",
        "/cases/{spam_held}/escalate/",
        "login",
        403,
        302,
        403,
        302,
        403,
        403,
        body=ESCALATE,
    ),  # fmt: skip
    ui("post", "/cases/{spam_open}/notes/", "login", 403, 302, 302, 302, 302, 302, body={"text": "a note"}),
    ui("post", "/cases/{csam_open}/notes/", "login", 403, 404, 302, 302, 404, 404, body={"text": "a note"}),
    ui(
        "post",
        "/cases/{spam_open}/assign/",
        "login",
        403,
        "refused",
        "refused",
        302,
        "refused",
        "refused",
        body={"reviewer": "r-moderator"},
    ),  # fmt: skip
    ui("post", "/assignments/{a_mod}/renew/", "login", 403, 200, "lost", "lost", "lost", "lost"),
    ui("post", "/assignments/{a_mod}/release/", "login", 403, 302, "refused", "refused", "refused", "refused"),
    ui("post", "/assignments/{a_mod}/skip/", "login", 403, 302, "refused", "refused", "refused", "refused"),
    # --- appeals UI -------------------------------------------------------------------------------------------
    ui("get", "/appeals/", *UI_APPEALS),
    ui("post", "/appeals/claim/", "login", 403, 403, 403, 403, 302, 403),
    ui("get", "/appeals/{ap_held}/", *UI_APPEALS),
    ui("get", "/appeals/{ap_csam}/", "login", 403, 403, 403, 403, 404, 403),
    ui("post", "/appeals/{ap_held}/resolve/", "login", 403, 403, 403, 403, 302, 403, body=RESOLVE),
    ui("post", "/appeals/{ap_held}/release/", "login", 403, 403, 403, 403, 302, 403),
]


def url_routes():
    """Every URL pattern outside the admin, as the route string ``resolve(url).route`` reports."""

    def walk(patterns, prefix):
        for p in patterns:
            if isinstance(p, URLResolver):
                if p.namespace == "admin":
                    continue
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            else:
                yield prefix + str(p.pattern)

    return set(walk(get_resolver().url_patterns, ""))


def test_every_url_pattern_has_a_matrix_entry():
    covered = {_bare(resolve(probe.url.format_map(_AnyId()).split("?")[0]).route) for probe in MATRIX}
    assert {_bare(r) for r in url_routes()} - covered == set()


def _bare(route):
    """Routers write regexes (``^cases/$``); ``ResolverMatch.route`` drops the anchors."""
    return route.replace("^", "").replace("$", "")


class _AnyId(dict):
    def __missing__(self, key):
        return 1


def _ids(world):
    return {name: obj.pk for name, obj in vars(world).items() if hasattr(obj, "pk")}


def _ui_outcome(response):
    if response.status_code == 302:
        if response["Location"].startswith("/login/"):
            return "login"
        levels = {m.level for m in get_messages(response.wsgi_request)}
        return "refused" if constants.ERROR in levels else "302"
    if response.status_code == 200 and response.context and response.context.get("lost"):
        return "lost"
    return str(response.status_code)


@pytest.fixture
def matrix_world(world):
    # The appeals reviewer holds one appeal, so resolve and release have a holder.
    world.ap_held = appeal_claim(reviewer=world.cast["appeals"].reviewer)
    assert world.ap_held.pk == world.ap_spam.pk
    # ... and one more waits, so a claim has something to hand out.
    appeal_file(decision_id=world.d_spam.pk, appellant="u-other", statement="mine too", actor=world.cast["platform"])
    # Subjects the investigation probes name by external id.
    for case, external_id in ((world.spam_open, "u-matrix-spam"), (world.csam_open, "u-matrix-csam")):
        Subject.objects.filter(pk=case.subject_id).update(external_id=external_id)
    return world


def test_every_endpoint_and_page_answers_each_role_as_designed(matrix_world):
    w = matrix_world
    ids = _ids(w)
    api_clients = {role: api_client(w.cast[role]) for role in ROLES}
    # One sign-in per role; each UI probe gets a fresh client on that session, so no message or
    # sign-out of one probe is seen by the next (the session rows roll back with the savepoint).
    sessions = {role: ui_client(w.cast[role]).cookies.get(settings.SESSION_COOKIE_NAME) for role in ROLES}
    # Every probe rolls back, so every probe starts from this state.
    before = db_state()
    mismatches, dirty = [], []
    for probe in MATRIX:
        url = probe.url.format(**ids)
        body = probe.body(w) if callable(probe.body) else probe.body
        for role, expected in zip(ROLES, probe.expect, strict=True):
            with transaction.atomic():
                if probe.ui:
                    client = Client()
                    if sessions[role] is not None:
                        client.cookies[settings.SESSION_COOKIE_NAME] = sessions[role].value
                    response = getattr(client, probe.method)(url, body or {})
                    got = _ui_outcome(response)
                    refused = got in UI_REFUSALS
                else:
                    response = getattr(api_clients[role], probe.method)(url, body, format="json")
                    got = str(response.status_code)
                    refused = got in API_REFUSALS or got.startswith("4")
                    if got.startswith("4"):
                        assert set(response.json()) >= {"code", "detail"}, (url, role, response.content)
                after = db_state() if refused else before
                transaction.set_rollback(True)
            if got != expected:
                mismatches.append(f"{probe.method.upper()} {url} as {role}: expected {expected}, got {got}")
            if refused and before != after:
                dirty.append(f"{probe.method.upper()} {url} as {role} ({got}) changed {changed_tables(before, after)}")
    assert not mismatches, "\n" + "\n".join(mismatches)
    assert not dirty, "\n" + "\n".join(dirty)


# Buttons and shortcuts a role may not use are not shown: per page (after redirects), whether each role
# sees the control (a regular expression). None: the page itself is refused (covered by MATRIX).
CLAIM_CASE = r'action="/queues/[^"]+/claim/"'
#                                                anon  platform  mod   mod+clr  senior  appeals  padmin
BUTTONS = [
    ("/", CLAIM_CASE, (None, False, True, True, True, False, False)),
    ("/queues/spam/", CLAIM_CASE, (None, None, True, True, True, False, False)),
    ("/queues/csam/", CLAIM_CASE, (None, None, None, True, True, None, None)),
    ("/escalations/", CLAIM_CASE, (None, None, None, None, True, None, None)),
    ("/", r'data-shortcut="n"', (None, False, True, True, True, False, False)),
    ("/", r'href="/admin/"', (None, False, False, False, False, False, True)),
    ("/", r'href="/escalations/"', (None, False, False, False, True, False, False)),
]


@pytest.mark.parametrize(("url", "marker", "expect"), BUTTONS)
def test_buttons_appear_only_for_roles_that_may_use_them(world, url, marker, expect):
    cast = world.cast
    seen = {}
    for role, expected in zip(ROLES, expect, strict=True):
        if expected is None:
            continue
        response = ui_client(cast[role]).get(url, follow=True)
        assert response.status_code == 200, (url, role)
        seen[role] = re.search(marker, response.content.decode()) is not None
    assert seen == {r: e for r, e in zip(ROLES, expect, strict=True) if e is not None}


ADMIN_ROLES_ALLOWED = {"policy_admin"}


def test_the_admin_is_for_policy_admins_only(cast):
    """Every registered model's changelist: policy admins get it (or 403 where they may not view it).

    Everybody else is sent to the admin's sign-in page, and nothing changes.
    """
    urls = ["/admin/"] + [f"/admin/{model._meta.app_label}/{model._meta.model_name}/" for model in admin.site._registry]
    clients = {role: ui_client(cast[role]) for role in ROLES}
    wrong = []
    for url in urls:
        for role in ROLES:
            before = db_state()
            response = clients[role].get(url)
            if role in ADMIN_ROLES_ALLOWED:
                ok = response.status_code in (200, 403)
            else:
                ok = response.status_code == 302 and response["Location"].startswith("/admin/login/")
                assert db_state() == before
            if not ok:
                wrong.append(f"{url} as {role}: {response.status_code}")
    assert wrong == []


def test_the_login_page_throttles_repeated_failures(make_user):
    """Through the real page: after five failures even the right password is refused for a while."""

    username, address = f"throttled-{uuid.uuid4().hex[:8]}", "198.51.100.77"
    make_user(username, "moderator", password="right-password")
    client = Client(REMOTE_ADDR=address)
    try:
        for _ in range(5):
            wrong = client.post("/login/", {"username": username, "password": "wrong"})
            assert wrong.status_code == 200 and "_auth_user_id" not in client.session
        right = client.post("/login/", {"username": username, "password": "right-password"})
        assert right.status_code == 200
        assert "Too many failed sign-in attempts" in right.content.decode()
        assert "_auth_user_id" not in client.session
    finally:
        # Only this test's keys: the cache is shared (clear() would flush the broker's Redis database too).
        cache.delete(login_attempt_key(RequestFactory().post("/login/", REMOTE_ADDR=address), username))
