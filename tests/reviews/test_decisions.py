"""Decisions: who may decide, the ladder, what a decision sets off, overturns and QA."""

import importlib
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from casework.models import Case, Reporter, ReporterClassRecord
from casework.selectors import recommended_action
from docket.errors import DocketError
from reviews import tasks
from reviews.models import Assignment, Decision, Enforcement, QualityReview, Strike
from reviews.services import (
    case_escalate,
    decision_automated,
    decision_make,
    decision_overturn,
    decision_replace,
    decisions_automated,
    quality_review_complete,
    queue_claim,
)
from reviews.services.decisions import DELIVERY_CHUNK
from tests.factories import (
    CaseFactory,
    ReporterFactory,
    SignalFactory,
    SubjectFactory,
    active_version,
    reporters_with_records,
)
from tests.support import refused

pytestmark = pytest.mark.django_db


def claimed(user, kind="spam", **case_fields):
    case = CaseFactory(kind=kind, **case_fields)
    assignment = queue_claim(reviewer=user, queue_slug=case.queue.slug)
    assert assignment.case_id == case.pk
    return case, assignment


def test_the_holder_decides_and_the_decision_records_the_version_rule_and_rationale(moderator, settings):
    case, assignment = claimed(moderator)
    decision = decision_make(case_id=case.pk, reviewer=moderator, action="remove", rule="SP-1", rationale="ads")

    assert (decision.action, decision.rule, decision.rationale, decision.automated) == ("remove", "SP-1", "ads", False)
    assert decision.policy_version == active_version("spam")
    assert decision.reviewer.user == moderator
    assignment.refresh_from_db()
    assert assignment.state == "completed"
    case.refresh_from_db()
    assert (case.status, case.decided_at, case.first_action_at) == ("decided", decision.created_at, decision.created_at)
    event = case.events.last()
    assert (event.kind, event.detail) == (
        "decided",
        {
            "from": "in_review",
            "to": "decided",
            "decision": decision.pk,
            "action": "remove",
            "rule": "SP-1",
            "policy_version": decision.policy_version_id,
            "automated": False,
        },
    )
    enforcement = Enforcement.objects.get(decision=decision)
    assert (enforcement.kind, enforcement.action, enforcement.status, enforcement.attempts) == (
        "enforce",
        "remove",
        "pending",
        0,
    )
    strike = Strike.objects.get(decision=decision)
    assert (strike.account_id, strike.weight) == (case.subject_id, 1)
    assert strike.expires_at == decision.created_at + timedelta(days=settings.DOCKET["STRIKE_WINDOW_DAYS"])
    assert QualityReview.objects.count() == 0


def test_delivery_is_enqueued_only_after_commit(moderator, django_capture_on_commit_callbacks, enqueued):
    case, _ = claimed(moderator)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        decision = decision_make(case_id=case.pk, reviewer=moderator, action="remove", rule="SP-1")
    assert enqueued == []
    for callback in callbacks:
        callback()
    assert enqueued == [decision.enforcements.get().pk]


def test_a_wave_of_decisions_asks_for_its_deliveries_in_messages_of_a_chunk_each(
    monkeypatch, django_capture_on_commit_callbacks
):
    messages = []
    monkeypatch.setattr(tasks.deliver_enforcements, "delay", lambda enforcement_ids: messages.append(enforcement_ids))
    cases = CaseFactory.create_batch(DELIVERY_CHUNK + 2, kind="spam")
    with django_capture_on_commit_callbacks(execute=True):
        decisions, refused = decisions_automated(actions={c.pk: "remove" for c in cases})
        assert messages == []  # only once the wave commits
    assert (len(decisions), refused) == (DELIVERY_CHUNK + 2, {})
    every = sorted(Enforcement.objects.values_list("id", flat=True))
    assert messages == [every[:DELIVERY_CHUNK], every[DELIVERY_CHUNK:]]


def test_only_the_holder_decides(moderator, make_user, senior, unchanged):
    case, _ = claimed(moderator)
    other = make_user("other", "moderator")
    unheld = CaseFactory(kind="spam")
    with unchanged():
        refused(
            "not_assignee", 403, lambda: decision_make(case_id=case.pk, reviewer=other, action="remove", rule="SP-1")
        )
        refused(
            "not_assignee",
            403,
            lambda: decision_make(
                case_id=case.pk, reviewer=other, action="remove", rule="SP-1", on_behalf_of_senior=True
            ),
        )
        refused(
            "not_assignee", 403, lambda: decision_make(case_id=case.pk, reviewer=senior, action="remove", rule="SP-1")
        )
        refused(
            "not_assignee",
            403,
            lambda: decision_make(case_id=unheld.pk, reviewer=moderator, action="label", rule="SP-1"),
        )
        refused("not_found", 404, lambda: decision_make(case_id=10**9, reviewer=moderator, action="label", rule="SP-1"))


