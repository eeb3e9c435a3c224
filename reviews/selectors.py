"""Reads of the reviews app: queue health, decisions a user may see, QA work."""

from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.db.models import BooleanField, Count, Exists, F, OuterRef, Prefetch, Q, Subquery, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, TruncHour
from django.utils import timezone

from casework.models import ACTIVE_STATUSES_SQL, WAITING_STATUSES_SQL, Case, CaseEvent, Queue, QueueTally, Subject
from casework.priority import BY_RANK, BY_RANK_ALL
from casework.services import ESCALATION_QUEUES
from docket import roles
from docket.api import count_bounded
from docket.visibility import clearances_of, restrict
from policies.models import ThreatClass, visible_classes_q

from .models import Assignment, Decision, QualityReview, RelabelItem, Strike
from .services.common import day_start

# Arrival and decision rates are measured over this many recent hours.
FORECAST_WINDOW_HOURS = 6


def queues_overview(user, *, now=None) -> list[dict]:
    """Per queue the user may see: depth, in review, oldest wait, breaching, drain forecast.

    ``depth`` counts waiting cases (open or escalated, so unassigned);
    ``breaching`` the undecided ones past their SLA; ``forecast_drain_hours``
    is depth / (decision rate - arrival rate) over the last
    ``FORECAST_WINDOW_HOURS`` hours, ``None`` when nothing is being decided,
    and ``None`` with ``drain_state`` ``"growing"`` when arrivals keep up with
    decisions. Cases of restricted classes the user is not cleared for are not
    counted. A constant number of queries, each in time independent of the
    backlog (``_TALLY_SQL``): exact at every commit.
    """
    now = now or timezone.now()
    queues = list(Queue.objects.visible_to(user).prefetch_related("threat_classes"))
    if not queues:
        return []
    since = now - timedelta(hours=FORECAST_WINDOW_HOURS)
    # Arrivals are tallied per hour of creation: the whole hours of the window (5 to 6 hours, rate per hour).
    arrivals_since = (since + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    arrival_hours = max((now - arrivals_since).total_seconds() / 3600, 1 / 60)
    hidden = list(ThreatClass.objects.hidden_from(user).values_list("id", flat=True))
    queue_ids = [q.pk for q in queues]
    params = {"now": now, "since": since, "queues": queue_ids, "hidden": hidden, "arrivals_since": arrivals_since}
    with connection.cursor() as cur:
        cur.execute(_TALLY_SQL, params)
        stats = {row[0]: row[1:] for row in cur.fetchall()}
        cur.execute(
            """
            SELECT c.queue_id, count(*)
              FROM reviews_decision d JOIN casework_case c ON c.id = d.case_id
             WHERE d.created_at >= %(since)s AND c.queue_id = ANY(%(queues)s)
               AND NOT (c.threat_class_id = ANY(%(hidden)s))
             GROUP BY c.queue_id
            """,
            {"since": since, "queues": queue_ids, "hidden": hidden},
        )
        decided = dict(cur.fetchall())
    out = []
    for q in queues:
        depth, in_review, oldest, breaching, arrivals = stats.get(q.pk, (0, 0, None, 0, 0))
        arrivals = arrivals * FORECAST_WINDOW_HOURS / arrival_hours  # over the window, as decisions are
        out.append(
            {
                "slug": q.slug,
                "name": q.name,
                "threat_classes": sorted(tc.slug for tc in q.threat_classes.all()),
                "depth": depth,
                "in_review": in_review,
                "oldest_wait_seconds": int((now - oldest).total_seconds()) if oldest else None,
                "breaching": breaching,
                **_forecast(depth, arrivals, decided.get(q.pk, 0)),
            }
        )
    return out


# Per queue, over the classes the user may see, in time independent of the backlog (casework.tallies):
# waiting, in review and breached from the tallies (a sum of a few hundred rows); past SLA adds the
# active cases the re-ranking job has not moved to the breached tier yet (an index range of a few, the
# last seconds' breaches); the oldest wait is one index probe per (queue, class); arrivals from the
# tallies' recent hours.
_TALLY_SQL = f"""
WITH tally AS (
    SELECT queue_id, threat_class_id,
           sum(waiting) AS waiting, sum(in_review) AS in_review, sum(breached) AS breached,
           sum(arrived) FILTER (WHERE hour >= %(arrivals_since)s) AS arrived
      FROM casework_queuetally
     WHERE queue_id = ANY(%(queues)s) AND NOT (threat_class_id = ANY(%(hidden)s))
     GROUP BY queue_id, threat_class_id
),
unflagged AS (
    SELECT c.queue_id, count(*) AS past_sla
      FROM casework_case c
     WHERE c.queue_id = ANY(%(queues)s) AND NOT (c.threat_class_id = ANY(%(hidden)s))
       AND c.status IN ({ACTIVE_STATUSES_SQL}) AND c.rank_tier IN (0, 2)
       AND c.sla_due_at < %(now)s
     GROUP BY c.queue_id
),
oldest AS (
    SELECT t.queue_id, min(o.created_at) AS oldest
      FROM tally t
      CROSS JOIN LATERAL (
          SELECT c.created_at FROM casework_case c
           WHERE c.queue_id = t.queue_id AND c.threat_class_id = t.threat_class_id
             AND c.status IN ({WAITING_STATUSES_SQL})
           ORDER BY c.created_at LIMIT 1) o
     WHERE t.waiting > 0
     GROUP BY t.queue_id
)
SELECT q.id,
       COALESCE((SELECT sum(waiting) FROM tally WHERE queue_id = q.id), 0)::bigint,
       COALESCE((SELECT sum(in_review) FROM tally WHERE queue_id = q.id), 0)::bigint,
       (SELECT oldest FROM oldest WHERE queue_id = q.id),
       (COALESCE((SELECT sum(breached) FROM tally WHERE queue_id = q.id), 0)
        + COALESCE((SELECT past_sla FROM unflagged WHERE queue_id = q.id), 0))::bigint,
       COALESCE((SELECT sum(arrived) FROM tally WHERE queue_id = q.id), 0)::bigint
  FROM unnest(%(queues)s::bigint[]) AS q(id)
"""


def _forecast(depth, arrivals, decisions):
    service_rate = decisions / FORECAST_WINDOW_HOURS
    arrival_rate = arrivals / FORECAST_WINDOW_HOURS
    if service_rate == 0:
        return {"forecast_drain_hours": None, "drain_state": "idle"}
    if depth == 0:
        return {"forecast_drain_hours": 0.0, "drain_state": "draining"}
    if service_rate <= arrival_rate:
        return {"forecast_drain_hours": None, "drain_state": "growing"}
    return {"forecast_drain_hours": round(depth / (service_rate - arrival_rate), 2), "drain_state": "draining"}


def queue_names() -> dict:
    """``{slug: name}`` of every queue (pages name queues by their names; a queue's name is not secret)."""
    return dict(Queue.objects.values_list("slug", "name"))


def claimable_queue_slugs(user) -> frozenset:
    """Queues whose "Claim next" this user may press: a moderator or senior working the queue, cleared for it.

    The same conditions ``queue_claim`` checks before it looks for a case
    (shift, capacity and exposure are moment-to-moment and stay its answer).
    """
    if not roles.has_any(user, (roles.MODERATOR, roles.SENIOR)):
        return frozenset()
    return frozenset(Queue.objects.visible_to(user).filter(reviewers__user=user).values_list("slug", flat=True))


def decisions_blind_to(user):
    """Decisions whose blind second review ``user`` may still do, so must not see: a queryset, or ``None``.

    A pending QA review is open to every moderator and senior but the decider, a pending
    relabel item to every reviewer (moderators, seniors, appeals staff) but the decider:
    until it is done, the first decision stays hidden from each of them (the case's
    decisions and timeline, the decision and its statement, over the API and in the UI).
    ``None`` when the user can do no blind review, so callers add no filter at all. Built once per
    user object (a request's reads share it, as they share ``roles.names``).
    """
    known = getattr(user, "_docket_blind_decisions", _UNKNOWN)
    if known is _UNKNOWN:
        known = _decisions_blind_to(user)
        if getattr(user, "pk", None) is not None:
            user._docket_blind_decisions = known
    return known


_UNKNOWN = object()


def _decisions_blind_to(user):
    names = roles.names(user)
    blind = None
    if names & {roles.MODERATOR, roles.SENIOR}:
        blind = Q(Exists(QualityReview.objects.filter(decision=OuterRef("pk"), status=QualityReview.Status.PENDING)))
    if names & set(roles.REVIEWING):
        relabel = Q(Exists(RelabelItem.objects.filter(decision=OuterRef("pk"), status=RelabelItem.Status.PENDING)))
        blind = relabel if blind is None else blind | relabel
    if blind is None:
        return None
    return Decision.objects.filter(blind).exclude(reviewer__user=user)


def decisions_visible_to(user):
    """Decisions on cases the user may see, less those under a blind second review that is theirs to do."""
    decisions = Decision.objects.filter(case__in=Case.objects.visible_to(user))
    blind = decisions_blind_to(user)
    if blind is not None:
        decisions = decisions.exclude(pk__in=blind.values("pk"))
    return decisions.select_related(
        "reviewer__user", "policy_version__policy", "case__threat_class", "case__subject", "submission"
    )


def quality_reviews_pending(reviewer):
    """Blind QA work this reviewer may do: pending, not their own decision, classes they are cleared for."""
    return (
        QualityReview.objects.filter(status="pending", decision__case__in=Case.objects.visible_to(reviewer.user))
        .exclude(decision__reviewer=reviewer)
        .select_related("decision__case")
        .order_by("created_at", "id")
    )


# --- what the moderator pages read ---------------------------------------------------------------


def _pct(part, whole):
    return 0 if not whole else max(0, min(100, round(100 * part / whole)))


def reviewer_load(reviewer, now=None) -> dict:
    """Active assignments and graphic cases claimed today (one query), with what the gauges show."""
    now = now or timezone.now()
    load = Assignment.objects.filter(reviewer=reviewer).aggregate(
        active=Count("id", filter=Q(state="active")),
        # "today" as the claim's graphic budget counts it (reviews.services.claims)
        graphic_today=Count("id", filter=Q(graphic=True, claimed_at__gte=day_start(now))),
    )
    load["max_active"] = reviewer.max_active
    load["graphic_budget"] = reviewer.graphic_budget
    load["graphic_left"] = max(reviewer.graphic_budget - load["graphic_today"], 0)
    load["capacity_pct"] = _pct(load["active"], reviewer.max_active)
    load["budget_pct"] = _pct(load["graphic_left"], reviewer.graphic_budget)
    return load


def assignments_held(reviewer):
    """The reviewer's active assignments, oldest claim first, with what the home page lists."""
    return (
        Assignment.objects.filter(reviewer=reviewer, state="active")
        .select_related("case__threat_class", "case__subject", "case__queue")
        .order_by("claimed_at")
    )


# The subjects of an account: the account and the content it owns (an index probe each).
_ACCOUNT_SUBJECTS_SQL = "SELECT s.id FROM casework_subject s WHERE s.id = %(account)s OR s.owner_id = %(account)s"
# Whether any other case is on the subject or, with an account, on the account's subjects (whoever may see it).
_LINKED_PROBE_SQL = f"""
SELECT EXISTS (SELECT 1 FROM casework_case c
                WHERE c.subject_id = ANY(ARRAY(SELECT %(subject)s UNION ALL {_ACCOUNT_SUBJECTS_SQL}))
                  AND c.id <> %(case)s)
"""


def _probe(sql, params) -> tuple:
    """A hand-written probe of whether rows exist, before a read the ORM would compile with every rule in
    it: most cases are on an account with no other case, no record, and no decision of their own yet."""
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def cases_linked(user, case, *, limit):
    """Other cases the user may see on the same subject, its owner account, or the owner's other content."""
    subject = case.subject
    account_id = subject.owner_id if subject.kind == "content" else subject.pk
    if not _probe(_LINKED_PROBE_SQL, {"subject": subject.pk, "account": account_id, "case": case.pk})[0]:
        return []
    # The linked subjects first (a probe of the subject's key and of the owner index), then their cases by the
    # case's subject index. The ids come as one array (``= ANY(ARRAY(...))``) and the order is on an expression no
    # index covers, so no plan can walk every case by creation time hoping to meet ten linked ones early: the
    # planner chose that walk whenever its statistics were missing or stale (a join, or ``IN``, with ``LIMIT``).
    subjects = Q(pk=subject.pk)
    if account_id is not None:
        subjects |= Q(pk=account_id) | Q(owner_id=account_id)
    linked_sql, linked_params = Subject.objects.filter(subjects).values("pk").query.sql_with_params()
    linked = RawSQL(
        f'"casework_case"."subject_id" = ANY(ARRAY({linked_sql}))', linked_params, output_field=BooleanField()
    )
    return list(
        restrict(Case.objects.all(), user)
        .filter(linked)
        .exclude(pk=case.pk)
        .select_related("threat_class", "subject")
        .order_by((F("created_at") + timedelta(0)).desc(), "-id")[:limit]
    )


def case_signals_by_hour(case, *, since):
    """``[{"hour", "n"}]``: the case's signals per hour since ``since``."""
    return list(
        case.signals.filter(occurred_at__gte=since)
        .annotate(hour=TruncHour("occurred_at"))
        .values("hour")
        .annotate(n=Count("id"))
        .order_by("hour")
    )


def _holder():
    return Assignment.objects.filter(case_id=OuterRef("pk"), state="active").values("reviewer__user__username")[:1]


# The queue page: its sorts (the first is the default, the claim order) and SLA states.
QUEUE_SORTS = {
    "rank": BY_RANK,  # the claim order, on the queue's rank index
    "oldest": ("created_at", "id"),  # on case_active_queue_created_idx
    "sla": ("sla_due_at", "id"),  # SLA due soonest (most overdue first), on case_active_queue_sla_idx
}
# The same orders on expressions no index covers: for a few thousand cases, a sort beats an index walk.
_IN_MEMORY = {
    "rank": ((F("rank_tier") + 0).desc(), (F("rank") + 0).desc(), F("id").asc()),
    "oldest": ((F("created_at") + timedelta(0)).asc(), F("id").asc()),
}
SLA_SOON = timedelta(hours=1)
QUEUE_PAGE_SIZE = 50
# Pages are numbered (offset) up to this one: an offset walk of the index stays short whatever the backlog.
# Deeper cases are reached by another sort or a filter, as a reviewer would anyway.
QUEUE_MAX_PAGE = 100


@dataclass(frozen=True)
class QueueListing:
    """One page of a queue: its cases, its number and the total of cases matching (``total_is_estimate`` above
    ``docket.api.EXACT_COUNT_LIMIT`` when filtered)."""

    cases: list
    number: int
    total: int
    total_is_estimate: bool
    page_size: int

    @property
    def total_shown(self) -> str:
        return f"{self.total:,}"

    @property
    def last_page(self) -> int:
        """The last page that may be asked for (at most ``QUEUE_MAX_PAGE``)."""
        return max(1, min(QUEUE_MAX_PAGE, -(-self.total // self.page_size)))

    @property
    def capped(self) -> bool:
        """More cases match than the numbered pages reach."""
        return self.total > QUEUE_MAX_PAGE * self.page_size

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.last_page and len(self.cases) == self.page_size

    @property
    def page_numbers(self) -> list:
        """The page links a pager shows: the first, the last and two either side of this one; None for a gap."""
        shown = sorted({1, self.last_page, *range(max(1, self.number - 2), min(self.last_page, self.number + 2) + 1)})
        out = []
        for n in shown:
            if out and n - out[-1] > 1:
                out.append(None)
            out.append(n)
        return out

    @property
    def first_index(self) -> int:
        return (self.number - 1) * self.page_size + 1 if self.cases else 0

    @property
    def last_index(self) -> int:
        return (self.number - 1) * self.page_size + len(self.cases)


def queue_filter_classes(user, queue):
    """The classes a queue's page may be filtered by: the queue's own (any class for a hand-off queue) the user
    may see."""
    classes = ThreatClass.objects.visible_to(user).order_by("name")
    own = [tc.pk for tc in queue.threat_classes.all()]
    return classes.filter(pk__in=own) if own else classes


def _sla_state_q(sla, now):
    if sla == "past":
        return Q(sla_due_at__lt=now)
    if sla == "soon":
        return Q(sla_due_at__gte=now, sla_due_at__lt=now + SLA_SOON)
    if sla == "ok":
        return Q(sla_due_at__gte=now + SLA_SOON)
    raise ValueError(f"unknown SLA state {sla!r}")


def _queue_tally_total(user, queue, threat_class):
    """Active cases of the queue (of one class) the user may see, from the queue tallies: a sum of a few rows."""
    tallies = QueueTally.objects.filter(queue_id=queue.pk).exclude(
        threat_class_id__in=ThreatClass.objects.hidden_from(user).values("id")
    )
    if threat_class is not None:
        tallies = tallies.filter(threat_class_id=threat_class.pk)
    return tallies.aggregate(n=Coalesce(Sum(F("waiting") + F("in_review")), 0))["n"]


def queue_listing(
    user,
    queue,
    *,
    threat_class=None,
    status=None,
    campaign=None,
    sla=None,
    sort="rank",
    page=1,
    now=None,
) -> QueueListing:
    """One page of a queue's active cases the user may see, filtered and sorted, with the total matching.

    Filters: ``threat_class`` (a class), ``status`` (one of the active statuses), ``campaign``, ``sla``
    (``past`` its SLA, due within ``SLA_SOON`` (``soon``), or later (``ok``), at ``now``). ``sort`` is a
    key of ``QUEUE_SORTS``. Each case carries its holder's username (``holder``). The total is the
    queue tallies' (exact, a few rows summed) when only a class or nothing narrows the queue, else
    ``docket.api.count_bounded`` (exact up to 10,000, an estimate above). Pages beyond
    ``QUEUE_MAX_PAGE`` are not served. A constant number of queries, each walking an index of the
    queue in the page's order, so the cost does not grow with the backlog.
    """
    if sort not in QUEUE_SORTS:
        raise ValueError(f"unknown sort {sort!r}")
    if not 1 <= page <= QUEUE_MAX_PAGE:
        raise ValueError(f"page {page} out of 1..{QUEUE_MAX_PAGE}")
    now = now or timezone.now()
    page_size = QUEUE_PAGE_SIZE
    cases = restrict(Case.objects.all(), user).filter(queue=queue, status__in=Case.ACTIVE_STATUSES)
    if threat_class is not None:
        cases = cases.filter(threat_class_id=threat_class.pk)
    if status is not None:
        cases = cases.filter(status=status)
    if campaign is not None:
        cases = cases.filter(campaign_id=campaign.pk)
    order = QUEUE_SORTS[sort]
    if sla is not None:
        cases = cases.filter(_sla_state_q(sla, now))
        # An SLA state is a range of the queue's SLA index: read it there, in its order. The planner cannot
        # know how a queue's SLAs spread (one queue's cases all due in days, another's all late), and a
        # wrong guess walks the whole queue or the whole table for a few rows.
        by_sla = cases.order_by(*QUEUE_SORTS["sla"])
        total, estimate = count_bounded(by_sla, ordered=True)
        if sort != "sla" and not estimate:
            # At most EXACT_COUNT_LIMIT cases: sorted in memory (the outer order matches no index).
            cases = Case.objects.filter(pk__in=by_sla[: total or 1].values("pk"))
            order = _IN_MEMORY[sort]
    elif status is None and campaign is None:
        total, estimate = _queue_tally_total(user, queue, threat_class), False
    else:
        total, estimate = count_bounded(cases)
    # The offset is walked over the bare cases (an index), and only the page shown is joined.
    start = (page - 1) * page_size
    shown_ids = cases.order_by(*order).values("pk")[start : start + page_size]
    shown = list(
        Case.objects.filter(pk__in=shown_ids)
        .select_related("threat_class", "subject", "campaign")
        .annotate(holder=Subquery(_holder()))
        .order_by(*order)
    )
    return QueueListing(cases=shown, number=page, total=total, total_is_estimate=estimate, page_size=page_size)


def campaign_members(user, campaign):
    """A campaign's member cases the user may see, highest priority first, with their holder."""
    return list(
        restrict(Case.objects.all(), user)
        .filter(campaign=campaign)
        .select_related("threat_class", "subject", "queue")
        .annotate(holder=Subquery(_holder()))
        .order_by(*BY_RANK_ALL)
    )


def escalated_cases(user, *, limit):
    """Active cases of the escalation queues the user may see, with who escalated them, from where and why."""
    reason = CaseEvent.objects.filter(case_id=OuterRef("pk"), kind=CaseEvent.Kind.ESCALATED).order_by("-at", "-id")
    return list(
        restrict(Case.objects.all(), user)
        .filter(queue__slug__in=ESCALATION_QUEUES, status__in=Case.ACTIVE_STATUSES)
        .select_related("threat_class", "subject", "queue")
        .annotate(
            holder=Subquery(_holder()),
            reason=Subquery(reason.values("detail__reason")[:1]),
            escalated_by=Subquery(reason.values("actor_label")[:1]),
            from_queue=Subquery(reason.values("detail__from_queue")[:1]),
        )
        .order_by("queue__position", *BY_RANK)[:limit]
    )


# What ``account_record`` reads of each row: a prior decision's link, class, action, rule, date and overturn; a
# strike's expiry and its decision's action.
RECORD_DECISION_FIELDS = ("case_id", "action", "rule", "created_at", "overturned", "case__threat_class__name")
RECORD_STRIKE_FIELDS = ("account_id", "decision_id", "created_at", "expires_at", "decision__action")


# Whether the account has any decision on its or its content's other cases, and any active strike, whoever may
# see them: one light statement, so that an account with no record (most accounts a case is about) costs no more.
_RECORD_PROBE_SQL = f"""
SELECT EXISTS (SELECT 1 FROM casework_case c JOIN reviews_decision d ON d.case_id = c.id
                WHERE c.subject_id = ANY(ARRAY({_ACCOUNT_SUBJECTS_SQL})) AND c.id <> %(case)s),
       EXISTS (SELECT 1 FROM reviews_strike st
                WHERE st.account_id = %(account)s AND st.removed_at IS NULL AND st.expires_at > %(now)s)
"""


def account_record(*, user, case, limit: int = 5, now=None) -> dict:
    """The account behind ``case`` at a glance: its earlier decisions and its active strikes.

    The account is the subject, or the owner of a content subject. ``decisions``: the latest
    ``limit`` decisions on the account's or its content's other cases the user may see;
    ``strikes``: the account's active strikes from decisions the user may see. A probe of whether
    either exists, then a query for each that does (the ORM compiles the rules of what the user may see
    into them, which costs more than the reads).
    """
    now = now or timezone.now()
    subject = case.subject
    account = subject if subject.kind == "account" else subject.owner
    if account is None:
        return {"account": None, "decisions": [], "strikes": []}
    any_decision, any_strike = _probe(_RECORD_PROBE_SQL, {"account": account.pk, "case": case.pk, "now": now})
    if not (any_decision or any_strike):
        return {"account": account, "decisions": [], "strikes": []}
    blind = decisions_blind_to(user)  # a decision under a blind review the user may do tells nothing
    # Only the columns the account's record shows: a decision's case, subject and reviewer rows (their
    # JSON and text included) are read and decoded for nothing otherwise, on every case page.
    decisions, strikes = [], []
    if any_decision:
        visible_cases = Case.objects.visible_to(user).filter(Q(subject_id=account.pk) | Q(subject__owner_id=account.pk))
        found = Decision.objects.filter(case__in=visible_cases.exclude(pk=case.pk))
        if blind is not None:
            found = found.exclude(pk__in=blind.values("pk"))
        decisions = list(
            found.select_related("case__threat_class")
            .only(*RECORD_DECISION_FIELDS)
            .order_by("-created_at", "-id")[:limit]
        )
    if any_strike:
        found = Strike.objects.filter(
            account_id=account.pk,
            removed_at__isnull=True,
            expires_at__gt=now,
            decision__case__in=Case.objects.visible_to(user),
        )
        if blind is not None:
            found = found.exclude(decision__in=blind.values("pk"))
        strikes = list(found.select_related("decision").only(*RECORD_STRIKE_FIELDS).order_by("-created_at", "-id"))
    return {"account": account, "decisions": decisions, "strikes": strikes}


def case_decisions_shown(user, case) -> tuple[list, list]:
    """``(decisions, hidden)``: the case's decisions the user may see, with their reviewer and policy, and the
    ids of those under a blind second review that is theirs to do (whose events are left out too, found in the
    same query). A case with no decision yet costs a probe."""
    if not _probe("SELECT EXISTS (SELECT 1 FROM reviews_decision WHERE case_id = %(case)s)", {"case": case.pk})[0]:
        return [], []
    decisions = case.decisions.select_related("reviewer__user", "policy_version__policy")
    blind = decisions_blind_to(user)
    if blind is not None:
        decisions = decisions.annotate(blind=Exists(blind.filter(pk=OuterRef("pk"))))
    decisions = list(decisions)
    hidden = [d.pk for d in decisions if getattr(d, "blind", False)]
    return [d for d in decisions if d.pk not in hidden], hidden


# --- what reviews adds to casework's reads (registered in ReviewsConfig.ready) ---------------------------


def case_display_prefetches(*, user=None) -> list[Prefetch]:
    """A case's active assignment (``active_assignments``) and decision ids (``decision_list``), for its display;
    with ``user``, less the decisions under a blind second review that is theirs to do."""
    decisions = Decision.objects.only("id", "case_id").order_by("id")
    blind = decisions_blind_to(user) if user is not None else None
    if blind is not None:
        decisions = decisions.exclude(pk__in=blind.values("pk"))
    return [
        Prefetch(
            "assignments",
            queryset=Assignment.objects.filter(state="active").select_related("reviewer__user"),
            to_attr="active_assignments",
        ),
        Prefetch("decisions", queryset=decisions, to_attr="decision_list"),
    ]


def strike_actions(accounts, *, now, user) -> dict[int, str]:
    """Per account, the action of its most recent active strike (not removed, not expired) from a decision
    on a class ``user`` may see (``None``: unrestricted classes only), none under a blind second review that is
    theirs to do; one query."""
    strikes = Strike.objects.filter(account_id__in=accounts, removed_at__isnull=True, expires_at__gt=now).filter(
        visible_classes_q(clearances_of(user), prefix="decision__case__threat_class__")
    )
    blind = decisions_blind_to(user) if user is not None else None
    if blind is not None:  # a decision under a blind review the user may do recommends nothing to them
        strikes = strikes.exclude(decision__in=blind.values("pk"))
    rows = (
        strikes.order_by("account_id", "-created_at", "-id")
        .distinct("account_id")
        .values_list("account_id", "decision__action")
    )
    return dict(rows)


def relabel_items_for(user):
    """Relabel items of the classes ``user`` may see, oldest first."""
    visible = ThreatClass.objects.visible_to(user)
    qs = RelabelItem.objects.select_related(
        "policy_version__policy__threat_class", "decision__case__subject", "reviewer__user"
    ).filter(policy_version__policy__threat_class__in=visible)
    if not roles.has_any(user, roles.STAFF):
        return qs.none()
    return qs
