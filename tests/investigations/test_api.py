"""Subject search and history over the API: every key kind, clearances, linked subjects, the access log."""

import pytest
from django.utils import timezone

from appeals.services import appeal_file
from casework.models import Subject, SubjectAttribute
from docket.models import AccessLog
from investigations import selectors
from reviews.models import Decision
from tests.factories import ReporterFactory, SignalFactory, SubjectFactory, threat_class
from tests.reliability.conftest import decide

from .conftest import ingest

pytestmark = pytest.mark.django_db

SEARCH = "/api/v1/subjects/"


def found(api, query):
    answer = api.get(SEARCH + query)
    assert answer.status_code == 200, answer.content
    return [(r["kind"], r["external_id"]) for r in answer.json()["results"]]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("?q=alice-1", [("account", "alice-1")]),  # exact external id
        ("?q=ali", [("account", "alice-1")]),  # prefix
        ("?q=203.0.113.7", [("account", "alice-1")]),  # ip
        ("?q=dev-a", [("account", "alice-1"), ("account", "bob-1")]),  # device (hidden-1 has it too)
        ("?q=pay-9", [("account", "bob-1"), ("account", "carol-1")]),  # payment
        ("?q=spam.example", [("content", "post-77")]),  # link_domain
        ("?q=eh-1", [("account", "alice-1")]),  # any attribute key
        ("?q=rep-beta", [("content", "post-77")]),  # reporter id
        ("?q=post-77&kind=content", [("content", "post-77")]),
        ("?q=post-77&kind=account", []),
        ("?attribute=device:dev-a", [("account", "alice-1"), ("account", "bob-1")]),
        ("?q=dev-a&attribute=payment:pay-9", [("account", "bob-1")]),
        ("?attribute=payment:dev-a", []),  # the key must match
        ("?q=100%25", []),  # LIKE wildcards are literal
        ("?q=_", []),
    ],
)
def test_search_by_each_key_kind(inv, api_for, query, expected):
    assert found(api_for(inv.moderator), query) == expected


def test_search_by_case_id_and_the_figures(inv, api_for):
    api = api_for(inv.moderator)
    assert found(api, f"?q={inv.bob.pk}") == [("account", "bob-1")]
    decide(inv.alice, inv.decider, inv.senior)
    body = api.get(SEARCH + "?q=alice-1").json()
    assert body["count"] == 1 and body["count_is_estimate"] is False
    (hit,) = body["results"]
    assert set(hit) == {
        "kind", "external_id", "reach", "open_cases", "decided_cases", "active_strikes", "last_signal_at",
    }  # fmt: skip
    assert (hit["reach"], hit["open_cases"], hit["decided_cases"], hit["active_strikes"]) == (500, 0, 1, 1)
    assert hit["last_signal_at"]


def test_restricted_only_subject_absent_and_restricted_cases_never_counted(inv, api_for):
    mod, senior = api_for(inv.moderator), api_for(inv.senior)
    assert found(mod, "?q=hidden-1") == []
    assert found(mod, "?q=dev-a") == [("account", "alice-1"), ("account", "bob-1")]
    assert ("account", "hidden-1") in found(senior, "?q=dev-a")
    assert mod.get(SEARCH + "?q=mixed-1").json()["results"][0]["open_cases"] == 1
    assert senior.get(SEARCH + "?q=mixed-1").json()["results"][0]["open_cases"] == 2

    answer = mod.get(f"{SEARCH}account/hidden-1/")
    missing = mod.get(f"{SEARCH}account/no-such-subject/")
    assert answer.status_code == missing.status_code == 404
    assert answer.json() == missing.json()
    assert senior.get(f"{SEARCH}account/hidden-1/").status_code == 200
    mixed = mod.get(f"{SEARCH}account/mixed-1/").json()
    assert [c["threat_class"] for c in mixed["cases"]] == ["spam"]
    assert sorted(c["threat_class"] for c in senior.get(f"{SEARCH}account/mixed-1/").json()["cases"]) == [
        "csam",
        "spam",
    ]