def test_a_senior_decides_on_behalf_for_bulk_and_campaign_work(senior):
    case = CaseFactory(kind="spam")
    decision = decision_make(case_id=case.pk, reviewer=senior, action="remove", rule="SP-2", on_behalf_of_senior=True)
    assert decision.reviewer.user == senior
    case.refresh_from_db()
    assert case.status == "decided"


def test_restricted_cases_do_not_exist_for_the_uncleared(make_user, unchanged):
    senior = make_user("s2", "senior,moderator")
    case = CaseFactory(kind="csam")
    with unchanged():
        refused(
            "not_found",
            404,
            lambda: decision_make(
                case_id=case.pk, reviewer=senior, action="remove", rule="CS-1", on_behalf_of_senior=True
            ),
        )


@pytest.mark.parametrize(
    ("kind", "action", "rule", "duration", "code", "field"),
    [
        ("ato", "remove", "AS-1", None, "action_not_allowed", None),  # not on the account-security ladder
        ("spam", "nuke", "SP-1", None, "action_not_allowed", None),
        ("spam", "legal_report", "SP-1", None, "action_not_allowed", None),
        ("spam", "remove", "HB-1", None, "invalid", "rule"),
        ("spam", "remove", "", None, "invalid", "rule"),
        ("spam", "suspend", "SP-1", None, "invalid", "duration_days"),
        ("spam", "suspend", "SP-1", 0, "invalid", "duration_days"),
    ],
)
def test_ladder_rule_and_duration_checks(moderator, unchanged, kind, action, rule, duration, code, field):
    case, _ = claimed(moderator, kind=kind)
    with unchanged():
        error = refused(
            code,
            400,
            lambda: decision_make(
                case_id=case.pk, reviewer=moderator, action=action, rule=rule, duration_days=duration
            ),
        )
    if field:
        assert list(error.errors) == [field]


def test_suspend_with_a_duration(moderator):
    case, _ = claimed(moderator, kind="ato")
    decision = decision_make(case_id=case.pk, reviewer=moderator, action="suspend", rule="AS-1", duration_days=7)
    assert decision.duration_days == 7
    assert list(decision.enforcements.values_list("action", "duration_days")) == [("suspend", 7)]


def test_a_violation_on_a_legal_escalation_class_also_files_a_legal_report(make_user):
    user = make_user("cs", "moderator", clearances=["csam"])
    case, _ = claimed(user, kind="csam")
    decision = decision_make(case_id=case.pk, reviewer=user, action="remove", rule="CS-1")
    assert sorted(decision.enforcements.values_list("kind", "action")) == [
        ("enforce", "legal_report"),
        ("enforce", "remove"),
    ]
    assert Strike.objects.get(decision=decision).weight == 3


def test_a_legal_report_decision_files_one_report(make_user):
    user = make_user("cs", "moderator", clearances=["csam"])
    case, _ = claimed(user, kind="csam")
    decision = decision_make(case_id=case.pk, reviewer=user, action="legal_report", rule="CS-1")
    assert list(decision.enforcements.values_list("action", flat=True)) == ["legal_report"]


def test_no_violation_enforces_nothing_and_strikes_nothing(make_user):
    user = make_user("cs", "moderator", clearances=["csam"])
    case, _ = claimed(user, kind="csam")
    decision = decision_make(case_id=case.pk, reviewer=user, action="no_violation", rule="")
    assert Enforcement.objects.count() == 0
    assert Strike.objects.count() == 0
    assert decision.duration_days is None


def test_reporter_accuracy_counts_each_distinct_reporter_once(moderator):
    case, _ = claimed(moderator)
    alice, bob, carol = ReporterFactory(), ReporterFactory(), ReporterFactory()
    for reporter in (alice, alice, bob):
        SignalFactory(subject=case.subject, reporter=reporter, case=case, disposition="queued")
    SignalFactory(subject=case.subject, case=case, disposition="queued", reporter=None)
    decision_make(case_id=case.pk, reviewer=moderator, action="remove", rule="SP-1")
    rows = dict((r.pk, (r.reports_decided, r.reports_upheld)) for r in Reporter.objects.all())
    assert rows == {alice.pk: (1, 1), bob.pk: (1, 1), carol.pk: (0, 0)}

    case2, _ = claimed(moderator)
    SignalFactory(subject=case2.subject, reporter=alice, case=case2, disposition="queued")
    decision_make(case_id=case2.pk, reviewer=moderator, action="no_violation", rule="")
    alice.refresh_from_db()
    assert (alice.reports_decided, alice.reports_upheld) == (2, 1)


