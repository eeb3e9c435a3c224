"""Campaigns: subjects linked by shared attributes, detected on the beat (decided as one unit by ``reviews``).

Detection reads the (attribute value -> subjects) groups of the window in one
SQL statement, joins them with an in-memory union-find (near-linear, no pairwise
comparison), and writes the result back in a handful of set-based statements.

Which values may link whom follows who may read the campaign. Each stored value
records which classes' signals brought it (``SubjectAttribute.seen_by``):

* campaigns linked through values of unrestricted classes only (``link_class``
  empty) are found first, from those values alone, and their threat class is the
  most common among their members' cases of unrestricted classes: what restricted
  classes' signals say changes none of their members, sizes, links or classes;
* then, for each restricted class, campaigns linked through that class's values
  and unrestricted ones (``link_class`` and threat class: that class), among the
  subjects no other kind of campaign holds, reached from that class's values (the
  work follows the restricted values, not the whole window again). Only that
  class's cases join them: a case of another class never points at a campaign
  some of its readers may not know.
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

# Each value of the window carried by two subjects or more, once: the subjects an unrestricted class's signal
# brought it to, and (subject, [restricted classes]) for those a restricted class's signal brought it to.
# Values carried by a single subject link nothing; values carried by more than max_share subjects (a CDN
# address, a big mail domain) would link everything; both are counted over the classes that may link.
_GROUPS_SQL = """
    SELECT kind, value,
           array_agg(subject_id) FILTER (WHERE open_seen),
           jsonb_agg(jsonb_build_array(subject_id, restricted_seen)) FILTER (WHERE cardinality(restricted_seen) > 0)
    FROM (
        -- A value only unrestricted classes brought (nearly all) is told by two operators on the row: its
        -- latest time is then seen_at, inside the window. Only rows a restricted class touched are taken apart.
        SELECT a.subject_id, a.kind, a.value,
               CASE WHEN a.seen_by ?| %(restricted)s::text[]
                    THEN EXISTS (SELECT 1 FROM jsonb_each_text(a.seen_by) e
                                  WHERE e.key = ANY(%(open)s) AND e.value::bigint >= %(since_epoch)s)
                    ELSE a.seen_by ?| %(open)s::text[] END AS open_seen,
               CASE WHEN a.seen_by ?| %(restricted)s::text[]
                    THEN ARRAY(SELECT e.key::bigint FROM jsonb_each_text(a.seen_by) e
                                WHERE e.key = ANY(%(restricted)s) AND e.value::bigint >= %(since_epoch)s)
                    ELSE '{}'::bigint[] END AS restricted_seen
        FROM casework_subjectattribute a
        WHERE a.seen_at >= %(since)s
    ) carried
    WHERE open_seen OR cardinality(restricted_seen) > 0
    GROUP BY kind, value
    HAVING count(*) >= 2 AND count(*) FILTER (WHERE open_seen) <= %(max_share)s
"""

# Of these subjects, those a campaign of another kind holds (a restricted class's detection leaves them be).
_HELD_ELSEWHERE_SQL = """
    SELECT s.id FROM casework_subject s JOIN casework_campaign c ON c.id = s.campaign_id
    WHERE s.id = ANY(%(subjects)s) AND c.link_class_id IS DISTINCT FROM %(link_class)s
"""

# Active cases whose subject (or, for content, whose owner account) sits in one of the campaigns,
# but which do not point at it yet; a campaign of a restricted class's links takes that class's cases only.
# Locked in id order so concurrent case writers cannot deadlock us.
_CASES_JOIN_SQL = """
    WITH wanted AS (
        SELECT c.id,
               CASE WHEN s.campaign_id = ANY(%(campaigns)s) THEN s.campaign_id ELSE o.campaign_id END AS campaign_id
        FROM casework_case c
        JOIN casework_subject s ON s.id = c.subject_id
        LEFT JOIN casework_subject o ON o.id = s.owner_id
        WHERE c.status = ANY(%(active)s)
          AND (s.campaign_id = ANY(%(campaigns)s) OR o.campaign_id = ANY(%(campaigns)s))
    ), target AS (
        SELECT c.id, w.campaign_id, c.campaign_id AS previous
        FROM casework_case c
        JOIN wanted w ON w.id = c.id
        JOIN casework_campaign k ON k.id = w.campaign_id
        WHERE c.campaign_id IS DISTINCT FROM w.campaign_id
          AND (k.link_class_id IS NULL OR k.link_class_id = c.threat_class_id)
        ORDER BY c.id
        FOR NO KEY UPDATE OF c SKIP LOCKED  -- a case held by a claim or a decision joins on the next run
    )
    UPDATE casework_case c SET campaign_id = t.campaign_id, updated_at = %(now)s
    FROM target t WHERE c.id = t.id
    RETURNING c.id, c.campaign_id, t.previous
