"""Every page of the moderator UI, its refusals as messages, visibility and CSRF."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from casework.models import Campaign, CaseEvent, Reporter, ReporterClassRecord
from docket.visibility import clearances_of
from policies.models import visible_classes_q
from reviews.accounts import user_upsert
from reviews.models import Assignment, Decision
from reviews.services import case_assign, case_escalate, leases_expire, queue_claim
from tests.factories import (
    CaseFactory,
    ReporterFactory,
    SignalFactory,
    SubjectFactory,
    reported_by,
    reporters_with_records,
    threat_class,
)
from tests.ui.conftest import messages_of

pytestmark = pytest.mark.django_db


def claimed(user, kind="spam", **case_kwargs):
    """A case of ``kind`` claimed by ``user`` (top priority unless given, so the claim takes it)."""
    case_kwargs.setdefault("priority", 1000.0)
    case = CaseFactory(kind=kind, **case_kwargs)
    assignment = queue_claim(reviewer=user, queue_slug=case.queue.slug)
    assert assignment.case_id == case.pk
    return case, assignment


# --- sign in and access ---------------------------------------------------------------


def test_login_page_signs_in_and_lands_on_home(moderator):
    c = Client()
    page = c.get("/login/")
    assert page.status_code == 200
    assert b'name="csrfmiddlewaretoken"' in page.content
    response = c.post("/login/", {"username": "mod", "password": "pw-mod"})
    assert (response.status_code, response["Location"]) == (302, "/")
    assert c.get("/").status_code == 200


def test_wrong_password_shows_the_form_error(moderator):
    page = Client().post("/login/", {"username": "mod", "password": "nope"})
    assert page.status_code == 200
    assert b"Please enter a correct username and password" in page.content


def test_logout_is_post_only(login, moderator):
    c = login(moderator)
    assert c.get("/logout/").status_code == 405
    assert c.post("/logout/").status_code == 302
    assert c.get("/")["Location"] == "/login/?next=/"


@pytest.mark.parametrize(
    "url, current",
    [("/", "Queues"), ("/campaigns/", "Campaigns"), ("/campaigns/{campaign}/", "Campaigns"), ("/qa/", "QA")],
)
def test_the_menu_marks_the_page_you_are_on(login, moderator, url, current):
    campaign = Campaign.objects.create(threat_class=threat_class("spam"), size=1, detected_at=timezone.now())
    CaseFactory(kind="spam", campaign=campaign)
    html = login(moderator).get(url.format(campaign=campaign.pk)).content.decode()
    [menu] = re.findall(r'<nav class="site-nav".*?</nav>', html, re.S)
    assert re.findall(r'<a href="[^"]*" aria-current="page">([^<]*)</a>', menu) == [current]


@pytest.mark.parametrize("url", ["/", "/dashboard/", "/escalations/", "/queues/spam/", "/cases/1/"])
def test_anonymous_users_are_sent_to_login(url):
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_service_accounts_get_the_api_account_page_and_403_elsewhere(login, platform):
    assert "This is an API account" in login(platform).get("/").content.decode()
    assert login(platform).get("/dashboard/").status_code == 403


# --- home --------------------------------------------------------------------------------


def test_home_lists_my_queues_capacity_and_exposure(login, moderator, django_assert_max_num_queries):
    for _ in range(3):
        CaseFactory(kind="spam")
    CaseFactory(kind="harassment", first_signal_at=timezone.now() - timedelta(days=3))  # past its 24 h SLA
    claimed(moderator, kind="ato")
    c = login(moderator)
    with django_assert_max_num_queries(13):
        page = c.get("/")
    assert page.status_code == 200
    queues = {q["slug"]: q for q in page.context["queues"]}
    assert (queues["spam"]["depth"], queues["spam"]["mine"]) == (3, True)
    assert (queues["harassment"]["depth"], queues["harassment"]["breaching"]) == (1, 1)
    assert "csam" not in queues  # restricted queue, no clearance
    assert page.context["load"] == {
        "active": 1,
        "graphic_today": 0,
        "max_active": 3,
        "graphic_budget": 40,
        "graphic_left": 40,
        "capacity_pct": 33,
        "budget_pct": 100,
    }
    html = page.content.decode()
    assert 'id="capacity">1 <small>of 3</small>' in html
    assert 'id="exposure">40 <small>of 40</small>' in html
    assert f'action="{reverse("reviews:queue-claim", args=["spam"])}"' in html
    assert "Cases you are holding" in html


def test_home_query_count_does_not_grow_with_cases(login, moderator, django_assert_max_num_queries):
    for _ in range(30):
        CaseFactory(kind="spam")
    for _ in range(3):
        claimed(moderator)
    c = login(moderator)
    with django_assert_max_num_queries(13):
        assert c.get("/").status_code == 200


# --- claims and their refusals -------------------------------------------------------------


def test_claim_next_opens_the_claimed_case(login, moderator):
    CaseFactory(kind="spam", priority=1)
    top = CaseFactory(kind="spam", priority=9)
    response = login(moderator).post("/queues/spam/claim/")
    assert (response.status_code, response["Location"]) == (302, f"/cases/{top.pk}/")
    assert Assignment.objects.get(case=top, state="active").reviewer.user == moderator


def test_claim_on_an_empty_queue_goes_home_with_a_message(login, moderator, unchanged):
    with unchanged():
        page = login(moderator).post("/queues/spam/claim/", follow=True)
    assert page.redirect_chain == [("/", 302)]
    assert messages_of(page) == ["The Spam queue has no case for you right now."]


def test_capacity_refusal_is_a_message(login, make_user, unchanged):
    user = make_user("busy", "moderator", max_active=1)
    claimed(user)
    CaseFactory(kind="spam")
    with unchanged():
        page = login(user).post("/queues/spam/claim/", follow=True)
    assert page.status_code == 200
    assert page.redirect_chain == [("/", 302)]
    assert messages_of(page) == ["busy already holds 1 case(s), the maximum."]
    assert b'class="message error" role="alert"' in page.content


def test_off_shift_refusal_is_a_message(login, moderator, unchanged):
    moderator.reviewer.on_shift = False
    moderator.reviewer.save()
    CaseFactory(kind="spam")
    with unchanged():
        page = login(moderator).post("/queues/spam/claim/", follow=True)
    assert messages_of(page) == ["mod is off shift."]


def test_clearance_refusal_is_a_message(login, moderator, unchanged):
    CaseFactory(kind="csam")
    with unchanged():
        page = login(moderator).post("/queues/csam/claim/", follow=True)
    assert page.status_code == 200
    assert messages_of(page) == ["mod is not cleared for Child sexual abuse material; this queue needs that clearance."]


def test_exposure_budget_refusal_is_a_message(login, make_user, unchanged):
    user = make_user("tired", "moderator", clearances=["csam"], queues=["csam"], graphic_budget=0)
    CaseFactory(kind="csam")
    with unchanged():
        page = login(user).post("/queues/csam/claim/", follow=True)
    assert messages_of(page) == ["tired has reached today's exposure budget of 0 graphic case(s)."]


def test_unknown_queue_is_404(login, moderator):
    assert login(moderator).post("/queues/nope/claim/").status_code == 404
    assert login(moderator).get("/queues/nope/").status_code == 404


# --- the case page -------------------------------------------------------------------------


def _signals(case, n):
    reporter = ReporterFactory(reports_decided=8, reports_upheld=6)
    # Their record on the class, as the decision pipeline keeps it: 6 of 8 decided reports upheld.
    ReporterClassRecord.objects.create(
        reporter=reporter, threat_class=case.threat_class, reports_decided=8, reports_upheld=6
    )
    for i in range(n):
        SignalFactory(
            subject=case.subject,
            threat_class=case.threat_class,
            case=case,
            disposition="queued",
            reporter=reporter,
            reason=f"reason {i}",
        )


def test_case_page_shows_evidence_blurred_policy_ladder_and_priority(login, moderator, django_assert_max_num_queries):
    owner = SubjectFactory(external_id="u-owner", reach=5000)
    content = SubjectFactory(kind="content", external_id="c-1", owner=owner, reach=1234)
    case, assignment = claimed(
        moderator, subject=content, priority_breakdown={"severity": 2.0, "reach": 1.5, "aging": 0.25}, priority=3.75
    )
    other = CaseFactory(kind="harassment", subject=owner)
    _signals(case, 3)
    c = login(moderator)
    with django_assert_max_num_queries(20):  # + the reporters' records, the subject's facets
        page = c.get(f"/cases/{case.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "content:c-1" in html and "1234" in html and "u-owner" in html
    assert html.count('class="evidence"') == 3
    assert "Click or press v to reveal" in html
    assert "accuracy 67% (6/8 upheld)" in html  # (6 + 2) / (8 + 4)
    assert [step["value"] for step in page.context["ladder"]] == [
        "no_violation",
        "label",
        "reduce",
        "remove",
        "restrict",
        "suspend",
        "ban",
    ]
    assert 'data-action-key="4"' in html and 'value="remove"' in html
    assert "SP-2 · Fake engagement" in html
    assert page.context["recommended"] == "label"
    assert [r["factor"] for r in page.context["breakdown"]] == ["Severity", "Reach", "aging"]
    assert page.context["linked"] == [other]
    assert f'hx-post="/assignments/{assignment.pk}/renew/"' in html
    assert 'hx-trigger="every 60s"' in html
    assert "<kbd>Ctrl</kbd>+<kbd>Enter</kbd>" in html  # the legend


def test_case_page_query_count_is_constant(login, moderator, django_assert_max_num_queries):
    case, _ = claimed(moderator)
    _signals(case, 40)
    for i in range(20):
        CaseEvent.objects.create(case=case, at=timezone.now(), actor_label="mod", kind="note", detail={"text": str(i)})
    for _ in range(5):
        CaseFactory(kind="harassment", subject=SubjectFactory(kind="content", owner=case.subject))
    c = login(moderator)
    with django_assert_max_num_queries(20):  # + the reporters' records, the subject's facets
        assert c.get(f"/cases/{case.pk}/").status_code == 200


def _reporter_line(reporter, decided, upheld):
    accuracy = round(100 * Reporter.accuracy_of(upheld, decided))
    return f"{reporter.external_id}</span> · accuracy {accuracy}% ({upheld}/{decided} upheld)"


def test_the_case_page_tells_each_reporters_record_as_the_pipeline_keeps_it(login, moderator, senior):
    """The record on the page is the one ranking reads (``ReporterClassRecord``), summed over the classes the
    reader may see: decisions and overturns through the pipeline, a restricted class's told only to the cleared."""
    alice, bob = reporters_with_records(overturned_by=senior)
    case = reported_by(CaseFactory(kind="spam"), alice, bob)

    def table(reporter, user):
        records = ReporterClassRecord.objects.filter(
            visible_classes_q(clearances_of(user), prefix="threat_class__"), reporter=reporter
        )
        return (
            sum(records.values_list("reports_decided", flat=True)),
            sum(records.values_list("reports_upheld", flat=True)),
        )

    assert (table(alice, moderator), table(alice, senior)) == ((2, 2), (3, 3))  # the csam report, for the cleared
    assert (table(bob, moderator), table(bob, senior)) == ((2, 1), (2, 1))
    for user in (moderator, senior):
        page = login(user).get(f"/cases/{case.pk}/").content.decode()
        for reporter in (alice, bob):
            assert _reporter_line(reporter, *table(reporter, user)) in page


