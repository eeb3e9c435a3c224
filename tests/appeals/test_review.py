"""The appeals queue and resolution: independence, holder only, outcomes, no automation path."""

import threading
from datetime import timedelta

import pytest
from celery import current_app
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from appeals.models import Appeal
from appeals.services import appeal_claim, appeal_file, appeal_release, appeal_resolve, appeals_release_stale
from casework.models import Case, CaseEvent, Reporter
from docket.periodic import jobs
from reviews.models import Decision, Enforcement, Strike
from tests.appeals.conftest import appeal_on, decide_for_real, decided
from tests.support import refused_code

pytestmark = pytest.mark.django_db


def state(appeal):
    """Everything a refused resolution must leave untouched."""
    appeal = Appeal.objects.get(pk=appeal.pk)
    decision = Decision.objects.get(pk=appeal.decision_id)
    return (
        appeal.status,
        appeal.outcome,
        appeal.assigned_to_id,
        decision.overturned,
        Case.objects.get(pk=decision.case_id).status,
        Decision.objects.count(),
        Enforcement.objects.count(),
        CaseEvent.objects.filter(case_id=decision.case_id).count(),
        Strike.objects.filter(removed_at__isnull=True).count(),
    )


# --- claims -------------------------------------------------------------------------


def test_claim_serves_the_oldest_deadline_first_and_marks_it_in_review(decider, appeals_staff):
    now = timezone.now()
    later = appeal_on(decided(reviewer=decider.reviewer), received_at=now - timedelta(hours=1))
    sooner = appeal_on(decided(reviewer=decider.reviewer), received_at=now - timedelta(hours=5))

    first = appeal_claim(reviewer=appeals_staff.reviewer)
    second = appeal_claim(reviewer=appeals_staff.reviewer)

    assert [first.pk, second.pk] == [sooner.pk, later.pk]
    assert appeal_claim(reviewer=appeals_staff.reviewer) is None
    sooner.refresh_from_db()
    assert (sooner.status, sooner.assigned_to_id) == ("in_review", appeals_staff.reviewer.pk)
    event = CaseEvent.objects.get(case_id=sooner.decision.case_id, kind="appeal_claimed")
    assert (event.actor_label, event.detail) == ("appeals-1", {"appeal": sooner.pk})


def test_claim_never_serves_an_appeal_of_ones_own_decision(make_user, appeals_staff):
    both = make_user("mod-and-appeals", "moderator,appeals")
    own = appeal_on(decided(reviewer=both.reviewer), received_at=timezone.now() - timedelta(days=2))

    assert appeal_claim(reviewer=both.reviewer) is None
    assert Appeal.objects.get(pk=own.pk).status == "received"
    assert appeal_claim(reviewer=appeals_staff.reviewer).pk == own.pk


def test_claim_passes_over_restricted_classes_without_clearance(make_user, decider, appeals_staff):
    senior = make_user("cib-senior", "senior,moderator", clearances=["cib"])
    cleared = make_user("cleared-appeals", "appeals", clearances=["cib"])
    restricted = appeal_on(decided(kind="cib", reviewer=senior.reviewer), received_at=timezone.now() - timedelta(9))

    assert appeal_claim(reviewer=appeals_staff.reviewer) is None
    assert appeal_claim(reviewer=cleared.reviewer).pk == restricted.pk