"""

_SUBJECTS_JOIN_SQL = """
    WITH target AS (
        SELECT s.id, m.campaign_id, s.campaign_id AS previous FROM casework_subject s
        JOIN unnest(%(subjects)s::bigint[], %(campaigns)s::bigint[]) AS m(subject_id, campaign_id)
          ON m.subject_id = s.id
        WHERE s.campaign_id IS DISTINCT FROM m.campaign_id
        ORDER BY s.id
        FOR NO KEY UPDATE OF s
    )
    UPDATE casework_subject s SET campaign_id = t.campaign_id FROM target t WHERE s.id = t.id
    RETURNING t.previous
"""

# The most common class among member cases of the given classes (a campaign of unrestricted links: of
# unrestricted classes, so that restricted cases joining it never change its class).
_MOST_COMMON_CLASS_SQL = """
    SELECT DISTINCT ON (campaign_id) campaign_id, threat_class_id
    FROM casework_case WHERE campaign_id = ANY(%(campaigns)s) AND threat_class_id = ANY(%(classes)s)
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
    return _Joined(groups).components(min_size=min_size)


class _Joined:
    """Groups joined by a union-find: their components, and which groups each component holds."""

    def __init__(self, groups):
        self.groups = groups if isinstance(groups, list) else list(groups)
        uf = self.uf = _UnionFind()
        for _, _, subjects in self.groups:
            first = subjects[0]
            for other in subjects[1:]:
                uf.union(first, other)

    def components(self, *, min_size):
        uf = self.uf
        members = defaultdict(list)
        for subject in uf.parent:
            members[uf.find(subject)].append(subject)
        links = defaultdict(list)
        for kind, value, subjects in self.groups:
            root = uf.find(subjects[0])
            if len(members[root]) >= min_size:
                links[root].append((kind, value, len(subjects)))
        return [(sorted(members[root]), links[root]) for root in links]

    def groups_reached(self, subjects):
        """The groups of the components these subjects are in (indexed by component on first use)."""
        if not hasattr(self, "by_root"):
            self.by_root = defaultdict(list)
            for index, (_, _, carriers) in enumerate(self.groups):
                self.by_root[self.uf.find(carriers[0])].append(index)
        roots = {self.uf.find(s) for s in subjects if s in self.uf.parent}
        return [self.groups[index] for root in roots for index in self.by_root[root]]


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

    Subjects whose attribute values were brought within ``CAMPAIGN_WINDOW_DAYS`` and
    share a value (ignoring values of more than ``CAMPAIGN_MAX_VALUE_SHARE``
    subjects) form components; a component of at least ``CAMPAIGN_MIN_SIZE``
    subjects becomes a new open campaign, or grows the open campaign its members
    are in (several open ones merge into the oldest). Values link only as the
    module says: unrestricted classes' values for a campaign every reader may be
    shown, a restricted class's values only for a campaign of that class. Members
    of decided or dismissed campaigns stay there: they still link others, so
    accounts that return after a decision form a new campaign. Active cases of
    members (and of content their accounts own) join their campaign with a
    ``campaign_joined`` event; the threat class is the most common among member
    cases. Idempotent: a second run with nothing new changes nothing. One run at a time.
    """
    now = now or timezone.now()
    min_size = setting("CAMPAIGN_MIN_SIZE")
    params = groups_params(now=now)
    open_classes = [int(pk) for pk in params["open"]]
    totals = {"components": 0, "created": 0, "merged": 0, "subjects_joined": 0}
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('docket.campaigns_detect'))")
            cur.execute(_GROUPS_SQL, params)
            open_groups, restricted_groups = _groups(cur.fetchall(), max_share=params["max_share"])
        joined_open = _Joined(open_groups)
        written = []
        found = joined_open.components(min_size=min_size)
        if found:
            written.append(_campaigns_write(found, link_class=None, now=now))
        # After the campaigns of unrestricted links are written: the subjects they hold are not the others' to take.
        for link_class in sorted(restricted_groups):
            found = _restricted_components(restricted_groups[link_class], joined_open, link_class, min_size=min_size)
            if found:
                written.append(_campaigns_write(found, link_class=link_class, now=now))
        joined = _cases_join(now=now)
        _campaigns_settle(written, open_classes=open_classes, now=now)
    for counts, *_ in written:
        totals = {k: totals[k] + counts[k] for k in totals}
    moved = {case_id for _, _, _, cases in written for case_id in cases}
    return {**totals, "cases_joined": len(moved | {case_id for case_id, _, _ in joined})}


def groups_params(*, now) -> dict:
    """The grouping query's parameters: the window, the classes by restriction, the largest share that links."""
    since = now - timedelta(days=setting("CAMPAIGN_WINDOW_DAYS"))
    classes = sorted(ThreatClass.objects.values_list("pk", "restricted"))
    return {
        "since": since,
        "since_epoch": int(since.timestamp()),
        "open": [str(pk) for pk, restricted in classes if not restricted],
        "restricted": [str(pk) for pk, restricted in classes if restricted],
        "max_share": setting("CAMPAIGN_MAX_VALUE_SHARE"),
    }


