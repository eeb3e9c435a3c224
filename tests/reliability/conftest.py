"""The cast (one user per role), a small world of cases in every state, and a database fingerprint.

Every refusal test compares ``db_state()`` before and after: row counts of every Docket table (and the
auth tables) plus an md5 over every row's full text, so a refused request that changed any column of
any row is caught, not only one that added or removed rows.
"""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from appeals.services import appeal_file
from casework.models import Campaign
from docket.accounts import token_for
from policies.services import threshold_change_propose
from reviews.accounts import user_upsert
from reviews.models import QualityReview, RelabelItem
from reviews.services import case_assign, decision_make
from tests.factories import CaseFactory, SourceFactory, active_version, threat_class

# The roles of the matrix, in the order tables list them.
ROLES = ("anonymous", "platform", "moderator", "moderator_cleared", "senior", "appeals", "policy_admin")
RESTRICTED = ("csam", "cib")

_CAST = {
    "platform": {"roles": ["platform"]},
    "moderator": {"roles": ["moderator"]},
    "moderator_cleared": {"roles": ["moderator"], "clearances": list(RESTRICTED)},
    "senior": {"roles": ["senior"], "clearances": list(RESTRICTED)},
    "appeals": {"roles": ["appeals"]},
    "policy_admin": {"roles": ["policy_admin"]},
}

# Columns that record the request itself, not its effect: a token's last use is written (at most once a
# minute) by any authenticated request, refused or not.
_BOOKKEEPING_COLUMNS = {"docket_apitoken": "last_used_at"}

FINGERPRINTED_APPS = ("casework", "reviews", "appeals", "policies", "auth", "docket", "otp_totp", "otp_static")


def docket_tables():
    """Every table of the Docket apps and of auth, including many-to-many tables."""
    tables = set()
    for label in FINGERPRINTED_APPS:
        for model in apps.get_app_config(label).get_models(include_auto_created=True):
            if model._meta.managed and not model._meta.proxy:
                tables.add(model._meta.db_table)
    return sorted(tables)


# The queue tallies are appended deltas that a periodic job folds: what they hold is their sums per
# (queue, class). (Arrivals per hour of creation feed a rate over the last hours; folding drops old hours.)
_TALLY_SUMS = """(
    SELECT queue_id, threat_class_id, sum(waiting) AS waiting, sum(in_review) AS in_review, sum(breached) AS breached
      FROM casework_queuetally GROUP BY 1, 2
    HAVING sum(waiting) <> 0 OR sum(in_review) <> 0 OR sum(breached) <> 0)"""


def db_state():
    """``{table: (rows, md5 of all rows)}`` for every Docket and auth table, in one query."""
    qn = connection.ops.quote_name

    def row(t):
        ignored = _BOOKKEEPING_COLUMNS.get(t)
        return f"(to_jsonb(x) - '{ignored}')::text" if ignored else "x::text"

    def source(t):
        return _TALLY_SUMS if t == "casework_queuetally" else qn(t)

    parts = [
        f"SELECT '{t}', count(*), md5(coalesce(string_agg(md5({row(t)}), '' ORDER BY md5({row(t)})), ''))"
        f" FROM {source(t)} x"
        for t in docket_tables()
    ]
    with connection.cursor() as cur:
        cur.execute(" UNION ALL ".join(parts))
        return {name: (count, digest) for name, count, digest in cur.fetchall()}


def changed_tables(before, after):
    return sorted(t for t in before.keys() | after.keys() if before.get(t) != after.get(t))


def _user(username, spec):
    return user_upsert(username=username, role_names=spec["roles"], clearances=spec.get("clearances"), password="pw")


@pytest.fixture
def cast(db):
    """One user per role (``None`` for anonymous), each with a token."""
    users = {"anonymous": None}
    for role, spec in _CAST.items():
        users[role] = _user(f"r-{role.replace('_', '-')}", spec)
        token_for(users[role])
    return users


def rule_of(kind):
    return active_version(kind).rules[0]["code"]


def violation_of(kind):
    return next(a for a in active_version(kind).ladder if a not in ("no_violation", "legal_report"))


