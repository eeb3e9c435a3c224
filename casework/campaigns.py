"""Campaigns: subjects linked by shared attributes, detected on the beat (decided as one unit by ``reviews``).

Detection reads the (attribute value -> subjects) groups of the window in one
SQL statement, outside any transaction, joins them with an in-memory union-find
(near-linear, no pairwise comparison), and writes the result back in short
transactions of set-based statements, a bounded batch of subjects or cases each,
passing over rows someone else holds (the next run picks them up): no claim,
decision or intake fold waits for detection longer than one batch.

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
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import partial
from itertools import groupby

from django.db import connection, transaction
from django.utils import timezone

from docket.batches import BATCH_SIZE, chunks, sweep_settings
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

# Active cases whose subject (or, for content, whose owner account) sits in one of the campaigns, but which do
# not point at it yet; a campaign of a restricted class's links takes that class's cases only. Read without locks:
# each batch locks its cases and checks this again (``_CASES_JOIN_SQL``).
_CASES_WANTED_SQL = """
    SELECT c.id, w.campaign_id
    FROM (
        SELECT c.id,
               CASE WHEN s.campaign_id = ANY(%(campaigns)s) THEN s.campaign_id ELSE o.campaign_id END AS campaign_id
        FROM casework_case c
        JOIN casework_subject s ON s.id = c.subject_id
        LEFT JOIN casework_subject o ON o.id = s.owner_id
        WHERE c.status = ANY(%(active)s)
          AND (s.campaign_id = ANY(%(campaigns)s) OR o.campaign_id = ANY(%(campaigns)s))
    ) w
    JOIN casework_case c ON c.id = w.id
    JOIN casework_campaign k ON k.id = w.campaign_id
    WHERE c.campaign_id IS DISTINCT FROM w.campaign_id
      AND (k.link_class_id IS NULL OR k.link_class_id = c.threat_class_id)
    ORDER BY c.id
"""

# One batch of those cases joins, as far as it still holds now: a case decided, moved or held meanwhile stays.
_CASES_JOIN_SQL = """
    WITH target AS (
        SELECT c.id, m.campaign_id, c.campaign_id AS previous
        FROM unnest(%(cases)s::bigint[], %(targets)s::bigint[]) AS m(case_id, campaign_id)
        JOIN casework_case c ON c.id = m.case_id
        JOIN casework_subject s ON s.id = c.subject_id
        LEFT JOIN casework_subject o ON o.id = s.owner_id
        JOIN casework_campaign k ON k.id = m.campaign_id
        WHERE c.status = ANY(%(active)s)
          AND c.campaign_id IS DISTINCT FROM m.campaign_id
          AND m.campaign_id = CASE WHEN s.campaign_id = ANY(%(campaigns)s) THEN s.campaign_id ELSE o.campaign_id END
          AND (k.link_class_id IS NULL OR k.link_class_id = c.threat_class_id)
        ORDER BY c.id
        FOR NO KEY UPDATE OF c SKIP LOCKED  -- a case held by a claim, a decision or intake joins on the next run
    )
    UPDATE casework_case c SET campaign_id = t.campaign_id, updated_at = %(now)s
    FROM target t WHERE c.id = t.id
    RETURNING c.id, c.campaign_id, t.previous
"""

# One batch of subjects joins its campaigns, each only if it is still where it was read (a subject a senior's
# dismissal moved meanwhile stays in the dismissed part) and nobody holds it (intake folding a signal into it).
_SUBJECTS_JOIN_SQL = """
    WITH target AS (
        SELECT s.id, m.campaign_id, s.campaign_id AS previous FROM casework_subject s
        JOIN unnest(%(subjects)s::bigint[], %(campaigns)s::bigint[], %(previous)s::bigint[])
             AS m(subject_id, campaign_id, previous)
          ON m.subject_id = s.id
        WHERE s.campaign_id IS NOT DISTINCT FROM m.previous AND s.campaign_id IS DISTINCT FROM m.campaign_id
        ORDER BY s.id
        FOR NO KEY UPDATE OF s SKIP LOCKED
    )
    UPDATE casework_subject s SET campaign_id = t.campaign_id FROM target t WHERE s.id = t.id
    RETURNING s.id, t.campaign_id, t.previous
