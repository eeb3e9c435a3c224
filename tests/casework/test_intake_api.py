"""POST /api/v1/signals/: the contract of API.md "Intake", and no input yields a 5xx."""

import json

import pytest

from casework.models import Case, Signal

pytestmark = pytest.mark.django_db

URL = "/api/v1/signals/"


def signal(n, **extra):
    body = {
        "source": "user-reports",
        "external_id": f"r-{n}",
        "threat_class": "spam",
        "subject": {"kind": "account", "external_id": "u-42", "reach": 1200, "attributes": {"device": ["d-9"]}},
        "reporter": "u-7",
        "reason": "selling followers",
        "occurred_at": "2025-11-24T10:00:00Z",
    }
    body.update(extra)
    return body


@pytest.fixture
def client(api_for, platform):
    return api_for(platform)


def test_one_signal_is_201_then_200_with_the_stored_result(client):
    first = client.post(URL, signal(1), format="json")
    again = client.post(URL, signal(1), format="json")

    case = Case.objects.get()
    assert first.status_code == 201
    assert first.json() == {
        "id": Signal.objects.get().id,
        "external_id": "r-1",
        "case": case.id,
        "disposition": "queued",
    }
    assert (again.status_code, again.json()) == (200, first.json())


def test_a_list_answers_in_input_order(client):
    response = client.post(URL, [signal(2), signal(1, threat_class="harassment")], format="json")
    assert response.status_code == 201
    assert [(r["external_id"], r["disposition"]) for r in response.json()] == [("r-2", "queued"), ("r-1", "queued")]
    assert client.post(URL, [signal(1, threat_class="harassment")], format="json").status_code == 200


def test_validation_errors_use_the_envelope_and_store_nothing(client):
    response = client.post(URL, [signal(1), signal(2, source="nope")], format="json")
    assert response.status_code == 400
    assert response.json() == {
        "code": "unknown_source",
        "detail": "1 of 2 signals are invalid.",
        "errors": {"1": {"source": ["Unknown source 'nope'."]}},
    }
    response = client.post(URL, signal(1, threat_class="nope"), format="json")
    assert response.json()["code"] == "unknown_threat_class"
    assert response.json()["errors"] == {"threat_class": ["Unknown threat class 'nope'."]}
    assert Signal.objects.count() == 0


def test_more_than_a_thousand_is_400_invalid(client):
    response = client.post(URL, [signal(n) for n in range(1001)], format="json")
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert Signal.objects.count() == 0


@pytest.mark.parametrize("role", ["moderator", "senior", "appeals", "policy_admin"])
def test_only_the_platform_pushes_signals(make_user, api_for, role):
    response = api_for(make_user("someone", role)).post(URL, signal(1), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert Signal.objects.count() == 0


def test_anonymous_is_refused(api_for):
    response = api_for(None).post(URL, signal(1), format="json")
    assert response.status_code == 401
    assert Signal.objects.count() == 0


MALFORMED_RAW = [
    b"{",
    b"not json",
    b"\xff\xfe\x00",
    b'{"source": "user-reports", "external_id": "x\\u0000"}',
    b"[" * 5000 + b"]" * 5000,
    b'{"score": 1e999}',
    b'{"subject": {"reach": ' + b"9" * 5000 + b"}}",
    b"NaN",
    b'{"score": NaN}',
    b'"\\ud800"',
    b"",
    b"null",
    b"true",
    b'[null, 1, "x", []]',
    b'{"source": "user-reports", "external_id": "\\ud800", "threat_class": "spam"}',
    b'{"source": "user-reports", "external_id": "x", "threat_class": "spam", "reporter": "r",'
    b' "subject": {"kind": "account", "external_id": "u", "attributes": {"\\udc00": ["v"]}}}',
]


@pytest.mark.parametrize("raw", MALFORMED_RAW, ids=range(len(MALFORMED_RAW)))
def test_malformed_bodies_are_4xx_never_5xx(client, raw):
    response = client.generic("POST", URL, raw, content_type="application/json")
    assert 400 <= response.status_code < 500
    assert set(response.json()) >= {"code", "detail"}
    assert Signal.objects.count() == 0


NESTED_GARBAGE = [
    signal(1, subject={"kind": "account", "external_id": {"$gt": ""}}),
    signal(1, subject={"kind": ["account"], "external_id": "u"}),
    signal(1, subject={"kind": "content", "external_id": "p", "owner": 12}),
    signal(1, subject={"kind": "account", "external_id": "u", "reach": 2**63}),
    signal(1, subject={"kind": "account", "external_id": "u", "attributes": {"ip": [["1.2.3.4"]]}}),
    signal(1, subject={"kind": "account", "external_id": "u", "attributes": {"ip": ["x" * 301]}}),
    signal(1, subject={"kind": "account", "external_id": "u", "attributes": {"ip": [str(i) for i in range(101)]}}),
    signal(1, external_id="\u0000"),
    signal(1, reporter={"id": 1}),
    signal(1, score=[0.5]),
    signal(1, occurred_at="2025-13-45T99:99:99Z"),
    signal(1, occurred_at="0001-01-01T00:00:00Z"),
    signal(1, reason="x" * 10_001),
    {"source": None},
    {"source": "user-reports", "external_id": "x", "threat_class": "spam", "subject": []},
]


@pytest.mark.parametrize("body", NESTED_GARBAGE, ids=range(len(NESTED_GARBAGE)))
def test_nested_garbage_is_400_invalid(client, body):
    response = client.post(URL, json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert Signal.objects.count() == 0


def test_form_encoded_bodies_are_415(client):
    response = client.post(URL, {"source": "user-reports"})
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