def decide(case, reviewer_user, senior_user):
    """A human decision on ``case`` through the services (assign by a senior, then decide)."""
    case_assign(case_id=case.pk, reviewer_username=reviewer_user.username, by=senior_user)
    kind = case.threat_class.slug
    return decision_make(
        case_id=case.pk, reviewer=reviewer_user, action=violation_of(kind), rule=rule_of(kind), rationale="seen"
    )


def build_world(cast):
    """Cases of open, held, decided and appealed states in restricted and unrestricted classes.

    Held cases are held by the moderators of the cast; decisions are made by a separate ``r-decider`` so
    that the appeals reviewer is not conflicted and no cast member is the original decider.
    """
    now = timezone.now()
    senior, mod, modc = cast["senior"], cast["moderator"], cast["moderator_cleared"]
    decider = user_upsert(username="r-decider", role_names=["moderator"], clearances=list(RESTRICTED), max_active=9)
    padmin2 = user_upsert(username="r-padmin-2", role_names=["policy_admin"])
    w = SimpleNamespace(cast=cast, decider=decider)

    w.spam_open = CaseFactory(kind="spam", priority=5.0)
    w.harassment_open = CaseFactory(kind="harassment", priority=4.0)
    w.csam_open = CaseFactory(kind="csam", priority=9.0)
    w.cib_open = CaseFactory(kind="cib", priority=3.0)

    w.spam_held = CaseFactory(kind="spam")
    w.a_mod = case_assign(case_id=w.spam_held.pk, reviewer_username=mod.username, by=senior)
    w.csam_held = CaseFactory(kind="csam")
    w.a_modc = case_assign(case_id=w.csam_held.pk, reviewer_username=modc.username, by=senior)

    w.spam_decided = CaseFactory(kind="spam")
    w.d_spam = decide(w.spam_decided, decider, senior)
    w.csam_decided = CaseFactory(kind="csam")
    w.d_csam = decide(w.csam_decided, decider, senior)
    w.cib_decided = CaseFactory(kind="cib")
    w.d_cib = decide(w.cib_decided, decider, senior)

    w.ap_spam = appeal_file(
        decision_id=w.d_spam.pk, appellant="u-appellant", statement="not spam", actor=cast["platform"]
    )
    w.ap_csam = appeal_file(decision_id=w.d_csam.pk, appellant="u-appellant", statement="no", actor=cast["platform"])
    w.ap_cib = appeal_file(decision_id=w.d_cib.pk, appellant="u-appellant", statement="no", actor=cast["platform"])

    w.camp_spam = _campaign("spam", [w.spam_open], now)
    w.camp_cib = _campaign("cib", [w.cib_open], now)

    # Blind QA reviews of two decisions; d_cib is under none (a pending one hides it from every reviewer
    # who may do it): read as it is.
    w.qa_spam = QualityReview.objects.create(decision=w.d_spam, created_at=now)
    w.qa_csam = QualityReview.objects.create(decision=w.d_csam, created_at=now)
    w.relabel_spam = RelabelItem.objects.create(
        policy_version=active_version("spam"), decision=w.d_spam, created_at=now
    )
    w.relabel_csam = RelabelItem.objects.create(
        policy_version=active_version("csam"), decision=w.d_csam, created_at=now
    )

    w.source = SourceFactory(slug="spam-clf", kind="classifier")
    w.change = threshold_change_propose(
        source_slug="spam-clf",
        threat_class_slug="spam",
        auto_action_at=0.9,
        review_at=0.5,
        reason="tune",
        actor=padmin2,
    )
    w.later = now + timedelta(seconds=1)
    return w


def _campaign(kind, cases, now):
    campaign = Campaign.objects.create(
        threat_class=threat_class(kind),
        links=[{"kind": "device", "value": f"d-{kind}"}],
        size=len(cases),
        detected_at=now,
    )
    for case in cases:
        case.campaign = campaign
        case.save(update_fields=["campaign"])
        case.subject.campaign = campaign
        case.subject.save(update_fields=["campaign"])
    return campaign


@pytest.fixture
def world(cast):
    return build_world(cast)


def api_client(user):
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def ui_client(user):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client
