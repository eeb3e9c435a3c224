"""Claims while PostgreSQL connections are terminated: a 503 says truly whether anything was claimed.

A second thread, on its own connection, terminates the backend serving the requests
(``pg_terminate_backend``) at random moments while a reviewer claims queue cases and an
appeals reviewer claims appeals through the API. Afterwards, with the killer stopped, the
database must hold exactly the claims that were answered ``201``, plus those whose ``503``
names them as made (the claim committed, then the database stayed unreachable while its
answer was read, ``docket.api.answer_after_commit``; more likely the slower the machine).
A claim that committed but was answered ``503 … nothing was changed`` would leave the case
(or the appeal) held by nobody who knows it, out of the queue until its lease runs out.
"""

import random
import re
import threading

import pytest
from django.db import connection

from appeals.models import Appeal
from appeals.services import appeal_file
from reviews.accounts import user_upsert
from reviews.models import Assignment
from tests.factories import CaseFactory
from tests.support import second_connection

from .conftest import api_client, decide

QUEUE_CLAIMS = 120
APPEAL_CLAIMS = 50
NOTHING_CHANGED = {"code": "unavailable", "detail": "The database is unavailable; nothing was changed."}


def _made_despite_503(bodies, pattern):
    """The ids the ``503`` answers name as committed; every other ``503`` must say nothing was changed."""
    made = []
    for body in bodies:
        found = re.fullmatch(pattern + r" was made, but the database is unavailable to show it\.", body["detail"])
        if found:
            assert body["code"] == "unavailable"
            made.append(int(found.group(1)))
        else:
            assert body == NOTHING_CHANGED
    return made


class BackendKiller(threading.Thread):
    """Terminates every other backend of the test database every few tens of milliseconds."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.kills = 0
        self.rng = random.Random(503)

    def run(self):
        with second_connection(autocommit=True) as other:
            while not self.stop.wait(self.rng.uniform(0.01, 0.2)):
                killed = other.execute(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND backend_type = 'client backend'"
                ).fetchone()[0]
                self.kills += killed


def _claim_under_fire(client, url, count):
    """POST ``url`` ``count`` times while backends are killed; the answers, by status."""
    answers = {201: [], 204: [], 503: []}
    killer = BackendKiller()
    killer.start()
    try:
        for _ in range(count):
            response = client.post(url)
            assert response.status_code in answers, (response.status_code, response.content)
            answers[response.status_code].append(response.json() if response.status_code != 204 else None)
            # A real server closes a broken connection at the request's end; the test client does not.
            connection.close()
    finally:
        killer.stop.set()
        killer.join()
        connection.close()
    assert killer.kills > 0
    return answers


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_claims_while_connections_are_terminated_commit_exactly_the_claims_answered_201(cast):
    cases = [CaseFactory(kind="spam", priority=float(n % 7)) for n in range(QUEUE_CLAIMS)]
    moderator = user_upsert(username="f-claimer", role_names=["moderator"], queues=["spam"], max_active=1000)

    answers = _claim_under_fire(api_client(moderator), "/api/v1/queues/spam/claim/", QUEUE_CLAIMS)

    assert answers[201] and answers[503]  # both happened: the run exercised the fault
    made = _made_despite_503(answers[503], r"The claim \(assignment (\d+)\)")
    held = {a.pk: a for a in Assignment.objects.filter(reviewer__user=moderator)}
    answered = {body["assignment"]: body for body in answers[201]}
    # No committed claim answered "nothing was changed", no 201 rolled back.
    assert set(held) == set(answered) | set(made)
    for pk, body in answered.items():
        assert held[pk].state == Assignment.State.ACTIVE
        assert body["case"]["id"] == held[pk].case_id
    assert len({a.case_id for a in held.values()}) == len(held)
    assert {a.case_id for a in held.values()} <= {c.pk for c in cases}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_appeal_claims_while_connections_are_terminated_commit_exactly_the_claims_answered_201(cast):
    decider = user_upsert(username="f-decider", role_names=["moderator"], max_active=5)
    reviewer = user_upsert(username="f-appeals", role_names=["appeals"], max_active=1000)
    appeals = []
    for n in range(APPEAL_CLAIMS):
        decision = decide(CaseFactory(kind="spam"), decider, cast["senior"])
        appeals.append(appeal_file(decision_id=decision.pk, appellant=f"u-{n}", statement="no", actor=cast["platform"]))

    answers = _claim_under_fire(api_client(reviewer), "/api/v1/appeals/claim/", APPEAL_CLAIMS)

    assert answers[201] and answers[503]
    made = _made_despite_503(answers[503], r"The claim of appeal (\d+)")
    held = set(
        Appeal.objects.filter(assigned_to__user=reviewer, status=Appeal.Status.IN_REVIEW).values_list("pk", flat=True)
    )
    answered = [body["appeal"] for body in answers[201]]
    assert len(answered + made) == len(set(answered + made))
    assert held == set(answered) | set(made)
    assert held <= {a.pk for a in appeals}
