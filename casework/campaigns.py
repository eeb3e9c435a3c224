"""Campaigns: subjects linked by shared attributes, detected on the beat (decided as one unit by ``reviews``).

Detection reads the (attribute value -> subjects) groups of the window in one
SQL statement, joins them with an in-memory union-find (near-linear, no pairwise
comparison), and writes the result back in a handful of set-based statements.
"""

import json
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from docket.conf import setting
from policies.models import ThreatClass

from . import events
from .models import Campaign, Case, Subject
from .services import case_events_add_bulk

MAX_LINKS = 50  # links kept on a campaign, most shared first: enough to explain it, bounded for the API
DEFAULT_CLASS = "cib"  # a campaign none of whose members has a case yet is coordinated inauthentic behaviour

# Each shared value once, with its subjects. Values carried by a single subject link nothing; values
# carried by more than max_share subjects (a CDN address, a big mail domain) would link everything.
_GROUPS_SQL = """
    SELECT kind, value, array_agg(subject_id)
    FROM casework_subjectattribute
    WHERE seen_at >= %(since)s
    GROUP BY kind, value
    HAVING count(*) BETWEEN 2 AND %(max_share)s
"""

# Active cases whose subject (or, for content, whose owner account) sits in one of the campaigns,
# but which do not point at it yet. Locked in id order so concurrent case writers cannot deadlock us.
_CASES_JOIN_SQL = """
    WITH target AS (
        SELECT c.id,
               CASE WHEN s.campaign_id = ANY(%(campaigns)s) THEN s.campaign_id ELSE o.campaign_id END AS campaign_id,
               c.campaign_id AS previous
        FROM casework_case c
        JOIN casework_subject s ON s.id = c.subject_id
        LEFT JOIN casework_subject o ON o.id = s.owner_id
        WHERE c.status = ANY(%(active)s)
          AND (s.campaign_id = ANY(%(campaigns)s) OR o.campaign_id = ANY(%(campaigns)s))
          AND c.campaign_id IS DISTINCT FROM
              (CASE WHEN s.campaign_id = ANY(%(campaigns)s) THEN s.campaign_id ELSE o.campaign_id END)
        ORDER BY c.id
        FOR NO KEY UPDATE OF c SKIP LOCKED  -- a case held by a claim or a decision joins on the next run
    )
    UPDATE casework_case c SET campaign_id = t.campaign_id, updated_at = %(now)s
    FROM target t WHERE c.id = t.id
    RETURNING c.id, c.campaign_id, t.previous
"""

_SUBJECTS_JOIN_SQL = """
    WITH target AS (
        SELECT s.id, m.campaign_id FROM casework_subject s
        JOIN unnest(%(subjects)s::bigint[], %(campaigns)s::bigint[]) AS m(subject_id, campaign_id)
          ON m.subject_id = s.id
        WHERE s.campaign_id IS DISTINCT FROM m.campaign_id
        ORDER BY s.id
        FOR NO KEY UPDATE OF s
    )
    UPDATE casework_subject s SET campaign_id = t.campaign_id FROM target t WHERE s.id = t.id
"""

_MOST_COMMON_CLASS_SQL = """
    SELECT DISTINCT ON (campaign_id) campaign_id, threat_class_id
    FROM casework_case WHERE campaign_id = ANY(%(campaigns)s)
    GROUP BY campaign_id, threat_class_id
    ORDER BY campaign_id, count(*) DESC, threat_class_id
"""


class _UnionFind:
    """Disjoint sets over subject ids, with path halving and union by size."""

    def __init__(self):
        self.parent = {}
        self.size = {}

    def find(self, x):
        parent = self.parent
        if x not in parent:
            parent[x] = x
            self.size[x] = 1
            return x
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        return ra