def test_claim_refusals_change_nothing(make_user, decider):
    appeal = appeal_on(decided(reviewer=decider.reviewer))
    off = make_user("off", "appeals")
    off.reviewer.on_shift = False
    off.reviewer.save()
    full = make_user("full", "appeals", max_active=1)
    appeal_on(decided(reviewer=decider.reviewer), holder=full.reviewer)

    refused_code("off_shift", lambda: appeal_claim(reviewer=off.reviewer))
    refused_code("capacity_reached", lambda: appeal_claim(reviewer=full.reviewer))
    refused_code("forbidden", lambda: appeal_claim(reviewer=decider.reviewer))

    assert Appeal.objects.get(pk=appeal.pk).status == "received"
    assert not CaseEvent.objects.filter(kind="appeal_claimed").exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_claimers_never_hold_one_appeal_twice(make_user, decider):
    staff = [make_user(f"ap-{i}", "appeals", max_active=3) for i in range(12)]
    appeals = [appeal_on(decided(reviewer=decider.reviewer)) for _ in range(20)]
    barrier = threading.Barrier(len(staff))
    claimed, errors = [], []

    def work(user):
        try:
            barrier.wait()
            for _ in range(3):
                appeal = appeal_claim(reviewer=user.reviewer)
                if appeal is not None:
                    claimed.append((appeal.pk, user.reviewer.pk))
        except Exception as e:  # surfaced below
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(u,)) for u in staff]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert len(claimed) == len({pk for pk, _ in claimed}) == 20
    held = dict(Appeal.objects.filter(status="in_review").values_list("pk", "assigned_to_id"))
    assert held == dict(claimed)
    assert sorted(held) == sorted(a.pk for a in appeals)


def test_holder_may_release_and_others_may_not(decider, appeals_staff, appeals_staff_2):
    appeal = appeal_on(decided(reviewer=decider.reviewer), holder=appeals_staff.reviewer)

    refused_code("not_assignee", lambda: appeal_release(appeal_id=appeal.pk, reviewer=appeals_staff_2.reviewer))
    assert Appeal.objects.get(pk=appeal.pk).assigned_to_id == appeals_staff.reviewer.pk
    appeal_release(appeal_id=appeal.pk, reviewer=appeals_staff.reviewer)

    appeal.refresh_from_db()
    assert (appeal.status, appeal.assigned_to_id, appeal.claimed_at) == ("received", None, None)


def test_stale_claims_return_to_the_queue_unresolved(decider, appeals_staff):
    now = timezone.now()
    stale = appeal_on(decided(reviewer=decider.reviewer), holder=appeals_staff.reviewer)
    Appeal.objects.filter(pk=stale.pk).update(claimed_at=now - timedelta(hours=25))
    fresh = appeal_on(decided(reviewer=decider.reviewer), holder=appeals_staff.reviewer)

    assert appeals_release_stale(now=now) == 1

    assert Appeal.objects.get(pk=stale.pk).status == "received"
    assert Appeal.objects.get(pk=fresh.pk).status == "in_review"
    event = CaseEvent.objects.get(kind="appeal_released")
    assert (event.actor_label, event.detail["appeal"]) == ("system", stale.pk)


def test_a_backlog_of_stale_claims_is_released_in_short_batches(decider, appeals_staff):
    """Each batch its own transaction of at most ``batch`` appeals, longest held first: none holds them all."""
    now = timezone.now()
    stale = [appeal_on(decided(reviewer=decider.reviewer), holder=appeals_staff.reviewer) for _ in range(5)]
    for hours, appeal in enumerate(stale):
        Appeal.objects.filter(pk=appeal.pk).update(claimed_at=now - timedelta(hours=30 - hours))
    with CaptureQueriesContext(connection) as captured:
        assert appeals_release_stale(now=now, batch=2) == 5
    locking = [q["sql"] for q in captured.captured_queries if "FOR NO KEY UPDATE" in q["sql"]]
    assert len(locking) == 3 and all("LIMIT 2" in sql for sql in locking), locking
    savepoints = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SAVEPOINT")]
    assert len(savepoints) == 3  # one transaction (here a savepoint of the test's) per batch
    released = CaseEvent.objects.filter(kind="appeal_released").order_by("id").values_list("detail__appeal", flat=True)
    assert list(released) == [a.pk for a in stale]


# --- resolution: who may ----------------------------------------------------------------