def test_graphic_class_is_marked(login, senior):
    case = CaseFactory(kind="csam")
    html = login(senior).get(f"/cases/{case.pk}/").content.decode()
    assert 'class="badge graphic"' in html
    assert "Legal report on violation" in html


def test_restricted_case_is_404_without_clearance(login, moderator, senior):
    case = CaseFactory(kind="csam")
    assert login(moderator).get(f"/cases/{case.pk}/").status_code == 404
    assert login(moderator).post(f"/cases/{case.pk}/decision/", {"action": "remove"}).status_code == 404
    assert login(moderator).post(f"/cases/{case.pk}/notes/", {"text": "x"}).status_code == 404
    assert login(senior).get(f"/cases/{case.pk}/").status_code == 200


def test_restricted_case_never_listed_as_linked(login, moderator):
    case, _ = claimed(moderator)
    CaseFactory(kind="csam", subject=case.subject)
    page = login(moderator).get(f"/cases/{case.pk}/")
    assert page.context["linked"] == []


def test_read_only_when_someone_else_holds_the_case(login, moderator, make_user):
    other = make_user("other", "moderator")
    case, _ = claimed(other)
    html = login(moderator).get(f"/cases/{case.pk}/").content.decode()
    assert "Read only: other holds this case." in html
    assert 'id="decision-form"' not in html


