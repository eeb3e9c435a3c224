"""A refused decision, escalation or note comes back with everything entered and the reason beside the field."""

import pytest
from django.utils import timezone

from casework.models import Campaign, Case
from reviews.models import Decision
from tests.factories import CaseFactory, active_version, threat_class

from .test_pages import claimed

pytestmark = pytest.mark.django_db


def suspend_case(user):
    case, _ = claimed(user, kind="ato")
    assert "suspend" in active_version("ato").ladder
    return case


def test_suspend_without_duration_keeps_action_rule_and_rationale(login, moderator, unchanged):
    case = suspend_case(moderator)
    rule = active_version("ato").rules[0]["code"]
    client = login(moderator)
    entered = {"action": "suspend", "rule": rule, "rationale": "Credential stuffing from four IPs, owner confirmed."}
    with unchanged():
        response = client.post(f"/cases/{case.pk}/decision/", entered)
    assert response.status_code == 400
    page = response.content.decode()
    assert 'value="suspend" required checked' in page
    assert f'<option value="{rule}" selected>' in page
    assert "Credential stuffing from four IPs, owner confirmed.</textarea>" in page
    duration = page.split('id="duration-field"')[1].split("</div>")[0]
    assert "hidden" not in duration.split(">")[0] and "Required for suspend." in duration
    assert response.context["decision_form"]["rationale"].value() == entered["rationale"]

    response = client.post(f"/cases/{case.pk}/decision/", {**entered, "duration_days": "7"})
    assert response.status_code == 302
    decision = Decision.objects.get(case=case)
    assert (decision.action, decision.duration_days, decision.rule) == ("suspend", 7, rule)


def test_invalid_decision_form_keeps_the_input_beside_the_error(login, moderator, unchanged):
    case = suspend_case(moderator)
    with unchanged():
        response = login(moderator).post(
            f"/cases/{case.pk}/decision/", {"action": "suspend", "duration_days": "0", "rationale": "keep me"}
        )
    assert response.status_code == 400
    form = response.context["decision_form"]
    assert "duration_days" in form.errors and form["rationale"].value() == "keep me"
    assert 'class="field-error"' in response.content.decode()


def test_decision_by_someone_else_is_refused_on_the_page(login, moderator, make_user, unchanged):
    case = suspend_case(moderator)
    other = make_user("other", "moderator")
    with unchanged():
        response = login(other).post(f"/cases/{case.pk}/decision/", {"action": "lock", "rationale": "mine now"})
    assert response.status_code == 403
    assert response.context["decision_form"].non_field_errors()
    assert Case.objects.get(pk=case.pk).status == "in_review"


def test_escalation_without_reason_keeps_the_queue(login, moderator, unchanged):
    case, _ = claimed(moderator, kind="spam")
    with unchanged():
        response = login(moderator).post(f"/cases/{case.pk}/escalate/", {"queue": "legal", "reason": ""})
    assert response.status_code == 400
    page = response.content.decode()
    assert '<option value="legal" selected>' in page
    assert "reason" in response.context["escalate_form"].errors


def test_escalation_to_an_unknown_queue_keeps_the_reason(login, moderator, unchanged):
    case, _ = claimed(moderator, kind="spam")
    with unchanged():
        response = login(moderator).post(f"/cases/{case.pk}/escalate/", {"queue": "nowhere", "reason": "odd one"})
    assert response.status_code in (400, 404)
    if response.status_code == 400:
        assert "odd one</textarea>" in response.content.decode()


def test_empty_note_is_refused_beside_the_field(login, moderator, unchanged):
    case, _ = claimed(moderator, kind="spam")
    with unchanged():
        response = login(moderator).post(f"/cases/{case.pk}/notes/", {"text": ""})
    assert response.status_code == 400
    assert "text" in response.context["note_form"].errors


def test_refused_queue_bulk_decision_keeps_the_selection_and_input(login, senior, unchanged):
    picked, other = CaseFactory(kind="spam"), CaseFactory(kind="spam")
    entered = {"cases": [picked.pk], "action": "suspend", "rule": "SP-1", "rationale": "Same spam run, kept."}
    with unchanged():
        response = login(senior).post("/queues/spam/bulk-decision/", entered)
    assert response.status_code == 400  # the page again, not a redirect that drops the selection
    page = response.content.decode()
    assert f'value="{picked.pk}" id="sel-{picked.pk}" aria-label="Select case {picked.pk}" checked>' in page
    assert f'aria-label="Select case {other.pk}">' in page  # not ticked
    assert '<option value="suspend" selected>' in page and '<option value="SP-1" selected>' in page
    assert "Same spam run, kept.</textarea>" in page
    assert f"case {picked.pk}: A suspension needs a duration." in page


def test_invalid_queue_bulk_form_keeps_the_input(login, senior, unchanged):
    case = CaseFactory(kind="spam")
    with unchanged():
        response = login(senior).post(
            "/queues/spam/bulk-decision/", {"cases": [case.pk], "rationale": "no action chosen", "duration_days": "5"}
        )
    assert response.status_code == 400
    page = response.content.decode()
    assert f'aria-label="Select case {case.pk}" checked>' in page
    assert "no action chosen</textarea>" in page and 'value="5"' in page
    assert "Nothing was decided. Action: This field is required." in page


def test_refused_campaign_bulk_decision_keeps_the_selection_and_input(login, senior, unchanged):
    campaign = Campaign.objects.create(threat_class=threat_class("spam"), size=2, detected_at=timezone.now())
    first, second = CaseFactory(kind="spam", campaign=campaign), CaseFactory(kind="spam", campaign=campaign)
    entered = {"cases": [first.pk, second.pk], "action": "suspend", "rule": "SP-2", "rationale": "One operator."}
    with unchanged():
        response = login(senior).post(f"/campaigns/{campaign.pk}/bulk-decision/", entered)
    assert response.status_code == 400
    page = response.content.decode()
    for case in (first, second):
        assert f'aria-label="Select case {case.pk}" checked>' in page
    assert '<option value="suspend" selected>' in page and '<option value="SP-2" selected>' in page
    assert "One operator.</textarea>" in page
    assert "Nothing was decided." in page and "duration" in page
    assert Campaign.objects.get(pk=campaign.pk).status == "open"
