"""Notices to reporters and appellants, received by a real local webhook receiver, signature checked."""

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from appeals.services import appeal_claim, appeal_resolve
from policies.models import MessageTemplate
from reviews.accounts import user_upsert
from reviews.models import Notice
from reviews.notices import notices_deliver_due
from reviews.services import decision_make
from reviews.statements import statements_submit_due
from reviews.webhooks import enforcements_deliver_due
from tests.appeals.conftest import appeal_on, decided
from tests.factories import CaseFactory, ReporterFactory, SignalFactory
from tests.reviews.tdb_standin import TransparencyDatabase
from tests.reviews.test_webhooks import SECRET, Receiver

pytestmark = pytest.mark.django_db

RATIONALE = "Internal: reporter u-1 is known to our team, see ticket 4411"
NOTICE_KEYS = {"id", "type", "kind", "recipient", "case", "decision", "appeal", "outcome", "language", "text"}


@pytest.fixture
def receiver(settings):
    r = Receiver()
    settings.PLATFORM_WEBHOOK_URL = r.url
    settings.PLATFORM_WEBHOOK_SECRET = SECRET
    settings.DOCKET = {**settings.DOCKET, "WEBHOOK_BACKOFF_SECONDS": 30}
    yield r
    r.close()


def signed_bodies(receiver):
    """Every body received, after checking its signature against the raw bytes."""
    bodies = []
    for headers, raw in receiver.requests:
        expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        assert headers["X-Docket-Signature"] == expected
        bodies.append(json.loads(raw))
    return bodies


def reported_case(kind="spam", reporters=("u-1", "u-2")):
    case = CaseFactory(kind=kind)
    for external_id in reporters:
        reporter = ReporterFactory(external_id=external_id)
        for _ in range(2):  # a reporter who reported twice is told once
            SignalFactory(
                case=case, subject=case.subject, threat_class=case.threat_class, disposition="queued", reporter=reporter
            )
    SignalFactory(case=case, subject=case.subject, threat_class=case.threat_class, disposition="queued")
    return case


def decide(case, action="remove", rule="SP-1"):
    senior = user_upsert(username="nd-senior", role_names=["senior", "moderator"])
    return decision_make(
        case_id=case.pk, reviewer=senior, action=action, rule=rule, rationale=RATIONALE, on_behalf_of_senior=True
    )


def notices(receiver):
    return [b for b in signed_bodies(receiver) if b["type"] == "notice"]


def test_each_reporter_hears_the_outcome_once_signed(receiver):
    decision = decide(reported_case())

    assert notices_deliver_due() == {"delivered": 2}

    bodies = notices(receiver)
    assert sorted(b["recipient"]["external_id"] for b in bodies) == ["u-1", "u-2"]
    for body in bodies:
        assert set(body) == NOTICE_KEYS
        assert (body["kind"], body["recipient"]["role"], body["case"], body["decision"], body["appeal"]) == (
            "report_outcome",
            "reporter",
            decision.case_id,
            decision.pk,
            None,
        )
        assert (body["outcome"], body["language"]) == ("remove", "en")
        # Art. 16(5) and 17(3)(f): the outcome and every way to challenge it.
        assert "Remove" in body["text"]
        assert "ask us to review this decision" in body["text"]
        assert "out-of-court dispute settlement body" in body["text"]
        assert "competent courts" in body["text"]
        assert "ticket 4411" not in json.dumps(body)
    assert len({b["id"] for b in bodies}) == 2
    assert notices_deliver_due() == {}


def test_no_violation_is_told_too(receiver):
    decide(reported_case(reporters=("u-9",)), action="no_violation", rule="")
    notices_deliver_due()
    [body] = notices(receiver)
    assert (body["outcome"], body["recipient"]["external_id"]) == ("no_violation", "u-9")
    assert "We found no violation" in body["text"]


