"""Submission to the EU Transparency Database, end to end against a local stand-in of its API."""

import time
from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from reviews import statements
from reviews.accounts import user_upsert
from reviews.models import Decision, StatementSubmission
from reviews.services import decision_make
from reviews.statements import statements_submit_due
from tests.factories import CaseFactory
from tests.reviews.tdb_standin import TransparencyDatabase, check

pytestmark = pytest.mark.django_db

TOKEN = "tdb-secret-token"


@pytest.fixture
def tdb(settings):
    with TransparencyDatabase(TOKEN) as service:
        settings.DSA_TDB_URL = service.url + "/"
        settings.DSA_TDB_TOKEN = TOKEN
        settings.DSA_TDB_MAX_REQUESTS_PER_SECOND = 100
        settings.DOCKET = {**settings.DOCKET, "WEBHOOK_BACKOFF_SECONDS": 30}
        yield service


def decide_many(n, *, kind="spam", action="remove", rule="SP-1", **extra):
    senior = user_upsert(username="tdb-senior", role_names=["senior", "moderator"], clearances=["csam", "cib"])
    return [
        decision_make(
            case_id=CaseFactory(kind=kind).pk,
            reviewer=senior,
            action=action,
            rule=rule,
            on_behalf_of_senior=True,
            **extra,
        )
        for _ in range(n)
    ]


def statuses():
    return dict(StatementSubmission.objects.order_by().values_list("status").annotate(n=Count("id")))


def test_statements_go_in_batches_of_at_most_100_with_the_bearer_token(tdb, api_for, policy_admin, make_user):
    decisions = decide_many(150)
    assert statuses() == {"pending": 150}

    assert statements_submit_due() == {"submitted": 150}

    assert [(status, count) for _, status, count in tdb.calls] == [(201, 100), (201, 50)]
    assert set(tdb.stored) == {d.statement["puid"] for d in decisions}
    # What the service stored is the snapshot, byte for byte in meaning.
    first = decisions[0]
    stored = {k: v for k, v in tdb.stored[first.statement["puid"]].items() if k not in ("uuid", "platform_name")}
    assert stored == first.statement
    row = StatementSubmission.objects.get(decision=first)
    assert (row.status, row.attempts, row.errors) == ("submitted", 1, {})
    assert row.tdb_uuid == tdb.stored[row.puid]["uuid"]
    # Decision detail shows it.
    body = api_for(make_user("tdb-reader", "senior")).get(f"/api/v1/decisions/{first.pk}/").json()
    assert body["transparency_db"]["status"] == "submitted"
    assert body["transparency_db"]["puid"] == first.statement["puid"]
    assert body["transparency_db"]["submitted_at"] is not None
    assert body["transparency_db"]["errors"] == {}
    # Nothing is sent twice.
    assert statements_submit_due() == {}
    assert len(tdb.calls) == 2


def test_a_rejected_statement_keeps_its_errors_and_the_rest_of_its_batch_goes_in(tdb, api_for, make_user):
    # The service's schema moved on (as it did on 1 July 2025): it no longer takes one category.
    spam = decide_many(2)
    harassment = decide_many(1, kind="harassment", rule="HB-1")[0]
    tdb.categories_retired = {harassment.statement["category"]}

    assert statements_submit_due() == {"rejected": 1, "retry": 2, "submitted": 2}

    # One all-or-nothing call refused, then the valid ones again, stored.
    assert [status for _, status, _ in tdb.calls] == [422, 201]
    assert set(tdb.stored) == {d.statement["puid"] for d in spam}
    row = StatementSubmission.objects.get(decision=harassment)
    assert row.status == "rejected"
    assert row.errors == {"category": ["The selected category is invalid."]}
    detail = api_for(make_user("tdb-viewer", "senior")).get(f"/api/v1/decisions/{harassment.pk}/").json()
    assert detail["transparency_db"]["status"] == "rejected"
    assert detail["transparency_db"]["errors"] == {"category": ["The selected category is invalid."]}
    # Rejected rows are not retried blindly.
    assert statements_submit_due() == {}


def test_a_duplicate_puid_counts_as_submitted(tdb):
    decisions = decide_many(3)
    # An earlier call stored the first one, but its answer was lost (a timeout).
    tdb.stored[decisions[0].statement["puid"]] = dict(decisions[0].statement)

    assert statements_submit_due() == {"submitted": 3, "retry": 2}

    assert [status for _, status, _ in tdb.calls] == [422, 201]
    assert set(StatementSubmission.objects.values_list("status", flat=True)) == {"submitted"}
    assert set(tdb.stored) == {d.statement["puid"] for d in decisions}