def test_an_expired_lease_is_announced(login, moderator):
    case, assignment = claimed(moderator)
    leases_expire(now=assignment.lease_expires_at + timedelta(seconds=1))
    html = login(moderator).get(f"/cases/{case.pk}/").content.decode()
    assert "Your lease on this case expired" in html
    assert 'id="decision-form"' not in html


# --- decisions --------------------------------------------------------------------------------


def test_decision_goes_straight_to_the_next_case(login, moderator):
    case, _ = claimed(moderator, priority=9)
    nxt = CaseFactory(kind="spam", priority=1)
    response = login(moderator).post(
        f"/cases/{case.pk}/decision/", {"action": "remove", "rule": "SP-1", "rationale": "spam links"}
    )
    assert (response.status_code, response["Location"]) == (302, f"/cases/{nxt.pk}/")
    decision = Decision.objects.get(case=case)
    assert (decision.action, decision.rule, decision.rationale, decision.reviewer.user) == (
        "remove",
        "SP-1",
        "spam links",
        moderator,
    )
    assert Assignment.objects.get(case=nxt, state="active").reviewer.user == moderator


def test_decision_on_the_last_case_goes_home_with_a_message(login, moderator):
    case, _ = claimed(moderator)
    page = login(moderator).post(f"/cases/{case.pk}/decision/", {"action": "no_violation"}, follow=True)
    assert page.redirect_chain == [("/", 302)]
    assert messages_of(page) == [
        f"Case {case.pk} decided: No violation.",
        "The Spam queue has no case for you right now.",
    ]


