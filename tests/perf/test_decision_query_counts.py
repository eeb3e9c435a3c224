"""Deciding many cases costs the queries of deciding a few: the pipeline and its publication are set-based.

Each path decides 4 cases, then 40 (after one to warm up) (each case with a classifier detection and
a user report, so every decision gets a statement of reasons with its
submission row, enforcement bodies and a notice to its reporter): the two
counts must be equal.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from casework.models import Campaign, Case
from reviews.models import Decision, Enforcement, Notice, StatementSubmission
from reviews.services import campaign_decide, decisions_automated, decisions_bulk
from tests.factories import CaseFactory, SourceFactory, classified_and_reported, threat_class

# Every decision sampled for blind QA: the sample's writes are counted too.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("always_qa")]

# A first batch warms what is read once per process (the installation's puid prefix, the roles).
SIZES = (1, 4, 40)


def reported_cases(n, *, campaign=None):
    classifier = SourceFactory(slug="qc-classifier")
    return [
        classified_and_reported(
            CaseFactory(kind="spam", campaign=campaign, signal_count=2, reporter_count=1), classifier
        )
        for _ in range(n)
    ]


def published(decisions):
    """Everything a decision tells the world was written for each of these decisions."""
    ids = [d.pk for d in decisions]
    assert Decision.objects.filter(pk__in=ids, statement__isnull=False).count() == len(ids)
    assert StatementSubmission.objects.filter(decision_id__in=ids, status="pending").count() == len(ids)
    assert Enforcement.objects.filter(decision_id__in=ids).exclude(payload={}).count() == len(ids)
    assert Notice.objects.filter(decision_id__in=ids, kind="report_outcome").count() == len(ids)
    return True


def test_a_campaign_decision_costs_the_same_queries_for_4_and_40_cases(senior):
    counts = {}
    for size in SIZES:
        campaign = Campaign.objects.create(threat_class=threat_class("spam"), size=size, detected_at=timezone.now())
        reported_cases(size, campaign=campaign)
        with CaptureQueriesContext(connection) as queries:
            decisions = campaign_decide(
                campaign_id=campaign.pk, actor=senior, action="remove", rule="SP-1", rationale="one network"
            )
        assert len(decisions) == size and published(decisions)
        counts[size] = len(queries)
    assert counts[40] == counts[4], counts


def test_an_automated_wave_costs_the_same_queries_for_4_and_40_cases():
    counts = {}
    for size in SIZES:
        cases = reported_cases(size)
        with CaptureQueriesContext(connection) as queries:
            decisions, refused = decisions_automated(actions={c.pk: "remove" for c in cases})
        assert refused == {} and len(decisions) == size and published(decisions)
        assert set(Case.objects.filter(pk__in=[c.pk for c in cases]).values_list("status", flat=True)) == {"decided"}
        counts[size] = len(queries)
    assert counts[40] == counts[4], counts


def test_a_bulk_decision_on_a_queue_costs_the_same_queries_for_4_and_40_cases(senior):
    counts = {}
    for size in SIZES:
        cases = reported_cases(size)
        already = CaseFactory(kind="spam", status="decided", decided_at=timezone.now())  # refused, whatever the size
        with CaptureQueriesContext(connection) as queries:
            decisions, refused = decisions_bulk(
                case_ids=[*(c.pk for c in cases), already.pk], reviewer=senior, action="remove", rule="SP-1"
            )
        assert list(refused) == [already.pk] and refused[already.pk].code == "invalid_transition"
        assert [d.case_id for d in decisions] == [c.pk for c in cases] and published(decisions)
        counts[size] = len(queries)
    assert counts[40] == counts[4], counts
