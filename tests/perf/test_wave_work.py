"""An automated wave does once what is the same for all its cases: the notice texts are rendered once per
template, the statements of reasons checked once per distinct statement, the classes and their active
versions read once for the whole wave; so deciding 40 cases does this work as often as deciding 4."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from policies import notices
from reviews import sor
from reviews.models import Enforcement, Notice
from reviews.services import decisions_automated
from tests.factories import CaseFactory, SourceFactory, classified_and_reported

pytestmark = pytest.mark.django_db


def wave(size, *, kinds=("spam",)):
    classifier = SourceFactory(slug="wave-classifier")
    return [
        classified_and_reported(CaseFactory(kind=kinds[i % len(kinds)], signal_count=2, reporter_count=1), classifier)
        for i in range(size)
    ]


def counting(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_a_wave_renders_each_notice_template_and_checks_each_statement_once(monkeypatch):
    decisions_automated(actions={c.pk: "remove" for c in wave(1)})  # warm what is read once per process
    renders = counting(monkeypatch, notices, "_render")
    checks = counting(monkeypatch, sor, "sor_validate")
    counts = {}
    for size in (4, 40):
        renders.clear()
        checks.clear()
        cases = wave(size)
        decisions, refused = decisions_automated(actions={c.pk: "remove" for c in cases})
        assert refused == {} and len(decisions) == size
        # Each decision's own texts, for all that: its notices name its subject, its statement its puid.
        for decision in decisions:
            notice = Enforcement.objects.get(decision=decision).payload["notice"]
            assert decision.case.subject.external_id in notice["subject"]
            assert decision.statement["puid"].endswith(f"-decision-{decision.pk}")
        assert Notice.objects.filter(decision__in=decisions, kind="report_outcome").count() == size
        counts[size] = (len(renders), len(checks))
    # The decision notice (subject, body), the reporters' notice (subject, body); one statement check.
    assert counts[4] == counts[40] == (4, 1), counts


def test_a_wave_over_two_classes_reads_no_more_than_a_wave_over_one():
    decisions_automated(actions={c.pk: "remove" for c in wave(1)})
    counts = {}
    for kinds in (("spam",), ("spam", "harassment")):
        cases = wave(6, kinds=kinds)
        with CaptureQueriesContext(connection) as queries:
            decisions, refused = decisions_automated(actions={c.pk: "remove" for c in cases})
        assert refused == {} and len(decisions) == 6
        assert {d.case.threat_class.slug for d in decisions} == set(kinds)
        counts[kinds] = len(queries)
    assert len(set(counts.values())) == 1, counts


def test_a_decision_writes_its_enforcement_rows_once_with_their_bodies():
    cases = wave(5)
    with CaptureQueriesContext(connection) as queries:
        decisions, _ = decisions_automated(actions={c.pk: "remove" for c in cases})
    writes = [q["sql"] for q in queries if "reviews_enforcement" in q["sql"]]
    assert len(writes) == 1 and writes[0].lstrip().startswith("INSERT"), writes
    rows = Enforcement.objects.filter(decision__in=decisions).order_by("pk")
    assert [(e.decision_id, e.action, e.status, e.attempts) for e in rows] == [
        (d.pk, "remove", "pending", 0) for d in decisions
    ]
    for e in rows:
        assert e.payload["id"] == str(e.public_id) and e.payload["decision"] == e.decision_id
        assert e.payload["statement_of_reasons"] == e.decision.statement


def test_a_wave_reads_its_cases_without_the_columns_no_decision_reads():
    cases = wave(3)
    with CaptureQueriesContext(connection) as queries:
        decisions, refused = decisions_automated(actions={c.pk: "remove" for c in cases})
    assert refused == {} and len(decisions) == 3
    [read] = [q["sql"] for q in queries if q["sql"].startswith('SELECT "casework_case"."id"')]
    for column in ('"casework_case"."priority_breakdown"', '"casework_case"."rank"', '"casework_subject"."class_ids"'):
        assert column not in read
    assert '"casework_case"."first_signal_at"' in read and '"casework_subject"."attributes"' in read