def test_suspend_needs_a_duration(login, moderator, unchanged):
    case, _ = claimed(moderator)
    with unchanged():
        page = login(moderator).post(f"/cases/{case.pk}/decision/", {"action": "suspend", "rule": "SP-1"}, follow=True)
    assert (page.redirect_chain, page.status_code) == ([], 400)  # the form again, bound, not a fresh page
    assert messages_of(page) == ["A suspension needs a duration."]
    assert page.context["decision_form"].errors["duration_days"] == ["Required for suspend."]


def test_not_assignee_refusal_is_a_message(login, moderator, make_user, unchanged):
    other = make_user("other", "moderator")
    case, _ = claimed(other)
    with unchanged():
        page = login(moderator).post(f"/cases/{case.pk}/decision/", {"action": "remove", "rule": "SP-1"}, follow=True)
    assert page.status_code == 403
    assert messages_of(page) == ["Only the reviewer holding this case may decide it."]


def test_appeals_staff_holding_a_case_cannot_decide_or_escalate_it_in_the_ui(
    login, api_for, senior, make_user, unchanged
):
    """The service's one rule: a case handed to an appeals-only reviewer is refused in the UI as over the API."""
    # Assigned while a moderator, then moved to appeals only: the case is still theirs.
    make_user("appeals-only", "moderator")
    case = CaseFactory(kind="spam")
    case_assign(case_id=case.pk, reviewer_username="appeals-only", by=senior)
    appeals = make_user("appeals-only", "appeals")
    with unchanged():
        page = login(appeals).post(f"/cases/{case.pk}/decision/", {"action": "remove", "rule": "SP-1"}, follow=True)
        assert page.status_code == 403
        assert messages_of(page) == ["Only moderators and seniors decide or escalate cases."]
        page = login(appeals).post(f"/cases/{case.pk}/escalate/", {"queue": "escalations", "reason": "x"}, follow=True)
        assert page.status_code == 403
        api = api_for(appeals).post(f"/api/v1/cases/{case.pk}/decision/", {"action": "remove", "rule": "SP-1"})
        assert (api.status_code, api.json()["code"]) == (403, "forbidden")
    assert not Decision.objects.filter(case=case).exists()


