"""Retention purges personal data of old closed cases; legal holds keep evidence whole."""

import hashlib
import json
from datetime import timedelta

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.utils import InternalError, ProgrammingError
from django.utils import timezone

from appeals.models import Appeal
from casework import events
from casework.models import Case, CaseEvent, Reporter, Signal
from casework.retention import (
    case_export,
    case_legal_hold_release,
    case_legal_hold_set,
    cases_purge_personal_data,
)
from casework.services import case_event_add
from reviews.models import Decision
from tests.factories import CaseFactory, ReporterFactory, SignalFactory, active_version
from tests.support import case_rows_fetched, cases_copied_without_statistics, second_connection

pytestmark = pytest.mark.django_db

REFUSED = (InternalError, ProgrammingError)

OLD = timezone.now() - timedelta(days=400)


def closed_case(kind="spam", closed_at=OLD, reviewer=None):
    case = CaseFactory(kind=kind, first_signal_at=closed_at - timedelta(days=1))
    reporter = ReporterFactory(external_id=f"victim-of-{case.pk}")
    SignalFactory(
        case=case,
        subject=case.subject,
        threat_class=case.threat_class,
        disposition="queued",
        reporter=reporter,
        reason="he keeps messaging me at home",
        occurred_at=closed_at - timedelta(days=1),
    )
    case_event_add(case=case, event=events.note(text="appellant's phone number is 555-0100"))
    case_event_add(case=case, event=events.lease_expired(from_status="in_review", assignment=None))
    Case.objects.filter(pk=case.pk).update(status="closed", decided_at=closed_at, closed_at=closed_at)
    if reviewer is not None:
        decision = Decision.objects.create(
            case=case,
            reviewer=reviewer,
            action="remove",
            rule="SP-1",
            rationale="named the victim",
            policy_version=active_version(kind),
            created_at=closed_at,
        )
        Appeal.objects.create(
            decision=decision,
            appellant="u-appellant",
            statement="my address is ...",
            received_at=closed_at,
            deadline=closed_at + timedelta(days=3),
        )
    return case


def test_purges_reporters_reasons_notes_rationales_and_appeal_statements(moderator):
    case = closed_case(reviewer=moderator.reviewer)
    assert cases_purge_personal_data() == 1
    signal = Signal.objects.get(case=case)
    assert (signal.reporter, signal.reason) == (None, "")
    assert not Reporter.objects.filter(external_id=f"victim-of-{case.pk}").exists()
    note = CaseEvent.objects.get(case=case, kind="note")
    assert note.detail == {"redacted": True}
    assert CaseEvent.objects.get(case=case, kind="lease_expired").detail == {
        "from": "in_review",
        "to": "open",
        "assignment": None,
    }
    assert Decision.objects.get(case=case).rationale == ""
    appeal = Appeal.objects.get(decision__case=case)
    assert appeal.statement == "" and appeal.appellant == f"redacted-{appeal.pk}"
    case.refresh_from_db()
    assert case.personal_data_purged_at is not None
    assert CaseEvent.objects.filter(case=case, kind="personal_data_purged").count() == 1
    assert cases_purge_personal_data() == 0  # idempotent


def test_recent_and_open_cases_are_kept():
    recent = closed_case(closed_at=timezone.now() - timedelta(days=10))
    open_case = CaseFactory(first_signal_at=OLD)
    assert cases_purge_personal_data() == 0
    assert Signal.objects.get(case=recent).reason
    assert Case.objects.get(pk=open_case.pk).personal_data_purged_at is None


def test_legal_escalation_cases_are_on_hold_until_released(senior):
    case = closed_case(kind="csam")
    assert cases_purge_personal_data() == 0
    assert Signal.objects.get(case=case).reason
    case_legal_hold_release(case_id=case.pk, actor=senior, reason="authority closed the matter")
    assert cases_purge_personal_data() == 1
    assert Signal.objects.get(case=case).reason == ""


def test_explicit_legal_hold_keeps_any_case(senior):
    case = closed_case(kind="harassment")
    case_legal_hold_set(case_id=case.pk, actor=senior, reason="subpoena")
    assert cases_purge_personal_data() == 0
    assert list(CaseEvent.objects.filter(case=case, kind="legal_hold_set").values_list("actor_label", flat=True)) == [
        "senior"
    ]