def test_subject_history(inv, api_for):
    decision = decide(inv.alice, inv.decider, inv.senior)

    appeal = appeal_file(decision_id=decision.pk, appellant="alice-1", statement="not me", actor=inv.platform)
    body = api_for(inv.moderator).get(f"{SEARCH}account/alice-1/").json()
    assert (body["kind"], body["external_id"], body["reach"], body["owner"]) == ("account", "alice-1", 500, None)
    assert body["attributes"] == {
        "device": ["dev-a"], "email_hash": ["eh-1"], "ip": ["198.51.100.1", "203.0.113.7"],
    }  # fmt: skip
    (case,) = body["cases"]
    assert (case["id"], case["threat_class"], case["status"]) == (inv.alice.pk, "spam", "appealed")
    assert case["decisions"] == [
        {
            "id": decision.pk,
            "action": decision.action,
            "rule": decision.rule,
            "created_at": decision.created_at.isoformat().replace("+00:00", "Z"),
            "overturned": False,
        }
    ]
    (strike,) = body["strikes"]
    assert (strike["decision"], strike["active"]) == (decision.pk, True)
    assert body["appeals"] == [appeal.pk]
    assert body["content"] == [{"kind": "content", "external_id": "post-77"}]
    assert len(body["signals_per_day"]) == 30 and body["signals_per_day"][-1]["count"] == 1
    post = api_for(inv.moderator).get(f"{SEARCH}content/post-77/").json()
    assert post["owner"] == {"kind": "account", "external_id": "alice-1"}


def test_linked_through_a_shared_device_not_through_an_over_shared_ip(inv, api_for):
    api = api_for(inv.moderator)
    linked = api.get(f"{SEARCH}account/alice-1/").json()["linked"]
    # bob shares the device; the CDN address (five holders, more than the max share) links nobody;
    # hidden-1 shares the device too but is invisible to a moderator.
    assert linked == [
        {"kind": "account", "external_id": "bob-1", "via": [{"kind": "device", "value": "dev-a"}], "hop": 1}
    ]
    two = api.get(f"{SEARCH}account/alice-1/?hops=2").json()["linked"]
    assert [(s["external_id"], s["hop"], s["via"]) for s in two] == [
        ("bob-1", 1, [{"kind": "device", "value": "dev-a"}]),
        ("carol-1", 2, [{"kind": "payment", "value": "pay-9"}]),
    ]
    cleared = api_for(inv.senior).get(f"{SEARCH}account/alice-1/").json()["linked"]
    assert [s["external_id"] for s in cleared] == ["bob-1", "hidden-1"]


def test_every_history_read_is_logged_and_restricted_cases_named(inv, api_for):
    api_for(inv.moderator).get(f"{SEARCH}account/mixed-1/")
    api_for(inv.senior).get(f"{SEARCH}account/mixed-1/")
    rows = list(
        AccessLog.objects.filter(kind="access")
        .order_by("id")
        .values_list("username", "action", "object_type", "object_id", "threat_class")
    )
    assert rows == [
        ("inv-mod", "view", "subject", "account:mixed-1", ""),
        ("inv-senior", "view", "subject", "account:mixed-1", ""),
        ("inv-senior", "view", "case", str(inv.mixed_csam.pk), "csam"),
    ]
    api_for(inv.moderator).get(f"{SEARCH}account/hidden-1/")  # a 404 reads nothing and logs nothing
    assert AccessLog.objects.filter(kind="access").count() == 3


@pytest.mark.parametrize(
    "query, field",
    [
        ("", "q"),
        ("?q=", "q"),
        ("?attribute=ip", "attribute"),
        ("?q=x&kind=robot", "kind"),
        ("?q=x&page_size=0", "page_size"),
        ("?q=x&page=abc", "page"),
    ],
)
def test_bad_search_input_is_a_400(inv, api_for, query, field):
    answer = api_for(inv.moderator).get(SEARCH + query)
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid" and field in answer.json()["errors"]