"""

# A merge moves a batch of the merged campaign's cases (every status), then of its members, to the survivor.
_MERGE_CASES_SQL = """
    WITH target AS (
        SELECT id FROM casework_case WHERE campaign_id = %(merged)s ORDER BY id LIMIT %(size)s
        FOR NO KEY UPDATE SKIP LOCKED
    )
    UPDATE casework_case c SET campaign_id = %(survivor)s, updated_at = %(now)s FROM target t WHERE c.id = t.id
    RETURNING c.id
"""
_MERGE_SUBJECTS_SQL = """
    WITH target AS (
        SELECT id FROM casework_subject WHERE campaign_id = %(merged)s ORDER BY id LIMIT %(size)s
        FOR NO KEY UPDATE SKIP LOCKED
    )
    UPDATE casework_subject s SET campaign_id = %(survivor)s FROM target t WHERE s.id = t.id
    RETURNING s.id
"""

# Campaign rows a batch writes or writes about, locked first, in id order; one a senior is deciding or dismissing
# right now is skipped (what would touch it waits for the next run), so detection never waits for a senior.
_CAMPAIGNS_LOCK_SQL = """
    SELECT id, status, links, size, threat_class_id FROM casework_campaign WHERE id = ANY(%s)
    ORDER BY id FOR NO KEY UPDATE SKIP LOCKED
"""

# Each batch moves its campaigns' figures with the members it moves (and writes a survivor's links the first time).
_CAMPAIGNS_MOVE_SQL = """
    UPDATE casework_campaign c
    SET size = c.size + m.delta, links = COALESCE(m.links::jsonb, c.links), updated_at = %s
    FROM unnest(%s::bigint[], %s::int[], %s::text[]) AS m(id, delta, links)
    WHERE c.id = m.id
"""

# The most common class among member cases of the given classes (a campaign of unrestricted links: of
# unrestricted classes, so that restricted cases joining it never change its class).
_MOST_COMMON_CLASS_SQL = """
    SELECT DISTINCT ON (campaign_id) campaign_id, threat_class_id
    FROM casework_case WHERE campaign_id = ANY(%(campaigns)s) AND threat_class_id = ANY(%(classes)s)
    GROUP BY campaign_id, threat_class_id
    ORDER BY campaign_id, count(*) DESC, threat_class_id
"""

# The class a new campaign of unrestricted links is created with: the same rule over the cases that are to join
# it (the active cases, of unrestricted classes, of its members and of content they own), so that a reader never
# sees it under another class while its cases join.
_PLANNED_CLASS_SQL = """
    SELECT DISTINCT ON (m.plan) m.plan, c.threat_class_id
    FROM unnest(%(subjects)s::bigint[], %(plans)s::int[]) AS m(subject_id, plan)
    CROSS JOIN LATERAL (
        SELECT m.subject_id AS id UNION ALL SELECT o.id FROM casework_subject o WHERE o.owner_id = m.subject_id
    ) s
    JOIN casework_case c ON c.subject_id = s.id
    WHERE c.status = ANY(%(active)s) AND c.threat_class_id = ANY(%(classes)s)
    GROUP BY m.plan, c.threat_class_id
    ORDER BY m.plan, count(*) DESC, c.threat_class_id
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


