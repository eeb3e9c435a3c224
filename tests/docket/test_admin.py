"""The Django admin: policy admins edit policy; evidence is read-only; activation goes through the service."""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from casework.models import Case, CaseEvent, Reporter
from policies.admin import RestrictedAdminMixin
from policies.models import PolicyVersion, ThreatClass
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
        "casework/queue",
        "reviews/reviewer",
        "policies/signalsource",
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


def test_legal_hold_release_from_the_admin_goes_through_the_service(client, make_user):
    cleared_admin = make_user("padmin-csam", "policy_admin,senior", clearances=["csam"])
    client.force_login(cleared_admin)
    case = CaseFactory(kind="csam")
    response = client.post(
        reverse("admin:casework_case_changelist"),
        {"action": "legal_hold_release", "_selected_action": [case.pk]},
        follow=True,
    )
    assert response.status_code == 200
    case.refresh_from_db()
    assert case.legal_hold_released_at is not None
    assert CaseEvent.objects.get(case=case, kind="legal_hold_released").actor == cleared_admin


def test_an_admin_action_never_reaches_a_case_hidden_from_the_admin(admin_client):
    case = CaseFactory(kind="csam")  # the policy admin holds no clearance
    admin_client.post(
        reverse("admin:casework_case_changelist"),
        {"action": "legal_hold_release", "_selected_action": [case.pk]},
        follow=True,
    )
    case.refresh_from_db()
    assert case.legal_hold_released_at is None
    assert not case.events.filter(kind="legal_hold_released").exists()


# --- restricted classes in the admin ------------------------------------------------------------------------------


def test_every_admin_of_a_model_with_a_visibility_rule_applies_it():
    config = {"ThreatClass", "Queue"}  # policy configuration: policy admins govern every class
    missing = [
        model.__name__
        for model, model_admin in admin.site._registry.items()
        if hasattr(model._default_manager.all(), "visible_to")
        and model.__name__ not in config
        and not isinstance(model_admin, RestrictedAdminMixin)
    ]
    assert missing == []


def test_a_hidden_case_answers_like_a_missing_one_and_no_filter_names_its_class(admin_client):
    hidden, seen = CaseFactory(kind="csam"), CaseFactory(kind="spam")
    missing = hidden.pk + 1000
    for view in ("change", "history", "delete"):
        a = admin_client.get(f"/admin/casework/case/{hidden.pk}/{view}/")
        b = admin_client.get(f"/admin/casework/case/{missing}/{view}/")
        assert (a.status_code, a.get("Location")) == (b.status_code, b.get("Location"))
        assert a.status_code == (403 if view == "delete" else 302)  # evidence is never deleted here
    page = admin_client.get("/admin/casework/case/?_facets=1").content.decode()
    assert f"/admin/casework/case/{seen.pk}/change/" in page
    assert f"/admin/casework/case/{hidden.pk}/change/" not in page
    csam = ThreatClass.objects.get(slug="csam")
    assert (
        f"threat_class__id__exact={csam.pk}" not in page and f"threat_class__id__exact={seen.threat_class_id}" in page
    )
    searched = admin_client.get(f"/admin/casework/case/?q={hidden.subject.external_id}").content.decode()
    assert "0 results" in searched and f"/admin/casework/case/{hidden.pk}/change/" not in searched


def test_a_cleared_admin_reads_restricted_cases_signals_and_decisions(client, make_user):
    cleared = make_user("padmin-cleared", "policy_admin,senior", clearances=["csam", "cib"])
    client.force_login(cleared)
    case = CaseFactory(kind="csam")
    page = client.get("/admin/casework/case/?q=" + case.subject.external_id)
    assert f"/admin/casework/case/{case.pk}/change/" in page.content.decode()
    assert client.get(f"/admin/casework/case/{case.pk}/change/").status_code == 200
    assert client.get(f"/admin/casework/subject/{case.subject.pk}/change/").status_code == 200
    Reporter.objects.create(external_id="u-reporter", first_seen_at=timezone.now())
    reporter_page = client.get("/admin/casework/reporter/").content.decode()
    assert "First seen at" in reporter_page  # every class visible: when they were first seen, over every class


def test_a_superuser_follows_the_same_rule(client):
    owner = get_user_model().objects.create_superuser("owner", password="pw-owner")
    client.force_login(owner)
    hidden = CaseFactory(kind="csam")
    Reporter.objects.create(external_id="u-reporter", first_seen_at=timezone.now())
    assert client.get(f"/admin/casework/case/{hidden.pk}/change/").status_code == 302
    reporters = client.get("/admin/casework/reporter/").content.decode()
    assert "First seen at" not in reporters and "Reports upheld" in reporters  # the record of the visible classes
