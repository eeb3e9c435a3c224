"""Every list endpoint and UI page answers in a bounded number of queries that does not grow with the rows.

Each path is requested over a small world, then again after the world grew by
ten times (more cases, signals, events, decisions with their enforcements,
strikes and QA samples, appeals, campaign members, sources, threshold changes,
relabel items): the count must stay the same (no N+1) and within its bound.
"""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from appeals.models import Appeal
from casework.models import Campaign, ReporterClassRecord, SubjectAttribute
from casework.services import case_note_add
from docket.accounts import token_for
from docket.models import ApiToken
from policies.services import threshold_change_propose
from reviews.models import Decision, QualityReview, RelabelItem
from reviews.services import case_escalate, decision_make, queue_claim
from tests.factories import (
    CaseFactory,
    ReporterFactory,
    SignalFactory,
    SourceFactory,
    SubjectFactory,
    active_version,
    threat_class,
)

# Every human decision sampled for blind QA: its QA review is among the rows the paths read.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("always_qa")]


@pytest.fixture(autouse=True)
def private_cache(settings):
    """A per-test cache, cleared before every request: the metrics snapshot is computed, not served."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "perf"}}


class World:
    """The rows every listed path reads, grown ``n`` at a time through the services where they exist."""

    def __init__(self, make_user):
        self.moderator = make_user("perf-mod", "moderator", queues=["spam", "harassment"], max_active=1000)
        self.decider = make_user("perf-decider", "moderator", queues=["spam", "harassment"], max_active=1000)
        self.senior = make_user(
            "perf-senior", "senior,moderator", clearances=["csam", "cib"], queues=["spam", "escalations"]
        )
        self.appeals = make_user("perf-appeals", "appeals")
        self.admin = make_user("perf-admin", "policy_admin")
        self.campaign = Campaign.objects.create(
            threat_class=threat_class("spam"),
            links=[{"kind": "device", "value": "d-1"}],
            size=0,
            detected_at=timezone.now(),
        )
        self.focus = CaseFactory(kind="spam", priority=10_000.0)  # the case every detail page shows
        self.held = None
        self.grown = 0
        self.reporter_id = "perf-reporter"  # reports a subject of each class every time the world grows
        self.shared_reporter = ReporterFactory(external_id=self.reporter_id)
        SubjectAttribute.objects.create(
            subject=self.focus.subject, kind="device", value="perf-device", seen_at=timezone.now()
        )

    def grow(self, n):
        now = timezone.now()
        source = SourceFactory(slug="perf-classifier")
        for i in range(n):
            k = self.grown + i
            reporter = ReporterFactory()
            for kind in ("spam", "harassment", "csam"):
                subject = SubjectFactory()
                case = CaseFactory(kind=kind, subject=subject, priority=float(k), campaign=self.campaign)
                SignalFactory(
                    subject=subject, threat_class=case.threat_class, disposition="queued", case=case, reporter=reporter
                )
                SignalFactory(subject=subject, threat_class=case.threat_class, reporter=self.shared_reporter)
                # The record the decision pipeline keeps on each class (the case page tells the visible ones').
                ReporterClassRecord.objects.create(
                    reporter=reporter, threat_class=case.threat_class, reports_decided=2, reports_upheld=1
                )
                # Linked to the focus subject (one hop) and, through a second value, to others (two hops).
                SubjectAttribute.objects.create(subject=subject, kind="device", value="perf-device", seen_at=now)
                SubjectAttribute.objects.create(subject=subject, kind="payment", value=f"perf-pay-{k}", seen_at=now)
                SubjectAttribute.objects.create(
                    subject=SubjectFactory(), kind="payment", value=f"perf-pay-{k}", seen_at=now
                )
            SignalFactory(  # reported by someone with a record: the case page tells it
                subject=self.focus.subject,
                threat_class=self.focus.threat_class,
                disposition="queued",
                case=self.focus,
                reporter=reporter,
            )
            SignalFactory(source=source, score=0.5)
            SourceFactory()
            case_note_add(case_id=self.focus.pk, actor=self.senior, text=f"note {k}")
            # A decided case with its assignment, events, strike, enforcement and QA sample.
            top = CaseFactory(kind="spam", priority=1e6)
            assignment = queue_claim(reviewer=self.decider, queue_slug="spam")
            assert assignment.case_id == top.pk
            decision = decision_make(case_id=top.pk, reviewer=self.decider, action="remove", rule="SP-1")
            Appeal.objects.create(
                decision_id=decision.pk,
                appellant=f"u-{k}",
                statement="not me",
                received_at=now,
                deadline=now + timedelta(days=3),
            )
            RelabelItem.objects.create(policy_version=active_version("spam"), decision_id=decision.pk, created_at=now)
            # A case escalated by its holder, waiting in the escalations queue.
            CaseFactory(kind="harassment", priority=1e6)
            escalated = queue_claim(reviewer=self.decider, queue_slug="harassment")
            case_escalate(
                case_id=escalated.case_id, actor=self.decider, queue_slug="escalations", reason="needs a senior"
            )
            threshold_change_propose(
                source_slug="perf-classifier",
                threat_class_slug="spam",
                auto_action_at=None,
                review_at=round(0.1 + 0.8 * (k % 9) / 9, 3),
                reason=f"tuning {k}",
                actor=self.admin,
            )
        if self.held is None:  # the moderator holds the focus case, so the case page shows its assignment
            self.focus.priority = 1e7
            self.focus.save(update_fields=["priority"])
            self.held = queue_claim(reviewer=self.moderator, queue_slug="spam")
            assert self.held.case_id == self.focus.pk
        self.grown += n

    def paths(self):
        decision = Decision.objects.order_by("id").first()
        appeal = Appeal.objects.order_by("id").first()
        focus = self.focus.pk
        return [
            # (label, user, path)
            ("API cases", self.senior, "/api/v1/cases/"),
            ("API cases filtered", self.senior, "/api/v1/cases/?status=open&queue=spam&ordering=-created_at"),
            ("API cases assigned_to", self.senior, f"/api/v1/cases/?assigned_to={self.moderator.username}"),
            ("API case detail", self.senior, f"/api/v1/cases/{focus}/"),
            ("API case events", self.senior, f"/api/v1/cases/{focus}/events/"),
            ("API case export", self.senior, f"/api/v1/cases/{focus}/export/"),
            ("API sources", self.moderator, "/api/v1/sources/"),
            ("API campaigns", self.senior, "/api/v1/campaigns/"),
            ("API campaign detail", self.senior, f"/api/v1/campaigns/{self.campaign.pk}/"),
            ("API queues", self.senior, "/api/v1/queues/"),
            ("API quality reviews", self.senior, "/api/v1/quality-reviews/"),
            # Read by its decider: every decision here is under a blind QA review that hides it from the others.
            ("API decision", self.decider, f"/api/v1/decisions/{decision.pk}/"),
            ("API statement of reasons", self.decider, f"/api/v1/decisions/{decision.pk}/statement-of-reasons/"),
            ("API appeals", self.appeals, "/api/v1/appeals/"),
            ("API appeal detail", self.appeals, f"/api/v1/appeals/{appeal.pk}/"),
            ("API thresholds", self.admin, "/api/v1/thresholds/"),
            ("API threshold changes", self.admin, "/api/v1/threshold-changes/"),
            ("API relabels", self.senior, "/api/v1/relabels/"),
            ("API metrics", self.senior, "/api/v1/metrics/"),
            ("API policies", self.senior, "/api/v1/policies/"),
            ("API subject search", self.senior, "/api/v1/subjects/?q=u-"),
            ("API subject search by reporter", self.senior, f"/api/v1/subjects/?q={self.reporter_id}"),
            ("API subject", self.senior, f"/api/v1/subjects/account/{self.focus.subject.external_id}/?hops=2"),
            ("API access log", self.admin, "/api/v1/access-log/"),
            ("UI home", self.moderator, "/"),
            ("UI dashboard", self.senior, "/dashboard/"),
            ("UI escalations", self.senior, "/escalations/"),
            ("UI queue page", self.senior, "/queues/spam/"),
            (
                "UI queue page filtered",
                self.senior,
                f"/queues/spam/?threat_class=spam&status=open&campaign={self.campaign.pk}&sla=ok&sort=sla&page=2",
            ),
            ("UI campaign page", self.senior, f"/campaigns/{self.campaign.pk}/"),
            ("UI source page", self.admin, "/sources/perf-classifier/"),
            ("UI case page", self.moderator, f"/cases/{focus}/"),
            ("UI appeals queue", self.appeals, "/appeals/"),
            ("UI appeal page", self.appeals, f"/appeals/{appeal.pk}/"),
            ("UI search", self.senior, "/search/?q=u-"),
            ("UI subject page", self.senior, f"/subjects/account/{self.focus.subject.external_id}/?hops=2"),
        ]


def _counts(world):
    """Queries per path (a fresh client per user: session and token lookups are part of the count)."""

    counts = {}
    for label, user, path in world.paths():
        client = Client()
        if path.startswith("/api/"):
            client.defaults["HTTP_AUTHORIZATION"] = f"Token {token_for(user)}"
            # A token's last use is written at most once a minute: count the requests in between.
            ApiToken.objects.filter(user=user).update(last_used_at=timezone.now())
        else:
            client.force_login(user)
        cache.clear()
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)
        assert response.status_code == 200, (label, response.status_code, response.content[:300])
        counts[label] = len(queries)
    return counts


# Upper bounds: today's counts. A new query on one of these paths is a decision, not an accident.
BOUNDS = {
    "API cases": 9,
    "API cases filtered": 9,
    "API cases assigned_to": 9,
    "API case detail": 8,
    "API case events": 8,
    "API case export": 12,  # + the access-log row
    "API sources": 6,  # + the reader's clearances and the classes hidden from them (rates per class), incidents
    "API campaigns": 8,  # + the classes hidden from the reader, the links their members may tell
    "API campaign detail": 7,  # the same two
    "API queues": 8,
    "API quality reviews": 6,
    "API decision": 4,
    "API statement of reasons": 5,
    "API appeals": 5,
    "API appeal detail": 5,  # + the access-log row
    "API thresholds": 3,
    "API threshold changes": 5,  # + the classes hidden from the reader (restricted classes' changes)
    "API relabels": 5,
    "API metrics": 26,  # a cache miss: the snapshot's aggregates (one scan per table)
    "API policies": 6,
    "API subject search": 4,  # one statement: candidates, count, page and figures
    "API subject search by reporter": 4,
    "API subject": 11,  # appeals, campaigns, content, attributes and the chart in one statement
    "API access log": 4,
    "UI home": 12,  # the reviewer profile read once: its clearances serve the visibility checks
    "UI dashboard": 32,  # sources and incidents read live (held and rates per class); the TDB outbox counts
    "UI escalations": 7,  # + the queues the user may claim from ("Claim next" only there), the queues' names
    "UI queue page": 11,  # + the class filter's choices, the total from the queue tallies
    "UI queue page filtered": 13,  # + the class and campaign asked for, looked up; a bounded count for the total
    "UI campaign page": 9,
    "UI source page": 8,  # + the reader's clearances and the classes hidden from them
    # prior decisions, strikes (the recommendation steps up from the latest), reporters' records, the campaign and
    # subject as the reader sees
    "UI case page": 17,  # (its reports have reporters: their records are read, one query)
    "UI appeals queue": 8,
    "UI appeal page": 11,  # + the access-log row
    "UI search": 5,
    "UI subject page": 12,
}


def test_every_list_and_page_keeps_its_query_count_as_rows_grow(make_user):
    world = World(make_user)
    world.grow(2)
    small = _counts(world)
    assert set(small) == set(BOUNDS)
    world.grow(18)
    large = _counts(world)
    assert QualityReview.objects.count() == 20 and Appeal.objects.count() == 20
    grew = {label: (small[label], large[label]) for label in small if large[label] != small[label]}
    assert grew == {}, f"query count grows with the rows (N+1): {grew}"
    over = {label: (large[label], BOUNDS[label]) for label in large if large[label] > BOUNDS[label]}
    assert over == {}, f"over the bound: {over}"


# The UI's decision (the case page's form): the decision, its publication, and the next claim (decide and next).
DECIDE_BOUND = 21


def test_a_decision_from_the_case_page_and_the_next_claim_keep_their_query_count(make_user):
    moderator = make_user("perf-decide", "moderator", queues=["spam"], max_active=10)
    held = CaseFactory(kind="spam", priority=1e6)
    following = CaseFactory(kind="spam", priority=1e5)
    assert queue_claim(reviewer=moderator, queue_slug="spam").case_id == held.pk
    client = Client()
    client.force_login(moderator)
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        response = client.post(f"/cases/{held.pk}/decision/", {"action": "remove", "rule": "SP-1", "rationale": ""})
    assert response.status_code == 302 and response["Location"] == f"/cases/{following.pk}/"
    assert Decision.objects.filter(case=held).exists()
    assert len(queries) <= DECIDE_BOUND, [q["sql"][:120] for q in queries.captured_queries]
