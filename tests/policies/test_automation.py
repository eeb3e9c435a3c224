"""Automation acts only within each class's tolerance; the holdout keeps measuring its precision."""

import math
import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from casework.intake import signals_ingest
from casework.models import Case, Signal
from oversight.metrics import compute_snapshot
from policies.models import REVERSIBLE_ACTIONS
from reviews.models import Decision, Enforcement
from reviews.services import decision_make, decisions_automated, queue_claim

pytestmark = pytest.mark.django_db


def detection(n, *, source, kind, score, subject=None):
    return {
        "source": source,
        "external_id": f"d-{n}",
        "threat_class": kind,
        "subject": {"kind": "account", "external_id": subject or f"u-{n}", "reach": 100},
        "score": score,
    }


def ingest(items, platform):
    return signals_ingest(items=items, actor=platform).body


@pytest.fixture
def automation_everywhere(sources, set_threshold):
    """Every source may automate at 0.9 and reviews from 0.5: only the class's tolerance holds automation back."""
    for kind, source in sources.items():
        set_threshold(source.slug, kind, auto_action_at=0.9, review_at=0.5)


def test_harassment_at_099_still_goes_to_a_human(automation_everywhere, no_holdout, platform):
    result = ingest(detection(1, source="harassment-clf", kind="harassment", score=0.99), platform)
    assert result["disposition"] == "queued"
    case = Case.objects.get(pk=result["case"])
    assert (case.status, case.queue.slug) == ("open", "harassment")
    assert not Decision.objects.exists()


def test_spam_above_threshold_is_auto_actioned(automation_everywhere, no_holdout, platform):
    results = ingest(
        [
            detection(1, source="spam-clf", kind="spam", score=0.95),
            detection(2, source="spam-clf", kind="spam", score=0.9),
            detection(3, source="spam-clf", kind="spam", score=0.7),
            detection(4, source="spam-clf", kind="spam", score=0.2),
        ],
        platform,
    )
    assert [r["disposition"] for r in results] == ["auto_actioned", "auto_actioned", "queued", "below_threshold"]
    assert results[3]["case"] is None
    decided = Decision.objects.filter(case_id__in=[results[0]["case"], results[1]["case"]])
    assert sorted(decided.values_list("action", "automated", "reviewer")) == [("remove", True, None)] * 2
    assert Case.objects.get(pk=results[0]["case"]).status == "decided"
    assert Case.objects.get(pk=results[2]["case"]).status == "open"


def test_ato_automation_takes_only_the_reversible_lock(automation_everywhere, no_holdout, platform):
    result = ingest(detection(1, source="login-risk", kind="ato", score=0.97), platform)
    assert result["disposition"] == "auto_actioned"
    decision = Decision.objects.get(case_id=result["case"])
    assert (decision.action, decision.automated) == ("lock", True)
    assert decision.action in REVERSIBLE_ACTIONS
    assert list(Enforcement.objects.filter(decision=decision).values_list("action", flat=True)) == ["lock"]


def test_csam_hash_match_goes_to_the_top_of_the_csam_queue_and_a_human_files_the_report(
    automation_everywhere, no_holdout, platform, senior
):
    reported = signals_ingest(
        items={
            "source": "user-reports",
            "external_id": "r-1",
            "threat_class": "csam",
            "subject": {"kind": "content", "external_id": "c-1", "reach": 50},
            "reporter": "rep-1",
        },
        actor=platform,
    ).body
    matched = ingest(detection(1, source="photo-hash", kind="csam", score=1.0, subject="c-2"), platform)
    assert (reported["disposition"], matched["disposition"]) == ("queued", "queued")
    assert not Decision.objects.exists()  # automation none: no automated action at any score
    top = Case.objects.filter(queue__slug="csam", status="open").order_by("-priority", "id").first()
    assert top.pk == matched["case"]

    # a cleared human takes it first and decides; the legal report is filed with the decision
    assignment = queue_claim(reviewer=senior.reviewer, queue_slug="csam")
    assert assignment.case_id == matched["case"]
    decision = decision_make(case_id=matched["case"], reviewer=senior.reviewer, action="remove", rule="CS-1")
    assert decision.automated is False
    assert sorted(Enforcement.objects.filter(decision=decision).values_list("action", flat=True)) == [
        "legal_report",
        "remove",
    ]