def test_redaction_switch_does_not_open_the_timeline_to_other_edits():
    case = closed_case()
    event = CaseEvent.objects.filter(case=case).first()
    with pytest.raises(REFUSED), transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL docket.redact = 'on'")
        cur.execute(
            "UPDATE casework_caseevent SET kind = 'forged', detail = '{\"redacted\": true}' WHERE id = %s", [event.pk]
        )
    with pytest.raises(REFUSED), transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL docket.redact = 'on'")
        cur.execute("DELETE FROM casework_caseevent WHERE id = %s", [event.pk])
    with pytest.raises(REFUSED), transaction.atomic(), connection.cursor() as cur:
        cur.execute("UPDATE casework_caseevent SET detail = '{\"redacted\": true}' WHERE id = %s", [event.pk])


def test_export_hashes_every_item_for_chain_of_custody(moderator):
    case = closed_case(kind="csam", reviewer=moderator.reviewer)
    export = case_export(case_id=case.pk)
    types = [item["type"] for item in export["items"]]
    assert types[0] == "case" and types.count("signal") == 1 and types.count("decision") == 1
    assert types.count("event") == CaseEvent.objects.filter(case=case).count()
    received = json.loads(json.dumps(export, cls=DjangoJSONEncoder))
    for item in received["items"]:
        # recomputable by the recipient from exactly what they received
        canonical = json.dumps(item["data"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert item["sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    manifest = hashlib.sha256("".join(i["sha256"] for i in export["items"]).encode()).hexdigest()
    assert export["manifest_sha256"] == manifest
    # any change to the evidence changes its hash
    Signal.objects.filter(case=case).update(reason="tampered")
    assert case_export(case_id=case.pk)["items"][1]["sha256"] != export["items"][1]["sha256"]


def test_export_api_for_seniors_with_clearance_only(api_for, make_user, moderator):
    case = closed_case(kind="csam")
    cleared = make_user("cleared-senior", "senior", clearances=["csam"])
    uncleared = make_user("plain-senior", "senior")
    response = api_for(cleared).get(f"/api/v1/cases/{case.pk}/export/")
    assert response.status_code == 200
    assert response.json()["items"][0]["data"]["id"] == case.pk
    assert api_for(uncleared).get(f"/api/v1/cases/{case.pk}/export/").json()["code"] == "not_found"
    assert api_for(moderator).get(f"/api/v1/cases/{case.pk}/export/").status_code == 403


def test_a_purge_reads_what_is_left_to_purge_not_the_purged_history():
    """Rows read grow with the cases purged, never with the closed cases purged before (they leave the index).

    The table holds 20,000 closed, purged cases and no statistics (as in a test database or before the first
    ANALYZE); the rows of ``casework_case`` the purge fetched in this transaction are counted: a few reads of
    each purged case (the walk and its lock, the UPDATE), plus a look past the end per batch.
    """
    purged = closed_case(closed_at=OLD - timedelta(days=30))
    Case.objects.filter(pk=purged.pk).update(personal_data_purged_at=OLD)
    due = [closed_case() for _ in range(3)]
    with transaction.atomic(), connection.cursor() as cur:
        cases_copied_without_statistics(cur, {purged.pk: 20_000})
        before = case_rows_fetched(cur)
        assert cases_purge_personal_data(batch=2) == 3
        after = case_rows_fetched(cur)
        transaction.set_rollback(True)  # the copies go; their foreign keys are never checked
    assert len(due) == 3
    assert after - before <= 3 * 4 + 2 * 2, after - before


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_purge_locks_only_the_cases_not_their_class_or_queue():
    """A real second connection holds the case's class row (an admin editing it): the purge neither waits nor skips."""
    case = closed_case(kind="harassment")
    with second_connection() as other:
        other.execute("SELECT 1 FROM policies_threatclass WHERE id = %s FOR UPDATE", [case.threat_class_id])
        other.execute("SELECT 1 FROM casework_queue WHERE id = %s FOR UPDATE", [case.queue_id])
        with connection.cursor() as cur:
            cur.execute("SET lock_timeout = '2s'")  # a wait fails the test instead of passing slowly
        try:
            assert cases_purge_personal_data() == 1
        finally:
            with connection.cursor() as cur:
                cur.execute("RESET lock_timeout")
        other.rollback()
    assert Case.objects.get(pk=case.pk).personal_data_purged_at is not None