def test_only_the_holder_resolves(decider, appeals_staff, appeals_staff_2):
    appeal = appeal_on(decided(reviewer=decider.reviewer), holder=appeals_staff.reviewer)
    received = appeal_on(decided(reviewer=decider.reviewer))
    before = state(appeal), state(received)

    refused_code(
        "not_assignee",
        lambda: appeal_resolve(appeal_id=appeal.pk, reviewer=appeals_staff_2.reviewer, outcome="upheld", rationale="x"),
    )
    refused_code(
        "not_assignee",
        lambda: appeal_resolve(appeal_id=received.pk, reviewer=appeals_staff.reviewer, outcome="upheld", rationale="x"),
    )

    assert (state(appeal), state(received)) == before


def test_the_original_decider_has_a_conflict_of_interest_even_holding_it(make_user):
    both = make_user("mod-and-appeals", "moderator,appeals")
    appeal = appeal_on(decided(reviewer=both.reviewer), holder=both.reviewer)  # forced past the claim rule
    other = appeal_on(decided(reviewer=both.reviewer))
    before = state(appeal), state(other)

    for target in (appeal, other):
        error = refused_code(
            "conflict_of_interest",
            lambda t=target: appeal_resolve(appeal_id=t.pk, reviewer=both.reviewer, outcome="upheld", rationale="x"),
        )
        assert error.status == 403

    assert (state(appeal), state(other)) == before


def test_restricted_appeal_is_not_found_without_clearance(make_user, appeals_staff):
    senior = make_user("cib-senior", "senior,moderator", clearances=["cib"])
    appeal = appeal_on(decided(kind="cib", reviewer=senior.reviewer), holder=appeals_staff.reviewer)
    before = state(appeal)

    error = refused_code(
        "not_found",
        lambda: appeal_resolve(appeal_id=appeal.pk, reviewer=appeals_staff.reviewer, outcome="upheld", rationale="x"),
    )

    assert error.status == 404
    assert state(appeal) == before


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"outcome": "reversed", "rationale": "x"}, "outcome"),
        ({"outcome": "upheld", "rationale": "  "}, "rationale"),
        ({"outcome": "modified", "rationale": "x"}, "action"),
        ({"outcome": "modified", "action": "remove", "rationale": "x"}, "action"),
    ],
)
def test_invalid_resolutions_change_nothing(decider, appeals_staff, kwargs, field):
    appeal = appeal_on(decided(reviewer=decider.reviewer, action="remove"), holder=appeals_staff.reviewer)
    before = state(appeal)

    error = refused_code(
        "invalid", lambda: appeal_resolve(appeal_id=appeal.pk, reviewer=appeals_staff.reviewer, **kwargs)
    )

    assert list(error.errors) == [field]
    assert state(appeal) == before


def test_a_resolved_appeal_cannot_be_resolved_again(decider, appeals_staff):
    appeal = appeal_on(decided(reviewer=decider.reviewer), holder=appeals_staff.reviewer)
    appeal_resolve(appeal_id=appeal.pk, reviewer=appeals_staff.reviewer, outcome="upheld", rationale="fine")
    before = state(appeal)

    refused_code(
        "invalid_transition",
        lambda: appeal_resolve(appeal_id=appeal.pk, reviewer=appeals_staff.reviewer, outcome="upheld", rationale="y"),
    )
    assert state(appeal) == before


# --- no automation path ---------------------------------------------------------------


@pytest.mark.parametrize("who", [None, "automation", "system"])
def test_no_automated_actor_can_resolve(decider, appeals_staff, who):
    appeal = appeal_on(decided(reviewer=decider.reviewer), holder=appeals_staff.reviewer)
    before = state(appeal)

    refused_code(
        "forbidden", lambda: appeal_resolve(appeal_id=appeal.pk, reviewer=who, outcome="overturned", rationale="x")
    )

    assert state(appeal) == before