def _class_records():
    return sorted(
        ReporterClassRecord.objects.values_list(
            "reporter_id", "threat_class__slug", "reports_decided", "reports_upheld"
        )
    )


def test_a_reporters_record_is_kept_per_class_and_the_stored_decisions_rebuild_it(moderator, senior):
    """Beside the record over every class, one per class (what a case of another class ranks by); the migration
    that introduced them rebuilds them from the stored decisions by the same rule."""
    alice, bob = reporters_with_records(overturned_by=senior)
    kept = _class_records()
    assert kept == sorted(
        [(alice.pk, "spam", 2, 2), (alice.pk, "csam", 1, 1), (bob.pk, "spam", 1, 1), (bob.pk, "harassment", 1, 0)]
    )
    alice.refresh_from_db()
    assert (alice.reports_decided, alice.reports_upheld) == (3, 3)  # over every class

    ReporterClassRecord.objects.all().delete()
    migration = importlib.import_module("reviews.migrations.0006_reporter_class_records_backfill")
    with connection.schema_editor() as editor:
        migration.backfill(None, editor)
    assert _class_records() == kept


def test_strikes_land_on_the_owner_of_content(moderator):
    owner = SubjectFactory(kind="account")
    content = SubjectFactory(kind="content", owner=owner)
    case, _ = claimed(moderator, subject=content)
    decision = decision_make(case_id=case.pk, reviewer=moderator, action="remove", rule="SP-1")
    assert Strike.objects.get(decision=decision).account_id == owner.pk

    orphan = SubjectFactory(kind="content")
    case2, _ = claimed(moderator, subject=orphan)
    decision_make(case_id=case2.pk, reviewer=moderator, action="remove", rule="SP-1")
    assert Strike.objects.count() == 1


def test_strikes_recommend_the_next_ladder_step_and_expire(moderator):
    account = SubjectFactory(kind="account")
    first, _ = claimed(moderator, subject=account)
    assert recommended_action(first, user=None) == "label"  # a first offence: the mildest violation
    decision_make(case_id=first.pk, reviewer=moderator, action="remove", rule="SP-1")

    repeat, _ = claimed(moderator, subject=account)
    assert recommended_action(repeat, user=None) == "restrict"  # the step above the last violation
    decision_make(case_id=repeat.pk, reviewer=moderator, action="restrict", rule="SP-1")
    third = CaseFactory(kind="spam", subject=account)
    assert recommended_action(third, user=None) == "suspend"

    # Expired strikes no longer count.
    Strike.objects.update(
        expires_at=timezone.now() - timedelta(seconds=1), created_at=timezone.now() - timedelta(days=91)
    )
    assert recommended_action(third, user=None) == "label"


def test_automation_decides_with_the_same_enforcement_and_strike_path(moderator):
    case = CaseFactory(kind="spam")
    decision = decision_automated(case=case, action="remove")
    assert (decision.automated, decision.reviewer, decision.policy_version) == (True, None, active_version("spam"))
    assert list(decision.enforcements.values_list("action", flat=True)) == ["remove"]
    assert Strike.objects.filter(decision=decision).exists()
    case.refresh_from_db()
    assert case.status == "decided"
    assert case.events.last().actor_label == "automation"
    assert QualityReview.objects.count() == 0


def test_automation_takes_a_held_case_from_its_holder(moderator):
    case, assignment = claimed(moderator)
    decision_automated(case=case, action="remove")
    assignment.refresh_from_db()
    assert assignment.state == "completed"


def test_a_decided_case_cannot_be_decided_again(moderator, senior, unchanged):
    case, _ = claimed(moderator)
    decision_make(case_id=case.pk, reviewer=moderator, action="remove", rule="SP-1")
    with unchanged():
        refused(
            "invalid_transition",
            409,
            lambda: decision_make(
                case_id=case.pk, reviewer=senior, action="ban", rule="SP-1", on_behalf_of_senior=True
            ),
        )
        refused("invalid_transition", 409, lambda: decision_automated(case=case, action="remove"))