def _groups(rows, *, max_share):
    """Split the grouping query's rows: ``(open groups, {restricted class id: groups})``.

    An open group is a value and the subjects unrestricted classes' signals brought it to; a restricted
    class's group, the subjects that class's or unrestricted classes' signals brought it to.
    """
    open_groups, restricted_groups = [], defaultdict(list)
    for kind, value, open_carriers, restricted in rows:
        open_carriers = open_carriers or []
        if len(open_carriers) >= 2:
            open_groups.append((kind, value, open_carriers))
        if not restricted:
            continue
        if isinstance(restricted, str):
            restricted = json.loads(restricted)
        by_class = defaultdict(set)
        for subject_id, class_ids in restricted:
            for class_id in class_ids:
                by_class[class_id].add(subject_id)
        for class_id, carriers in by_class.items():
            subjects = sorted(carriers.union(open_carriers))
            if 2 <= len(subjects) <= max_share:
                restricted_groups[class_id].append((kind, value, subjects))
    return open_groups, restricted_groups


def _restricted_components(own_groups, joined, link_class, *, min_size):
    """Components over a restricted class's groups and the open components they touch (a restricted value
    glues whole open components), without the subjects a campaign of another kind holds."""
    reached = joined.groups_reached({s for _, _, subjects in own_groups for s in subjects})
    groups = own_groups + reached
    with connection.cursor() as cur:
        cur.execute(
            _HELD_ELSEWHERE_SQL,
            {"subjects": sorted({s for _, _, subjects in groups for s in subjects}), "link_class": link_class},
        )
        held = {subject for (subject,) in cur.fetchall()}
    kept = []
    for kind, value, subjects in groups:
        free = [s for s in subjects if s not in held]
        if len(free) >= 2:
            kept.append((kind, value, free))
    return components(kept, min_size=min_size)


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


def _campaigns_write(found, *, link_class, now):
    """Write one kind of campaign's components (``link_class``: see ``Campaign.link_class``): new campaigns,
    merges, members, links. Returns ``(counts, touched campaigns with their figures before, campaigns that gave
    members up, ids of the cases a merge moved)`` for ``_campaigns_settle``."""
    everyone = [s for subjects, _ in found for s in subjects]
    # Only campaigns of this kind count as the subjects' own: one of another kind gives its member up.
    current = dict(
        Subject.objects.filter(pk__in=everyone, campaign__isnull=False, campaign__link_class_id=link_class).values_list(
            "pk", "campaign_id"
        )
    )
    campaigns = Campaign.objects.select_for_update(no_key=True).in_bulk(set(current.values()))
    is_open = {pk for pk, c in campaigns.items() if c.status == Campaign.Status.OPEN}
    before = {pk: (c.links, c.size, c.threat_class_id) for pk, c in campaigns.items()}
    new_class = ThreatClass.objects.get(slug=DEFAULT_CLASS).pk if link_class is None else link_class

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
            Campaign(threat_class_id=new_class, link_class_id=link_class, links=_link_list(links), detected_at=now)
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
        # Campaigns of another kind that gave members up (to one of unrestricted links) are a member smaller.
        left = {previous for (previous,) in cur.fetchall() if previous is not None} - set(campaigns)
        subjects_joined = cur.rowcount
    if merges:
        Campaign.objects.filter(pk__in=list(merges)).delete()

    case_events_add_bulk(
        [(case_id, events.campaign_joined(campaign=cid, merged_from=old), None, now) for case_id, cid, old in moved]
    )

    counts = {"components": len(found), "created": len(new), "merged": len(merges), "subjects_joined": subjects_joined}
    return counts, [(c, before.get(c.pk)) for c in touched], left, {case_id for case_id, _, _ in moved}


def _campaigns_settle(written, *, open_classes, now):
    """After the cases joined: each written campaign's size and class, stored where they or its links changed;
    the campaigns that gave members up, resized."""
    touched = [(campaign, before) for _, pairs, _, _ in written for campaign, before in pairs]
    left = set().union(*(gave for _, _, gave, _ in written)) - {c.pk for c, _ in touched} if written else set()
    if not touched:
        return
    ids = [c.pk for c, _ in touched]
    open_links = [c.pk for c, _ in touched if c.link_class_id is None]
    with connection.cursor() as cur:
        cur.execute(_MOST_COMMON_CLASS_SQL, {"campaigns": open_links, "classes": open_classes})
        classes = dict(cur.fetchall())
        cur.execute(
            "SELECT campaign_id, count(*) FROM casework_subject WHERE campaign_id = ANY(%s) GROUP BY campaign_id", [ids]
        )
        sizes = dict(cur.fetchall())
        if left:
            cur.execute(
                "UPDATE casework_campaign c SET size = (SELECT count(*) FROM casework_subject s"
                " WHERE s.campaign_id = c.id), updated_at = %s WHERE c.id = ANY(%s)",
                [now, sorted(left)],
            )
    changed = []
    for campaign, before in touched:
        campaign.size = sizes.get(campaign.pk, 0)
        campaign.threat_class_id = classes.get(campaign.pk, campaign.threat_class_id)
        if (campaign.links, campaign.size, campaign.threat_class_id) != before:
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
