"""Activating a policy version starts a relabel sample of recent decisions under it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from docket.errors import DocketError
from oversight.metrics import compute_snapshot
from policies.models import PolicyVersion
from policies.services import policy_version_activate
from reviews.models import Decision, RelabelItem
from reviews.services import relabel_item_complete
from tests.factories import CaseFactory, active_version

pytestmark = pytest.mark.django_db


def decision(kind, *, reviewer, action="remove", minutes_ago=10, automated=False):
    at = timezone.now() - timedelta(minutes=minutes_ago)
    case = CaseFactory(kind=kind, status="decided", decided_at=at, first_action_at=at)
    return Decision.objects.create(
        case=case,
        reviewer=None if automated else reviewer,
        automated=automated,
        action=action,
        rule="" if action == "no_violation" else "R-1",
        policy_version=active_version(kind),
        created_at=at,
    )


def new_version(kind):
    current = active_version(kind)
    return PolicyVersion.objects.create(
        policy=current.policy, number=current.number + 1, text="v2", ladder=current.ladder, rules=current.rules
    )


@pytest.fixture
def decided(make_user):
    first = make_user("first", "moderator").reviewer
    return {
        "first": first,
        "old": decision("spam", reviewer=first, minutes_ago=50),
        "mid": decision("spam", reviewer=first, action="no_violation", minutes_ago=30),
        "new": decision("spam", reviewer=first, minutes_ago=20),
        "automated": decision("spam", reviewer=None, automated=True, minutes_ago=5),
        "other_class": decision("harassment", reviewer=first, minutes_ago=5),
    }


def test_activation_samples_the_most_recent_human_decisions(decided, policy_admin, settings):
    settings.DOCKET = {**settings.DOCKET, "RELABEL_SAMPLE_SIZE": 2}
    v2 = policy_version_activate(version=new_version("spam"), actor=policy_admin)

    items = RelabelItem.objects.filter(policy_version=v2)
    assert sorted(items.values_list("decision_id", "status")) == sorted(
        [(decided["new"].pk, "pending"), (decided["mid"].pk, "pending")]
    )
    assert PolicyVersion.objects.get(policy=v2.policy, number=1).status == "retired"


def test_relabel_records_agreement_blind_to_the_original(decided, policy_admin, make_user):
    v2 = policy_version_activate(version=new_version("spam"), actor=policy_admin)
    relabeller = make_user("second", "moderator").reviewer
    agree = RelabelItem.objects.get(policy_version=v2, decision=decided["new"])
    disagree = RelabelItem.objects.get(policy_version=v2, decision=decided["mid"])

    relabel_item_complete(item_id=agree.pk, reviewer=relabeller, action="reduce", rule="SP-1")
    relabel_item_complete(item_id=disagree.pk, reviewer=relabeller, action="label", rule="SP-1")

    agree.refresh_from_db()
    disagree.refresh_from_db()
    assert (agree.status, agree.agrees, agree.action) == ("done", True, "reduce")  # both violations
    assert (disagree.status, disagree.agrees) == ("done", False)  # no_violation before, a violation now
    versions = {v["id"]: v for v in compute_snapshot(clearances=frozenset())["policy_versions"]}
    assert versions[v2.pk]["relabel"] == {"pending": 1, "done": 2, "agreement": 0.5}


def test_relabel_refusals_change_nothing(decided, policy_admin, make_user):
    v2 = policy_version_activate(version=new_version("spam"), actor=policy_admin)
    item = RelabelItem.objects.get(policy_version=v2, decision=decided["new"])
    other = make_user("second", "moderator").reviewer

    def refused(**kwargs):
        before = list(RelabelItem.objects.values_list("id", "status", "action", "agrees"))
        with pytest.raises(DocketError) as exc:
            relabel_item_complete(item_id=item.pk, **kwargs)
        assert list(RelabelItem.objects.values_list("id", "status", "action", "agrees")) == before
        return exc.value.code, exc.value.status

    assert refused(reviewer=decided["first"], action="remove") == ("conflict_of_interest", 403)
    assert refused(reviewer=other, action="legal_report") == ("action_not_allowed", 400)
    relabel_item_complete(item_id=item.pk, reviewer=other, action="remove")
    assert refused(reviewer=other, action="remove") == ("invalid_transition", 409)


def test_relabel_api_is_blind_and_hides_restricted_classes(decided, policy_admin, make_user, api_for, senior):
    v2 = policy_version_activate(version=new_version("spam"), actor=policy_admin)
    csam = decision("csam", reviewer=senior.reviewer)
    policy_version_activate(version=new_version("csam"), actor=policy_admin)
    moderator = make_user("second", "moderator")

    listed = api_for(moderator).get("/api/v1/relabels/", {"status": "pending"}).json()
    assert {r["threat_class"] for r in listed["results"]} == {"spam"}
    row = listed["results"][0]
    assert set(row) == {
        "id",
        "status",
        "threat_class",
        "policy_version",
        "case",
        "subject",
        "ladder",
        "reviewer",
        "action",
        "rule",
        "created_at",
        "completed_at",
    }
    assert row["action"] == ""  # blind: the original decision's action is nowhere in the item
    hidden = RelabelItem.objects.get(decision=csam)
    response = api_for(moderator).post(f"/api/v1/relabels/{hidden.pk}/complete/", {"action": "remove"}, format="json")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")

    item = RelabelItem.objects.get(policy_version=v2, decision=decided["new"])
    done = api_for(moderator).post(f"/api/v1/relabels/{item.pk}/complete/", {"action": "remove"}, format="json")
    assert done.status_code == 200
    assert (done.json()["status"], done.json()["reviewer"], done.json()["action"]) == ("done", "second", "remove")
    bad = api_for(moderator).post(f"/api/v1/relabels/{item.pk}/complete/", {"action": "obliterate"}, format="json")
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid")
    assert api_for(policy_admin).get("/api/v1/relabels/").status_code == 403


def test_relabel_list_keeps_a_query_bound(decided, policy_admin, api_for, make_user, django_assert_max_num_queries):
    policy_version_activate(version=new_version("spam"), actor=policy_admin)
    client = api_for(make_user("second", "moderator"))
    client.get("/api/v1/relabels/")  # token and role lookups warmed
    with django_assert_max_num_queries(6):
        listed = client.get("/api/v1/relabels/").json()
    assert listed["count"] == 3