def test_off_ladder_action_is_refused_with_a_message(login, moderator, unchanged):
    case, _ = claimed(moderator)
    with unchanged():
        page = login(moderator).post(
            f"/cases/{case.pk}/decision/", {"action": "legal_report", "rule": "SP-1"}, follow=True
        )
    [message] = messages_of(page)
    assert message.startswith("Legal report is not on the ladder of Spam v1")


def test_malformed_decision_is_a_message_not_an_error(login, moderator, unchanged):
    case, _ = claimed(moderator)
    with unchanged():
        page = login(moderator).post(
            f"/cases/{case.pk}/decision/", {"action": "nuke", "duration_days": "soon"}, follow=True
        )
    assert page.status_code == 400
    [message] = messages_of(page)
    assert message.startswith("The decision was not recorded. Action: Select a valid choice.")


# --- escalation, release, skip, renew, notes ------------------------------------------------------------


def test_escalate_moves_the_case_and_claims_the_next(login, moderator):
    case, _ = claimed(moderator, priority=5)
    nxt = CaseFactory(kind="spam", priority=1)
    response = login(moderator).post(f"/cases/{case.pk}/escalate/", {"queue": "legal", "reason": "court order"})
    assert response["Location"] == f"/cases/{nxt.pk}/"
    case.refresh_from_db()
    assert (case.status, case.queue.slug) == ("escalated", "legal")


def test_escalate_without_reason_is_a_message(login, moderator, unchanged):
    case, _ = claimed(moderator)
    with unchanged():
        page = login(moderator).post(f"/cases/{case.pk}/escalate/", {"queue": "legal", "reason": ""}, follow=True)
    assert messages_of(page) == ["The case was not escalated. Reason: This field is required."]


def test_release_returns_the_case(login, moderator):
    case, assignment = claimed(moderator)
    page = login(moderator).post(f"/assignments/{assignment.pk}/release/", follow=True)
    assert messages_of(page) == [f"Case {case.pk} went back to the Spam queue."]
    case.refresh_from_db()
    assert case.status == "open"


def test_release_by_someone_else_is_refused(login, moderator, make_user, unchanged):
    other = make_user("other", "moderator")
    _, assignment = claimed(other)
    with unchanged():
        page = login(moderator).post(f"/assignments/{assignment.pk}/release/", follow=True)
    assert messages_of(page) == ["Only the reviewer holding this case may do that."]


def test_skip_takes_the_next_case(login, moderator):
    case, assignment = claimed(moderator, priority=5)
    nxt = CaseFactory(kind="spam", priority=1)
    response = login(moderator).post(f"/assignments/{assignment.pk}/skip/")
    assert response["Location"] == f"/cases/{nxt.pk}/"
    assert Assignment.objects.get(pk=assignment.pk).state == "skipped"


