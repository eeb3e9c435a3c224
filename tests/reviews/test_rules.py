"""One rule, one place: the transition table on every path, one eligibility rule, one decision pipeline,
one visibility mechanism, one campaign decision, one broker breaker."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from appeals.services import appeal_claim
from casework import events
from casework import services as casework_services
from casework.models import Campaign, Case, CaseEvent, Queue
from docket import queueing
from docket.visibility import access_change_allowed
from policies.models import ThreatClass, class_visible, class_visible_sql, visible_classes_q
from reviews.models import Assignment, Decision
from reviews.services import (
    Clearance,
    ReviewerLoad,
    campaign_decide,
    case_assign,
    decision_automated,
    decision_make,
    decisions_write,
    eligibility_check,
    leases_expire,
    queue_claim,
)
from reviews.services.decisions import draft_for
from reviews.sla import cases_escalate_sla_breaches
from tests.factories import CaseFactory, threat_class
from tests.support import refused_code

pytestmark = pytest.mark.django_db


@pytest.fixture
def without(monkeypatch):
    """``without("open", "in_review")``: the transition table no longer allows that move."""

    def remove(from_status, to):
        table = {k: set(v) for k, v in casework_services.TRANSITIONS.items()}
        table[from_status].discard(to)
        monkeypatch.setattr(casework_services, "TRANSITIONS", table)

    return remove


# --- the transition table, on every path ---------------------------------------------------------


def test_a_claim_takes_only_statuses_the_table_lets_become_in_review(moderator, senior, without):
    escalated = CaseFactory(kind="spam", priority=1)
    Case.objects.filter(pk=escalated.pk).update(status="escalated")
    waiting = CaseFactory(kind="spam", priority=0)
    without("escalated", "in_review")

    assignment = queue_claim(reviewer=moderator, queue_slug="spam")

    assert assignment.case_id == waiting.pk  # the escalated case, first otherwise, is passed over
    without("open", "in_review")
    assert queue_claim(reviewer=senior, queue_slug="spam") is None


def test_lease_expiry_reopens_a_case_only_when_the_table_allows(moderator, without):
    case = CaseFactory(kind="spam")
    assignment = queue_claim(reviewer=moderator, queue_slug="spam")
    Assignment.objects.filter(pk=assignment.pk).update(
        claimed_at=timezone.now() - timedelta(hours=1), lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    without("in_review", "open")

    assert leases_expire() == 1

    assert Assignment.objects.get(pk=assignment.pk).state == "expired"
    assert Case.objects.get(pk=case.pk).status == "in_review"
    assert not CaseEvent.objects.filter(case=case, kind="lease_expired").exists()


def test_sla_escalation_asks_the_table(without):
    case = CaseFactory(kind="csam", sla_due_at=timezone.now() - timedelta(hours=1))
    without("open", "escalated")
    assert cases_escalate_sla_breaches() == 0
    assert Case.objects.get(pk=case.pk).status == "open"


def test_a_decision_asks_the_table(senior, without, unchanged):
    case = CaseFactory(kind="spam")
    without("open", "decided")
    with unchanged():
        error = refused_code(
            "invalid_transition",
            lambda: decision_make(
                case_id=case.pk, reviewer=senior, action="remove", rule="SP-1", on_behalf_of_senior=True
            ),
        )
    assert error.status == 409
    refused_code("invalid_transition", lambda: decision_automated(case=case, action="remove"))


def test_assignment_asks_the_table(senior, without):
    case = CaseFactory(kind="spam")
    without("open", "in_review")
    refused_code("invalid_transition", lambda: case_assign(case_id=case.pk, reviewer_username="senior", by=senior))


# --- one builder per event kind ---------------------------------------------------------------------


def test_an_event_is_written_only_from_its_kinds_builder(moderator):
    """No writer names a kind and a detail of its own: the timeline takes an ``Event`` from ``casework.events``."""
    case = CaseFactory(kind="spam")
    for write in (
        lambda: casework_services.case_event_add(case=case, kind="noted", detail={"text": "x"}),
        lambda: casework_services.case_events_add_bulk([(case.pk, "noted", None, {}, timezone.now())]),
        lambda: casework_services.case_transition(case=case, to="closed", kind="closed_by_hand"),
    ):
        with pytest.raises((TypeError, ValueError)):
            write()
    note = casework_services.case_note_add(case_id=case.pk, actor=moderator, text="called the reporter")
    assert (note.kind, note.detail) == events.note(text="called the reporter")
    assert set(CaseEvent.objects.filter(case=case).values_list("kind", flat=True)) == {"note"}


# --- one eligibility rule --------------------------------------------------------------------------


def test_eligibility_refuses_in_one_order_and_skips_figures_not_known_yet():
    load = ReviewerLoad(username="ann", on_shift=False, max_active=1, clearances=frozenset(), graphic_budget=0)

    assert refused_code("clearance_required", lambda: eligibility_check(load, needs=[Clearance("csam", "this queue")]))
    assert refused_code("forbidden", lambda: eligibility_check(load, works_queue=False, queue_slug="spam")).detail == (
        "ann does not work the Spam queue."
    )
    assert refused_code("off_shift", lambda: eligibility_check(load)).detail == "ann is off shift."
    on = ReviewerLoad(username="ann", on_shift=True, max_active=1, clearances=frozenset(), graphic_budget=0)
    eligibility_check(on, graphic=True)  # nothing counted yet: nothing to refuse
    assert refused_code("capacity_reached", lambda: eligibility_check(on.counted(active=1)))
    assert refused_code(
        "exposure_budget_reached", lambda: eligibility_check(on.counted(active=0, graphic_today=0), graphic=True)
    )
    eligibility_check(on.counted(active=0, graphic_today=0), graphic=False)


def test_appeal_claims_use_the_same_rule_and_words(make_user):
    staff = make_user("appeals-off", "appeals")
    staff.reviewer.on_shift = False
    staff.reviewer.save()
    assert (
        refused_code("off_shift", lambda: appeal_claim(reviewer=staff.reviewer)).detail == "appeals-off is off shift."
    )


def test_a_refused_claim_writes_nothing(make_user, unchanged):
    busy = make_user("busy", "moderator")
    busy.reviewer.max_active = 1
    busy.reviewer.save()
    CaseFactory(kind="spam")
    CaseFactory(kind="spam")
    queue_claim(reviewer=busy, queue_slug="spam")
    with unchanged():
        refused_code("capacity_reached", lambda: queue_claim(reviewer=busy, queue_slug="spam"))


# --- one decision pipeline -------------------------------------------------------------------------


def test_human_and_automated_decisions_write_the_same_event_detail(moderator):
    human_case = CaseFactory(kind="spam")
    queue_claim(reviewer=moderator, queue_slug="spam")
    human = decision_make(case_id=human_case.pk, reviewer=moderator, action="remove", rule="SP-1")
    auto_case = CaseFactory(kind="spam")
    auto = decision_automated(case=auto_case, action="remove")

    details = {e.case_id: e.detail for e in CaseEvent.objects.filter(kind="decided", case__in=[human_case, auto_case])}
    assert (
        set(details[human_case.pk])
        == set(details[auto_case.pk])
        == {
            "from",
            "to",
            "decision",
            "action",
            "rule",
            "policy_version",
            "automated",
        }
    )
    assert (details[human_case.pk]["automated"], details[auto_case.pk]["automated"]) == (False, True)
    assert details[auto_case.pk]["decision"] == auto.pk and details[human_case.pk]["decision"] == human.pk


def test_decisions_come_back_loaded_by_the_orm(moderator):
    case = CaseFactory(kind="spam")
    queue_claim(reviewer=moderator, queue_slug="spam")
    decision = decision_make(case_id=case.pk, reviewer=moderator, action="remove", rule="SP-1")
    stored = Decision.objects.get(pk=decision.pk)
    fields = [f.attname for f in Decision._meta.concrete_fields]
    assert [getattr(decision, f) for f in fields] == [getattr(stored, f) for f in fields]
    assert decision._state.adding is False and decision._state.db == "default"
    decision.rationale = "saved through the ORM"
    decision.save(update_fields=["rationale"])
    assert Decision.objects.get(pk=decision.pk).rationale == "saved through the ORM"


def test_the_pipeline_writes_a_list_of_cases_in_one_go(senior, django_assert_max_num_queries):
    cases = [CaseFactory(kind="spam") for _ in range(4)]
    locked = list(Case.objects.select_related("threat_class", "subject").filter(pk__in=[c.pk for c in cases]))
    drafts = [draft_for(c, action="remove", rule="SP-1", reviewer_id=senior.reviewer.pk) for c in locked]
    # The decision statement, then what the decisions tell the outside world, fixed now, for the
    # whole list at once (reviews.statements.decisions_publish: the cases' sources, the message
    # templates, the appeals behind the enforcements, the statements of reasons with their
    # submission rows, the enforcement bodies, the reporters' notices).
    with django_assert_max_num_queries(7):
        decisions = decisions_write(drafts, actor=senior, now=timezone.now())
    assert sorted(d.case_id for d in decisions) == sorted(c.pk for c in cases)
    assert set(Case.objects.filter(pk__in=[c.pk for c in cases]).values_list("status", flat=True)) == {"decided"}
    assert CaseEvent.objects.filter(kind="decided", case__in=cases).count() == 4


# --- one visibility mechanism ----------------------------------------------------------------------


def test_visible_to_per_model_follows_the_clearance(make_user):
    plain = make_user("plain", "moderator")
    cleared = make_user("cleared", "moderator", clearances=["csam"])
    csam = threat_class("csam")
    assert csam not in ThreatClass.objects.visible_to(plain)
    assert csam in ThreatClass.objects.visible_to(cleared)
    assert csam in ThreatClass.objects.hidden_from(plain)
    assert not Queue.objects.visible_to(plain).filter(slug="csam").exists()
    assert Queue.objects.visible_to(cleared).filter(slug="csam").exists()
    campaign = Campaign.objects.create(threat_class=csam, size=0, detected_at=timezone.now())
    assert not Campaign.objects.visible_to(plain).filter(pk=campaign.pk).exists()
    assert Campaign.objects.visible_to(cleared).filter(pk=campaign.pk).exists()


@pytest.mark.parametrize("clearances", [[], ["csam"], ["csam", "cib"], ["no-such-class"]])
def test_the_visibility_rule_reads_the_same_as_a_queryset_a_row_check_and_sql(clearances):
    """``visible_classes_q`` (querysets), ``class_visible`` (a row already read) and ``class_visible_sql``
    (a hand-written statement: the claim) are one rule: the same classes for any clearances."""
    with transaction.atomic(), access_change_allowed():  # a second restricted class beside csam
        ThreatClass.objects.filter(slug="cib").update(restricted=True)
    by_queryset = set(ThreatClass.objects.filter(visible_classes_q(clearances)).values_list("id", flat=True))
    by_row = {
        c.pk
        for c in ThreatClass.objects.all()
        if class_visible(restricted=c.restricted, slug=c.slug, clearances=clearances)
    }
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT tc.id FROM policies_threatclass tc WHERE {class_visible_sql('tc', '%s::text[]')}", [clearances]
        )
        by_sql = {row[0] for row in cur.fetchall()}
    assert by_queryset == by_row == by_sql
    assert ThreatClass.objects.filter(restricted=True).exclude(pk__in=by_sql).exists() == ("cib" not in clearances)


# --- one campaign decision -------------------------------------------------------------------------


def test_a_campaign_closes_only_when_no_open_member_remains(senior):
    campaign = Campaign.objects.create(threat_class=threat_class("spam"), size=3, detected_at=timezone.now())
    members = [CaseFactory(kind="spam", campaign=campaign) for _ in range(3)]

    first = campaign_decide(
        campaign_id=campaign.pk, actor=senior, action="remove", rule="SP-1", rationale="", case_ids=[members[0].pk]
    )
    assert [d.case_id for d in first] == [members[0].pk]
    assert Campaign.objects.get(pk=campaign.pk).status == "open"

    rest = campaign_decide(campaign_id=campaign.pk, actor=senior, action="remove", rule="SP-1", rationale="")
    assert sorted(d.case_id for d in rest) == [m.pk for m in members[1:]]
    assert Campaign.objects.get(pk=campaign.pk).status == "decided"


# --- one broker breaker ----------------------------------------------------------------------------


class _Task:
    """A task whose broker is down (``fails``) or up; records what it was asked to publish."""

    def __init__(self, fails):
        self.fails, self.published = fails, []

    def delay(self, *args):
        self.published.append(args)
        if self.fails:
            raise ConnectionError("broker down")


def test_one_breaker_for_every_enqueue(monkeypatch, django_capture_on_commit_callbacks, caplog):
    monkeypatch.setattr(queueing, "_down_until", 0.0)
    down, other = _Task(fails=True), _Task(fails=False)
    with django_capture_on_commit_callbacks(execute=True):
        queueing.enqueue_on_commit(down, 1, what="first")
        queueing.enqueue_on_commit(other, 2, what="second")
    assert down.published == [(1,)]
    assert other.published == []  # the breaker is open: the second publish is skipped, not waited for
    assert queueing.broker_down()
    assert "could not enqueue first" in caplog.text