def test_a_reviewer_without_the_appeals_role_cannot_resolve(decider, moderator, appeals_staff):
    appeal = appeal_on(decided(reviewer=decider.reviewer), holder=appeals_staff.reviewer)
    Appeal.objects.filter(pk=appeal.pk).update(assigned_to=moderator.reviewer)
    before = state(appeal)

    refused_code(
        "forbidden",
        lambda: appeal_resolve(appeal_id=appeal.pk, reviewer=moderator.reviewer, outcome="upheld", rationale="x"),
    )
    assert state(appeal) == before


def test_the_database_refuses_a_resolution_without_a_named_reviewer(decider, appeals_staff):
    appeal = appeal_on(decided(reviewer=decider.reviewer), holder=appeals_staff.reviewer)

    with pytest.raises(IntegrityError, match="appeal_resolved_complete"), transaction.atomic():
        Appeal.objects.filter(pk=appeal.pk).update(status="resolved", outcome="overturned", resolved_at=timezone.now())


def test_periodic_jobs_never_resolve_an_overdue_appeal(decider, appeals_staff):
    long_ago = timezone.now() - timedelta(days=30)
    waiting = appeal_on(decided(reviewer=decider.reviewer), received_at=long_ago)
    held = appeal_on(decided(reviewer=decider.reviewer), holder=appeals_staff.reviewer, received_at=long_ago)

    call_command("docket_tick")

    statuses = dict(Appeal.objects.values_list("pk", "status"))
    assert statuses == {waiting.pk: "received", held.pk: "received"}  # the stale claim went back to a human
    assert not Appeal.objects.exclude(outcome="").exists()
    assert not Decision.objects.filter(overturned=True).exists()


def test_no_celery_task_resolves_appeals():
    names = [job.name for job in jobs()] + list(current_app.tasks)
    assert "appeals.tasks.release_stale_appeal_claims" in names
    assert [n for n in names if "appeal" in n and ("resolve" in n or "overturn" in n)] == []


# --- outcomes ---------------------------------------------------------------------------


def file_and_claim(decision, platform, staff):
    appeal = appeal_file(decision_id=decision.pk, appellant="u-owner", statement="not spam", actor=platform)
    assert appeal_claim(reviewer=staff.reviewer).pk == appeal.pk
    return appeal


def test_upheld_returns_the_case_to_decided_and_delivers_nothing(decider, appeals_staff, platform):
    decision = decide_for_real(decider)
    appeal = file_and_claim(decision, platform, appeals_staff)
    enforcements = list(Enforcement.objects.values_list("pk", flat=True))

    appeal_resolve(appeal_id=appeal.pk, reviewer=appeals_staff.reviewer, outcome="upheld", rationale="It is spam.")

    appeal.refresh_from_db()
    assert (appeal.status, appeal.outcome, appeal.resolved_by_id) == ("resolved", "upheld", appeals_staff.reviewer.pk)
    assert appeal.rationale == "It is spam."
    decision.refresh_from_db()
    assert decision.overturned is False
    assert list(Enforcement.objects.values_list("pk", flat=True)) == enforcements
    assert Strike.objects.get(decision=decision).removed_at is None
    assert Case.objects.get(pk=decision.case_id).status == "decided"
    kinds = list(CaseEvent.objects.filter(case_id=decision.case_id).values_list("kind", flat=True))
    assert kinds[-4:] == ["appeal_filed", "appeal_claimed", "appeal_resolved", "appeal_closed"]