def components(groups, *, min_size):
    """Connected components of at least ``min_size`` subjects.

    ``groups`` yields ``(kind, value, [subject ids])``; returns a list of
    ``(subject ids, links)`` where links are ``(kind, value, how many members share it)``.
    """
    uf = _UnionFind()
    kept = []
    for kind, value, subjects in groups:
        first = subjects[0]
        for other in subjects[1:]:
            uf.union(first, other)
        kept.append((kind, value, first, len(subjects)))
    members = defaultdict(list)
    for subject in uf.parent:
        members[uf.find(subject)].append(subject)
    links = defaultdict(list)
    for kind, value, first, n in kept:
        root = uf.find(first)
        if len(members[root]) >= min_size:
            links[root].append((kind, value, n))
    return [(sorted(members[root]), links[root]) for root in links]


def _link_list(new, old=()):
    """Links as stored: most shared first, old ones kept after new ones, at most MAX_LINKS."""
    ordered = sorted(new, key=lambda link: (-link[2], link[0], link[1]))
    seen, result = set(), []
    for kind, value in [(k, v) for k, v, _ in ordered] + [(link["kind"], link["value"]) for link in old]:
        if (kind, value) not in seen and len(result) < MAX_LINKS:
            seen.add((kind, value))
            result.append({"kind": kind, "value": value})
    return result


def campaigns_detect(*, now: datetime | None = None) -> dict:
    """Turn linked subjects of the window into campaigns; returns counts of what changed.

    Subjects whose attribute rows were seen within ``CAMPAIGN_WINDOW_DAYS`` and
    share a value (ignoring values of more than ``CAMPAIGN_MAX_VALUE_SHARE``
    subjects) form components; a component of at least ``CAMPAIGN_MIN_SIZE``
    subjects becomes a new open campaign, or grows the open campaign its members
    are in (several open ones merge into the oldest). Members of decided or
    dismissed campaigns stay there: they still link others, so accounts that
    return after a decision form a new campaign. Active cases of members (and of
    content their accounts own) join their campaign with a ``campaign_joined``
    event; the threat class is the most common among member cases. Idempotent:
    a second run with nothing new changes nothing. One run at a time.
    """
    now = now or timezone.now()
    since = now - timedelta(days=setting("CAMPAIGN_WINDOW_DAYS"))
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('docket.campaigns_detect'))")
            cur.execute(_GROUPS_SQL, {"since": since, "max_share": setting("CAMPAIGN_MAX_VALUE_SHARE")})
            found = components(cur, min_size=setting("CAMPAIGN_MIN_SIZE"))
        if not found:
            joined = _cases_join(now=now)
            return {"components": 0, "created": 0, "merged": 0, "subjects_joined": 0, "cases_joined": len(joined)}
        return _campaigns_write(found, now=now)


def _cases_join(*, now):
    """Active cases of members of open campaigns join them (new cases, and members whose links aged out)."""
    open_ids = list(Campaign.objects.filter(status=Campaign.Status.OPEN).values_list("pk", flat=True))
    if not open_ids:
        return []
    with connection.cursor() as cur:
        cur.execute(_CASES_JOIN_SQL, {"campaigns": open_ids, "now": now, "active": list(Case.ACTIVE_STATUSES)})
        joined = cur.fetchall()
    case_events_add_bulk(
        [(case_id, events.campaign_joined(campaign=cid, previous=old), None, now) for case_id, cid, old in joined]
    )
    return joined