def campaigns_detect(*, now: datetime | None = None, batch: int = BATCH_SIZE) -> dict:
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

    No row is held for long: the groups and their components are read outside any
    transaction, and the writes are short transactions of at most ``batch`` subjects
    or cases each (``_Run``), which pass over rows another transaction holds (intake
    folding a signal into a subject, a reviewer claiming or deciding a case, a senior
    deciding or dismissing a campaign): those join on the next run, which finds them
    again, so detection never waits for anyone and nobody waits for it longer than a
    batch. What a batch commits is coherent for readers (``_Run``).
    """
    now = now or timezone.now()
    min_size = setting("CAMPAIGN_MIN_SIZE")
    with _one_run():
        params = groups_params(now=now)
        with connection.cursor() as cur:
            cur.execute(_GROUPS_SQL, params)
            open_groups, restricted_groups = _groups(cur.fetchall(), max_share=params["max_share"])
        run = _Run(now=now, batch=batch, open_classes=[int(pk) for pk in params["open"]])
        joined_open = _Joined(open_groups)
        run.write(joined_open.components(min_size=min_size), link_class=None)
        # After the campaigns of unrestricted links are written: the subjects they hold are not the others' to take.
        for link_class in sorted(restricted_groups):
            found = _restricted_components(
                restricted_groups[link_class], joined_open, link_class, min_size=min_size, taken=run.taken(link_class)
            )
            run.write(found, link_class=link_class)
        run.cases_join()
        run.settle()
    return run.counts()


@contextmanager
def _one_run():
    """One detection at a time, wherever it was started: a lock of the session's, held across the run's
    transactions (beat's firings are also kept from overlapping by ``docket.periodic``; this covers direct calls)."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(hashtext('docket.campaigns_detect'))")
    try:
        yield
    finally:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(hashtext('docket.campaigns_detect'))")


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


def _restricted_components(own_groups, joined, link_class, *, min_size, taken=frozenset()):
    """Components over a restricted class's groups and the open components they touch (a restricted value
    glues whole open components), without the subjects a campaign of another kind holds (or is to hold:
    ``taken``, the members this run gave one and which were held, so they join on the next run)."""
    reached = joined.groups_reached({s for _, _, subjects in own_groups for s in subjects})
    groups = own_groups + reached
    with connection.cursor() as cur:
        cur.execute(
            _HELD_ELSEWHERE_SQL,
            {"subjects": sorted({s for _, _, subjects in groups for s in subjects}), "link_class": link_class},
        )
        held = {subject for (subject,) in cur.fetchall()} | taken
    kept = []
    for kind, value, subjects in groups:
        free = [s for s in subjects if s not in held]
        if len(free) >= 2:
            kept.append((kind, value, free))
    return components(kept, min_size=min_size)


def _in_transaction(work):
    """``work()`` in a short transaction of its own, with a periodic sweep's settings (``docket.batches``)."""
    with transaction.atomic():
        sweep_settings()
        return work()


def _batches(items, size, *, key):
    """``items`` (sorted by ``key``) in batches of at most ``size``, those of one key together where they fit: a
    campaign's members (or cases) are written in one batch unless it has more than a batch of them."""
    batch = []
    for _, group in groupby(items, key=key):
        group = list(group)
        if batch and len(batch) + len(group) > size:
            yield batch
            batch = []
        while len(group) > size:
            yield group[:size]
            group = group[size:]
        batch += group
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _campaigns_lock(ids) -> dict:
    """Of these campaigns, the ones this transaction now holds: ``{id: (status, links, size, threat class)}``."""
    if not ids:
        return {}
    with connection.cursor() as cur:
        cur.execute(_CAMPAIGNS_LOCK_SQL, [sorted(ids)])
        rows = cur.fetchall()
    return {
        pk: (status, json.loads(links) if isinstance(links, str) else links, size, threat_class)
        for pk, status, links, size, threat_class in rows
    }


class _Run:
    """One detection's writes, a batch at a time, and the counts of what they changed.

    Each batch is its own transaction: it locks the campaign rows it writes (skipping one a senior holds, and
    leaving alone one no longer open), then at most ``batch`` subject or case rows with ``SKIP LOCKED``.
    Readers see, after every commit:

    * a campaign's stored size equal to its members: a batch moving members moves the sizes of the campaigns
      they join and leave by as many; a new campaign is written with its first batch of members (its links
      and its class, planned from the cases that are to join it, with it), never empty;
    * a growing campaign's new links stored by the first batch that grows it; its class, and every figure
      counted again, settled at the end of the run (``settle``);
    * open member counts derived from the case rows (``CampaignQuerySet.with_visible_figures``), so true at any
      time; a merge moves the merged campaign's cases to the oldest, then its members, then deletes it: if
      something of it was held, it stays with what is left and the next run goes on with the merge.
    """

    def __init__(self, *, now, batch, open_classes):
        self.now, self.batch, self.open_classes = now, batch, open_classes
        self.totals = {"components": 0, "created": 0, "merged": 0, "subjects_joined": 0}
        self.cases = set()  # cases that joined a campaign, or moved with a merge
        self.touched = {}  # campaign id -> its link class: the campaigns this run created or grew
        self.links_due = {}  # campaign id -> links, stored with the first batch that touches it
        self.left = set()  # campaigns of another kind that gave members up
        self.unmerged = set()  # campaigns merged into another something of which is still theirs
        self.planned = {}  # subject -> the link class of the campaign this run gave it

    def counts(self) -> dict:
        return {**self.totals, "cases_joined": len(self.cases)}

    def taken(self, link_class) -> set:
        """The subjects this run gave a campaign of another kind than ``link_class``."""
        return {s for s, planned in self.planned.items() if planned != link_class}

    # --- campaigns and members ---------------------------------------------------------------------------------

    def write(self, found, *, link_class):
        """Write one kind of campaign's components (``link_class``: see ``Campaign.link_class``): new campaigns,
        merges, members, links. Everything is decided from what is read here, outside any transaction; each batch
        checks again, under its locks, that what it writes still holds."""
        if not found:
            return
        self.totals["components"] += len(found)
        everyone = [s for subjects, _ in found for s in subjects]
        where = dict(Subject.objects.filter(pk__in=everyone, campaign__isnull=False).values_list("pk", "campaign_id"))
        campaigns = Campaign.objects.in_bulk(set(where.values()))
        # Only campaigns of this kind count as the subjects' own: one of another kind gives its member up.
        current = {s: pk for s, pk in where.items() if pk in campaigns and campaigns[pk].link_class_id == link_class}
        is_open = {pk for pk, c in campaigns.items() if c.status == Campaign.Status.OPEN}

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
        self.totals["merged"] += len(merges)

        new = {}  # -1 - plan index (a campaign to create) -> (subjects, links)
        new_links = defaultdict(list)
        moves = []  # (subject, its campaign: an id, or a campaign to create, where the subject is now)
        for index, (open_ids, assignable, links) in enumerate(plans):
            if open_ids:
                target = merges.get(open_ids[0], open_ids[0])
                new_links[target] += links
                self.touched[target] = link_class
            else:
                target = -1 - index
                new[target] = (assignable, _link_list(links))
            self.planned.update(dict.fromkeys(assignable, link_class))
            # A merged campaign's members move with the merge (after its cases), not one by one.
            moves += [(s, target, where.get(s)) for s in assignable if where.get(s) not in (target, *merges)]
        for pk, links in new_links.items():
            old = [link for m in [pk, *(m for m, s in merges.items() if s == pk)] for link in campaigns[m].links]
            self.links_due[pk] = _link_list(links, old)

        for merged, survivor in sorted(merges.items()):
            self._merge(merged, survivor)
        classes = self._planned_classes(new, link_class=link_class)
        created = {}  # campaign to create -> its id, once written
        # By campaign, so that a batch touches few; new ones in the order found, the first created first.
        moves.sort(key=lambda move: (move[1] > 0, abs(move[1]), move[0]))
        for chunk in _batches(moves, self.batch, key=lambda move: move[1]):
            _in_transaction(partial(self._subjects_batch, chunk, new, classes, created, link_class))

    def _planned_classes(self, new, *, link_class) -> dict:
        """The class each new campaign is created with: its link class; for unrestricted links, the most common
        among the cases that are to join it (``_PLANNED_CLASS_SQL``), else coordinated inauthentic behaviour."""
        if link_class is not None or not new:
            return dict.fromkeys(new, link_class)
        pairs = [(s, target) for target, (subjects, _) in new.items() for s in subjects]
        with connection.cursor() as cur:
            cur.execute(
                _PLANNED_CLASS_SQL,
                {
                    "subjects": [s for s, _ in pairs],
                    "plans": [target for _, target in pairs],
                    "active": list(Case.ACTIVE_STATUSES),
                    "classes": self.open_classes,
                },
            )
            planned = dict(cur.fetchall())
        default = ThreatClass.objects.get(slug=DEFAULT_CLASS).pk
        return {target: planned.get(target, default) for target in new}

    def _subjects_batch(self, chunk, new, classes, created, link_class):
        """One transaction: these subjects join their campaigns, as far as nobody holds them or their campaigns."""
        held = _campaigns_lock({c for _, c, _ in chunk if c > 0} | {p for _, _, p in chunk if p is not None})
        chunk = [
            (s, c, p)
            for s, c, p in chunk
            if (c < 0 or (c in held and held[c][0] == Campaign.Status.OPEN)) and (p is None or p in held)
        ]
        fresh = sorted({c for _, c, _ in chunk if c < 0 and c not in created})
        written = Campaign.objects.bulk_create(
            [
                Campaign(
                    threat_class_id=classes[c], link_class_id=link_class, links=new[c][1], size=0, detected_at=self.now
                )
                for c in fresh
            ]
        )
        ids = {**created, **{c: campaign.pk for c, campaign in zip(fresh, written, strict=True)}}
        if not chunk:
            return
        with connection.cursor() as cur:
            cur.execute(
                _SUBJECTS_JOIN_SQL,
                {
                    "subjects": [s for s, _, _ in chunk],
                    "campaigns": [ids.get(c, c) for _, c, _ in chunk],
                    "previous": [p for _, _, p in chunk],
                },
            )
            joined = cur.fetchall()
        deltas = defaultdict(int)
        for _, pk, previous in joined:
            deltas[pk] += 1
            if previous is not None:
                deltas[previous] -= 1
                self.left.add(previous)
        empty = [ids[c] for c in fresh if not deltas[ids[c]]]
        if empty:  # every member it was to start with is held: it is created with the first it gets
            with connection.cursor() as cur:
                cur.execute("DELETE FROM casework_campaign WHERE id = ANY(%s)", [empty])
        for c in fresh:
            if ids[c] not in empty:
                created[c] = ids[c]
                self.touched[ids[c]] = link_class
                self.totals["created"] += 1
        self.totals["subjects_joined"] += len(joined)
        self._figures(deltas)

    def _figures(self, deltas):
        """In the batch's transaction: sizes moved by ``deltas`` ({campaign id: members gained}), links due."""
        rows = []
        for pk, delta in sorted(deltas.items()):
            links = self.links_due.pop(pk, None)
            if delta or links is not None:
                rows.append((pk, delta, None if links is None else json.dumps(links)))
        if rows:
            with connection.cursor() as cur:
                cur.execute(_CAMPAIGNS_MOVE_SQL, [self.now, *map(list, zip(*rows, strict=True))])

    def _merge(self, merged, survivor):
        """Everything of ``merged`` moves to ``survivor`` (members outside this run's window too), a batch at a
        time: its cases, then, once none is left, its members; then it is deleted. Whatever of it someone holds
        stays with it (its members too while a case does), for the next run, which merges it again."""
        self.unmerged.add(merged)
        for sql in (_MERGE_CASES_SQL, _MERGE_SUBJECTS_SQL):
            while True:
                done = _in_transaction(partial(self._merge_batch, sql, merged, survivor))
                if done is None:  # a senior holds one of the two, or decided it: the next run goes on
                    return
                if done < self.batch:
                    break
            if sql is _MERGE_CASES_SQL and Case.objects.filter(campaign_id=merged).exists():
                return
        if _in_transaction(partial(self._merge_end, merged)):
            self.unmerged.discard(merged)

    def _merge_batch(self, sql, merged, survivor):
        held = _campaigns_lock([merged, survivor])
        if any(pk not in held or held[pk][0] != Campaign.Status.OPEN for pk in (merged, survivor)):
            return None
        with connection.cursor() as cur:
            cur.execute(sql, {"merged": merged, "survivor": survivor, "size": self.batch, "now": self.now})
            moved = [pk for (pk,) in cur.fetchall()]
        if not moved:
            return 0
        if sql is _MERGE_CASES_SQL:
            case_events_add_bulk(
                [(pk, events.campaign_joined(campaign=survivor, merged_from=merged), None, self.now) for pk in moved]
            )
            self.cases.update(moved)
            self._figures({survivor: 0})
        else:
            self._figures({survivor: len(moved), merged: -len(moved)})
        return len(moved)

    def _merge_end(self, merged) -> bool:
        if merged not in _campaigns_lock([merged]):
            return False
        if Subject.objects.filter(campaign_id=merged).exists() or Case.objects.filter(campaign_id=merged).exists():
            return False
        Campaign.objects.filter(pk=merged).delete()  # its decisions, if any, no longer name a campaign
        return True

    # --- cases -------------------------------------------------------------------------------------------------

    def cases_join(self):
        """Active cases of members of open campaigns join them (new cases, and members whose links aged out), a
        batch at a time. A merged campaign something of which is left takes none: its cases are on their way."""
        open_ids = list(
            Campaign.objects.filter(status=Campaign.Status.OPEN)
            .exclude(pk__in=self.unmerged)
            .values_list("pk", flat=True)
        )
        if not open_ids:
            return
        params = {"campaigns": open_ids, "active": list(Case.ACTIVE_STATUSES)}
        with connection.cursor() as cur:
            cur.execute(_CASES_WANTED_SQL, params)
            wanted = sorted(cur.fetchall(), key=lambda row: (row[1], row[0]))  # a batch touches few campaigns
        for chunk in _batches(wanted, self.batch, key=lambda row: row[1]):
            _in_transaction(partial(self._cases_batch, chunk, params))

    def _cases_batch(self, chunk, params):
        held = _campaigns_lock({pk for _, pk in chunk})
        chunk = [(case, pk) for case, pk in chunk if pk in held and held[pk][0] == Campaign.Status.OPEN]
        if not chunk:
            return
        with connection.cursor() as cur:
            cur.execute(
                _CASES_JOIN_SQL,
                {**params, "cases": [c for c, _ in chunk], "targets": [pk for _, pk in chunk], "now": self.now},
            )
            joined = cur.fetchall()
        case_events_add_bulk(
            [(pk, events.campaign_joined(campaign=c, previous=old), None, self.now) for pk, c, old in joined]
        )
        self.cases.update(pk for pk, _, _ in joined)

    # --- figures -----------------------------------------------------------------------------------------------

    def settle(self):
        """After the cases joined: each campaign this run created or grew has its size counted again and its class
        (of unrestricted links: the most common among its cases of unrestricted classes) and links stored where
        they changed; the campaigns that gave members up, their size counted again. Campaign rows only."""
        for chunk in chunks(sorted(set(self.touched) | self.left), self.batch):
            _in_transaction(partial(self._settle_batch, chunk))

    def _settle_batch(self, ids):
        held = _campaigns_lock(ids)
        if not held:
            return
        ids = sorted(held)
        open_links = [pk for pk in ids if pk in self.touched and self.touched[pk] is None]
        with connection.cursor() as cur:
            cur.execute(_MOST_COMMON_CLASS_SQL, {"campaigns": open_links, "classes": self.open_classes})
            classes = dict(cur.fetchall())
            cur.execute(
                "SELECT campaign_id, count(*) FROM casework_subject WHERE campaign_id = ANY(%s) GROUP BY campaign_id",
                [ids],
            )
            sizes = dict(cur.fetchall())
        changed = []
        for pk in ids:
            _, links, size, threat_class = held[pk]
            figures = (self.links_due.pop(pk, links), sizes.get(pk, 0), classes.get(pk, threat_class))
            if figures != (links, size, threat_class):
                changed.append((pk, *figures))
        if changed:
            with connection.cursor() as cur:
                cur.execute(
                    "UPDATE casework_campaign c"
                    " SET links = m.links::jsonb, size = m.size, threat_class_id = m.tc, updated_at = %s"
                    " FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::bigint[]) AS m(id, links, size, tc)"
                    " WHERE c.id = m.id",
                    [
                        self.now,
                        [pk for pk, *_ in changed],
                        [json.dumps(links) for _, links, _, _ in changed],
                        [size for _, _, size, _ in changed],
                        [tc for *_, tc in changed],
                    ],
                )
