"""SLA escalation moves unclaimed high-severity breaches to the seniors, and nothing else."""

from datetime import timedelta

import pytest
from django.utils import timezone

from casework.models import Case, CaseEvent
from reviews.services import queue_claim
from reviews.sla import cases_escalate_sla_breaches
from tests.factories import CaseFactory

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