def test_pages(inv, api_for):
    api = api_for(inv.moderator)
    first = api.get(SEARCH + "?q=dev-a&page_size=1").json()
    assert first["count"] == 2 and first["previous"] is None and "page=2" in first["next"]
    second = api.get(first["next"]).json()
    assert [r["external_id"] for r in first["results"] + second["results"]] == ["alice-1", "bob-1"]
    assert second["next"] is None and second["previous"]
    assert api.get(SEARCH + "?q=dev-a&page=9").status_code == 404
    assert api.get(f"{SEARCH}account/alice-1/?hops=3").status_code == 400
    assert Subject.objects.count() and not Decision.objects.exists()


def test_each_source_stops_at_the_cap_of_visible_subjects(inv, api_for, monkeypatch):
    """The count is exact up to the cap and flagged beyond; hidden holders never fill the cap."""

    mod = api_for(inv.moderator)
    monkeypatch.setattr(selectors, "SEARCH_CAP", 2)
    # dev-a: alice and bob visible, hidden-1 (csam only) hidden: exactly the cap, not an estimate.
    body = mod.get(SEARCH + "?q=dev-a").json()
    assert (body["count"], body["count_is_estimate"]) == (2, False)
    # The CDN address: five visible holders, more than the cap.
    body = mod.get(SEARCH + "?q=198.51.100.1&page_size=2").json()
    assert (body["count"], body["count_is_estimate"]) == (3, True)
    assert [r["external_id"] for r in body["results"]] == ["alice-1", "bob-1"]


def test_external_id_matches_come_first_and_a_subject_found_twice_is_listed_once(inv, api_for, platform):
    # An account whose external id is also a value alice holds, and whose own device is that value.
    ingest(platform, subject="account:dev-a", attributes={"device": ["dev-a"]})
    body = api_for(inv.moderator).get(SEARCH + "?q=dev-a").json()
    assert [r["external_id"] for r in body["results"]] == ["dev-a", "alice-1", "bob-1"]
    assert body["count"] == 3


def test_a_subject_without_cases_is_absent_when_it_has_hidden_signals(inv, api_for):
    # Signals below threshold: stored, no case. A spam signal leaves the subject visible; a csam one hides it.
    quiet = {}
    for name, classes in (("quiet-1", ["spam"]), ("quiet-2", ["spam", "csam"]), ("quiet-3", [])):
        quiet[name] = SubjectFactory(external_id=name)
        SubjectAttribute.objects.create(subject=quiet[name], kind="payment", value="pay-q", seen_at=timezone.now())
        for slug in classes:
            SignalFactory(subject=quiet[name], threat_class=threat_class(slug))
    assert found(api_for(inv.moderator), "?q=pay-q") == [("account", "quiet-1"), ("account", "quiet-3")]
    assert found(api_for(inv.senior), "?q=pay-q") == [("account", n) for n in ("quiet-1", "quiet-2", "quiet-3")]


def test_case_id_and_reporter_searches_test_the_found_subject_itself(inv, api_for):
    """The visibility test of a case id or a reporter's subjects is about that subject, not the tables."""

    mod, senior = api_for(inv.moderator), api_for(inv.senior)
    assert found(mod, f"?q={inv.hidden.pk}") == []  # hidden-1's csam case
    assert found(senior, f"?q={inv.hidden.pk}") == [("account", "hidden-1")]
    # A reporter's caseless subjects: visible to a moderator unless a hidden signal names them.
    reporter = ReporterFactory(external_id="rep-quiet")
    plain, hidden = SubjectFactory(external_id="quiet-a"), SubjectFactory(external_id="quiet-b")
    SignalFactory(subject=plain, reporter=reporter)
    SignalFactory(subject=hidden, reporter=reporter, threat_class=threat_class("csam"))
    assert found(mod, "?q=rep-quiet") == [("account", "quiet-a")]
    assert found(senior, "?q=rep-quiet") == [("account", "quiet-a"), ("account", "quiet-b")]
