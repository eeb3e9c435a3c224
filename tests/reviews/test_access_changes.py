"""Nobody lifts a restriction alone: clearances and a class's restricted/legal flags change only with a
second policy admin, audited; nobody grants themselves a clearance; the admin and the database refuse the
direct way."""

from contextlib import contextmanager

import pytest
from django.db import IntegrityError, transaction

from docket.models import AccessLog
from policies.models import ThreatClass
from reviews.models import AccessChange, Reviewer
from reviews.services import (
    access_change_approve,
    access_change_propose_class_flags,
    access_change_propose_clearances,
    access_change_reject,
)
from tests.support import refused

pytestmark = pytest.mark.django_db

ADD = "/admin/reviews/accesschange/add/"
LIST = "/admin/reviews/accesschange/"


def access_state():
    return {
        "clearances": sorted(Reviewer.objects.values_list("user__username", "clearances")),
        "classes": sorted(ThreatClass.objects.values_list("slug", "restricted", "legal_escalation")),
        "changes": sorted(AccessChange.objects.values_list("id", "status", "decided_by_id")),
        "audit": AccessLog.objects.filter(kind="audit", action__startswith="access_change").count(),
    }


@contextmanager
def access_unchanged():
    before = access_state()
    yield
    assert access_state() == before


@pytest.fixture
def admins(make_user):
    """Two policy admins who also review (so they have profiles that could hold clearances)."""
    return (
        make_user("ada", "policy_admin,moderator"),
        make_user("bob", "policy_admin,moderator"),
    )


def audit_rows(change):
    return list(
        AccessLog.objects.filter(kind="audit", detail__change=change.pk)
        .order_by("id")
        .values_list("action", "username", "object_type", "object_id", "threat_class")
    )


def test_a_clearance_is_granted_only_when_a_second_admin_approves_and_every_step_is_audited(admins, make_user):
    ada, bob = admins
    mod = make_user("carol", "moderator")
    change = access_change_propose_clearances(
        reviewer_id=mod.reviewer.pk, clearances=["csam"], reason="joins the CSAM team", actor=ada
    )
    mod.reviewer.refresh_from_db()
    assert (change.status, change.old_clearances, change.clearances, mod.reviewer.clearances) == (
        "proposed",
        [],
        ["csam"],
        [],
    )
    with access_unchanged():
        refused("self_approval", 403, lambda: access_change_approve(change_id=change.pk, actor=ada))

    access_change_approve(change_id=change.pk, actor=bob)

    mod.reviewer.refresh_from_db()
    change.refresh_from_db()
    assert mod.reviewer.clearances == ["csam"]
    assert (change.status, change.decided_by, change.proposed_by) == ("applied", bob, ada)
    assert audit_rows(change) == [
        ("access_change_proposed", "ada", "reviewer", "carol", ""),
        ("access_change_applied", "bob", "reviewer", "carol", ""),
    ]
    applied = AccessLog.objects.get(action="access_change_applied")
    assert (applied.detail["before"], applied.detail["after"], applied.detail["reason"]) == (
        {"clearances": []},
        {"clearances": ["csam"]},
        "joins the CSAM team",
    )
    # The grant signs the reviewer out everywhere, as any change of grants does.
    assert AccessLog.objects.filter(action="roles_changed", object_id="carol", detail__via="access_change").exists()
    with access_unchanged():
        refused("invalid_transition", 409, lambda: access_change_approve(change_id=change.pk, actor=bob))


def test_nobody_grants_themselves_a_clearance(admins):
    ada, bob = admins
    with access_unchanged():
        refused(
            "self_grant",
            403,
            lambda: access_change_propose_clearances(
                reviewer_id=ada.reviewer.pk, clearances=["csam"], reason="I need it", actor=ada
            ),
        )
    # Proposed by another admin, still not approved by the one it grants.
    change = access_change_propose_clearances(
        reviewer_id=ada.reviewer.pk, clearances=["csam"], reason="on call", actor=bob
    )
    with access_unchanged():
        refused("self_grant", 403, lambda: access_change_approve(change_id=change.pk, actor=ada))
    ada.reviewer.refresh_from_db()
    assert ada.reviewer.clearances == []


