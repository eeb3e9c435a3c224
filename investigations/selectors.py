"""Investigation reads: subject search, a subject's whole history and the subjects linked to it.

This app sits above appeals: it reads cases, decisions, strikes and appeals and
imports every layer below it, never the other way round. Visibility follows the
cases: a restricted class's cases, decisions, strikes, appeals and signals are
left out for a user without its clearance, and a subject whose only cases (or
signals) are of such classes does not exist for them.

A search is one statement whatever the tables' size. Each source of candidates
walks an index in the order results are listed (external ids in the C-collation
index; the holders of a value and a reporter's subjects by subject id), tests
visibility on the subject's row (the class ids it keeps, ``casework.subject_classes``;
for the holders of a value, on the attribute rows, which keep them too, so the walk
reads the value index alone) and stops after the cap of visible subjects; the
figures are read for the page alone. A value held by a whole CDN costs what the cap allows, never what its
popularity would.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.utils import timezone

from casework.models import Case, Subject
from casework.subject_classes import subject_visible_with
from docket.conf import setting
from docket.errors import DocketError, not_found
from policies.models import ThreatClass
from reviews.models import Decision, Strike
from reviews.selectors import decisions_blind_to

# Candidates read per source (external id prefix, attribute value, reporter, case id): the count of
# results is exact up to this many and flagged as an estimate beyond (API.md "Lists").
SEARCH_CAP = 10_000
RANK_SPAN = 1_000_000  # above any rank a source gives (at most SEARCH_CAP + 1)
LINKED_LIMIT = 50  # linked subjects shown per hop, most shared values first
CASES_LIMIT = 500  # a subject's cases shown, newest first
CONTENT_LIMIT = 100  # content items listed under an account
CHART_DAYS = 30

ACTIVE = list(Case.ACTIVE_STATUSES)


def _visible_classes_sql(user) -> str:
    """The ids of the classes ``user`` may see, as SQL to embed in a statement (the rule stays
    ``ThreatClass.visible_to``).

    A subquery answering ``(ids, everything)``: the visible class ids, and whether they are all the
    classes (then no subject is hidden and the per-subject test is skipped). Saves a round trip.
    """
    ids_sql, ids_params = ThreatClass.objects.visible_to(user).values("id").query.sql_with_params()
    ids = connection.ops.compose_sql(ids_sql, ids_params).replace("%", "%%")
    return f"""SELECT v.ids, cardinality(v.ids) = (SELECT count(*) FROM policies_threatclass) AS everything
               FROM (SELECT ARRAY({ids})::bigint[] AS ids) v"""


# A subject exists for the reader when it has a case they may see, or when nothing of it (no case,
# no signal) belongs to a class they may not see: read from the class ids the subject's row keeps
# (``casework.subject_classes``), so the test costs nothing beyond the row. ``{s}`` is the alias of a
# ``casework_subject`` row, ``{visible}`` an array of the visible class ids.
_SUBJECT_VISIBLE_SQL = "({s}.case_class_ids && {visible} OR {s}.class_ids <@ {visible})"


VISIBLE_IDS = "(SELECT ids FROM vis)::bigint[]"  # the visible class ids, in a statement WITH vis AS (...)


def _subject_visible(s: str, visible: str = "%(visible)s::bigint[]") -> str:
    return _SUBJECT_VISIBLE_SQL.format(s=s, visible=visible)


# An attribute row (alias ``{a}``) the reader may be told of: a class they may see carried the value
# (``SubjectFacet``), or the subject has no facet at all (only ever named as an owner, or older than facets).
# ``{visible}`` is a bigint[] of the visible class ids. Read from the classes the row keeps
# (``casework.subject_classes``): no probe of the facets.
_VALUE_SEEN_SQL = "({a}.seen_class_ids IS NULL OR {a}.seen_class_ids && {visible})"

# The holder of an attribute row (alias ``{a}``) exists for the reader: ``_SUBJECT_VISIBLE_SQL`` on the
# subject's class ids the row keeps, so the holders of a value are tested from the value index alone.
_HOLDER_VISIBLE_SQL = "({a}.subject_case_class_ids && {visible} OR {a}.subject_class_ids <@ {visible})"

# A subject's reach as the reader may know it: the largest its visible classes' signals reported (``{id}`` the
# subject id, ``{own}`` its own reach, for a subject with no facet at all).
_REACH_SEEN_SQL = """
    CASE WHEN EXISTS (SELECT 1 FROM casework_subjectfacet seen_f WHERE seen_f.subject_id = {id})
         THEN COALESCE((SELECT max(seen_f.reach) FROM casework_subjectfacet seen_f
                         WHERE seen_f.subject_id = {id} AND seen_f.threat_class_id = ANY({visible})), 0)
         ELSE {own} END