def test_overturn_reverses_enforcement_removes_strike_and_corrects_reporters(decider, appeals_staff, platform):
    decision = decide_for_real(decider, reporters=2)
    reporters = Reporter.objects.filter(signals__case_id=decision.case_id)
    assert sorted(reporters.values_list("reports_decided", "reports_upheld")) == [(1, 1), (1, 1)]
    appeal = file_and_claim(decision, platform, appeals_staff)

    appeal_resolve(appeal_id=appeal.pk, reviewer=appeals_staff.reviewer, outcome="overturned", rationale="Not spam.")

    decision.refresh_from_db()
    assert decision.overturned is True
    rows = list(Enforcement.objects.filter(decision=decision).order_by("id").values_list("kind", "action", "status"))
    assert rows == [("enforce", "remove", "pending"), ("reverse", "remove", "pending")]
    assert Strike.objects.get(decision=decision).removed_at is not None
    assert sorted(reporters.values_list("reports_decided", "reports_upheld")) == [(1, 0), (1, 0)]
    assert Case.objects.get(pk=decision.case_id).status == "decided"
    resolved = CaseEvent.objects.get(case_id=decision.case_id, kind="appeal_resolved")
    assert resolved.actor_label == "appeals-1"
    assert resolved.detail == {
        "appeal": appeal.pk,
        "decision": decision.pk,
        "outcome": "overturned",
        "new_action": None,
        "new_decision": None,
        "rationale": "Not spam.",
    }
    assert CaseEvent.objects.filter(case_id=decision.case_id, kind="decision_overturned").count() == 1


def test_modified_reverses_the_old_enforcement_and_delivers_the_new(decider, appeals_staff, platform):
    decision = decide_for_real(decider, action="suspend", duration_days=30)
    appeal = file_and_claim(decision, platform, appeals_staff)

    appeal_resolve(
        appeal_id=appeal.pk, reviewer=appeals_staff.reviewer, outcome="modified", action="label", rationale="Milder."
    )

    appeal.refresh_from_db()
    new = appeal.new_decision
    assert (appeal.outcome, appeal.new_action) == ("modified", "label")
    assert (new.action, new.rule, new.reviewer_id) == ("label", decision.rule, appeals_staff.reviewer.pk)
    assert list(Enforcement.objects.order_by("id").values_list("decision_id", "kind", "action", "duration_days")) == [
        (decision.pk, "enforce", "suspend", 30),
        (decision.pk, "reverse", "suspend", 30),
        (new.pk, "enforce", "label", None),
    ]
    assert Decision.objects.get(pk=decision.pk).overturned is True
    assert Case.objects.get(pk=decision.case_id).status == "decided"


def test_modified_action_must_be_on_the_ladder_and_nothing_is_half_written(decider, appeals_staff, platform):
    decision = decide_for_real(decider)
    appeal = file_and_claim(decision, platform, appeals_staff)
    before = state(appeal)

    refused_code(
        "action_not_allowed",
        lambda: appeal_resolve(
            appeal_id=appeal.pk, reviewer=appeals_staff.reviewer, outcome="modified", action="lock", rationale="x"
        ),
    )

    assert state(appeal) == before


def test_a_modified_decision_is_appealable_but_not_by_whoever_replaced_it(decider, appeals_staff, platform, make_user):
    decision = decide_for_real(decider)
    appeal = file_and_claim(decision, platform, appeals_staff)
    appeal_resolve(
        appeal_id=appeal.pk, reviewer=appeals_staff.reviewer, outcome="modified", action="label", rationale="Milder."
    )
    new = Appeal.objects.get(pk=appeal.pk).new_decision
    second = appeal_file(decision_id=new.pk, appellant="u-owner", statement="still wrong", actor=platform)
    fresh = make_user("appeals-3", "appeals")

    assert appeal_claim(reviewer=appeals_staff.reviewer) is None
    assert appeal_claim(reviewer=fresh.reviewer).pk == second.pk
    assert Case.objects.get(pk=decision.case_id).status == "appealed"


def test_the_case_stays_appealed_while_another_appeal_is_open(decider, appeals_staff, platform):
    decision = decide_for_real(decider)
    first = file_and_claim(decision, platform, appeals_staff)
    appeal_file(decision_id=decision.pk, appellant="u-notifier", statement="", actor=platform)

    appeal_resolve(appeal_id=first.pk, reviewer=appeals_staff.reviewer, outcome="upheld", rationale="Spam.")

    assert Case.objects.get(pk=decision.case_id).status == "appealed"
