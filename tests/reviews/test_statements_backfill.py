"""docket_statements_backfill: statements of reasons for decisions made before they were stored."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from casework.models import Campaign
from reviews.accounts import user_upsert
from reviews.models import Decision, StatementSubmission
from reviews.services import decision_make
from reviews.sor import puid_for, sor_validate, statement_of_reasons
from tests.factories import CaseFactory, SignalFactory, SourceFactory, active_version, threat_class

pytestmark = pytest.mark.django_db


def earlier(kind, action, *, duration_days=None, campaign=None, automated=False, days_ago=40):
    """A decision as Docket wrote them before statements were stored with the decision: none stored."""
    at = timezone.now() - timedelta(days=days_ago)
    case = CaseFactory(kind=kind, status="decided", decided_at=at, first_action_at=at, first_signal_at=at)
    SignalFactory(
        case=case, subject=case.subject, threat_class=case.threat_class, source=SourceFactory(), disposition="queued"
    )
    version = active_version(kind)
    reviewer = None if automated else user_upsert(username="bf-mod", role_names=["moderator"]).reviewer
    return Decision.objects.create(
        case=case,
        reviewer=reviewer,
        automated=automated,
        action=action,
        rule="" if action == "no_violation" else version.rule_codes()[0],
        policy_version=version,
        duration_days=duration_days,
        campaign=campaign,
        rationale="Internal: seen before",
        created_at=at,
    )


def backfill(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("docket_statements_backfill", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_earlier_decisions_get_the_statement_the_pipeline_makes_once(api_for):
    removal = earlier("spam", "remove", automated=True)
    suspension = earlier("harassment", "suspend", duration_days=7)
    grouped = earlier(
        "spam",
        "label",
        campaign=Campaign.objects.create(threat_class=threat_class("spam"), size=1, detected_at=timezone.now()),
    )
    cleared = earlier("spam", "no_violation")
    banned_for_a_while = earlier("spam", "ban", duration_days=30)  # accepted back then; a ban has no end
    senior = user_upsert(username="bf-senior", role_names=["senior", "moderator"])
    current = decision_make(
        case_id=CaseFactory(kind="spam").pk, reviewer=senior, action="remove", rule="SP-1", on_behalf_of_senior=True
    )
    current_statement = current.statement

    out, err = backfill("--batch-size", "2")

    assert out == "3 statement(s) made, 1 decision(s) refused.\n"
    assert err == f"decision {banned_for_a_while.pk}: no statement made: A ban is permanent; it takes no duration.\n"
    for decision in (removal, suspension, grouped):
        stored = Decision.objects.get(pk=decision.pk)
        group = "AUTOMATED_DECISION_PARTIALLY" if decision.campaign_id else None
        assert stored.statement == statement_of_reasons(stored, automated_decision=group)  # as the pipeline makes it
        assert stored.statement["puid"] == puid_for(decision.pk)
        assert stored.statement["application_date"] == decision.created_at.date().isoformat()
        assert sor_validate(stored.statement) == []
        assert "Internal" not in str(stored.statement)
        assert StatementSubmission.objects.get(decision=decision).status == "pending"
    assert Decision.objects.get(pk=removal.pk).statement["automated_decision"] == "AUTOMATED_DECISION_FULLY"
    assert Decision.objects.get(pk=suspension.pk).statement["end_date_account_restriction"] == (
        (suspension.created_at + timedelta(days=7)).date().isoformat()
    )
    assert Decision.objects.get(pk=grouped.pk).statement["automated_decision"] == "AUTOMATED_DECISION_PARTIALLY"
    assert Decision.objects.get(pk=cleared.pk).statement is None  # nothing restricted: no statement
    assert Decision.objects.get(pk=banned_for_a_while.pk).statement is None
    assert Decision.objects.get(pk=current.pk).statement == current_statement
    assert StatementSubmission.objects.count() == 4  # the three made and the current decision's

    served = api_for(senior).get(f"/api/v1/decisions/{suspension.pk}/statement-of-reasons/")
    assert (served.status_code, served.json()) == (200, Decision.objects.get(pk=suspension.pk).statement)

    # Again: nothing new is made, nothing made is changed; the refusal is said again.
    before = {d.pk: d.statement for d in Decision.objects.all()}
    out, err = backfill()
    assert out == "0 statement(s) made, 1 decision(s) refused.\n"
    assert err.count("\n") == 1 and err.startswith(f"decision {banned_for_a_while.pk}: ")
    assert {d.pk: d.statement for d in Decision.objects.all()} == before
    assert StatementSubmission.objects.count() == 4


def test_batches_are_bounded():
    decisions = [earlier("spam", "remove") for _ in range(5)]
    out, _ = backfill("--batch-size", "2", "--max-batches", "2")
    assert out == "4 statement(s) made, 0 decision(s) refused.\n"
    assert [Decision.objects.get(pk=d.pk).statement is not None for d in decisions] == [True] * 4 + [False]
    assert backfill()[0] == "1 statement(s) made, 0 decision(s) refused.\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "0"], "--batch-size must be between 1 and 5000."),
        (["--batch-size", "5001"], "--batch-size must be between 1 and 5000."),
        (["--max-batches", "0"], "--max-batches must be at least 1."),
    ],
)
def test_bad_arguments_are_one_line_errors_and_change_nothing(args, message):
    decision = earlier("spam", "remove")
    with pytest.raises(CommandError) as refused:
        backfill(*args)
    assert str(refused.value) == message
    assert Decision.objects.get(pk=decision.pk).statement is None
    assert not StatementSubmission.objects.exists()
