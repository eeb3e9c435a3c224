"""GET /api/v1/cases/, /cases/{id}/ and /cases/{id}/events/ (API.md "Cases")."""

from datetime import timedelta

import pytest
from django.utils import timezone

from casework import events
from casework.models import Campaign
from casework.services import case_event_add
from reviews.models import Assignment, Decision, Strike
from tests.factories import CaseFactory, SubjectFactory, active_version, threat_class

pytestmark = pytest.mark.django_db

URL = "/api/v1/cases/"


@pytest.fixture
def client(api_for, moderator):
    return api_for(moderator)


def ids(response):
    assert response.status_code == 200, response.content
    return [c["id"] for c in response.json()["results"]]


def test_detail_has_exactly_the_documented_fields(client, moderator):
    now = timezone.now()
    case = CaseFactory(kind="harassment", priority=12.5, priority_breakdown={"severity": 3}, signal_count=3)
    assignment = Assignment.objects.create(
        case=case, reviewer=moderator.reviewer, claimed_at=now, lease_expires_at=now + timedelta(minutes=15)
    )

    body = client.get(f"{URL}{case.id}/").json()

    assert body == {
        "id": case.id,
        "subject": {"kind": "account", "external_id": case.subject.external_id, "reach": 100},
        "threat_class": "harassment",
        "status": "open",
        "queue": "harassment",
        "priority": 12.5,
        "priority_breakdown": {"severity": 3},
        "severity": 3,
        "signal_count": 3,
        "reporter_count": 1,
        "first_signal_at": case.first_signal_at.isoformat().replace("+00:00", "Z"),
        "last_signal_at": case.last_signal_at.isoformat().replace("+00:00", "Z"),
        "sla_due_at": case.sla_due_at.isoformat().replace("+00:00", "Z"),
        "campaign": None,
        "assignment": {
            "id": assignment.id,
            "reviewer": "mod",
            "lease_expires_at": assignment.lease_expires_at.isoformat().replace("+00:00", "Z"),
        },
        "decisions": [],
        "recommended_action": "label",
        "policy": {
            "version": active_version("harassment").pk,
            "ladder": list(active_version("harassment").ladder),
            "rules": [{"code": r["code"], "title": r["title"]} for r in active_version("harassment").rules],
        },
    }


def test_decisions_are_listed_by_id(client, moderator):
    case = CaseFactory(kind="spam", status="decided", decided_at=timezone.now())
    made = [
        Decision.objects.create(
            case=case,
            reviewer=moderator.reviewer,
            action="remove",
            policy_version=active_version("spam"),
            created_at=timezone.now(),
        )
        for _ in range(2)
    ]
    assert client.get(f"{URL}{case.id}/").json()["decisions"] == [d.id for d in made]


def strike(account, action, *, days_ago=1, expired=False, removed=False):
    now = timezone.now()
    case = CaseFactory(kind="harassment", subject=account, status="decided", decided_at=now)
    decision = Decision.objects.create(
        case=case,
        reviewer=None,
        automated=True,
        action=action,
        duration_days=7 if action == "suspend" else None,
        policy_version=active_version("harassment"),
        created_at=now - timedelta(days=days_ago),
    )
    return Strike.objects.create(
        account=account,
        decision=decision,
        created_at=now - timedelta(days=days_ago),
        expires_at=now - timedelta(hours=1) if expired else now + timedelta(days=60),
        removed_at=now if removed else None,
    )


def test_recommended_action_climbs_the_ladder_from_the_last_active_strike(client):
    account = SubjectFactory()
    case = CaseFactory(kind="harassment", subject=account)
    url = f"{URL}{case.id}/"
    # harassment ladder: no_violation, label, reduce, remove, suspend, ban
    assert active_version("harassment").ladder[:3] == ["no_violation", "label", "reduce"]
    assert client.get(url).json()["recommended_action"] == "label"
    strike(account, "ban", days_ago=5, expired=True)
    strike(account, "remove", days_ago=4, removed=True)
    assert client.get(url).json()["recommended_action"] == "label"
    strike(account, "reduce", days_ago=3)
    assert client.get(url).json()["recommended_action"] == "remove"
    strike(account, "label", days_ago=1)
    assert client.get(url).json()["recommended_action"] == "reduce"