def test_the_database_refuses_a_self_approved_or_self_granted_change(admins, make_user):
    ada, bob = admins
    mod = make_user("carol", "moderator")
    change = access_change_propose_clearances(reviewer_id=mod.reviewer.pk, clearances=["cib"], reason="x", actor=ada)
    for forged in ({"decided_by": ada}, {"decided_by": mod}):
        with pytest.raises(IntegrityError), transaction.atomic():
            AccessChange.objects.filter(pk=change.pk).update(status="applied", decided_at=change.created_at, **forged)
    with pytest.raises(IntegrityError), transaction.atomic():
        AccessChange.objects.create(
            kind="clearances",
            reviewer=ada.reviewer,
            account=ada,
            old_clearances=[],
            clearances=["csam"],
            reason="mine",
            proposed_by=ada,
            created_at=change.created_at,
        )


def test_a_class_is_unrestricted_only_with_a_second_admin_and_a_rejection_changes_nothing(admins):
    ada, bob = admins
    csam = ThreatClass.objects.get(slug="csam")
    change = access_change_propose_class_flags(
        threat_class_id=csam.pk, restricted=False, legal_escalation=True, reason="test", actor=ada
    )
    with access_unchanged():
        refused("self_approval", 403, lambda: access_change_approve(change_id=change.pk, actor=ada))
        refused(
            "already_proposed",
            409,
            lambda: access_change_propose_class_flags(
                threat_class_id=csam.pk, restricted=True, legal_escalation=False, reason="other", actor=bob
            ),
        )
    access_change_reject(change_id=change.pk, actor=bob)
    csam.refresh_from_db()
    assert (csam.restricted, csam.legal_escalation) == (True, True)
    assert audit_rows(change) == [
        ("access_change_proposed", "ada", "threat_class", "csam", "csam"),
        ("access_change_rejected", "bob", "threat_class", "csam", "csam"),
    ]

    change = access_change_propose_class_flags(
        threat_class_id=csam.pk, restricted=False, legal_escalation=True, reason="again", actor=ada
    )
    access_change_approve(change_id=change.pk, actor=bob)
    csam.refresh_from_db()
    assert (csam.restricted, csam.legal_escalation) == (False, True)
    assert [row[0] for row in audit_rows(change)] == ["access_change_proposed", "access_change_applied"]


def test_a_proposal_whose_values_moved_since_is_stale(admins, make_user):
    ada, bob = admins
    mod = make_user("carol", "moderator")
    change = access_change_propose_clearances(reviewer_id=mod.reviewer.pk, clearances=["cib"], reason="x", actor=ada)
    make_user("carol", "moderator", clearances=["csam"])  # the installer's grant, meanwhile
    with access_unchanged():
        refused("stale_proposal", 409, lambda: access_change_approve(change_id=change.pk, actor=bob))


def test_proposals_are_for_policy_admins_and_must_change_something(admins, make_user):
    ada, _ = admins
    mod = make_user("carol", "moderator")
    senior = make_user("sen", "senior,moderator")
    with access_unchanged():
        refused(
            "forbidden",
            403,
            lambda: access_change_propose_clearances(
                reviewer_id=mod.reviewer.pk, clearances=["csam"], reason="x", actor=senior
            ),
        )
        for clearances, reason in ((["nope"], "x"), ([], "x"), (["csam"], "  ")):
            refused(
                "invalid",
                400,
                lambda c=clearances, r=reason: access_change_propose_clearances(
                    reviewer_id=mod.reviewer.pk, clearances=c, reason=r, actor=ada
                ),
            )


def test_the_database_refuses_a_direct_change_of_clearances_or_class_flags(make_user):
    mod = make_user("carol", "moderator")
    attempts = [
        lambda: Reviewer.objects.filter(pk=mod.reviewer.pk).update(clearances=["csam"]),
        lambda: Reviewer.objects.create(user=make_user("pa", "policy_admin"), clearances=["csam"]),
        lambda: ThreatClass.objects.filter(slug="csam").update(restricted=False),
        lambda: ThreatClass.objects.filter(slug="csam").update(legal_escalation=False),
        lambda: ThreatClass.objects.filter(slug="spam").update(restricted=True),
        lambda: ThreatClass.objects.filter(slug="csam").update(slug="csam-old"),
    ]
    with access_unchanged():
        for attempt in attempts:
            with pytest.raises(IntegrityError, match="second policy admin|keeps its slug"), transaction.atomic():
                attempt()
    # What is not an access flag still changes freely.
    assert ThreatClass.objects.filter(slug="spam").update(name="Spam and scams") == 1


# --- the admin ------------------------------------------------------------------------------------------------


