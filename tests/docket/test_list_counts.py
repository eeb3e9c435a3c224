"""A list's count: exact up to EXACT_COUNT_LIMIT, an estimate flagged count_is_estimate above (API.md "Lists")."""

import pytest

from docket import api
from tests.factories import CaseFactory

pytestmark = pytest.mark.django_db


def test_count_is_exact_up_to_the_limit_and_flagged_as_an_estimate_above(api_for, moderator, monkeypatch):
    for _ in range(8):
        CaseFactory(kind="spam")
    client = api_for(moderator)

    body = client.get("/api/v1/cases/?page_size=3").json()
    assert (body["count"], body["count_is_estimate"]) == (8, False)
    assert len(body["results"]) == 3 and body["next"]

    monkeypatch.setattr(api, "EXACT_COUNT_LIMIT", 5)  # the same path as 10,000, on 8 rows
    body = client.get("/api/v1/cases/?page_size=3").json()
    assert body["count_is_estimate"] is True
    assert body["count"] >= 6  # the planner's estimate, never below the limit it passed
    assert len(body["results"]) == 3 and body["next"]

    monkeypatch.setattr(api, "EXACT_COUNT_LIMIT", 8)  # exactly at the limit: still exact
    body = client.get("/api/v1/cases/").json()
    assert (body["count"], body["count_is_estimate"]) == (8, False)


def test_every_list_answer_says_whether_its_count_is_an_estimate(api_for, moderator):
    client = api_for(moderator)
    for url in ("/api/v1/cases/", "/api/v1/queues/", "/api/v1/sources/"):
        body = client.get(url).json()
        assert body["count_is_estimate"] is False, url
