"""A refused decision, escalation or note comes back with everything entered and the reason beside the field."""

import pytest

from casework.models import Case
from reviews.models import Decision
from tests.factories import active_version

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