def test_the_admin_shows_clearances_and_class_flags_read_only_and_ignores_them_in_a_post(client, admins, make_user):
    ada, _ = admins
    mod = make_user("carol", "moderator")
    client.force_login(ada)
    page = client.get(f"/admin/reviews/reviewer/{mod.reviewer.pk}/change/").content.decode()
    assert 'name="clearances"' not in page
    assert f'href="{ADD}?reviewer={mod.reviewer.pk}"' in page

    add = client.get("/admin/reviews/reviewer/add/")
    assert add.status_code == 200 and 'name="clearances"' not in add.content.decode()
    assert 'name="restricted"' in client.get("/admin/policies/threatclass/add/").content.decode()  # a new class

    own = client.post(
        f"/admin/reviews/reviewer/{ada.reviewer.pk}/change/",
        {"user": ada.pk, "clearances": "csam,cib", "max_active": 3, "graphic_budget": 40, "language": "en"},
    )
    assert own.status_code == 302
    ada.reviewer.refresh_from_db()
    assert ada.reviewer.clearances == []

    csam = ThreatClass.objects.get(slug="csam")
    page = client.get(f"/admin/policies/threatclass/{csam.pk}/change/").content.decode()
    assert 'name="restricted"' not in page
    assert 'name="legal_escalation"' not in page
    assert f'href="{ADD}?threat_class={csam.pk}"' in page
    form = {
        "slug": "csam-renamed",
        "name": csam.name,
        "severity": csam.severity,
        "harm_weight": csam.harm_weight,
        "sla_seconds": csam.sla_seconds,
        "automation": csam.automation,
        "auto_action": csam.auto_action,
        "dsa_category": csam.dsa_category,
        "dsa_keywords": list(csam.dsa_keywords),
        "dsa_illegal": "on" if csam.dsa_illegal else "",
        "legal_ground": csam.legal_ground or "x",
        "graphic": "on",
    }  # no restricted, no legal_escalation: an unticked checkbox, as a crafted post would send
    response = client.post(f"/admin/policies/threatclass/{csam.pk}/change/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    csam.refresh_from_db()
    assert (csam.slug, csam.restricted, csam.legal_escalation) == ("csam", True, True)


def test_the_admin_proposes_lists_pending_and_approves_through_the_service(client, admins, make_user):
    ada, bob = admins
    mod = make_user("carol", "moderator")
    client.force_login(ada)
    form = client.get(f"{ADD}?reviewer={mod.reviewer.pk}")
    assert form.status_code == 200
    assert form.context["form"].initial == {"reviewer": mod.reviewer, "clearances": []}

    refused_self = client.post(ADD, {"reviewer": ada.reviewer.pk, "clearances": ["csam"], "reason": "mine"})
    assert refused_self.status_code == 200
    assert "Nobody changes their own clearances" in refused_self.content.decode()
    assert refused_self.context["form"].data["reason"] == "mine"
    assert not AccessChange.objects.exists()

    response = client.post(ADD, {"reviewer": mod.reviewer.pk, "clearances": ["csam"], "reason": "new team"})
    change = AccessChange.objects.get()
    assert (response.status_code, response.url) == (302, f"/admin/reviews/accesschange/{change.pk}/change/")
    assert "carol" in client.get(LIST).content.decode()  # the pending list

    action = {"action": "approve_access_changes", "_selected_action": [change.pk]}
    page = client.post(LIST, action, follow=True).content.decode()
    assert "must be approved by another policy admin" in page
    assert AccessChange.objects.get().status == "proposed"

    client.force_login(bob)
    page = client.post(LIST, action, follow=True).content.decode()
    assert f"Access change {change.pk} applied." in page
    mod.reviewer.refresh_from_db()
    assert mod.reviewer.clearances == ["csam"]

    assert client.post(f"/admin/reviews/accesschange/{change.pk}/change/", {"status": "rejected"}).status_code == 403


def test_the_admin_proposes_a_class_flag_change(client, admins):
    ada, _ = admins
    cib = ThreatClass.objects.get(slug="cib")
    client.force_login(ada)
    form = client.get(f"{ADD}?threat_class={cib.pk}")
    assert form.context["form"].initial == {"threat_class": cib, "restricted": True, "legal_escalation": False}
    response = client.post(ADD, {"kind": "class_flags", "threat_class": cib.pk, "reason": "no longer sensitive"})
    assert response.status_code == 302
    change = AccessChange.objects.get()
    assert (change.kind, change.old_restricted, change.restricted) == ("class_flags", True, False)
    cib.refresh_from_db()
    assert cib.restricted is True