def test_recommended_action_for_content_follows_its_owner(client):
    owner = SubjectFactory()
    post = SubjectFactory(kind="content", owner=owner)
    strike(owner, "remove")
    case = CaseFactory(kind="harassment", subject=post)
    ladder = active_version("harassment").ladder
    expected = ladder[ladder.index("remove") + 1]
    assert client.get(f"{URL}{case.id}/").json()["recommended_action"] == expected


def test_list_defaults_to_highest_priority_first(client):
    low, high, mid = CaseFactory(priority=1), CaseFactory(priority=30), CaseFactory(priority=5)
    response = client.get(URL)
    assert ids(response) == [high.id, mid.id, low.id]
    assert response.json()["count"] == 3


@pytest.mark.parametrize(
    "ordering", ["priority", "-priority", "created_at", "-created_at", "sla_due_at", "-sla_due_at"]
)
def test_ordering(client, ordering):
    now = timezone.now()
    cases = [
        CaseFactory(priority=p, created_at=now - timedelta(hours=h), first_signal_at=now - timedelta(hours=s))
        for p, h, s in [(3, 1, 9), (1, 3, 1), (2, 2, 5)]
    ]
    field = ordering.lstrip("-")
    expected = sorted(cases, key=lambda c: getattr(c, field), reverse=ordering.startswith("-"))
    assert ids(client.get(URL, {"ordering": ordering})) == [c.id for c in expected]


def test_filters(client, moderator, make_user):
    now = timezone.now()
    campaign = Campaign.objects.create(threat_class=threat_class("spam"), detected_at=now, size=2)
    spam = CaseFactory(kind="spam", campaign=campaign, priority=50, subject=SubjectFactory(external_id="u-target"))
    harassment = CaseFactory(kind="harassment", priority=5)
    decided = CaseFactory(kind="spam", status="decided", decided_at=now, priority=1)
    other = make_user("other", "moderator")
    Assignment.objects.create(
        case=harassment, reviewer=other.reviewer, claimed_at=now, lease_expires_at=now + timedelta(minutes=5)
    )

    assert ids(client.get(URL, {"status": "decided"})) == [decided.id]
    assert ids(client.get(URL, {"status": ["open", "decided"]})) == [spam.id, harassment.id, decided.id]
    assert ids(client.get(URL, {"threat_class": "harassment"})) == [harassment.id]
    assert ids(client.get(URL, {"queue": "spam"})) == [spam.id, decided.id]
    assert ids(client.get(URL, {"campaign": campaign.id})) == [spam.id]
    assert ids(client.get(URL, {"subject": "u-target"})) == [spam.id]
    assert ids(client.get(URL, {"assigned_to": "other"})) == [harassment.id]
    assert ids(client.get(URL, {"assigned_to": "mod"})) == []
    assert ids(client.get(URL, {"min_priority": 5})) == [spam.id, harassment.id]


@pytest.mark.parametrize(
    "params",
    [
        {"status": "bogus"},
        {"min_priority": "high"},
        {"campaign": "x"},
        {"ordering": "subject"},
        {"min_priority": "1e999"},
    ],
)
def test_bad_filter_values_are_400_invalid(client, params):
    response = client.get(URL, params)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


@pytest.mark.parametrize("params", [{"campaign": 10**30}, {"min_priority": 10**30}, {"page": "x"}, {"page": 10**30}])
def test_out_of_range_values_never_5xx(client, params):
    CaseFactory()
    response = client.get(URL, params)
    assert response.status_code in (200, 400, 404)


