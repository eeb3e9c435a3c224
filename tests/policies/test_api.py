"""Policies (read): what a decision may choose and cite, in the policy list, the case and the claim answer."""

import pytest
from django.utils import timezone

from casework.models import Case
from reviews.models import Decision
from tests.factories import CaseFactory, active_version

pytestmark = pytest.mark.django_db


def test_list_shows_each_visible_policy_with_its_active_version(moderator, api_for):
    body = api_for(moderator).get("/api/v1/policies/").json()
    by_class = {p["threat_class"]: p for p in body["results"]}
    assert set(by_class) == {"ato", "payment_fraud", "harassment", "spam"}  # csam and cib need a clearance
    assert body["count"] == 4
    spam = by_class["spam"]
    version = active_version("spam")
    assert set(spam) == {"slug", "name", "threat_class", "active_version"}
    assert spam["active_version"]["id"] == version.pk
    assert spam["active_version"]["number"] == version.number
    assert spam["active_version"]["ladder"] == list(version.ladder)
    assert spam["active_version"]["rules"] == [
        {"code": r["code"], "title": r["title"], "description": r["description"]} for r in version.rules
    ]
    assert spam["active_version"]["effective_at"]


def test_restricted_policies_follow_the_clearance(senior, moderator, platform, api_for):
    cleared = {p["threat_class"] for p in api_for(senior).get("/api/v1/policies/").json()["results"]}
    assert {"csam", "cib"} <= cleared
    slug = active_version("csam").policy.slug
    assert api_for(senior).get(f"/api/v1/policies/{slug}/").json()["threat_class"] == "csam"
    for user in (moderator, platform):
        answer = api_for(user).get(f"/api/v1/policies/{slug}/")
        assert answer.status_code == 404 and answer.json()["code"] == "not_found"
    spam = active_version("spam").policy.slug
    assert api_for(platform).get(f"/api/v1/policies/{spam}/").status_code == 200
    assert api_for(moderator).get("/api/v1/policies/no-such-policy/").status_code == 404
    assert api_for(None).get("/api/v1/policies/").status_code == 401


def test_a_policy_without_an_active_version_shows_null(moderator, api_for):
    version = active_version("harassment")
    type(version).objects.filter(pk=version.pk).update(status="retired", retired_at=timezone.now())
    answer = api_for(moderator).get(f"/api/v1/policies/{version.policy.slug}/").json()
    assert answer["active_version"] is None


def test_case_detail_and_list_carry_the_policy(moderator, api_for):
    case = CaseFactory(kind="spam")
    version = active_version("spam")
    expected = {
        "version": version.pk,
        "ladder": list(version.ladder),
        "rules": [{"code": r["code"], "title": r["title"]} for r in version.rules],
    }
    api = api_for(moderator)
    assert api.get(f"/api/v1/cases/{case.pk}/").json()["policy"] == expected
    listed = {c["id"]: c for c in api.get("/api/v1/cases/").json()["results"]}
    assert listed[case.pk]["policy"] == expected


def test_claim_answer_carries_the_policy_and_the_decision_cites_one_of_its_rules(moderator, api_for):
    case = CaseFactory(kind="harassment")
    api = api_for(moderator)
    claim = api.post("/api/v1/queues/harassment/claim/")
    assert claim.status_code == 201
    policy = claim.json()["case"]["policy"]
    assert policy["version"] == active_version("harassment").pk
    made_up = api.post(f"/api/v1/cases/{case.pk}/decision/", {"action": "remove", "rule": "HA-999"}, format="json")
    assert made_up.status_code == 400
    assert made_up.json()["code"] == "invalid" and "rule" in made_up.json()["errors"]
    assert not Decision.objects.filter(case=case).exists()
    action = next(a for a in policy["ladder"] if a != "no_violation")
    cited = api.post(
        f"/api/v1/cases/{case.pk}/decision/",
        {"action": action, "rule": policy["rules"][0]["code"], "rationale": "cited"},
        format="json",
    )
    assert cited.status_code == 201, cited.content
    assert cited.json()["rule"] == policy["rules"][0]["code"]
    assert cited.json()["policy_version"] == policy["version"]
    assert Case.objects.get(pk=case.pk).status == "decided"