def test_an_outage_is_retried_with_backoff_until_the_service_returns(tdb):
    decisions = decide_many(2)
    tdb.mode = "down"

    assert statements_submit_due() == {"retry": 2}
    row = StatementSubmission.objects.get(decision=decisions[0])
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error.startswith("HTTP 503")
    first_wait = row.next_attempt_at - timezone.now()
    assert timedelta(seconds=25) < first_wait <= timedelta(seconds=30)
    # Not due yet: nothing is sent.
    assert statements_submit_due() == {}
    assert len(tdb.calls) == 1

    later = timezone.now() + timedelta(seconds=31)
    assert statements_submit_due(now=later) == {"retry": 2}
    row.refresh_from_db()
    assert row.attempts == 2
    assert timedelta(seconds=55) < row.next_attempt_at - later <= timedelta(seconds=60)  # doubled

    tdb.mode = "up"
    assert statements_submit_due(now=later + timedelta(seconds=61)) == {"submitted": 2}
    assert set(tdb.stored) == {d.statement["puid"] for d in decisions}
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == ("submitted", 3, "")


def test_a_429_waits_for_retry_after(tdb):
    decide_many(1)
    tdb.mode = "rate_limited"
    tdb.retry_after = 7
    assert statements_submit_due() == {"retry": 1}
    row = StatementSubmission.objects.get()
    assert timedelta(seconds=6) < row.next_attempt_at - timezone.now() <= timedelta(seconds=7)


def test_the_request_rate_stays_under_the_configured_limit(tdb, settings, monkeypatch):
    settings.DSA_TDB_MAX_REQUESTS_PER_SECOND = 2
    decide_many(5)
    monkeypatch.setattr(statements, "BATCH_SIZE", 1)  # five calls of one statement each
    started = time.monotonic()
    assert statements_submit_due() == {"submitted": 5}
    times = [t for t, _, _ in tdb.calls]
    assert len(times) == 5
    # Never more than two calls within one second.
    for i in range(len(times) - 2):
        assert times[i + 2] - times[i] > 0.5
    assert time.monotonic() - started >= 1.0


def test_without_the_settings_nothing_is_sent_and_the_status_says_so(settings, api_for, make_user):
    settings.DSA_TDB_URL = ""
    settings.DSA_TDB_TOKEN = ""
    decision = decide_many(1)[0]
    assert statements_submit_due() == {}
    body = api_for(make_user("tdb-reader2", "senior")).get(f"/api/v1/decisions/{decision.pk}/").json()
    assert body["transparency_db"] == {
        "status": "not_configured",
        "puid": decision.statement["puid"],
        "submitted_at": None,
        "errors": {},
    }


def test_no_violation_needs_no_statement(settings, api_for, make_user):
    decision = decide_many(1, action="no_violation", rule="")[0]
    assert decision.statement is None
    assert not StatementSubmission.objects.exists()
    client = api_for(make_user("tdb-reader3", "senior"))
    assert client.get(f"/api/v1/decisions/{decision.pk}/").json()["transparency_db"]["status"] == "not_required"
    answer = client.get(f"/api/v1/decisions/{decision.pk}/statement-of-reasons/")
    assert answer.status_code == 404
    assert answer.json()["code"] == "no_statement"


def test_every_statement_docket_makes_passes_the_stand_ins_rules(tdb):
    # The stand-in's rule table is written independently of Docket's validator: they agree.
    decisions = decide_many(2) + decide_many(1, kind="ato", action="suspend", rule="AS-1", duration_days=30)
    for decision in Decision.objects.filter(pk__in=[d.pk for d in decisions]):
        assert check(decision.statement) == {}


def test_rejections_are_shown_on_the_dashboard_and_in_the_admin(tdb, client, make_user, policy_admin):
    harassment = decide_many(1, kind="harassment", rule="HB-1")[0]
    tdb.categories_retired = {harassment.statement["category"]}
    statements_submit_due()

    client.force_login(make_user("tdb-dash", "senior,moderator"))
    html = client.get("/dashboard/").content.decode()
    assert "EU Transparency Database" in html
    assert harassment.statement["puid"] in html
    assert "The selected category is invalid." in html

    client.force_login(policy_admin)
    listing = client.get("/admin/reviews/statementsubmission/?status__exact=rejected").content.decode()
    assert harassment.statement["puid"] in listing
    assert "category: The selected category is invalid." in listing
    row = StatementSubmission.objects.get(decision=harassment)
    page = client.get(f"/admin/reviews/statementsubmission/{row.pk}/change/").content.decode()
    assert "The selected category is invalid." in page
    # Once the service takes it again, an admin sends it again.
    tdb.categories_retired = set()
    client.post(
        "/admin/reviews/statementsubmission/",
        {"action": "submit_again", "_selected_action": [row.pk], "index": 0},
    )
    assert statements_submit_due() == {"submitted": 1}
