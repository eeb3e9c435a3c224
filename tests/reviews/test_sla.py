"""SLA escalation moves unclaimed high-severity breaches to the seniors, and nothing else."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from casework.models import Case, CaseEvent
from reviews.services import queue_claim
from reviews.sla import cases_escalate_sla_breaches
from tests.factories import CaseFactory, queue
from tests.support import case_rows_fetched, cases_copied_without_statistics, second_connection

pytestmark = pytest.mark.django_db

LONG_AGO = timezone.now() - timedelta(days=2)


def test_unclaimed_high_severity_breach_moves_to_escalations():
    case = CaseFactory(kind="ato", first_signal_at=LONG_AGO)
    assert cases_escalate_sla_breaches() == 1
    case.refresh_from_db()
    assert (case.status, case.queue.slug, case.first_action_at) == ("escalated", "escalations", None)
    event = CaseEvent.objects.get(case=case, kind="sla_escalated")
    assert event.actor_label == "system" and event.detail["from_queue"] == "ato"
    assert cases_escalate_sla_breaches() == 0


def test_low_severity_within_sla_and_claimed_cases_stay(make_user):
    spam = CaseFactory(kind="spam", first_signal_at=LONG_AGO - timedelta(days=5))
    fresh = CaseFactory(kind="ato")
    held = CaseFactory(kind="payment_fraud", first_signal_at=LONG_AGO, priority=10)
    reviewer = make_user("m", "moderator", queues=["payment_fraud"]).reviewer
    assert queue_claim(reviewer=reviewer, queue_slug="payment_fraud").case_id == held.pk
    assert cases_escalate_sla_breaches() == 0
    assert list(
        Case.objects.filter(pk__in=[spam.pk, fresh.pk, held.pk]).values_list("status", flat=True).order_by("id")
    ) == ["open", "open", "in_review"]


def test_escalated_case_is_claimable_by_a_senior(senior):
    case = CaseFactory(kind="csam", first_signal_at=LONG_AGO)
    cases_escalate_sla_breaches()
    assignment = queue_claim(reviewer=senior.reviewer, queue_slug="escalations")
    assert assignment.case_id == case.pk


def test_oldest_breach_goes_first_across_severities_in_one_statement_a_batch():
    """SLA order over every severity from the minimum up: the batch boundary falls where the SLA says."""
    hours_ago = lambda h: timezone.now() - timedelta(hours=h)  # noqa: E731
    recent_csam = CaseFactory(kind="csam", first_signal_at=LONG_AGO, sla_due_at=hours_ago(1))
    old_ato = CaseFactory(kind="ato", first_signal_at=LONG_AGO, sla_due_at=hours_ago(2))
    older_payment = CaseFactory(kind="payment_fraud", first_signal_at=LONG_AGO, sla_due_at=hours_ago(3))
    with CaptureQueriesContext(connection) as captured:
        assert cases_escalate_sla_breaches(batch=2) == 3
    moved = list(
        CaseEvent.objects.filter(kind="sla_escalated").order_by("id").values_list("case_id", "detail__from_queue")
    )
    # the first batch: the two oldest breaches, whatever their severity; the second: the csam case
    assert set(moved[:2]) == {(older_payment.pk, "payment_fraud"), (old_ato.pk, "ato")}
    assert moved[2:] == [(recent_csam.pk, "csam")]
    # two batches (2 + 1), one statement each, beside the settings of each batch and the queues read once
    escalations = [q["sql"] for q in captured.captured_queries if "casework_caseevent" in q["sql"]]
    assert len(escalations) == 2, escalations


def test_a_batch_reads_the_cases_it_moves_not_the_backlog():
    """Rows read grow with the cases moved, never with the breached spam left in its queue or the cases still due.

    The table holds 20,000 breached low-severity cases (never escalated), 1,000 due csam cases, and no
    statistics (as in a test database or before the first ANALYZE). The rows of ``casework_case`` the
    escalation fetched in this transaction are counted: each moved case is read by its severity's walk, by
    its lock and by the UPDATE, plus at most one look ahead per severity and batch. Walking the spam, or sorting
    every due case for each batch of 100, reads many times that.
    """
    spam = CaseFactory(kind="spam", first_signal_at=LONG_AGO - timedelta(days=5))
    csam = CaseFactory(kind="csam", first_signal_at=LONG_AGO)
    CaseFactory(kind="ato", first_signal_at=LONG_AGO)
    with transaction.atomic(), connection.cursor() as cur:
        cases_copied_without_statistics(cur, {spam.pk: 20_000, csam.pk: 999})
        before = case_rows_fetched(cur)
        assert cases_escalate_sla_breaches(batch=100) == 1001
        after = case_rows_fetched(cur)
        left = Case.objects.filter(status="open").count()
        transaction.set_rollback(True)  # the copies go; their foreign keys are never checked
    assert left == 20_001  # the spam stays in its queue
    batches, levels = 11, 2  # 1,001 cases in batches of 100; severities 5 and 4
    assert after - before <= 3 * 1001 + batches * levels, after - before


def test_a_run_never_reads_the_breaches_already_in_an_escalation_queue():
    """2,000 breached open cases waiting in the legal queue (an escalation queue: never moved) cost no reads.

    Each run's batches read a range of the open cases for each queue they watch; the escalation queues'
    cases are in none. A walk of every open breach that passes over those of the excluded queues reads them
    all on every batch of every run.
    """
    waiting_in_legal = CaseFactory(kind="csam", queue=queue("legal"), first_signal_at=LONG_AGO)
    due = CaseFactory(kind="ato", first_signal_at=LONG_AGO)
    with transaction.atomic(), connection.cursor() as cur:
        cases_copied_without_statistics(cur, {waiting_in_legal.pk: 1999})
        before = case_rows_fetched(cur)
        assert cases_escalate_sla_breaches(batch=100) == 1
        fetched = case_rows_fetched(cur) - before
        left = Case.objects.filter(status="open", queue__slug="legal").count()
        transaction.set_rollback(True)
    assert left == 2000
    assert Case.objects.get(pk=due.pk).status == "open"  # rolled back with the rest
    assert fetched <= 10, fetched


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_case_another_transaction_holds_is_skipped_not_waited_for():
    """A real second connection holds the oldest breach (a claim in flight): the run moves the rest at once."""
    held = CaseFactory(kind="csam", first_signal_at=LONG_AGO - timedelta(days=1))
    others = [CaseFactory(kind=kind, first_signal_at=LONG_AGO) for kind in ("csam", "ato")]
    with second_connection() as other:
        other.execute("SELECT 1 FROM casework_case WHERE id = %s FOR NO KEY UPDATE", [held.pk])
        with connection.cursor() as cur:
            cur.execute("SET lock_timeout = '2s'")  # a wait fails the test instead of passing slowly
        try:
            assert cases_escalate_sla_breaches(batch=1) == 2
        finally:
            with connection.cursor() as cur:
                cur.execute("RESET lock_timeout")
        other.rollback()
    statuses = dict(Case.objects.values_list("id", "status"))
    assert [statuses[held.pk], *(statuses[c.pk] for c in others)] == ["open", "escalated", "escalated"]
    assert cases_escalate_sla_breaches() == 1  # the next run catches it
