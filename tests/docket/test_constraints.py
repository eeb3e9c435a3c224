"""Each database invariant, proven by trying to break it."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.utils import InternalError, ProgrammingError
from django.utils import timezone

from appeals.models import Appeal
from casework import events
from casework.models import Case, CaseEvent, Queue, Signal, Subject
from casework.services import case_event_add
from policies.models import PolicyVersion, SignalSource, ThreatClass, Threshold
from reviews.models import Assignment, Decision, Reviewer
from tests.factories import CaseFactory, SignalFactory, SubjectFactory, active_version, threat_class

pytestmark = pytest.mark.django_db


def violates(fn, name=None):
    with pytest.raises(IntegrityError) as exc, transaction.atomic():
        fn()
    if name:
        assert name in str(exc.value)


def test_one_active_case_per_subject_and_class():
    case = CaseFactory(kind="spam")
    violates(lambda: CaseFactory(subject=case.subject, kind="spam"), "case_one_active_per_subject_class")
    # another class, or once the first is decided, is fine
    CaseFactory(subject=case.subject, kind="harassment")
    Case.objects.filter(pk=case.pk).update(status="decided", decided_at=timezone.now())
    CaseFactory(subject=case.subject, kind="spam")


def test_case_status_fields_consistent():
    case = CaseFactory()
    violates(lambda: Case.objects.filter(pk=case.pk).update(status="decided"), "case_decided_has_decided_at")
    violates(
        lambda: Case.objects.filter(pk=case.pk).update(status="closed", decided_at=timezone.now()),
        "case_closed_has_closed_at",
    )
    violates(lambda: Case.objects.filter(pk=case.pk).update(reporter_count=5, signal_count=1), "case_counts_consistent")


def test_one_active_policy_version_per_policy():
    v1 = active_version("spam")
    violates(
        lambda: PolicyVersion.objects.create(
            policy=v1.policy, number=2, text="t", ladder=["remove"], status="active", effective_at=timezone.now()
        ),
        "policyversion_one_active_per_policy",
    )
    violates(
        lambda: PolicyVersion.objects.create(policy=v1.policy, number=1, text="t", ladder=["remove"]),
        "policyversion_unique_number",
    )


def test_one_active_assignment_per_case(make_user):
    case = CaseFactory()
    a = make_user("a", "moderator").reviewer
    b = make_user("b", "moderator").reviewer
    now = timezone.now()
    Assignment.objects.create(case=case, reviewer=a, claimed_at=now, lease_expires_at=now + timedelta(minutes=15))
    violates(
        lambda: Assignment.objects.create(
            case=case, reviewer=b, claimed_at=now, lease_expires_at=now + timedelta(minutes=15)
        ),
        "assignment_one_active_per_case",
    )
    violates(
        lambda: Assignment.objects.create(
            case=case, reviewer=b, state="released", claimed_at=now, lease_expires_at=now + timedelta(minutes=1)
        ),
        "assignment_active_iff_not_ended",
    )


def test_signal_unique_per_source_and_external_id():
    s = SignalFactory(external_id="r-1")
    violates(lambda: SignalFactory(external_id="r-1", source=s.source), "signal_unique_source_external_id")
    SignalFactory(external_id="r-1", source=SignalSource.objects.create(slug="clf", kind="classifier"))


def test_signal_disposition_matches_case():
    violates(lambda: SignalFactory(disposition="queued"), "signal_case_matches_disposition")
    case = CaseFactory()
    violates(lambda: SignalFactory(disposition="held", case=case), "signal_case_matches_disposition")
    violates(lambda: SignalFactory(score=1.5), "signal_score_in_unit")
    now = timezone.now()
    violates(
        lambda: SignalFactory(occurred_at=now, received_at=now - timedelta(seconds=1)),
        "signal_occurred_not_after_received",
    )


def test_subject_unique_and_owner_only_for_content():
    SubjectFactory(kind="account", external_id="u-1")
    violates(lambda: SubjectFactory(kind="account", external_id="u-1"), "subject_unique_kind_external_id")
    SubjectFactory(kind="content", external_id="u-1")
    owner = Subject.objects.get(kind="account", external_id="u-1")
    violates(lambda: SubjectFactory(kind="account", owner=owner), "subject_only_content_has_owner")


def test_threat_class_automation_tolerance_in_schema():
    violates(
        lambda: ThreatClass.objects.filter(slug="harassment").update(auto_action="remove"),
        "threatclass_auto_action_within_tolerance",
    )
    violates(
        lambda: ThreatClass.objects.filter(slug="ato").update(auto_action="ban"),
        "threatclass_auto_action_within_tolerance",
    )


def test_threshold_bounds():
    src = SignalSource.objects.get(slug="user-reports")
    violates(
        lambda: Threshold.objects.create(
            source=src, threat_class=threat_class("spam"), review_at=0.8, auto_action_at=0.5
        ),
        "threshold_auto_in_unit_and_above_review",
    )


def test_decision_rules(make_user):
    case = CaseFactory()
    version = active_version("spam")
    reviewer = make_user("m", "moderator").reviewer
    now = timezone.now()
    violates(
        lambda: Decision.objects.create(
            case=case, reviewer=reviewer, action="suspend", policy_version=version, created_at=now
        ),
        "decision_suspend_has_duration",
    )
    violates(
        lambda: Decision.objects.create(
            case=case, reviewer=reviewer, action="remove", automated=True, policy_version=version, created_at=now
        ),
        "decision_automated_xor_reviewer",
    )
    violates(
        lambda: Decision.objects.create(case=case, action="remove", policy_version=version, created_at=now),
        "decision_automated_xor_reviewer",
    )


def test_appeal_once_per_appellant_and_human_resolution(make_user):
    case = CaseFactory()
    reviewer = make_user("m", "moderator").reviewer
    now = timezone.now()
    decision = Decision.objects.create(
        case=case, reviewer=reviewer, action="remove", policy_version=active_version("spam"), created_at=now
    )
    Appeal.objects.create(decision=decision, appellant="u-1", received_at=now, deadline=now + timedelta(days=3))
    violates(
        lambda: Appeal.objects.create(
            decision=decision, appellant="u-1", received_at=now, deadline=now + timedelta(days=3)
        ),
        "appeal_once_per_appellant_decision",
    )
    violates(
        lambda: Appeal.objects.create(
            decision=decision,
            appellant="u-2",
            received_at=now,
            deadline=now + timedelta(days=3),
            status="resolved",
            outcome="upheld",
            resolved_at=now,
        ),
        "appeal_resolved_complete",
    )


def test_reviewer_capacity_positive(make_user):
    reviewer = make_user("m", "moderator").reviewer
    violates(lambda: Reviewer.objects.filter(pk=reviewer.pk).update(max_active=0), "reviewer_max_active_positive")


class TestCaseEventAppendOnly:
    def test_orm_update_and_delete_refused(self):
        event = case_event_add(case=CaseFactory(), event=events.note(text="x"))
        for attempt in (
            lambda: CaseEvent.objects.filter(pk=event.pk).update(kind="edited"),
            lambda: CaseEvent.objects.filter(pk=event.pk).delete(),
        ):
            with pytest.raises((InternalError, ProgrammingError)) as exc, transaction.atomic():
                attempt()
            assert "append-only" in str(exc.value)
        assert CaseEvent.objects.get(pk=event.pk).kind == "note"

    def test_raw_sql_update_and_delete_refused(self):
        event = case_event_add(case=CaseFactory(), event=events.note(text="x"))
        for sql in (
            "UPDATE casework_caseevent SET kind = 'x' WHERE id = %s",
            "DELETE FROM casework_caseevent WHERE id = %s",
        ):
            with pytest.raises((InternalError, ProgrammingError)), transaction.atomic(), connection.cursor() as cur:
                cur.execute(sql, [event.pk])
        assert CaseEvent.objects.filter(pk=event.pk, kind="note").exists()


def test_defaults_shipped():
    assert set(ThreatClass.objects.values_list("slug", flat=True)) == {
        "csam",
        "ato",
        "payment_fraud",
        "harassment",
        "cib",
        "spam",
    }
    assert PolicyVersion.objects.filter(status="active").count() == 6

    assert set(Queue.objects.values_list("slug", flat=True)) >= {"escalations", "legal", "spam", "csam"}
    assert SignalSource.objects.filter(slug="user-reports", kind="user_report").exists()
    assert Signal.objects.count() == 0


@pytest.mark.django_db
def test_cases_are_vacuumed_after_a_small_share_of_them_changed():
    """Bursts of re-ranked cases leave dead index entries the per-queue figures walk until a vacuum."""
    with connection.cursor() as cur:
        cur.execute("SELECT reloptions FROM pg_class WHERE oid = 'casework_case'::regclass")
        options = set(cur.fetchone()[0] or [])
    assert {"autovacuum_vacuum_scale_factor=0.005", "autovacuum_vacuum_threshold=1000"} <= options
