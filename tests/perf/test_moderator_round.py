"""The moderator's API round (claim next, then decide) in a bounded number of queries.

The round is the queue's hot path: every query on it is paid by every reviewer on every case.
The token's user comes with its roles; the claim reads the reviewer profile with its lock, and answers
with the case it wrote, the class's active version and the assignment it made (not read again), reading
the case's decisions and its account's strikes only when the claim's probes found some; the decision reads the profile
with its lock, and its answer shows the decider and the statement's submission row it wrote (no
second read); the case a decision names is read once, by the decision's own lock.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from casework.models import Case
from docket.models import AccessLog, ApiToken
from reviews.selectors import decisions_blind_to
from tests.factories import CaseFactory, SubjectFactory

pytestmark = pytest.mark.django_db

# Upper bounds: today's counts (in the test's transaction: a savepoint and its release each), after a first
# round read what is read once per process. A new query here is a decision, not an accident.
CLAIM_QUERIES = 6
DECISION_QUERIES = 11


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


def test_the_claim_answers_with_its_case_as_the_case_detail_shows_it(api_for, make_user):
    # The answer is built from the row the claim wrote (subject and class with it) and the claim's own
    # assignment, not read again: it must be the detail a reader gets right after.
    moderator = make_user("round-mod", "moderator", queues=["spam"])
    owner = SubjectFactory()
    earlier = CaseFactory(kind="spam", subject=SubjectFactory(kind="content", owner=owner), priority=2.0)
    client = api_for(moderator)
    assert client.post("/api/v1/queues/spam/claim/").json()["case"]["id"] == earlier.pk
    decided = client.post(f"/api/v1/cases/{earlier.pk}/decision/", {"action": "label", "rule": "SP-1"}, format="json")
    assert decided.status_code == 201, decided.content  # a strike on the owner's account
    case = CaseFactory(kind="spam", subject=SubjectFactory(kind="content", owner=owner))

    claimed = client.post("/api/v1/queues/spam/claim/")

    assert claimed.status_code == 201, claimed.content
    body = claimed.json()
    assert body["case"] == client.get(f"/api/v1/cases/{case.pk}/").json()
    assert body["case"]["status"] == "in_review" and body["case"]["recommended_action"] == "reduce"
    assert body["case"]["assignment"] == {
        "id": body["assignment"],
        "reviewer": "round-mod",
        "lease_expires_at": body["lease_expires_at"],
    }


def test_a_claimed_restricted_case_is_answered_and_its_read_logged(api_for, make_user):
    moderator = make_user("round-csam", "moderator", queues=["csam"], clearances=["csam"])
    case = CaseFactory(kind="csam")
    client = api_for(moderator)

    claimed = client.post("/api/v1/queues/csam/claim/")

    assert claimed.status_code == 201, claimed.content
    logged = list(AccessLog.objects.filter(object_type="case", object_id=case.pk).values_list("username", "action"))
    assert logged == [("round-csam", "view")]
    assert claimed.json()["case"] == client.get(f"/api/v1/cases/{case.pk}/").json()


@pytest.mark.parametrize("configured", [False, True])
def test_the_decision_answers_as_its_detail_shows_it(api_for, make_user, settings, configured):
    # The answer's transparency_db comes from the submission row the decision stored, not read again.
    settings.DSA_TDB_URL, settings.DSA_TDB_TOKEN = ("http://tdb.invalid/", "t") if configured else ("", "")
    moderator = make_user("round-mod", "moderator", queues=["spam"])
    case = CaseFactory(kind="spam")
    client = api_for(moderator)
    client.post("/api/v1/queues/spam/claim/")

    decided = client.post(f"/api/v1/cases/{case.pk}/decision/", {"action": "remove", "rule": "SP-1"}, format="json")

    assert decided.status_code == 201, decided.content
    body = decided.json()
    assert body == client.get(f"/api/v1/decisions/{body['id']}/").json()
    assert body["transparency_db"]["status"] == ("pending" if configured else "not_configured")
    assert body["transparency_db"]["puid"] and body["reviewer"] == "round-mod"


def test_the_decisions_blind_to_a_user_are_built_once_per_request_user(make_user):
    # The claim's answer asks twice (the case's decisions, the strike that recommends the next step).
    moderator = make_user("round-mod", "moderator", queues=["spam"])
    blind = decisions_blind_to(moderator)
    assert blind is not None and decisions_blind_to(moderator) is blind


def test_a_claimed_case_with_decisions_answers_them_as_its_detail_does(api_for, make_user):
    # No transition leads a decided case back to the queue today; a case that came back with its decisions
    # (set here by hand) must still be answered with them and with the strike they left.
    moderator = make_user("round-mod", "moderator", queues=["spam"])
    case = CaseFactory(kind="spam")
    client = api_for(moderator)
    client.post("/api/v1/queues/spam/claim/")
    decision = client.post(f"/api/v1/cases/{case.pk}/decision/", {"action": "remove", "rule": "SP-1"}, format="json")
    Case.objects.filter(pk=case.pk).update(status="open")

    claimed = client.post("/api/v1/queues/spam/claim/")

    assert claimed.status_code == 201, claimed.content
    answered = claimed.json()["case"]
    assert answered["decisions"] == [decision.json()["id"]] and answered["recommended_action"] == "restrict"
    assert answered == client.get(f"/api/v1/cases/{case.pk}/").json()