def test_events_oldest_first(client, moderator):
    case = CaseFactory()
    t = timezone.now()
    case_event_add(case=case, event=events.opened(), actor="system", at=t - timedelta(minutes=5))
    added = events.signals_added(signals=2, reporters=1, sources=["user-reports"])
    case_event_add(case=case, event=added, actor=moderator, at=t)
    case_event_add(case=case, event=events.note(text="seen"), actor=None, at=t - timedelta(minutes=1))

    response = client.get(f"{URL}{case.id}/events/")

    assert response.status_code == 200
    assert [(e["kind"], e["actor"]) for e in response.json()["results"]] == [
        ("opened", "system"),
        ("note", "system"),
        ("signals_added", "mod"),
    ]
    assert response.json()["results"][2]["detail"] == {"signals": 2, "reporters": 1, "sources": ["user-reports"]}
    assert set(response.json()["results"][0]) == {"at", "actor", "kind", "detail"}


# --- who may read, and what they may see ---------------------------------------------------------------


@pytest.mark.parametrize("role", ["moderator", "senior", "appeals", "policy_admin"])
def test_staff_roles_read_cases(make_user, api_for, role):
    case = CaseFactory()
    client = api_for(make_user("staff", role))
    assert ids(client.get(URL)) == [case.id]
    assert client.get(f"{URL}{case.id}/").status_code == 200


def test_the_platform_may_not_read_cases(api_for, platform):
    case = CaseFactory()
    client = api_for(platform)
    for url in (URL, f"{URL}{case.id}/", f"{URL}{case.id}/events/"):
        response = client.get(url)
        assert (response.status_code, response.json()["code"]) == (403, "forbidden")


def test_restricted_classes_are_invisible_without_clearance(api_for, make_user):
    csam, cib, spam = CaseFactory(kind="csam", priority=9), CaseFactory(kind="cib", priority=8), CaseFactory(priority=1)
    case_event_add(case=csam, event=events.opened())
    plain = api_for(make_user("plain", "moderator"))
    cleared = api_for(make_user("cleared", "moderator", clearances=["csam"]))
    admin = api_for(make_user("admin", "policy_admin"))

    assert ids(plain.get(URL)) == [spam.id]
    assert ids(plain.get(URL, {"threat_class": "csam"})) == []
    assert plain.get(URL).json()["count"] == 1
    for url in (f"{URL}{csam.id}/", f"{URL}{csam.id}/events/", f"{URL}{cib.id}/"):
        response = plain.get(url)
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert ids(admin.get(URL)) == [spam.id]
    assert ids(cleared.get(URL)) == [csam.id, spam.id]
    assert cleared.get(f"{URL}{csam.id}/events/").status_code == 200
    assert cleared.get(f"{URL}{cib.id}/").status_code == 404


def test_unknown_case_is_404(client):
    for url in (f"{URL}999999/", f"{URL}{10**30}/", f"{URL}999999/events/"):
        response = client.get(url)
        assert (response.status_code, response.json()["code"]) == (404, "not_found")


# --- constant query counts -------------------------------------------------------------------------


def busy_case(reviewer, n):
    now = timezone.now()
    account = SubjectFactory()
    case = CaseFactory(kind="harassment", subject=account, priority=n)
    Assignment.objects.create(case=case, reviewer=reviewer, claimed_at=now, lease_expires_at=now + timedelta(minutes=5))
    strike(account, "label")
    return case


def test_list_query_count_does_not_grow_with_the_page(client, moderator, django_assert_max_num_queries):
    for n in range(3):
        busy_case(moderator.reviewer, n)
    with django_assert_max_num_queries(10):
        assert len(ids(client.get(URL, {"status": "open"}))) == 3
    for n in range(3, 30):
        busy_case(moderator.reviewer, n)
    with django_assert_max_num_queries(10):
        assert len(ids(client.get(URL, {"status": "open"}))) == 30


def test_detail_and_events_query_counts(client, moderator, django_assert_max_num_queries):
    case = busy_case(moderator.reviewer, 1)
    for _ in range(20):
        case_event_add(case=case, event=events.note(text="seen"))
    with django_assert_max_num_queries(9):
        assert client.get(f"{URL}{case.id}/").status_code == 200
    with django_assert_max_num_queries(9):
        assert len(client.get(f"{URL}{case.id}/events/").json()["results"]) == 20
