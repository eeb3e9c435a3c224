"""API fuzzing with schemathesis against the served OpenAPI schema (``/api/schema/``).

Every operation of the schema is called with generated requests (valid ones and, as schemathesis
``negative`` mode makes them, invalid ones) under three tokens: the platform's, a moderator's and a
policy admin's. Every answer must be no 5xx, a documented status code, a documented content type and
a body that matches the documented schema for that status: the error envelope of ``docket.api``
included, which the schema documents for every operation.

Each (operation, token) first gets a short pass; a token that gets past the role check (any answer but
401/403) gets a deeper one. Path ids are drawn half the time from the objects of a seeded world, so
the fuzzing reaches real cases, decisions, appeals and campaigns, not only 404s. Hypothesis runs
derandomized (a fixed seed per test) without shrinking, so the run is repeatable and bounded.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from appeals.models import Appeal
from casework.models import Campaign, Case, Queue
from docket.accounts import token_for
from docket.wsgi import application
from policies.models import SignalSource, ThresholdChange
from reviews.models import Assignment, Decision, QualityReview, RelabelItem

from .conftest import build_world

pytestmark = pytest.mark.django_db

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SHORT_PASS = 5
DEEP_PASS = 25
TOKENS = ("platform", "moderator", "policy_admin")


def _settings(examples):
    return settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )


def _known_ids(world):
    """Real ids and slugs per path prefix, for the path parameters of the fuzzed requests."""

    def ids(model):
        return list(model.objects.order_by("pk").values_list("pk", flat=True))

    return {
        "cases": ids(Case),
        "decisions": ids(Decision),
        "appeals": ids(Appeal),
        "campaigns": ids(Campaign),
        "assignments": ids(Assignment),
        "quality-reviews": ids(QualityReview),
        "relabels": ids(RelabelItem),
        "threshold-changes": ids(ThresholdChange),
        "queues": list(Queue.objects.values_list("slug", flat=True)),
        "sources": list(SignalSource.objects.values_list("slug", flat=True)),
    }


def _run(operation, headers, examples, known, seen, failures):
    prefix = operation.path.split("/")[3] if operation.path.startswith("/api/v1/") else ""
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=strategy, data=st.data())
    @_settings(examples)
    def fuzz(case, data):
        for name in ("id", "pk", "slug"):
            if case.path_parameters and name in case.path_parameters and known.get(prefix):
                if data.draw(st.booleans()):
                    case.path_parameters[name] = data.draw(st.sampled_from(known[prefix]))
        response = case.call(headers=headers)
        seen.add(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except BaseException as e:  # schemathesis raises a FailureGroup (a BaseExceptionGroup)
            failures.setdefault(operation.label, f"{type(e).__name__}: {e}"[:3000])

    try:
        fuzz()
    except BaseException as e:  # generation itself failed: report it with the operation
        failures.setdefault(operation.label, f"could not fuzz: {type(e).__name__}: {e}"[:3000])


@pytest.fixture
def wsgi_in_test_transaction():
    """Requests through the WSGI app keep the test's connection (and so its transaction) open.

    Django's own test client does the same: a request's end would otherwise close the connection.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_every_operation_answers_within_its_schema_and_never_5xx(cast, wsgi_in_test_transaction):
    world = build_world(cast)
    # The schema needs a login like every endpoint: any account's token reads it.
    reader = {"Authorization": f"Token {token_for(cast['moderator'])}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application, headers=reader)
    known = _known_ids(world)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 40  # every documented operation, not a schema that failed to load
    failures, deep = {}, []
    for operation in operations:
        for role in TOKENS:
            headers = {"Authorization": f"Token {token_for(cast[role])}"}
            seen = set()
            _run(operation, headers, SHORT_PASS, known, seen, failures)
            if seen - {401, 403}:
                deep.append(f"{operation.label} as {role}")
                _run(operation, headers, DEEP_PASS, known, seen, failures)
    report = "\n\n".join(f"== {label}\n{text}" for label, text in sorted(failures.items()))
    assert not failures, report
    # The deep passes reached every role's own operations (sanity: the tokens worked).
    assert "POST /api/v1/signals/ as platform" in deep
    assert "GET /api/v1/cases/ as moderator" in deep
    assert "GET /api/v1/thresholds/ as policy_admin" in deep


def test_the_schema_documents_the_error_envelope_on_every_operation(client, cast):
    client.force_login(cast["platform"])
    document = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    envelope = document["components"]["schemas"]["Error"]
    assert envelope["required"] == ["code", "detail"]
    assert set(envelope["properties"]) == {"code", "detail", "errors"}
    missing = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for code in ("401", "403"):
                content = operation["responses"].get(code, {}).get("content", {})
                ref = content.get("application/json", {}).get("schema", {}).get("$ref")
                if ref != "#/components/schemas/Error":
                    missing.append(f"{method.upper()} {path} {code}")
    assert missing == []
