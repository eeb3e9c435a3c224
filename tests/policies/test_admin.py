"""Threshold changes in the Django admin go through the same services as the API."""

import pytest

from policies.models import Threshold, ThresholdChange
from tests.factories import SignalFactory, threat_class

pytestmark = pytest.mark.django_db

ADD = "/admin/policies/thresholdchange/add/"
LIST = "/admin/policies/thresholdchange/"


@pytest.fixture
def admin_as(client):
    def login(user):
        client.force_login(user)
        return client

    return login


def proposal(**overrides):
    return {
        "source": "spam-clf",
        "threat_class": "spam",
        "auto_action_at": "0.8",
        "review_at": "0.3",
        "reason": "classifier v7 is calibrated",
        **overrides,
    }


def test_admin_proposal_form_calls_the_service(sources, admin_as, policy_admin):
    SignalFactory(source=sources["spam"], threat_class=threat_class("spam"), score=0.85)
    client = admin_as(policy_admin)
    assert client.get(ADD).status_code == 200

    response = client.post(ADD, proposal())

    change = ThresholdChange.objects.get()
    assert response.status_code == 302
    assert response.url == f"/admin/policies/thresholdchange/{change.pk}/change/"
    assert (change.status, change.proposed_by, change.auto_action_at, change.review_at) == (
        "proposed",
        policy_admin,
        0.8,
        0.3,
    )
    assert change.blast_radius["newly_auto_actioned"] == 1
    assert not Threshold.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"auto_action_at": "0.2"}, "auto_action_at"), ({"review_at": "2"}, "review_at"), ({"source": "nope"}, "source")],
)
def test_admin_proposal_form_shows_refusals_and_stores_nothing(
    sources, admin_as, policy_admin, unchanged, overrides, field
):
    with unchanged():
        response = admin_as(policy_admin).post(ADD, proposal(**overrides))
    assert response.status_code == 200
    assert field in response.context["form"].errors


def test_admin_approve_action_refuses_the_proposer_and_applies_for_another(
    sources, admin_as, policy_admin, second_admin, unchanged
):
    admin_as(policy_admin).post(ADD, proposal())
    change = ThresholdChange.objects.get()
    action = {"action": "approve_changes", "_selected_action": [change.pk]}

    with unchanged():
        response = admin_as(policy_admin).post(LIST, action, follow=True)
    assert "must be approved by another policy admin" in response.content.decode()

    response = admin_as(second_admin).post(LIST, action, follow=True)
    assert f"Threshold change {change.pk} applied." in response.content.decode()
    change.refresh_from_db()
    assert (change.status, change.approved_by) == ("applied", second_admin)
    assert (Threshold.objects.get().auto_action_at, Threshold.objects.get().review_at) == (0.8, 0.3)


def test_admin_cannot_edit_a_change_or_a_threshold(sources, admin_as, policy_admin, second_admin):
    admin_as(policy_admin).post(ADD, proposal())
    change = ThresholdChange.objects.get()
    client = admin_as(second_admin)
    response = client.post(f"/admin/policies/thresholdchange/{change.pk}/change/", {"status": "applied"})
    assert response.status_code == 403
    assert ThresholdChange.objects.get().status == "proposed"
    assert client.get("/admin/policies/threshold/add/").status_code == 403


def test_moderators_have_no_admin(admin_as, moderator):
    assert admin_as(moderator).get(ADD).status_code == 302
