"""Claims, refusals, leases, skips, named assignment and escalation through the services."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from casework.models import Case, CaseEvent
from reviews.models import Assignment
from reviews.services import (
    assignment_release,
    assignment_renew,
    assignment_skip,
    case_assign,
    case_escalate,
    leases_expire,
    queue_claim,
)
from tests.factories import CaseFactory, queue
from tests.support import refused

pytestmark = pytest.mark.django_db


def test_claim_takes_the_highest_priority_open_case_and_leases_it(moderator, settings):
    low, high, mid = (CaseFactory(kind="spam", priority=p) for p in (1.0, 5.0, 3.0))
    CaseFactory(kind="harassment", priority=99.0)  # another queue

    assignment = queue_claim(reviewer=moderator, queue_slug="spam")

    assert assignment.case_id == high.pk
    assert assignment.reviewer.user == moderator
    assert assignment.state == "active"
    assert assignment.lease_expires_at == assignment.claimed_at + timedelta(seconds=settings.DOCKET["LEASE_SECONDS"])
    high.refresh_from_db()
    assert high.status == "in_review"
    event = CaseEvent.objects.get(case=high)
    assert (event.kind, event.actor, event.detail) == (
        "claimed",
        moderator,
        {"from": "open", "to": "in_review", "assignment": assignment.pk, "reviewer": "mod"},
    )
    assert queue_claim(reviewer=moderator, queue_slug="spam").case_id == mid.pk
    assert queue_claim(reviewer=moderator, queue_slug="spam").case_id == low.pk


def test_claim_answers_none_when_nothing_waits(moderator, unchanged):
    CaseFactory(kind="spam", status="decided", decided_at=timezone.now())
    with unchanged():
        assert queue_claim(reviewer=moderator, queue_slug="spam") is None


def test_claim_passes_over_restricted_classes_the_reviewer_is_not_cleared_for(make_user):
    uncleared = make_user("s2", "senior,moderator")
    escalations = queue("escalations")
    csam = CaseFactory(kind="csam", queue=escalations, status="escalated", priority=100.0)
    spam = CaseFactory(kind="spam", queue=escalations, status="escalated", priority=1.0)

    assert queue_claim(reviewer=uncleared, queue_slug="escalations").case_id == spam.pk
    assert queue_claim(reviewer=uncleared, queue_slug="escalations") is None
    cleared = make_user("s3", "senior,moderator", clearances=["csam"])
    assert queue_claim(reviewer=cleared, queue_slug="escalations").case_id == csam.pk


def test_a_claim_is_two_statements_whatever_the_clearances(make_user):
    """The claimer's row, queue and hidden classes in one statement, the pick and its writes in another: the
    classes a reviewer is not cleared for are read with the reviewer row, not by a query of their own."""
    escalations = queue("escalations")
    CaseFactory(kind="csam", queue=escalations, status="escalated", priority=100.0)
    spam = CaseFactory(kind="spam", queue=escalations, status="escalated", priority=1.0)
    uncleared = make_user("s4", "senior,moderator")
    with CaptureQueriesContext(connection) as ctx:
        assignment = queue_claim(reviewer=uncleared, queue_slug="escalations")
    assert assignment.case_id == spam.pk
    statements = [q["sql"] for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == 2, statements


def test_escalated_cases_come_before_open_ones_in_a_queue(senior):
    opened = CaseFactory(kind="spam", queue=queue("escalations"), priority=50.0)
    escalated = CaseFactory(kind="spam", queue=queue("escalations"), status="escalated", priority=1.0)
    assert queue_claim(reviewer=senior, queue_slug="escalations").case_id == escalated.pk
    assert queue_claim(reviewer=senior, queue_slug="escalations").case_id == opened.pk


def test_refusal_clearance_required(moderator, unchanged):
    CaseFactory(kind="csam")
    with unchanged():
        refused("clearance_required", 403, lambda: queue_claim(reviewer=moderator, queue_slug="csam"))


def test_refusal_not_their_queue(moderator, unchanged):
    CaseFactory(kind="spam", queue=queue("escalations"))
    with unchanged():
        refused("forbidden", 403, lambda: queue_claim(reviewer=moderator, queue_slug="escalations"))


def test_refusal_unknown_queue(moderator, unchanged):
    with unchanged():
        refused("not_found", 404, lambda: queue_claim(reviewer=moderator, queue_slug="nope"))


def test_refusal_users_without_a_reviewer_profile(platform, unchanged):
    CaseFactory(kind="spam")
    with unchanged():
        refused("forbidden", 403, lambda: queue_claim(reviewer=platform, queue_slug="spam"))


def test_refusal_off_shift(moderator, unchanged):
    CaseFactory(kind="spam")
    moderator.reviewer.on_shift = False
    moderator.reviewer.save()
    with unchanged():
        refused("off_shift", 409, lambda: queue_claim(reviewer=moderator, queue_slug="spam"))


def test_refusal_capacity_reached(make_user, unchanged):
    user = make_user("busy", "moderator", max_active=2)
    CaseFactory.create_batch(3, kind="spam")
    queue_claim(reviewer=user, queue_slug="spam")
    queue_claim(reviewer=user, queue_slug="harassment")  # nothing there: no assignment
    queue_claim(reviewer=user, queue_slug="spam")
    with unchanged():
        refused("capacity_reached", 409, lambda: queue_claim(reviewer=user, queue_slug="spam"))
    assert Assignment.objects.filter(reviewer=user.reviewer, state="active").count() == 2


def test_refusal_exposure_budget_only_when_the_next_case_is_graphic(make_user, unchanged):
    user = make_user("csam-mod", "moderator", clearances=["csam"], graphic_budget=1, max_active=5)
    CaseFactory.create_batch(2, kind="csam")
    CaseFactory(kind="spam")
    first = queue_claim(reviewer=user, queue_slug="csam")
    assert first.graphic is True
    assignment_release(assignment_id=first.pk, reviewer=user)  # a released graphic case still counted today
    with unchanged():
        refused("exposure_budget_reached", 409, lambda: queue_claim(reviewer=user, queue_slug="csam"))
    assert queue_claim(reviewer=user, queue_slug="spam").graphic is False
    # Yesterday's exposure does not count today.
    Assignment.objects.filter(graphic=True).update(
        claimed_at=timezone.now() - timedelta(days=1), lease_expires_at=timezone.now()
    )
    assert queue_claim(reviewer=user, queue_slug="csam").graphic is True


def test_release_returns_the_case_to_its_queue(moderator):
    case = CaseFactory(kind="spam")
    a = queue_claim(reviewer=moderator, queue_slug="spam")
    released = assignment_release(assignment_id=a.pk, reviewer=moderator)
    assert (released.state, released.ended_at is not None) == ("released", True)
    case.refresh_from_db()
    assert case.status == "open"
    assert list(case.events.values_list("kind", flat=True)) == ["claimed", "released"]
    assert queue_claim(reviewer=moderator, queue_slug="spam").case_id == case.pk


def test_skip_is_not_served_again_to_the_same_reviewer_for_a_while(moderator, make_user, settings):
    top = CaseFactory(kind="spam", priority=9.0)
    other = CaseFactory(kind="spam", priority=1.0)
    a = queue_claim(reviewer=moderator, queue_slug="spam")
    assert a.case_id == top.pk
    assert assignment_skip(assignment_id=a.pk, reviewer=moderator).state == "skipped"
    top.refresh_from_db()
    assert top.status == "open"

    b = queue_claim(reviewer=moderator, queue_slug="spam")
    assert b.case_id == other.pk
    assignment_release(assignment_id=b.pk, reviewer=moderator)
    assert queue_claim(reviewer=moderator, queue_slug="spam").case_id == other.pk  # released, not skipped
    # Someone else still gets the skipped top case.
    assert queue_claim(reviewer=make_user("mod2", "moderator"), queue_slug="spam").case_id == top.pk


def test_skip_cooldown_ends(moderator, settings):
    top = CaseFactory(kind="spam", priority=9.0)
    a = queue_claim(reviewer=moderator, queue_slug="spam")
    assignment_skip(assignment_id=a.pk, reviewer=moderator)
    assert queue_claim(reviewer=moderator, queue_slug="spam") is None
    Assignment.objects.filter(pk=a.pk).update(
        ended_at=timezone.now() - timedelta(seconds=settings.DOCKET["SKIP_COOLDOWN_SECONDS"] + 1)
    )
    assert queue_claim(reviewer=moderator, queue_slug="spam").case_id == top.pk


def test_renew_extends_the_lease(moderator, settings):
    CaseFactory(kind="spam")
    a = queue_claim(reviewer=moderator, queue_slug="spam")
    Assignment.objects.filter(pk=a.pk).update(lease_expires_at=a.claimed_at + timedelta(seconds=5))
    before = timezone.now()
    renewed = assignment_renew(assignment_id=a.pk, reviewer=moderator)
    assert renewed.lease_expires_at >= before + timedelta(seconds=settings.DOCKET["LEASE_SECONDS"])


@pytest.mark.parametrize("fn", [assignment_renew, assignment_release, assignment_skip])
def test_only_the_holder_may_renew_release_or_skip(fn, moderator, make_user, unchanged):
    CaseFactory(kind="spam")
    a = queue_claim(reviewer=moderator, queue_slug="spam")
    other = make_user("other", "moderator")
    with unchanged():
        refused("not_assignee", 403, lambda: fn(assignment_id=a.pk, reviewer=other))
        refused("not_found", 404, lambda: fn(assignment_id=a.pk + 1000, reviewer=moderator))


def test_an_ended_assignment_cannot_be_released_again(moderator, unchanged):
    CaseFactory(kind="spam")
    a = queue_claim(reviewer=moderator, queue_slug="spam")
    assignment_release(assignment_id=a.pk, reviewer=moderator)
    with unchanged():
        refused("assignment_ended", 409, lambda: assignment_release(assignment_id=a.pk, reviewer=moderator))
        refused("assignment_ended", 409, lambda: assignment_renew(assignment_id=a.pk, reviewer=moderator))


def test_expired_leases_return_cases_to_the_queue(moderator, make_user):
    expired_case, live_case = CaseFactory(kind="spam", priority=2.0), CaseFactory(kind="spam", priority=1.0)
    a = queue_claim(reviewer=moderator, queue_slug="spam")
    b = queue_claim(reviewer=moderator, queue_slug="spam")
    now = timezone.now()
    Assignment.objects.filter(pk=a.pk).update(
        claimed_at=now - timedelta(hours=1), lease_expires_at=now - timedelta(seconds=1)
    )

    assert leases_expire(now=now) == 1

    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.state, a.ended_at) == ("expired", now)
    assert b.state == "active"
    expired_case.refresh_from_db()
    live_case.refresh_from_db()
    assert (expired_case.status, live_case.status) == ("open", "in_review")
    event = expired_case.events.last()
    assert (event.kind, event.actor_label, event.detail) == (
        "lease_expired",
        "system",
        {"from": "in_review", "to": "open", "assignment": a.pk},
    )
    assert leases_expire(now=now) == 0
    assert queue_claim(reviewer=make_user("m2", "moderator"), queue_slug="spam").case_id == expired_case.pk


def test_lease_expiry_is_set_based(moderator, make_user, django_assert_max_num_queries):
    reviewers = [make_user(f"r{i}", "moderator", max_active=5) for i in range(4)]
    CaseFactory.create_batch(20, kind="spam")
    for r in reviewers:
        for _ in range(5):
            queue_claim(reviewer=r, queue_slug="spam")
    Assignment.objects.update(
        claimed_at=timezone.now() - timedelta(hours=1), lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    with django_assert_max_num_queries(6):
        assert leases_expire() == 20
    assert Case.objects.filter(status="open").count() == 20


def test_senior_assigns_a_case_to_a_named_reviewer(senior, moderator):
    case = CaseFactory(kind="spam")
    a = case_assign(case_id=case.pk, reviewer_username="mod", by=senior)
    assert (a.reviewer.user, a.assigned_by, a.state) == (moderator, senior, "active")
    case.refresh_from_db()
    assert case.status == "in_review"
    assert case.events.last().kind == "assigned"


def test_named_assignment_hands_over_a_held_case(senior, moderator, make_user):
    case = CaseFactory(kind="spam")
    first = queue_claim(reviewer=make_user("m2", "moderator"), queue_slug="spam")
    a = case_assign(case_id=case.pk, reviewer_username="mod", by=senior)
    first.refresh_from_db()
    assert first.state == "released"
    assert a.reviewer.user == moderator
    assert list(case.events.values_list("kind", flat=True)) == ["claimed", "unassigned", "assigned"]


def test_named_assignment_still_applies_capacity_and_clearance(senior, make_user, unchanged):
    full = make_user("full", "moderator", max_active=1)
    CaseFactory(kind="spam")
    queue_claim(reviewer=full, queue_slug="spam")
    case = CaseFactory(kind="spam")
    csam = CaseFactory(kind="csam")
    with unchanged():
        refused("capacity_reached", 409, lambda: case_assign(case_id=case.pk, reviewer_username="full", by=senior))
        refused("clearance_required", 403, lambda: case_assign(case_id=csam.pk, reviewer_username="full", by=senior))
        refused("invalid", 400, lambda: case_assign(case_id=case.pk, reviewer_username="ghost", by=senior))
        make_user("appeals-only", "appeals")  # a reviewer who could neither decide nor escalate it
        refused("invalid", 400, lambda: case_assign(case_id=case.pk, reviewer_username="appeals-only", by=senior))
        refused("forbidden", 403, lambda: case_assign(case_id=case.pk, reviewer_username="full", by=full))


def test_holder_escalates_to_escalations_and_a_senior_claims_it(moderator, senior):
    case = CaseFactory(kind="harassment")
    a = queue_claim(reviewer=moderator, queue_slug="harassment")
    escalated = case_escalate(case_id=case.pk, actor=moderator, queue_slug="escalations", reason="credible threat")
    a.refresh_from_db()
    assert a.state == "escalated"
    assert (escalated.status, escalated.queue.slug) == ("escalated", "escalations")
    event = case.events.last()
    assert (event.kind, event.detail) == (
        "escalated",
        {
            "from": "in_review",
            "to": "escalated",
            "from_queue": "harassment",
            "to_queue": "escalations",
            "reason": "credible threat",
        },
    )
    assert queue_claim(reviewer=moderator, queue_slug="harassment") is None
    assert queue_claim(reviewer=senior, queue_slug="escalations").case_id == case.pk


def test_escalation_refusals(moderator, make_user, senior, unchanged):
    case = CaseFactory(kind="harassment")
    queue_claim(reviewer=moderator, queue_slug="harassment")
    other = make_user("other", "moderator")
    with unchanged():
        refused(
            "not_assignee",
            403,
            lambda: case_escalate(case_id=case.pk, actor=other, queue_slug="escalations", reason="x"),
        )
        refused("invalid", 400, lambda: case_escalate(case_id=case.pk, actor=moderator, queue_slug="spam", reason="x"))
        refused("invalid", 400, lambda: case_escalate(case_id=case.pk, actor=moderator, queue_slug="legal", reason=" "))
    # A senior may escalate a case they do not hold.
    assert case_escalate(case_id=case.pk, actor=senior, queue_slug="legal", reason="court order").queue.slug == "legal"