def test_overturn_reverses_enforcement_removes_the_strike_and_corrects_reporters(moderator, senior, enqueued):
    case, _ = claimed(moderator)
    reporter = ReporterFactory()
    SignalFactory(subject=case.subject, reporter=reporter, case=case, disposition="queued")
    decision = decision_make(case_id=case.pk, reviewer=moderator, action="suspend", rule="SP-1", duration_days=3)
    Enforcement.objects.update(status="delivered", delivered_at=timezone.now())

    decision_overturn(decision=decision, actor=senior, reason="appeal upheld")

    decision.refresh_from_db()
    assert decision.overturned is True and decision.overturned_at is not None
    assert sorted(decision.enforcements.values_list("kind", "action", "duration_days", "status")) == [
        ("enforce", "suspend", 3, "delivered"),
        ("reverse", "suspend", 3, "pending"),
    ]
    assert Strike.objects.get(decision=decision).removed_at == decision.overturned_at
    reporter.refresh_from_db()
    assert (reporter.reports_decided, reporter.reports_upheld) == (1, 0)
    assert case.events.last().kind == "decision_overturned"
    assert recommended_action(case, user=None) == "label"
    with pytest.raises(DocketError) as exc:
        decision_overturn(decision=decision, actor=senior, reason="again")
    assert exc.value.code == "already_overturned"


def test_replace_reverses_the_old_action_and_enforces_the_new_one(moderator, make_user):
    case, _ = claimed(moderator)
    reporter = ReporterFactory()
    SignalFactory(subject=case.subject, reporter=reporter, case=case, disposition="queued")
    old = decision_make(case_id=case.pk, reviewer=moderator, action="ban", rule="SP-1")
    appeals = make_user("appeals1", "appeals")

    new = decision_replace(decision=old, actor=appeals, action="reduce", rule="SP-1", rationale="too harsh")

    old.refresh_from_db()
    assert old.overturned is True
    assert list(old.enforcements.filter(kind="reverse").values_list("action", flat=True)) == ["ban"]
    assert (new.action, new.reviewer.user, new.rationale) == ("reduce", appeals, "too harsh")
    assert list(new.enforcements.values_list("kind", "action")) == [("enforce", "reduce")]
    assert Strike.objects.get(decision=old).removed_at is not None
    assert Strike.objects.get(decision=new).removed_at is None
    reporter.refresh_from_db()
    assert (reporter.reports_decided, reporter.reports_upheld) == (1, 1)


def test_qa_samples_a_blind_second_review(moderator, make_user, always_qa, unchanged):
    case, _ = claimed(moderator)
    decision = decision_make(case_id=case.pk, reviewer=moderator, action="remove", rule="SP-1")
    review = QualityReview.objects.get(decision=decision)
    assert (decision.qa_sampled, review.status, review.reviewer) == (True, "pending", None)

    with unchanged():
        refused(
            "conflict_of_interest",
            403,
            lambda: quality_review_complete(review_id=review.pk, reviewer=moderator, action="remove", rule="SP-1"),
        )
    second = make_user("second", "moderator")
    done = quality_review_complete(review_id=review.pk, reviewer=second, action="reduce", rule="SP-1")
    assert (done.status, done.agrees, done.action, done.reviewer.user) == ("done", False, "reduce", second)
    refused(
        "already_reviewed",
        409,
        lambda: quality_review_complete(review_id=review.pk, reviewer=make_user("third", "moderator"), action="remove"),
    )


def test_qa_agreement(moderator, make_user, always_qa):
    case, _ = claimed(moderator)
    decision = decision_make(case_id=case.pk, reviewer=moderator, action="remove", rule="SP-1")
    review = quality_review_complete(
        review_id=decision.quality_reviews.get().pk, reviewer=make_user("second", "moderator"), action="remove"
    )
    assert review.agrees is True


def test_automated_decisions_are_not_qa_sampled(always_qa):
    decision_automated(case=CaseFactory(kind="spam"), action="remove")
    assert QualityReview.objects.count() == 0
    assert Decision.objects.get().qa_sampled is False


def test_decisions_of_escalated_cases_come_from_the_senior_who_claimed_them(moderator, senior):
    case, _ = claimed(moderator, kind="harassment")

    case_escalate(case_id=case.pk, actor=moderator, queue_slug="escalations", reason="threat to life")
    a = queue_claim(reviewer=senior, queue_slug="escalations")
    assert a.case_id == case.pk
    decision = decision_make(case_id=case.pk, reviewer=senior, action="suspend", rule="HB-2", duration_days=30)
    assert Case.objects.get(pk=case.pk).status == "decided"
    assert Assignment.objects.get(pk=a.pk).state == "completed"
    assert decision.reviewer.user == senior