def test_holdout_fraction_over_10000_auto_actionable_signals(sources, set_threshold, platform, settings):
    """Each auto-actionable signal goes to a human with probability HOLDOUT_RATE (2%).

    With n = 10,000 the count is Binomial(n, 0.02): mean 200, sd 14. The bounds
    are mean ± 5 sd (a false alarm about once in 3.5 million runs); the seed
    makes the run reproducible. Every other signal is decided by automation,
    a wave at a time through the set-based decision path.
    """
    assert settings.DOCKET["HOLDOUT_RATE"] == 0.02
    set_threshold("spam-clf", "spam", auto_action_at=0.9, review_at=0.5)
    random.seed(20261124)
    n = 10_000
    for start in range(0, n, 1000):
        ingest([detection(i, source="spam-clf", kind="spam", score=0.95) for i in range(start, start + 1000)], platform)

    held_for_humans = Signal.objects.filter(holdout=True)
    count = held_for_humans.count()
    mean, sd = n * 0.02, math.sqrt(n * 0.02 * 0.98)
    assert mean - 5 * sd <= count <= mean + 5 * sd, count
    assert held_for_humans.exclude(disposition="queued").count() == 0
    assert Case.objects.filter(holdout=True, status="open").count() == count
    assert Signal.objects.filter(disposition="auto_actioned").count() == n - count
    assert Decision.objects.filter(automated=True).count() == n - count


def test_automated_precision_from_holdout_decisions(sources, set_threshold, platform, make_user, settings):
    """Every auto-actionable signal held out; humans agree on 2 of 3: precision 2/3 with its Wilson interval."""
    settings.DOCKET = {**settings.DOCKET, "HOLDOUT_RATE": 1.0}
    set_threshold("spam-clf", "spam", auto_action_at=0.9, review_at=0.5)
    results = ingest([detection(i, source="spam-clf", kind="spam", score=0.99) for i in range(3)], platform)
    assert [r["disposition"] for r in results] == ["queued"] * 3
    reviewer = make_user("mod-h", "moderator", max_active=3).reviewer
    for action in ("remove", "no_violation", "label"):
        assignment = queue_claim(reviewer=reviewer, queue_slug="spam")
        decision_make(case_id=assignment.case_id, reviewer=reviewer, action=action, rule="SP-1")
    assert Decision.objects.filter(holdout=True, automated=False).count() == 3

    spam = next(c for c in compute_snapshot(clearances=frozenset())["threat_classes"] if c["slug"] == "spam")
    precision = spam["auto_action_precision"]
    assert (precision["estimate"], precision["n"]) == (2 / 3, 3)
    assert precision["low"] == pytest.approx(0.2076, abs=1e-4)
    assert precision["high"] == pytest.approx(0.9385, abs=1e-4)


def test_a_wave_of_auto_actioned_signals_is_decided_set_based(automation_everywhere, no_holdout, platform):
    """Deciding 40 cases costs the queries of deciding 4: one lock, one decision write and one publication
    (statements, enforcement bodies, notices) for the wave."""
    counts = {}
    for size, offset in ((4, 1000), (40, 2000)):
        with CaptureQueriesContext(connection) as captured:
            results = ingest(
                [detection(offset + n, source="spam-clf", kind="spam", score=0.95) for n in range(size)], platform
            )
        assert [r["disposition"] for r in results] == ["auto_actioned"] * size
        decided = Decision.objects.filter(case_id__in=[r["case"] for r in results])
        assert decided.count() == size and set(decided.values_list("automated", flat=True)) == {True}
        assert decided.filter(statement__isnull=False).count() == size  # each published with its statement
        assert set(Case.objects.filter(pk__in=[r["case"] for r in results]).values_list("status", flat=True)) == {
            "decided"
        }
        counts[size] = len(captured)
    assert counts[40] == counts[4], counts


def test_a_wave_keeps_the_cases_automation_may_not_decide_for_a_human(automation_everywhere, no_holdout, platform):
    results = ingest([detection(n, source="spam-clf", kind="spam", score=0.95) for n in range(3)], platform)
    already = results[0]["case"]
    open_case = Case.objects.create(
        subject=Case.objects.get(pk=already).subject,
        threat_class=Case.objects.get(pk=already).threat_class,
        queue=Case.objects.get(pk=already).queue,
        severity=2,
        harm_weight=1.0,
        first_signal_at=Case.objects.get(pk=already).first_signal_at,
        last_signal_at=Case.objects.get(pk=already).last_signal_at,
        sla_due_at=Case.objects.get(pk=already).sla_due_at,
        created_at=Case.objects.get(pk=already).created_at,
    )
    decisions, refused = decisions_automated(actions={already: "remove", open_case.pk: "remove", 10**9: "remove"})
    assert [d.case_id for d in decisions] == [open_case.pk]
    assert set(refused) == {already, 10**9}  # decided meanwhile; gone
    assert Decision.objects.filter(case_id=already).count() == 1
