"""The moderator's API round (claim next, then decide) in a bounded number of queries.

The round is the queue's hot path: every query on it is paid by every reviewer on every case.
The token's user comes with its roles; the decider shown in the answer is the one who decided
(no second read); the case a decision names is read once, by the decision's own lock.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from docket.models import ApiToken
from tests.factories import CaseFactory

pytestmark = pytest.mark.django_db

# Upper bounds: today's counts (in the test's transaction: a savepoint and its release each), after a first
# round read what is read once per process. A new query here is a decision, not an accident.
CLAIM_QUERIES = 12
DECISION_QUERIES = 13


def _counted(client, user, path, body=None):
    # A token's last use is written at most once a minute: count the requests in between.
    ApiToken.objects.filter(user=user).update(last_used_at=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        response = client.post(path, body, format="json") if body is not None else client.post(path)
    return response, len(queries)


def test_claim_and_decision_through_the_api_stay_within_their_query_bounds(api_for, make_user):
    moderator = make_user("round-mod", "moderator", queues=["spam"])
    CaseFactory.create_batch(2, kind="spam")
    client = api_for(moderator)
    first = client.post("/api/v1/queues/spam/claim/").json()["case"]["id"]
    client.post(f"/api/v1/cases/{first}/decision/", {"action": "remove", "rule": "SP-1"}, format="json")

    claimed, claim_queries = _counted(client, moderator, "/api/v1/queues/spam/claim/")
    assert claimed.status_code == 201, claimed.content
    case_id = claimed.json()["case"]["id"]
    decided, decision_queries = _counted(
        client, moderator, f"/api/v1/cases/{case_id}/decision/", {"action": "remove", "rule": "SP-1"}
    )
    assert decided.status_code == 201, decided.content
    assert decided.json()["reviewer"] == "round-mod" and decided.json()["case"] == case_id
    assert claim_queries <= CLAIM_QUERIES and decision_queries <= DECISION_QUERIES, (claim_queries, decision_queries)


def test_a_decision_on_a_hidden_or_missing_case_is_a_404_whatever_the_body(api_for, make_user):
    moderator = make_user("round-mod", "moderator", queues=["spam"])
    hidden = CaseFactory(kind="csam")  # restricted: the moderator holds no clearance for it
    client = api_for(moderator)
    for case_id in (hidden.pk, hidden.pk + 10_000):
        for body in ({"action": "remove", "rule": "CS-1"}, {"action": "x" * 100}, {}):
            response = client.post(f"/api/v1/cases/{case_id}/decision/", body, format="json")
            assert (response.status_code, response.json()["code"]) == (404, "not_found"), (case_id, body)
