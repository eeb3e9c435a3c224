"""The sources and campaigns API: fields, roles, visibility, refusals that change nothing, query bounds."""

from datetime import timedelta

import pytest
from django.utils import timezone

from casework.models import Campaign, Case
from policies.models import SignalSource
from reviews.models import Decision
from tests.factories import CaseFactory, SourceFactory, threat_class

pytestmark = pytest.mark.django_db


def sources_state():
    return list(SignalSource.objects.order_by("slug").values())


# --- sources -------------------------------------------------------------------------------------------------------


def test_staff_list_sources_with_their_health(api_for, moderator, make_user, django_assert_max_num_queries):
    for i in range(5):
        SourceFactory(slug=f"model-{i}", kind="classifier", trust=0.5)
    # The rates as the health job stores them: the source's, and their parts per class.
    SignalSource.objects.filter(slug="model-0").update(
        status="suspect",
        baseline_rate=4.0,
        current_rate=80.0,
        score_summary={"classes": {"spam": {"current": 70, "baseline": 3.0}, "csam": {"current": 10, "baseline": 1.0}}},
    )

    client = api_for(moderator)
    client.get("/api/v1/sources/")  # the token's first use is written (then at most once a minute)

    with django_assert_max_num_queries(6):  # token, roles, clearances, the classes hidden, sources, open incidents
        response = client.get("/api/v1/sources/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 6
    first = body["results"][0]
    assert {k: first[k] for k in ("slug", "kind", "trust", "status", "baseline_rate", "current_rate")} == {
        "slug": "model-0",
        "kind": "classifier",
        "trust": 0.5,
        "status": "suspect",
        "baseline_rate": 3.0,  # the moderator is not cleared for csam: its part is not theirs to see
        "current_rate": 70.0,
    }
    assert [r["slug"] for r in body["results"]] == [f"model-{i}" for i in range(5)] + ["user-reports"]
    cleared = api_for(make_user("mod-csam", "moderator", clearances=["csam", "cib"])).get("/api/v1/sources/").json()
    assert (cleared["results"][0]["current_rate"], cleared["results"][0]["baseline_rate"]) == (80.0, 4.0)


@pytest.mark.parametrize("role", ["moderator", "senior", "appeals", "policy_admin"])
def test_every_staff_role_reads_sources(api_for, make_user, role):
    assert api_for(make_user("u", role)).get("/api/v1/sources/").status_code == 200


def test_platform_and_anonymous_do_not_read_sources(api_for, platform):
    assert api_for(platform).get("/api/v1/sources/").json()["code"] == "forbidden"
    assert api_for(None).get("/api/v1/sources/").status_code in (401, 403)


def test_policy_admin_registers_a_healthy_source(api_for, policy_admin):
    response = api_for(policy_admin).post(
        "/api/v1/sources/", {"slug": "nudity-v3", "kind": "classifier", "trust": 0.7}, format="json"
    )

    assert response.status_code == 201
    assert {k: response.json()[k] for k in ("slug", "kind", "trust", "status", "baseline_rate", "current_rate")} == {
        "slug": "nudity-v3",
        "kind": "classifier",
        "trust": 0.7,
        "status": "healthy",
        "baseline_rate": None,
        "current_rate": None,
    }
    assert SignalSource.objects.get(slug="nudity-v3").trust == 0.7


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"slug": "x-1", "kind": "oracle", "trust": 0.5}, "kind"),
        ({"slug": "x-1", "kind": "rule", "trust": 1.5}, "trust"),
        ({"slug": "x-1", "kind": "rule", "trust": -0.1}, "trust"),
        ({"slug": "x-1", "kind": "rule", "trust": "lots"}, "trust"),
        ({"slug": "user-reports", "kind": "user_report", "trust": 0.5}, "slug"),
        ({"slug": "Not A Slug!", "kind": "rule", "trust": 0.5}, "slug"),
        ({"kind": "rule", "trust": 0.5}, "slug"),
        ({"slug": "x-1", "kind": ["rule"], "trust": 0.5}, "kind"),
    ],
)
def test_bad_source_is_refused_and_nothing_is_stored(api_for, policy_admin, body, field):
    before = sources_state()

    response = api_for(policy_admin).post("/api/v1/sources/", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert list(response.json()["errors"]) == [field]
    assert sources_state() == before


@pytest.mark.parametrize("body", [[], "text", None, {"slug": {"a": 1}, "kind": "rule", "trust": 0.5}])
def test_malformed_source_body_is_a_400(api_for, policy_admin, body):
    response = api_for(policy_admin).post("/api/v1/sources/", body, format="json")
    assert response.status_code == 400


def test_only_policy_admins_change_sources(api_for, moderator, senior):
    SourceFactory(slug="spam-model")
    SignalSource.objects.filter(slug="spam-model").update(status="suspect")
    before = sources_state()

    for user in (moderator, senior):
        client = api_for(user)
        refusals = [
            client.post("/api/v1/sources/", {"slug": "z", "kind": "rule", "trust": 0.5}, format="json"),
            client.post("/api/v1/sources/spam-model/confirm/"),
            client.post("/api/v1/sources/spam-model/quarantine/"),
        ]
        assert [(r.status_code, r.json()["code"]) for r in refusals] == [(403, "forbidden")] * 3

    assert sources_state() == before


def test_quarantine_and_confirm_move_the_status(api_for, policy_admin):
    SourceFactory(slug="spam-model")
    SignalSource.objects.filter(slug="spam-model").update(status="suspect")
    client = api_for(policy_admin)

    quarantined = client.post("/api/v1/sources/spam-model/quarantine/")
    assert quarantined.status_code == 200
    assert quarantined.json()["status"] == "quarantined"

    confirmed = client.post("/api/v1/sources/spam-model/confirm/")
    assert confirmed.status_code == 200
    assert confirmed.json()["source"]["status"] == "healthy"
    assert confirmed.json()["released"] == 0
    assert SignalSource.objects.get(slug="spam-model").status == "healthy"


def test_unknown_source_is_a_404(api_for, policy_admin):
    assert api_for(policy_admin).post("/api/v1/sources/nope/confirm/").json() == {
        "code": "not_found",
        "detail": "No such source.",
    }


# --- campaigns -----------------------------------------------------------------------------------------------------


def campaign(kind="spam", *, cases=3, **fields):
    c = Campaign.objects.create(
        threat_class=threat_class(kind),
        links=[{"kind": "device", "value": "d-1"}],
        size=cases,
        detected_at=timezone.now(),
        **fields,
    )
    for _ in range(cases):
        CaseFactory(kind=kind, campaign=c)
    return c


def test_campaign_list_and_detail(api_for, moderator, django_assert_max_num_queries):
    spam = campaign("spam", cases=3)
    for _ in range(4):
        campaign("harassment", cases=2)

    client = api_for(moderator)
    client.get("/api/v1/campaigns/")  # the token's first use is written (then at most once a minute)

    # token, roles, clearances, count, page, member cases, the classes hidden from the reader, the visible links
    with django_assert_max_num_queries(8):
        listed = client.get("/api/v1/campaigns/")
    detail = client.get(f"/api/v1/campaigns/{spam.pk}/")

    assert listed.status_code == 200 and listed.json()["count"] == 5
    assert detail.status_code == 200
    body = detail.json()
    assert {k: body[k] for k in ("id", "threat_class", "size", "links", "cases", "status")} == {
        "id": spam.pk,
        "threat_class": "spam",
        "size": 3,
        "links": [{"kind": "device", "value": "d-1"}],
        "cases": sorted(Case.objects.filter(campaign=spam).values_list("pk", flat=True)),
        "status": "open",
    }
    assert listed.json()["results"][0] == body  # the largest first


def test_restricted_campaigns_and_member_cases_are_invisible_without_clearance(api_for, moderator, senior):
    cib = campaign("cib", cases=2)
    spam = campaign("spam", cases=2)
    hidden = CaseFactory(kind="csam", campaign=spam)
    client = api_for(moderator)

    assert [c["id"] for c in client.get("/api/v1/campaigns/").json()["results"]] == [spam.pk]
    assert client.get(f"/api/v1/campaigns/{cib.pk}/").json()["code"] == "not_found"
    assert hidden.pk not in client.get(f"/api/v1/campaigns/{spam.pk}/").json()["cases"]
    # the senior holds the clearances
    assert hidden.pk in api_for(senior).get(f"/api/v1/campaigns/{spam.pk}/").json()["cases"]
    assert api_for(senior).get(f"/api/v1/campaigns/{cib.pk}/").status_code == 200


def test_senior_decides_every_open_member_case(api_for, senior):
    c = campaign("spam", cases=4)
    done = CaseFactory(kind="spam", campaign=c)
    Case.objects.filter(pk=done.pk).update(status="decided", decided_at=timezone.now() - timedelta(hours=1))

    response = api_for(senior).post(
        f"/api/v1/campaigns/{c.pk}/decision/",
        {"action": "remove", "rule": "SP-1", "rationale": "one network"},
        format="json",
    )

    assert response.status_code == 201
    assert response.json() == {"decisions": 4}
    assert Decision.objects.filter(campaign=c, action="remove", rule="SP-1").count() == 4
    assert Decision.objects.filter(case=done).count() == 0
    assert Campaign.objects.get(pk=c.pk).status == "decided"


def test_campaign_decision_refusals_change_nothing(api_for, moderator, senior, policy_admin):
    c = campaign("spam", cases=3)
    cases_before = list(Case.objects.order_by("pk").values("pk", "status"))
    cases = [
        (moderator, {"action": "remove", "rule": "SP-1"}, 403, "forbidden"),
        (policy_admin, {"action": "remove", "rule": "SP-1"}, 403, "forbidden"),
        (senior, {"action": "legal_report", "rule": "SP-1"}, 400, "action_not_allowed"),
        (senior, {"action": "remove", "rule": "NOPE"}, 400, "invalid"),
        (senior, {"action": "suspend", "rule": "SP-1"}, 400, "invalid"),
        (senior, {"rule": "SP-1"}, 400, "invalid"),
        (senior, ["remove"], 400, "invalid"),
    ]
    for user, body, code, error in cases:
        response = api_for(user).post(f"/api/v1/campaigns/{c.pk}/decision/", body, format="json")
        assert (response.status_code, response.json()["code"]) == (code, error), body

    assert Decision.objects.count() == 0
    assert list(Case.objects.order_by("pk").values("pk", "status")) == cases_before
    assert Campaign.objects.get(pk=c.pk).status == "open"


def test_decided_campaign_cannot_be_decided_again(api_for, senior):
    c = campaign("spam", cases=1, status="decided")

    response = api_for(senior).post(
        f"/api/v1/campaigns/{c.pk}/decision/", {"action": "remove", "rule": "SP-1"}, format="json"
    )

    assert (response.status_code, response.json()["code"]) == (409, "invalid_transition")
    assert Decision.objects.count() == 0


def test_senior_without_clearance_cannot_decide_a_restricted_campaign(api_for, make_user):
    c = campaign("cib", cases=2)
    uncleared = make_user("plain-senior", "senior")

    response = api_for(uncleared).post(
        f"/api/v1/campaigns/{c.pk}/decision/", {"action": "remove", "rule": "PM-1"}, format="json"
    )

    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert Decision.objects.count() == 0


def test_campaigns_filter_by_status(api_for, moderator):
    open_one = campaign("spam", cases=1)
    campaign("spam", cases=1, status="decided")
    client = api_for(moderator)

    assert [c["id"] for c in client.get("/api/v1/campaigns/?status=open").json()["results"]] == [open_one.pk]
    bad = client.get("/api/v1/campaigns/?status=whatever")
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid")


def test_campaigns_are_for_staff_only(api_for, platform):
    c = campaign("spam", cases=1)
    client = api_for(platform)

    assert client.get("/api/v1/campaigns/").json()["code"] == "forbidden"
    assert client.get(f"/api/v1/campaigns/{c.pk}/").json()["code"] == "forbidden"