def test_renew_extends_the_lease_and_reports_a_lost_one(login, moderator):
    case, assignment = claimed(moderator)
    c = login(moderator)
    before = assignment.lease_expires_at
    fragment = c.post(f"/assignments/{assignment.pk}/renew/", HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    assert b"Lease until" in fragment.content and b'hx-trigger="every 60s"' in fragment.content
    assignment.refresh_from_db()
    assert assignment.lease_expires_at > before
    c.post(f"/assignments/{assignment.pk}/release/")
    fragment = c.post(f"/assignments/{assignment.pk}/renew/", HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    html = fragment.content.decode()
    assert "Your lease on this case was lost: This assignment has ended (released)." in html
    assert "hx-trigger" not in html  # polling stops


def test_note_is_added_to_the_timeline(login, moderator):
    case = CaseFactory(kind="spam")
    c = login(moderator)
    response = c.post(f"/cases/{case.pk}/notes/", {"text": "  looks like a bot farm  "})
    assert response["Location"] == f"/cases/{case.pk}/#timeline"
    event = CaseEvent.objects.get(case=case, kind="note")
    assert (event.actor, event.actor_label, event.detail) == (moderator, "mod", {"text": "looks like a bot farm"})
    assert b"looks like a bot farm" in c.get(f"/cases/{case.pk}/").content


def test_empty_note_is_a_message(login, moderator, unchanged):
    case = CaseFactory(kind="spam")
    with unchanged():
        page = login(moderator).post(f"/cases/{case.pk}/notes/", {"text": ""}, follow=True)
    assert messages_of(page) == ["The note was not added. Internal note: This field is required."]


# --- CSRF -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["/queues/spam/claim/", "/cases/{case}/decision/", "/cases/{case}/notes/", "/assignments/{assignment}/renew/"],
)
def test_every_form_needs_the_csrf_token(login, moderator, unchanged, url):
    case, assignment = claimed(moderator)
    CaseFactory(kind="spam")
    c = login(moderator, enforce_csrf_checks=True)
    url = url.format(case=case.pk, assignment=assignment.pk)
    with unchanged():
        assert c.post(url, {"action": "no_violation", "text": "x"}).status_code == 403


def test_forms_carry_the_csrf_token_and_it_is_accepted(login, moderator):
    case, _ = claimed(moderator)
    c = login(moderator, enforce_csrf_checks=True)
    page = c.get(f"/cases/{case.pk}/")
    token = page.context["csrf_token"]
    assert page.content.decode().count("csrfmiddlewaretoken") >= 5  # decide, escalate, release, skip, note, logout
    response = c.post(f"/cases/{case.pk}/notes/", {"text": "ok", "csrfmiddlewaretoken": str(token)})
    assert response.status_code == 302


# --- queue lists and bulk decisions --------------------------------------------------------------------------


def test_queue_page_lists_waiting_cases_with_bulk_form_for_seniors(
    login, senior, moderator, django_assert_max_num_queries
):
    cases = [CaseFactory(kind="spam", priority=p) for p in (1, 2, 3)]
    c = login(senior)
    with django_assert_max_num_queries(11):
        page = c.get("/queues/spam/")
    assert [c.pk for c in page.context["cases"]] == [c.pk for c in reversed(cases)]
    assert b"Decide the selected cases" in page.content
    page = login(moderator).get("/queues/spam/")
    assert page.status_code == 200 and b"Decide the selected cases" not in page.content


def test_restricted_queue_page_is_404_without_clearance(login, moderator):
    assert login(moderator).get("/queues/csam/").status_code == 404


def test_bulk_decision_reports_successes_and_refusals(login, senior, moderator):
    spam = [CaseFactory(kind="spam") for _ in range(2)]
    held, _ = claimed(moderator, kind="spam")
    harassment = CaseFactory(kind="harassment")
    csam = CaseFactory(kind="csam")
    for case in (harassment, csam):
        claimed_case = queue_claim(reviewer=senior, queue_slug=case.queue.slug)
        case_escalate(case_id=claimed_case.case_id, actor=senior, queue_slug="escalations", reason="second look")
    c = login(senior)
    page = c.post(
        "/queues/escalations/bulk-decision/",
        {"cases": [harassment.pk, csam.pk], "action": "reduce", "rule": "HB-1"},
        follow=True,
    )
    assert messages_of(page) == [
        f"Decided 1 case(s) as Reduce reach: {harassment.pk}.",
        f"1 case(s) refused — case {csam.pk}: Reduce reach is not on the ladder of Child safety v1: "
        "No violation, Remove, Ban, Legal report.",
    ]
    page = c.post(
        "/queues/spam/bulk-decision/", {"cases": [*(s.pk for s in spam), held.pk], "action": "remove", "rule": "SP-1"}
    )
    assert Decision.objects.filter(case__in=[*spam, held], action="remove", reviewer__user=senior).count() == 3


def test_bulk_decision_by_a_moderator_is_refused_per_case(login, moderator, unchanged):
    case = CaseFactory(kind="spam")
    with unchanged():
        page = login(moderator).post(
            "/queues/spam/bulk-decision/", {"cases": [case.pk], "action": "remove", "rule": "SP-1"}, follow=True
        )
    assert messages_of(page) == [
        f"1 case(s) refused — case {case.pk}: Only the reviewer holding this case may decide it."
    ]


def test_bulk_decision_cannot_reach_hidden_cases(login, moderator, unchanged):
    csam = CaseFactory(kind="csam")
    with unchanged():
        page = login(moderator).post(
            "/queues/spam/bulk-decision/", {"cases": [csam.pk], "action": "remove", "rule": "SP-1"}, follow=True
        )
    [message] = messages_of(page)
    assert message.startswith("Nothing was decided. Cases: Select a valid choice.")


def test_campaign_page_and_bulk_decision(login, senior, django_assert_max_num_queries):
    campaign = Campaign.objects.create(
        threat_class=threat_class("spam"),
        size=3,
        links=[{"kind": "ip", "value": "203.0.113.7"}],
        detected_at=timezone.now(),
    )
    members = [CaseFactory(kind="spam", campaign=campaign) for _ in range(3)]
    c = login(senior)
    with django_assert_max_num_queries(9):  # + the classes hidden from the senior, the links members may tell
        page = c.get(f"/campaigns/{campaign.pk}/")
    assert b"203.0.113.7" in page.content
    assert {m.pk for m in page.context["cases"]} == {m.pk for m in members}
    c.post(
        f"/campaigns/{campaign.pk}/bulk-decision/",
        {"cases": [m.pk for m in members[:2]], "action": "ban", "rule": "SP-2"},
    )
    assert Decision.objects.filter(campaign=campaign, action="ban").count() == 2


def test_restricted_campaign_is_404_without_clearance(login, moderator):
    campaign = Campaign.objects.create(threat_class=threat_class("cib"), size=1, detected_at=timezone.now())
    CaseFactory(kind="cib", campaign=campaign)
    assert login(moderator).get(f"/campaigns/{campaign.pk}/").status_code == 404


# --- escalations and dashboard --------------------------------------------------------------------------------


def test_escalations_view_for_seniors(login, senior, moderator, django_assert_max_num_queries):
    case, _ = claimed(moderator, kind="harassment")
    case_escalate(case_id=case.pk, actor=moderator, queue_slug="escalations", reason="threat to life")
    c = login(senior)
    with django_assert_max_num_queries(7):
        page = c.get("/escalations/")
    [row] = page.context["groups"][0]["cases"]
    assert (row.pk, row.reason, row.escalated_by, row.from_queue) == (case.pk, "threat to life", "mod", "harassment")
    response = c.post(f"/cases/{case.pk}/assign/", {"reviewer": "senior", "back": "escalations"})
    assert response["Location"] == f"/cases/{case.pk}/"
    assert Assignment.objects.get(case=case, state="active").reviewer.user == senior


def test_escalations_view_refuses_moderators_with_a_message(login, moderator):
    page = login(moderator).get("/escalations/", follow=True)
    assert page.redirect_chain == [("/", 302)]
    assert messages_of(page) == ["The escalations view is for seniors."]


def test_assign_refusal_is_a_message(login, senior, make_user, unchanged):
    make_user("full", "moderator", max_active=1)

    full = user_upsert(username="full", role_names=["moderator"])
    claimed(full)
    case = CaseFactory(kind="spam")
    with unchanged():
        page = login(senior).post(f"/cases/{case.pk}/assign/", {"reviewer": "full"}, follow=True)
    assert messages_of(page) == ["full already holds 1 case(s), the maximum."]


def test_dashboard_draws_charts(login, senior, django_assert_max_num_queries):
    case, _ = claimed(senior)
    CaseFactory(kind="spam")
    c = login(senior)
    c.post(f"/cases/{case.pk}/decision/", {"action": "remove", "rule": "SP-1"})
    # The same bound as tests/perf/test_query_counts.py's "UI dashboard" (held and rates per visible class).
    with django_assert_max_num_queries(32):
        page = c.get("/dashboard/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('<svg class="chart"') == 4
    assert "Queue depth: past SLA, waiting and in review" in html
    assert "SLA compliance by threat class" in html
    assert [d.case_id for d in page.context["recent"]] == [case.pk]
    CaseFactory(kind="harassment")
    with django_assert_max_num_queries(32):  # constant: more data, same number of queries
        assert c.get("/dashboard/").status_code == 200