"""


def _value_seen(a: str, visible: str = "%(visible)s::bigint[]") -> str:
    return _VALUE_SEEN_SQL.format(a=a, visible=visible)


def _holder_visible(a: str, visible: str = "%(visible)s::bigint[]") -> str:
    return _HOLDER_VISIBLE_SQL.format(a=a, visible=visible)


def _ranked(group: int, candidates: str) -> str:
    """A source of search candidates: ``candidates`` (subject ids, in their order) as (group, rank, subject id)."""
    return f"""(SELECT {group} AS grp, row_number() OVER (ORDER BY x.subject_id) AS rn, x.subject_id
                FROM ({candidates}) x(subject_id))"""


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _fetch_all_planned(sql: str, params: dict) -> list[tuple]:
    """The rows of ``sql``, planned without JIT compilation nor bitmap scans, in one round trip.

    A popular value makes the planner's estimate pass ``jit_above_cost`` although the capped
    statement runs in milliseconds; compiling it then costs a few hundred. Every probe of a search
    reads a handful of rows by key, once per candidate: a bitmap (built and freed each time) costs
    more than the rows, which a small table's statistics can hide from the planner. ``SET LOCAL``
    and the statement go in one message, so they share its implicit transaction and nothing
    outlives it.
    """
    with connection.cursor() as cur:
        cur.execute("SET LOCAL jit = off; SET LOCAL enable_bitmapscan = off; " + sql, params)
        cur.nextset()
        cur.nextset()
        return cur.fetchall()


@dataclass
class SearchQuery:
    """What a search asks for: free text, and the ``kind`` and ``attribute=<key>:<value>`` filters."""

    q: str = ""
    kind: str = ""
    attribute: tuple[str, str] | None = None

    @classmethod
    def parse(cls, *, q=None, kind=None, attribute=None) -> SearchQuery:
        """Validated input, or ``DocketError`` ``invalid`` naming the field."""
        q = (q or "").strip()
        kind = (kind or "").strip()
        errors = {}
        if len(q) > 300:
            errors["q"] = ["At most 300 characters."]
        if kind and kind not in Subject.Kind.values:
            errors["kind"] = [f"Choose from {Subject.Kind.values}."]
        pair = None
        if attribute:
            key, sep, value = attribute.partition(":")
            if not sep or not key.strip() or not value.strip() or len(key) > 40 or len(value) > 300:
                errors["attribute"] = ["Write it as <key>:<value>, e.g. ip:203.0.113.7."]
            else:
                pair = (key.strip(), value.strip())
        if not q and pair is None and not errors:
            errors["q"] = ["Give a text to search for (or an attribute filter)."]
        if errors:
            raise DocketError("invalid", "The search is invalid.", errors=errors)
        return cls(q=q, kind=kind, attribute=pair)


@dataclass
class SearchPage:
    count: int
    count_is_estimate: bool
    results: list[dict] = field(default_factory=list)


def subject_search(*, user, query: SearchQuery, offset: int = 0, limit: int = 50) -> SearchPage:
    """Subjects matching ``query`` that ``user`` may see: external-id matches first (in external-id
    order, so an exact match leads), then holders of the value, the subjects the reporter reported
    and the case's subject (in subject order).

    Each result: ``{kind, external_id, reach, open_cases, decided_cases, active_strikes,
    last_signal_at}``, counted over the classes the user may see. One statement.

    Every source of candidates walks an index in its order and stops after ``SEARCH_CAP`` + 1
    visible subjects, so a value a whole CDN shares costs what the cap allows, and the figures are
    read for the page alone.
    """
    params = {
        "cap": SEARCH_CAP + 1,
        "q": query.q,
        "offset": offset,
        "limit": limit,
        "now": timezone.now(),
        "active": ACTIVE,
    }
    # Filters every candidate passes (besides visibility): the kind, and an attribute with free text.
    filters = ""
    if query.kind:
        params["kind"] = query.kind
        filters += " AND {s}.kind = %(kind)s"
    if query.attribute:
        params["akind"], params["avalue"] = query.attribute
        if query.q:
            filters += f""" AND EXISTS (SELECT 1 FROM casework_subjectattribute fa
                                       WHERE fa.subject_id = {{s}}.id AND fa.kind = %(akind)s AND fa.value = %(avalue)s
                                         AND {_value_seen("fa", VISIBLE_IDS)})"""

    def admitted(s: str) -> str:  # the subject row ``s`` is visible to the reader and passes the filters
        visible = f"((SELECT everything FROM vis) OR {_subject_visible(s, VISIBLE_IDS)})"
        return visible + filters.format(s=s)

    def holder_admitted(subject_id: str) -> str:
        # The holder's row, probed by id for each candidate in the walk's order (a join may be planned
        # as a merge that reads the subject table from the first id to the last candidate's).
        return f"(SELECT {admitted('vs')} FROM casework_subject vs WHERE vs.id = {subject_id})"

    def value_holder_admitted(a: str) -> str:
        # A holder of a value, from its attribute row (its subject's class ids kept there): the walk of the
        # value index decides alone, and probes the subject's row only for the filters.
        visible = f"((SELECT everything FROM vis) OR {_holder_visible(a, VISIBLE_IDS)})"
        if not filters:
            return visible
        passes = f"(SELECT true {filters.format(s='vs')} FROM casework_subject vs WHERE vs.id = {a}.subject_id)"
        return f"{visible} AND {passes}"

    # (group, rank within the group, subject id): each source ranks its candidates in the order it walks
    # them and stops at the cap, after the visibility test.
    sources = []
    if query.q:
        params["prefix"] = _like_prefix(query.q)
        sources.append(
            f"""(SELECT 1 AS grp, row_number() OVER (ORDER BY s.external_id COLLATE "C", s.id) AS rn,
                        s.id AS subject_id
                 FROM casework_subject s
                 WHERE s.external_id COLLATE "C" LIKE %(prefix)s AND {admitted("s")}
                 ORDER BY s.external_id COLLATE "C", s.id LIMIT %(cap)s)"""
        )
        sources.append(
            _ranked(
                2,
                f"""SELECT DISTINCT a.subject_id FROM casework_subjectattribute a
                    WHERE a.value = %(q)s AND {_value_seen("a", VISIBLE_IDS)} AND {value_holder_admitted("a")}
                    ORDER BY a.subject_id LIMIT %(cap)s""",
            )
        )
        sources.append(
            _ranked(
                3,
                f"""SELECT DISTINCT g.subject_id FROM casework_signal g
                    WHERE g.reporter_id = (SELECT r.id FROM casework_reporter r WHERE r.external_id = %(q)s)
                      AND g.threat_class_id = ANY({VISIBLE_IDS}) AND {holder_admitted("g.subject_id")}
                    ORDER BY g.subject_id LIMIT %(cap)s""",
            )
        )
        if query.q.isdigit() and len(query.q) < 19:
            params["case_id"] = int(query.q)
            sources.append(
                f"""(SELECT 4, 1::bigint, c.subject_id
                     FROM casework_case c JOIN casework_subject s ON s.id = c.subject_id
                     WHERE c.id = %(case_id)s AND {admitted("s")})"""
            )
    elif query.attribute:
        sources.append(
            _ranked(
                2,
                f"""SELECT a.subject_id FROM casework_subjectattribute a
                    WHERE a.value = %(avalue)s AND a.kind = %(akind)s AND {_value_seen("a", VISIBLE_IDS)}
                      AND {value_holder_admitted("a")}
                    ORDER BY a.subject_id LIMIT %(cap)s""",
            )
        )
    sql = f"""
        WITH vis AS ({_visible_classes_sql(user)}),
        cand (grp, rn, subject_id) AS MATERIALIZED ({" UNION ALL ".join(sources)}),
        capped AS (SELECT EXISTS (SELECT 1 FROM cand WHERE rn >= %(cap)s) AS capped),
        hits AS (
            -- A subject found several ways is listed once, where it ranks first (group, then rank: one
            -- integer, as a rank never reaches RANK_SPAN).
            SELECT subject_id, min(grp * {RANK_SPAN} + rn) AS ord FROM cand GROUP BY subject_id
        ),
        counted AS (SELECT count(*) AS n FROM hits),
        page AS (
            SELECT h.ord, s.id, s.kind, s.external_id, s.reach
            FROM (SELECT * FROM hits ORDER BY ord LIMIT %(limit)s OFFSET %(offset)s) h
            JOIN casework_subject s ON s.id = h.subject_id
        )
        SELECT counted.n, capped.capped, p.kind, p.external_id,
               {_REACH_SEEN_SQL.format(id="p.id", own="p.reach", visible=VISIBLE_IDS)},
               (SELECT count(*) FROM casework_case c
                 WHERE c.subject_id = p.id AND c.status = ANY(%(active)s)
                   AND c.threat_class_id = ANY({VISIBLE_IDS})),
               (SELECT count(*) FROM casework_case c
                 WHERE c.subject_id = p.id AND c.decided_at IS NOT NULL
                   AND c.threat_class_id = ANY({VISIBLE_IDS})),
               (SELECT count(*) FROM reviews_strike st
                  JOIN reviews_decision d ON d.id = st.decision_id JOIN casework_case c ON c.id = d.case_id
                 WHERE st.account_id = p.id AND st.removed_at IS NULL AND st.expires_at > %(now)s
                   AND c.threat_class_id = ANY({VISIBLE_IDS})),
               (SELECT g.occurred_at FROM casework_signal g
                 WHERE g.subject_id = p.id AND g.threat_class_id = ANY({VISIBLE_IDS})
                 ORDER BY g.occurred_at DESC LIMIT 1)
        FROM counted CROSS JOIN capped LEFT JOIN page p ON true
        ORDER BY p.ord
    """
    rows = _fetch_all_planned(sql, params)
    total, capped = (rows[0][0], bool(rows[0][1])) if rows else (0, False)
    results = [
        {
            "kind": kind,
            "external_id": external_id,
            "reach": reach,
            "open_cases": open_cases,
            "decided_cases": decided_cases,
            "active_strikes": strikes,
            "last_signal_at": last_signal_at,
        }
        for _, _, kind, external_id, reach, open_cases, decided_cases, strikes, last_signal_at in rows
        if kind is not None
    ]
    return SearchPage(count=total, count_is_estimate=capped or total > SEARCH_CAP, results=results)


# --- one subject ---------------------------------------------------------------------------------


def _linked_sql(hop_sources: str) -> str:
    """Subjects sharing an attribute value (seen in the window) with the source subjects.

    A value held by more than ``max_share`` subjects in the window links nothing (as in campaign
    detection); the holders of a value are counted only up to that bound, so a CDN address costs
    no more than any other value. Only holders to whom the reader's classes brought the value count:
    subjects a restricted class alone gave it do not move the bound for a reader who cannot see them.
    """
    return f"""
        WITH mine AS (
            SELECT DISTINCT m.kind, m.value FROM casework_subjectattribute m
            WHERE m.subject_id = ANY({hop_sources}) AND m.seen_at >= %(since)s AND {_value_seen("m")}
        ),
        shared AS (
            SELECT m.kind, m.value FROM mine m
            WHERE (SELECT count(*) FROM (
                       SELECT 1 FROM casework_subjectattribute a
                       WHERE a.kind = m.kind AND a.value = m.value AND a.seen_at >= %(since)s
                         AND {_value_seen("a")}
                       LIMIT %(max_share)s + 1) x) <= %(max_share)s
        ),
        linked AS (
            SELECT a.subject_id, array_agg(a.kind ORDER BY a.kind, a.value) AS kinds,
                   array_agg(a.value ORDER BY a.kind, a.value) AS vals
            FROM shared JOIN casework_subjectattribute a ON a.kind = shared.kind AND a.value = shared.value
            WHERE a.seen_at >= %(since)s AND NOT a.subject_id = ANY(%(exclude)s) AND {_value_seen("a")}
            GROUP BY a.subject_id
        )
        SELECT s.id, s.kind, s.external_id, l.kinds, l.vals
        FROM linked l JOIN casework_subject s ON s.id = l.subject_id
        WHERE {_subject_visible("s")}
        ORDER BY cardinality(l.kinds) DESC, s.external_id COLLATE "C", s.id
        LIMIT %(limit)s
    """


def linked_subjects(*, subject_id: int, visible: list[int], hops: int = 1, now: datetime | None = None) -> list[dict]:
    """Subjects linked to this one by shared attribute values within the campaign window.

    ``[{kind, external_id, via: [{kind, value}], hop}]``: one hop, or two (the subjects linked to
    those). One query per hop.
    """
    now = now or timezone.now()
    params = {
        "since": now - timedelta(days=setting("CAMPAIGN_WINDOW_DAYS")),
        "max_share": setting("CAMPAIGN_MAX_VALUE_SHARE"),
        "visible": visible,
        "limit": LINKED_LIMIT,
    }
    out, sources, seen = [], [subject_id], {subject_id}
    for hop in range(1, hops + 1):
        params.update(sources=sources, exclude=sorted(seen))
        with connection.cursor() as cur:
            cur.execute(_linked_sql("%(sources)s"), params)
            rows = cur.fetchall()
        sources = []
        for sid, kind, external_id, kinds, values in rows:
            via = [{"kind": k, "value": v} for k, v in dict.fromkeys(zip(kinds, values, strict=True))]
            out.append({"kind": kind, "external_id": external_id, "via": via, "hop": hop})
            sources.append(sid)
            seen.add(sid)
        if not sources:
            break
    return out


@dataclass
class SubjectHistory:
    subject: Subject
    cases: list = field(default_factory=list)
    strikes: list = field(default_factory=list)
    appeals: list = field(default_factory=list)
    campaigns: list = field(default_factory=list)
    content: list = field(default_factory=list)
    attributes: dict = field(default_factory=dict)
    linked: list = field(default_factory=list)
    signals_per_day: list = field(default_factory=list)
    restricted_classes: list = field(default_factory=list)
    owner: Subject | None = None
    reach: int = 0


def subject_history(*, user, kind: str, external_id: str, hops: int = 1, now: datetime | None = None) -> SubjectHistory:
    """Everything Docket knows of a subject that ``user`` may see; ``DocketError`` 404 when nothing is left.

    Cases in any status (newest first) with their decisions, the account's strikes, appeals of
    those decisions, campaigns, the owner (content) or content (account), attribute values, the
    linked subjects and signals per day. A constant number of queries.
    """
    now = now or timezone.now()
    subject = (
        Subject.objects.select_related("owner")
        .filter(kind=kind, external_id=external_id)
        .annotate(visible_ids=ArraySubquery(ThreatClass.objects.visible_to(user).order_by("id").values("id")))
        .first()
    )
    if subject is None:
        raise not_found("No such subject.")
    visible = list(subject.visible_ids)
    visible_set = set(visible)
    if not subject_visible_with(subject, visible_set):
        raise not_found("No such subject.")
    cases = list(
        Case.objects.filter(subject=subject).select_related("threat_class").order_by("-created_at", "-id")[:CASES_LIMIT]
    )
    shown = [c for c in cases if c.threat_class_id in visible_set]
    history = SubjectHistory(subject=subject, cases=shown)
    # A content item's owner account is named only when that account exists for the reader.
    if subject.owner_id is not None and subject_visible_with(subject.owner, visible_set):
        history.owner = subject.owner
    history.restricted_classes = sorted({c.threat_class.slug for c in shown if c.threat_class.restricted})
    by_case = defaultdict(list)
    # A decision under a blind second review the reader may do is left out, with its strike.
    blind = decisions_blind_to(user)
    decisions = (
        Decision.objects.filter(case__in=shown)
        .select_related("reviewer__user", "case__threat_class")
        .order_by("created_at", "id")
    )
    if blind is not None:
        decisions = decisions.exclude(pk__in=blind.values("pk"))
    for d in decisions:
        by_case[d.case_id].append(d)
    for case in shown:
        case.decision_rows = by_case.get(case.pk, [])
    account_id = subject.pk if subject.kind == Subject.Kind.ACCOUNT else subject.owner_id
    if subject.kind == Subject.Kind.ACCOUNT:
        strikes = Strike.objects.filter(account_id=account_id, decision__case__threat_class_id__in=visible)
        if blind is not None:
            strikes = strikes.exclude(decision__in=blind.values("pk"))
        history.strikes = list(strikes.select_related("decision").order_by("-created_at", "-id"))
        for strike in history.strikes:
            strike.active = strike.removed_at is None and strike.expires_at > now
    campaign_ids = {c.campaign_id for c in shown if c.campaign_id}
    if subject.campaign_id:
        campaign_ids.add(subject.campaign_id)
    extras = _history_extras(
        subject=subject,
        visible=visible,
        decision_ids=[d.pk for rows in by_case.values() for d in rows],
        campaign_ids=sorted(campaign_ids),
        now=now,
    )
    history.appeals, history.campaigns, history.content, history.attributes, history.reach = extras[:5]
    history.signals_per_day = extras[5]
    history.linked = linked_subjects(subject_id=subject.pk, visible=visible, hops=hops, now=now)
    return history


def _history_extras(*, subject, visible: list[int], decision_ids, campaign_ids, now: datetime, days: int = CHART_DAYS):
    """The history's small reads in one statement: ``(appeals, campaigns, content, attributes, reach, per day)``.

    Appeals of the shown decisions (received order), the visible campaigns among ``campaign_ids``,
    an account's visible content items, the attribute values by key and the reach (as the visible
    classes' signals told them, ``SubjectFacet``), and ``[{day, count}]`` of the
    visible classes' signals for each of the last ``days`` days (UTC), zeros included.
    """
    start = (now - timedelta(days=days - 1)).date()
    params = {
        "subject": subject.pk,
        "visible": visible,
        "decisions": decision_ids,
        "campaigns": campaign_ids,
        "account": subject.kind == Subject.Kind.ACCOUNT,
        "reach": subject.reach,
        "limit": CONTENT_LIMIT,
        "since": datetime.combine(start, datetime.min.time(), tzinfo=now.tzinfo),
    }
    sql = f"""
        SELECT
          ARRAY(SELECT id FROM appeals_appeal WHERE decision_id = ANY(%(decisions)s::bigint[])
                ORDER BY received_at, id),
          ARRAY(SELECT id FROM casework_campaign
                WHERE id = ANY(%(campaigns)s::bigint[]) AND threat_class_id = ANY(%(visible)s::bigint[]) ORDER BY id),
          ARRAY(SELECT ARRAY[q.kind, q.external_id]::text[] FROM casework_subject q
                WHERE %(account)s AND q.owner_id = %(subject)s AND {_subject_visible("q")}
                ORDER BY q.external_id COLLATE "C", q.id LIMIT %(limit)s),
          ARRAY(SELECT ARRAY[a.kind, a.value]::text[] FROM casework_subjectattribute a
                WHERE a.subject_id = %(subject)s AND {_value_seen("a", "%(visible)s::bigint[]")}
                ORDER BY a.kind, a.value),
          {_REACH_SEEN_SQL.format(id="%(subject)s", own="%(reach)s", visible="%(visible)s::bigint[]")},
          ARRAY(SELECT ARRAY[d.day, d.n] FROM (
                    SELECT (g.occurred_at AT TIME ZONE 'UTC')::date - %(start)s::date AS day, count(*) AS n
                    FROM casework_signal g
                    WHERE g.subject_id = %(subject)s AND g.occurred_at >= %(since)s
                      AND g.threat_class_id = ANY(%(visible)s::bigint[])
                    GROUP BY 1) d)
    """
    params["start"] = start
    with connection.cursor() as cur:
        cur.execute(sql, params)
        appeals, campaigns, content, attribute_rows, reach, day_counts = cur.fetchone()
    attributes = defaultdict(list)
    for akind, value in attribute_rows:
        attributes[akind].append(value)
    counts = dict(day_counts)
    chart = [{"day": start + timedelta(days=i), "count": counts.get(i, 0)} for i in range(days)]
    return (
        list(appeals),
        list(campaigns),
        [{"kind": k, "external_id": e} for k, e in content],
        dict(attributes),
        reach,
        chart,
    )
