"""Fixtures for appeals: decided cases and appeals staff."""

from datetime import timedelta

import pytest
from django.utils import timezone

from appeals.models import Appeal
from casework.models import Reporter
from reviews.models import Decision
from reviews.services import decision_make, queue_claim
from tests.factories import CaseFactory, ReporterFactory, SignalFactory, active_version, threat_class


def decided(*, kind="spam", reviewer=None, action="remove", rule=None, at=None, subject=None):
    """A case decided by ``reviewer`` (a Reviewer), written directly: no enforcement, no strike."""
    at = at or timezone.now()
    version = active_version(kind)
    extra = {"subject": subject} if subject is not None else {}
    case = CaseFactory(kind=kind, status="decided", decided_at=at, first_action_at=at, **extra)
    return Decision.objects.create(
        case=case,
        reviewer=reviewer,
        automated=reviewer is None,
        action=action,
        rule=version.rule_codes()[0] if rule is None and action != "no_violation" else (rule or ""),
        policy_version=version,
        rationale="as seen",
        created_at=at,
    )


def appeal_on(decision, *, appellant="u-owner", holder=None, received_at=None, deadline_hours=72, statement="no"):
    """An appeal written directly, received (or held by ``holder``)."""
    received_at = received_at or timezone.now()
    decision.case.status = "appealed"
    decision.case.save(update_fields=["status"])
    return Appeal.objects.create(
        decision=decision,
        appellant=appellant,
        statement=statement,
        received_at=received_at,
        deadline=received_at + timedelta(hours=deadline_hours),
        status="in_review" if holder else "received",
        assigned_to=holder,
        claimed_at=received_at if holder else None,
    )


@pytest.fixture
def decider(make_user):
    """The moderator who made the original decisions."""
    return make_user("decider", "moderator")


@pytest.fixture
def appeals_staff(make_user):
    return make_user("appeals-1", "appeals")


@pytest.fixture
def appeals_staff_2(make_user):
    return make_user("appeals-2", "appeals")


def decide_for_real(moderator, *, kind="spam", action="remove", rule=None, reporters=2, duration_days=None, **case):
    """A case decided through the reviews services: claim, then decide (enforcement, strike, reporters)."""

    case = CaseFactory(kind=kind, signal_count=max(reporters, 1), reporter_count=reporters, **case)
    for _ in range(reporters):
        SignalFactory(
            case=case,
            subject=case.subject,
            threat_class=threat_class(kind),
            reporter=ReporterFactory(),
            disposition="queued",
        )
    assignment = queue_claim(reviewer=moderator.reviewer, queue_slug=kind)
    assert assignment.case_id == case.pk
    version = active_version(kind)
    decision = decision_make(
        case_id=case.pk,
        reviewer=moderator.reviewer,
        action=action,
        rule=rule if rule is not None else (version.rule_codes()[0] if action != "no_violation" else ""),
        rationale="violates the policy",
        duration_days=duration_days,
    )
    assert Reporter.objects.filter(signals__case=case).count() == reporters
    return decision
