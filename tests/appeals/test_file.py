"""Filing an appeal: the window, once per appellant, the deadline, the case becoming appealed."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from appeals.models import Appeal
from appeals.services import appeal_file
from casework.models import Case, CaseEvent
from docket.errors import DocketError
from tests.appeals.conftest import decided

pytestmark = pytest.mark.django_db


def snapshot(decision):
    case = Case.objects.get(pk=decision.case_id)
    return (Appeal.objects.count(), case.status, CaseEvent.objects.filter(case=case).count())


def test_platform_files_an_appeal_inside_the_window(platform, api_for):
    decision = decided(at=timezone.now() - timedelta(days=179))
    body = {"decision": decision.pk, "appellant": "u-owner", "statement": "I was selling my own old phone."}

    response = api_for(platform).post("/api/v1/appeals/", body, format="json")

    assert response.status_code == 201, response.content
    appeal = Appeal.objects.get()
    assert response.json()["id"] == appeal.pk
    assert response.json()["status"] == "received"
    assert response.json()["deadline"] == appeal.deadline.isoformat().replace("+00:00", "Z")
    assert appeal.deadline - appeal.received_at == timedelta(hours=72)
    assert (appeal.decision_id, appeal.appellant, appeal.statement) == (decision.pk, "u-owner", body["statement"])
    case = Case.objects.get(pk=decision.case_id)
    assert case.status == "appealed"
    event = CaseEvent.objects.filter(case=case).get()
    assert (event.kind, event.actor_label) == ("appeal_filed", "platform-svc")
    assert event.detail == {
        "from": "decided",
        "to": "appealed",
        "appeal": appeal.pk,
        "decision": decision.pk,
        "appellant": "u-owner",
    }


def test_appeal_after_the_window_is_refused_and_nothing_changes(platform, api_for):
    decision = decided(at=timezone.now() - timedelta(days=180, minutes=1))
    before = snapshot(decision)

    response = api_for(platform).post(
        "/api/v1/appeals/", {"decision": decision.pk, "appellant": "u-owner"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "appeal_window_closed"
    assert snapshot(decision) == before == (0, "decided", 0)


def test_window_and_deadline_are_configurable(platform, settings):
    settings.DOCKET = {**settings.DOCKET, "APPEAL_WINDOW_DAYS": 7, "APPEAL_SLA_HOURS": 24}
    now = timezone.now()
    late = decided(at=now - timedelta(days=8))
    on_time = decided(at=now - timedelta(days=6))

    with pytest.raises(DocketError) as refused:
        appeal_file(decision_id=late.pk, appellant="a", statement="", actor=platform, at=now)
    appeal = appeal_file(decision_id=on_time.pk, appellant="a", statement="", actor=platform, at=now)

    assert refused.value.code == "appeal_window_closed"
    assert appeal.deadline == now + timedelta(hours=24)


def test_second_appeal_by_the_same_appellant_is_a_conflict(platform, api_for):
    decision = decided()
    client = api_for(platform)
    first = client.post("/api/v1/appeals/", {"decision": decision.pk, "appellant": "u-owner"}, format="json")
    before = snapshot(decision)

    again = client.post("/api/v1/appeals/", {"decision": decision.pk, "appellant": "u-owner"}, format="json")

    assert first.status_code == 201
    assert again.status_code == 409
    assert again.json()["code"] == "already_appealed"
    assert snapshot(decision) == before == (1, "appealed", 1)


def test_another_appellant_may_appeal_the_same_decision(platform, api_for):
    decision = decided()
    client = api_for(platform)
    client.post("/api/v1/appeals/", {"decision": decision.pk, "appellant": "u-owner"}, format="json")

    response = client.post("/api/v1/appeals/", {"decision": decision.pk, "appellant": "u-notifier"}, format="json")

    assert response.status_code == 201
    assert Appeal.objects.filter(decision=decision).count() == 2
    assert Case.objects.get(pk=decision.case_id).status == "appealed"
    kinds = list(CaseEvent.objects.filter(case_id=decision.case_id).values_list("kind", flat=True))
    assert kinds == ["appeal_filed", "appeal_filed"]


def test_an_overturned_decision_cannot_be_appealed(platform, api_for):
    decision = decided()
    decision.overturned, decision.overturned_at = True, timezone.now()
    decision.save()
    before = snapshot(decision)

    response = api_for(platform).post("/api/v1/appeals/", {"decision": decision.pk, "appellant": "u"}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert snapshot(decision) == before


@pytest.mark.parametrize(
    "body",
    [
        {"decision": 999999, "appellant": "u"},
        {"appellant": "u"},
        {"decision": "abc", "appellant": "u"},
        {"decision": 2**70, "appellant": "u"},
        {"decision": 1, "appellant": ""},
        {"decision": 1, "appellant": "   "},
        {"decision": 1, "appellant": "x" * 201},
        {"decision": 1, "appellant": {"id": 1}},
        [{"decision": 1, "appellant": "u"}],
        "just a string",
        None,
    ],
)
def test_malformed_filings_are_400_invalid_and_store_nothing(platform, api_for, body):
    decided()

    response = api_for(platform).post("/api/v1/appeals/", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert Appeal.objects.count() == 0


def test_only_the_platform_files_appeals(make_user, api_for, appeals_staff, moderator):
    decision = decided()
    for user in (appeals_staff, moderator):
        response = api_for(user).post("/api/v1/appeals/", {"decision": decision.pk, "appellant": "u"}, format="json")
        assert (response.status_code, response.json()["code"]) == (403, "forbidden")
    anonymous = api_for(None).post("/api/v1/appeals/", {"decision": decision.pk, "appellant": "u"}, format="json")
    assert anonymous.status_code == 401
    assert Appeal.objects.count() == 0


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_duplicate_filings_store_one_appeal(platform):
    decision = decided()
    barrier = threading.Barrier(8)
    results = []

    def file_one():
        try:
            barrier.wait()
            appeal_file(decision_id=decision.pk, appellant="u-owner", statement="", actor=platform)
            results.append("filed")
        except DocketError as e:
            results.append(e.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=file_one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(results) == ["already_appealed"] * 7 + ["filed"]
    assert Appeal.objects.count() == 1
    assert CaseEvent.objects.filter(case_id=decision.case_id, kind="appeal_filed").count() == 1