def _campaigns_write(found, *, now):
    everyone = [s for subjects, _ in found for s in subjects]
    current = dict(Subject.objects.filter(pk__in=everyone, campaign__isnull=False).values_list("pk", "campaign_id"))
    campaigns = Campaign.objects.select_for_update(no_key=True).in_bulk(set(current.values()))
    is_open = {pk for pk, c in campaigns.items() if c.status == Campaign.Status.OPEN}
    before = {pk: (c.links, c.size, c.threat_class_id) for pk, c in campaigns.items()}
    default_class = ThreatClass.objects.get(slug=DEFAULT_CLASS)

    # Open campaigns found in one component merge; one campaign may span components (its links thinned out),
    # so the merge is itself a union over campaigns, and the oldest of each set survives.
    merging = _UnionFind()
    plans = []  # (open campaign ids, assignable subjects, links)
    for subjects, links in found:
        # Members of a decided or dismissed campaign stay with it.
        assignable = [s for s in subjects if current.get(s) is None or current[s] in is_open]
        if not assignable:
            continue
        open_ids = sorted({current[s] for s in assignable if s in current})
        for other in open_ids[1:]:
            merging.union(open_ids[0], other)
        plans.append((open_ids, assignable, links))
    oldest = {}
    for pk in list(merging.parent):
        root = merging.find(pk)
        oldest[root] = min(oldest.get(root, pk), pk)
    merges = {pk: oldest[merging.find(pk)] for pk in merging.parent if oldest[merging.find(pk)] != pk}

    new = Campaign.objects.bulk_create(
        [
            Campaign(threat_class=default_class, links=_link_list(links), detected_at=now)
            for ids, _, links in plans
            if not ids
        ]
    )
    fresh = iter(new)
    subject_ids, campaign_ids, touched, new_links = [], [], {}, defaultdict(list)
    for open_ids, assignable, links in plans:
        campaign = campaigns[merges.get(open_ids[0], open_ids[0])] if open_ids else next(fresh)
        if open_ids:
            new_links[campaign.pk] += links
        touched[campaign.pk] = campaign
        subject_ids += assignable
        campaign_ids += [campaign.pk] * len(assignable)
    for pk, links in new_links.items():
        old = [link for m in [pk, *(m for m, s in merges.items() if s == pk)] for link in campaigns[m].links]
        campaigns[pk].links = _link_list(links, old)
    touched = list(touched.values())

    touched_ids = [c.pk for c in touched]
    with connection.cursor() as cur:
        if merges:
            # Everything of a merged campaign moves to the survivor, members outside this run's window too.
            cur.execute(
                "UPDATE casework_subject s SET campaign_id = m.survivor"
                " FROM unnest(%s::bigint[], %s::bigint[]) AS m(merged, survivor) WHERE s.campaign_id = m.merged",
                [list(merges), list(merges.values())],
            )
            cur.execute(
                "UPDATE casework_case c SET campaign_id = m.survivor, updated_at = %s"
                " FROM unnest(%s::bigint[], %s::bigint[]) AS m(merged, survivor) WHERE c.campaign_id = m.merged"
                " RETURNING c.id, c.campaign_id, m.merged",
                [now, list(merges), list(merges.values())],
            )
            moved = cur.fetchall()
        else:
            moved = []
        cur.execute(_SUBJECTS_JOIN_SQL, {"subjects": subject_ids, "campaigns": campaign_ids})
        subjects_joined = cur.rowcount
        joined = _cases_join(now=now)
        cur.execute(_MOST_COMMON_CLASS_SQL, {"campaigns": touched_ids})
        classes = dict(cur.fetchall())
        cur.execute(
            "SELECT campaign_id, count(*) FROM casework_subject WHERE campaign_id = ANY(%s) GROUP BY campaign_id",
            [touched_ids],
        )
        sizes = dict(cur.fetchall())
    if merges:
        Campaign.objects.filter(pk__in=list(merges)).delete()

    case_events_add_bulk(
        [(case_id, events.campaign_joined(campaign=cid, merged_from=old), None, now) for case_id, cid, old in moved]
    )

    changed = []
    for campaign in touched:
        campaign.size = sizes.get(campaign.pk, 0)
        campaign.threat_class_id = classes.get(campaign.pk, campaign.threat_class_id)
        if (campaign.links, campaign.size, campaign.threat_class_id) != before.get(campaign.pk):
            changed.append(campaign)
    if changed:
        with connection.cursor() as cur:
            cur.execute(
                "UPDATE casework_campaign c"
                " SET links = m.links::jsonb, size = m.size, threat_class_id = m.tc, updated_at = %s"
                " FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::bigint[]) AS m(id, links, size, tc)"
                " WHERE c.id = m.id",
                [
                    now,
                    [c.pk for c in changed],
                    [json.dumps(c.links) for c in changed],
                    [c.size for c in changed],
                    [c.threat_class_id for c in changed],
                ],
            )
    return {
        "components": len(found),
        "created": len(new),
        "merged": len(merges),
        "subjects_joined": subjects_joined,
        "cases_joined": len({case_id for case_id, _, _ in moved + joined}),
    }