def test_a_failed_notice_is_retried_with_the_same_id_and_bytes(receiver):
    decide(reported_case(reporters=("u-3",)))
    receiver.statuses = [503]
    assert notices_deliver_due() == {"retry": 1}
    notice = Notice.objects.get()
    assert (notice.status, notice.attempts) == ("pending", 1)
    assert notice.last_error.startswith("HTTP 503")
    assert notices_deliver_due() == {}  # backing off
    assert notices_deliver_due(now=timezone.now() + timedelta(seconds=31)) == {"delivered": 1}
    first, second = receiver.requests
    assert first[1] == second[1]


def test_the_text_is_fixed_when_the_notice_is_made(receiver):
    decide(reported_case(reporters=("u-4",)))
    MessageTemplate.objects.filter(kind="report_outcome").update(subject="Edited", body="Edited later")
    notices_deliver_due()
    [body] = notices(receiver)
    assert "Edited later" not in body["text"]


@pytest.mark.parametrize(
    ("outcome", "language", "phrase"),
    [
        ("upheld", "en", "the decision stands"),
        ("overturned", "de", "aufgehoben"),
    ],
)
def test_the_appellant_hears_every_outcome_upheld_included(receiver, make_user, outcome, language, phrase):
    decider = make_user("nd-decider", "moderator")
    staff = make_user("nd-appeals", "appeals")
    appeal = appeal_on(decided(reviewer=decider.reviewer, action="remove"), appellant="u-owner-7")
    appeal.language = language
    appeal.save(update_fields=["language"])
    appeal_claim(reviewer=staff.reviewer)
    appeal_resolve(appeal_id=appeal.pk, reviewer=staff.reviewer, outcome=outcome, rationale="Reviewed again.")

    notices_deliver_due()

    [body] = [b for b in notices(receiver) if b["kind"] == "appeal_outcome"]
    assert set(body) == NOTICE_KEYS
    assert (body["recipient"], body["appeal"], body["decision"], body["outcome"], body["language"]) == (
        {"role": "appellant", "external_id": "u-owner-7"},
        appeal.pk,
        appeal.decision_id,
        outcome,
        language,
    )
    assert phrase in body["text"]


def test_reports_are_acknowledged_only_when_switched_on(receiver, settings):
    reported_case(reporters=("u-5",))
    settings.DOCKET_ACKNOWLEDGE_REPORTS = False
    assert notices_deliver_due() == {}
    assert receiver.requests == []

    settings.DOCKET_ACKNOWLEDGE_REPORTS = True
    assert notices_deliver_due() == {"delivered": 2}  # u-5 reported twice: two reports, two receipts
    bodies = notices(receiver)
    assert {b["kind"] for b in bodies} == {"report_received"}
    assert {b["recipient"]["external_id"] for b in bodies} == {"u-5"}
    assert "received your report" in bodies[0]["text"]
    # Acknowledged once: a second sweep finds nothing new.
    assert notices_deliver_due() == {}


def test_no_outgoing_body_carries_the_rationale(receiver, settings):
    with TransparencyDatabase("tok") as tdb:
        settings.DSA_TDB_URL, settings.DSA_TDB_TOKEN = tdb.url, "tok"
        case = reported_case(kind="harassment", reporters=("u-8",))
        senior = user_upsert(username="nd-senior2", role_names=["senior", "moderator"])
        decision = decision_make(
            case_id=case.pk,
            reviewer=senior,
            action="suspend",
            rule="HB-1",
            rationale=RATIONALE,
            duration_days=3,
            on_behalf_of_senior=True,
        )
        assert enforcements_deliver_due() == {"delivered": 1}
        assert notices_deliver_due() == {"delivered": 1}
        assert statements_submit_due() == {"submitted": 1}
        sent = [raw.decode() for _, raw in receiver.requests] + [json.dumps(s) for s in tdb.stored.values()]
    assert len(sent) == 3
    assert decision.rationale == RATIONALE
    for body in sent:
        assert "ticket 4411" not in body
