"""The Django admin: policy admins edit policy; evidence is read-only; activation goes through the service."""

import pytest
from django.urls import reverse

from casework.models import Case
from policies.models import PolicyVersion
from tests.factories import CaseFactory, active_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, policy_admin):
    client.force_login(policy_admin)
    return client


@pytest.mark.parametrize(
    "model",
    [
        "policies/threatclass",
        "policies/policy",
        "policies/policyversion",
        "reviews/queue",
        "reviews/reviewer",
        "casework/signalsource",
        "policies/messagetemplate",
    ],
)
def test_policy_admin_can_add_and_change_policy_models(admin_client, model):
    assert admin_client.get(f"/admin/{model}/").status_code == 200
    assert admin_client.get(f"/admin/{model}/add/").status_code == 200


@pytest.mark.parametrize("model", ["casework/case", "casework/signal", "casework/caseevent", "reviews/decision"])
def test_evidence_is_read_only(admin_client, model):
    assert admin_client.get(f"/admin/{model}/").status_code == 200
    assert admin_client.get(f"/admin/{model}/add/").status_code == 403


def test_case_change_page_is_view_only(admin_client):
    case = CaseFactory()
    response = admin_client.post(f"/admin/casework/case/{case.pk}/change/", {"status": "closed"})
    assert response.status_code == 403
    assert Case.objects.get(pk=case.pk).status == "open"


def test_moderator_cannot_use_admin(client, moderator):
    client.force_login(moderator)
    response = client.get("/admin/policies/threatclass/")
    assert response.status_code == 302  # to the admin login: not staff


def test_activate_action_retires_previous_version(admin_client, policy_admin):
    current = active_version("spam")
    draft = PolicyVersion.objects.create(
        policy=current.policy, number=2, text="v2", ladder=current.ladder, rules=current.rules
    )
    response = admin_client.post(
        reverse("admin:policies_policyversion_changelist"),
        {"action": "activate_versions", "_selected_action": [draft.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Yes, activate" in response.content.decode()  # the confirmation step, nothing activated yet
    assert PolicyVersion.objects.get(pk=draft.pk).status == "draft"
    admin_client.post(reverse("admin:policies_policyversion_activate", args=[draft.pk]), {"confirm": "yes"})
    draft.refresh_from_db()
    current.refresh_from_db()
    assert (draft.status, current.status) == ("active", "retired")
    assert draft.activated_by == policy_admin and current.retired_at is not None


def test_activate_action_refuses_retired_version(admin_client):
    current = active_version("spam")
    retired = PolicyVersion.objects.create(
        policy=current.policy, number=2, text="old", ladder=current.ladder, status="draft"
    )
    PolicyVersion.objects.filter(pk=retired.pk).update(status="retired", retired_at=current.effective_at)
    response = admin_client.post(
        reverse("admin:policies_policyversion_changelist"),
        {"action": "activate_versions", "_selected_action": [retired.pk]},
        follow=True,
    )
    assert "only a draft can be activated" in response.content.decode()
    response = admin_client.post(
        reverse("admin:policies_policyversion_activate", args=[retired.pk]), {"confirm": "yes"}, follow=True
    )
    assert "only a draft can be activated" in response.content.decode()
    current.refresh_from_db()
    assert current.status == "active"


def test_legal_hold_release_from_the_admin_goes_through_the_service(admin_client, policy_admin):
    from casework.models import CaseEvent

    case = CaseFactory(kind="csam")
    response = admin_client.post(
        reverse("admin:casework_case_changelist"),
        {"action": "legal_hold_release", "_selected_action": [case.pk]},
        follow=True,
    )
    assert response.status_code == 200
    case.refresh_from_db()
    assert case.legal_hold_released_at is not None
    assert CaseEvent.objects.get(case=case, kind="legal_hold_released").actor == policy_admin
