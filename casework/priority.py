"""Case priority: one SQL statement that refreshes a case's inputs from its signals and ranks it.

DESIGN.md "Priority". For every case it touches, ``_REFRESH_SQL`` recomputes
from the stored signals the counts (signals, distinct reporters), the first and
last signal time, the signal strength (max of score x source trust), the
reporter weight (distinct reporters weighted by their accuracy on the case's class and
unrestricted ones, new reporters down-weighted), brigading, the subject's velocity (signals of the case's class and of
unrestricted classes: a restricted class's activity moves no other class's case), and then the case's rank,
priority and breakdown. ``case_reprioritise`` (the cases intake joins, the
per-case task), ``cases_reprioritise_due`` (the periodic job) and
``cases_reprioritise_all`` (after a change of formula) run the very same
statement, and ``cases_open_ranked`` inserts a new case with the same inputs
and rank (``_RANK_CTES``, ``_RANKED``), so a case ranks the same whichever path
computed it.

The priority at time ``now`` is ``base + breach offset + restricted offset`` where

    merit = severity x harm x (1 + evidence) x velocity factor     (does not move with time)
    evidence = 0.5 x reach term + signal strength + reporter term   (each in [0, 1])
    aging factor = 2 ** ((now - sla_due_at) / AGING_DOUBLING)        (1 at the SLA, halving per period before it)
    base = merit x aging factor   (compressed logarithmically above BASE_KNEE, so base < BREACH_OFFSET)

so a case rises as its SLA approaches, a case past its SLA ranks above every
case of its class that is not, and a restricted or legal-escalation case above
every unrestricted case (``RESTRICTED_OFFSET``), whatever its inputs. Within
those tiers the priority rises with each input and with time.

Work proportional to change (DESIGN.md): every case's aging factor doubles at
the same pace, so the order between two cases of one tier never changes while
their inputs stay put. The queue therefore orders by ``(rank_tier, rank)``
where ``rank = log2(merit) - (sla_due_at - RANK_EPOCH) / AGING_DOUBLING`` does
not move with time: ``log2(merit x aging factor) = rank + (now - RANK_EPOCH) /
AGING_DOUBLING``. Nothing is rewritten as the clock runs. What does change a
case's order by itself is a moment stored in ``rank_due_at``: its SLA breach
(the tier changes) or a signal of its subject leaving a velocity window (the
velocity factor changes). An input that moves in another case's transaction (a
signal on the case's subject, a decision on its reporters' record) marks the case
instead (``RankMark``, a narrow row: the case row is not written twice).
``cases_reprioritise_due`` re-ranks exactly those cases, in short batches that
skip rows others hold. The priority and breakdown
shown to a reviewer are computed at the time they are shown
(``priority_shown``) from the stored rank, so they stay true between rankings.

Velocity moments. With L signals in the last hour and P in the hour before,
the velocity score is ``ln(1 + L) + ln(max((L + 1) / (P + 1), 1))``. A signal
entering the last hour or leaving it changes L: always a moment. One leaving
the hour before (two hours after it occurred) takes P to P - 1, which changes
the growth term only when P <= L (below that the hour before still had at
least as many signals, and the growth stays 1). So of the hour-before signals,
in time order, the first max(P - L, 0) leave without a moment (a lone signal
two hours old never makes one: re-ranking then would rewrite the case and
change nothing), and the next one's exit is the moment. The breakdown shows
the growth as the score uses it (at least 1), so it too stays true between moments.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from docket.batches import chunks, jit_off, sweep_settings
from docket.rows import prepared

from .models import ACTIVE_STATUSES_SQL, Reporter

# Inputs and their shaping. Changing one changes every case's rank: run cases_reprioritise_all.
HARM_CAP = 100.0  # harm weight is admin-editable; capped so the tiers stay apart
REACH_SCALE = 1e9  # reach is log-scaled: 1 -> ~0, 1e9 -> 1
REPORTER_HALF = 3.0  # reporter weight at which the reporter term is 0.5
VELOCITY_HALF = 3.0  # velocity score at which the velocity term is 0.5
NEW_REPORTER_FACTOR = 0.25  # a reporter first seen less than a day before their report
SUSPICIOUS_AGE = "7 days"  # reporters younger than this (at their report) count as new for brigading
LOW_ACCURACY = 0.4  # or less accurate than this
BRIGADE_MIN_REPORTERS = 10
BRIGADE_SUSPICIOUS_SHARE = 0.6
BRIGADE_REPORTERS_PER_HOUR = 10.0
BRIGADE_DAMPING = 0.1  # what a suspicious reporter (and the velocity) still counts for in a brigade
AGING_DOUBLING = timedelta(hours=24)  # a case's priority doubles for each such period nearer its SLA
BASE_KNEE = 1e4  # above it the base grows with the log of merit x aging (weeks past the SLA stay below BREACH_OFFSET)
MIN_MERIT = 1e-12  # merit is floored so its log exists (a zero harm weight)
BREACH_OFFSET = 1e5
RESTRICTED_OFFSET = 1e6
RANK_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # rank's time origin: any fixed instant does

# The periodic job: short transactions (BATCH cases each: written in tens of milliseconds, so
# intake or a decision waits no longer than that for a case the batch holds), and no more than BUDGET per run.
BATCH = 100
BUDGET_SECONDS = 20.0

TIER_BREACHED = 1
TIER_RESTRICTED = 2
# The queue order, highest first: order_by(*BY_RANK) within one queue (its own partial index);
# order_by(*BY_RANK_ALL) across queues (the same order over case_rank_idx, an index on the negated
# columns that a one-queue claim never mistakes for its own). BY_RANK_ALL_REVERSED: lowest first.
BY_RANK = ("-rank_tier", "-rank", "id")
BY_RANK_ALL = ((F("rank_tier") * -1).asc(), (F("rank") * -1).asc(), F("id").asc())
BY_RANK_ALL_REVERSED = ((F("rank_tier") * -1).desc(), (F("rank") * -1).desc(), F("id").desc())

_DOUBLING_SECONDS = AGING_DOUBLING.total_seconds()
_LN2 = math.log(2)
_LN_KNEE = math.log(BASE_KNEE)

# The cases to rank, read without a lock (the rows are locked only once their new rank is computed): the
# active ones that ``extra`` selects (the periodic paths), or (``_TARGET_BY_IDS``) those of a list of ids.
_TARGET = f"""
    SELECT c.id, c.subject_id, c.threat_class_id, c.updated_at AS seen_updated, c.rank_due_at AS seen_due
    FROM casework_case c
    WHERE c.status IN ({ACTIVE_STATUSES_SQL}) {{extra}}
"""
# Each id by its key (OFFSET 0 keeps the status test out of the lookup: without statistics, the planner
# would otherwise intersect the ids with a scan of every active case's status entry).
_TARGET_BY_IDS = f"""
    SELECT c.id, c.subject_id, c.threat_class_id, c.updated_at AS seen_updated, c.rank_due_at AS seen_due
    FROM unnest(%(ids)s::bigint[]) AS x(id)
    CROSS JOIN LATERAL (SELECT * FROM casework_case c WHERE c.id = x.id OFFSET 0) c
    WHERE c.status IN ({ACTIVE_STATUSES_SQL})
    ORDER BY c.id
"""

# Every input and the new rank of each ``target`` case, up to ``based`` (one row per case with all that a
# ranking writes, ``_RANKED``). The cases are read from ``{{cases}}``: ``casework_case`` when re-ranking, the
# rows about to be inserted when a fold opens cases (``_OPEN_SQL``), so a case ranks the same either way.
_RANK_CTES = f"""
restricted AS MATERIALIZED (  -- the restricted classes, read once (not joined again for each signal and record)
    SELECT COALESCE(array_agg(id), ARRAY[]::bigint[]) AS restricted FROM policies_threatclass WHERE restricted
),
-- Each input is read per target case, through the case's (or subject's) own index: LATERAL keeps the work
-- proportional to the cases and signals touched, whatever the planner estimates for the target (a set-based
-- join of the batch with its reporters becomes cases x reporters when it guesses one target row).
-- Materialized: the inputs are read once per case, not once per later use of a column.
inputs AS MATERIALIZED (
    SELECT c.id,
           t.seen_updated,
           t.seen_due,
           c.severity::float8 AS severity,
           LEAST(c.harm_weight, %(harm_cap)s) AS harm,
           tc.restricted OR tc.legal_escalation AS restricted,
           -- the reach the signals of the case's class or of unrestricted classes reported (SubjectFacet): what
           -- everyone who may read the case may know; the subject's own figure when it has no facet at all
           CASE WHEN facet.present THEN COALESCE(facet.reach, 0) ELSE subj.reach END AS reach,
           COALESCE(sig.signals, c.signal_count) AS signals,
           COALESCE(sig.reporters, c.reporter_count) AS reporters,
           COALESCE(sig.first_at, c.first_signal_at) AS first_at,
           COALESCE(sig.last_at, c.last_signal_at) AS last_at,
           LEAST(GREATEST(COALESCE(sig.strength, c.signal_strength), 0), 1) AS strength,
           c.holdout OR COALESCE(sig.holdout, false) AS holdout,
           c.sla_due_at,
           CASE WHEN sig.signals IS NULL THEN c.reporter_weight ELSE COALESCE(rep.weight, 0) END AS weight_raw,
           COALESCE(rep.weight_suspicious, 0) AS weight_suspicious,
           COALESCE(
               rep.reporters >= %(brigade_min)s
               AND rep.suspicious >= %(brigade_share)s * rep.reporters
               AND rep.reporters >= %(brigade_rate)s * GREATEST(rep.span_hours, 1.0),
               false
           ) AS brigading,
           COALESCE(vel.last_hour, 0) AS velocity,
           COALESCE(vel.prev_hour, 0) AS velocity_prev,
           vel.next_change_at AS velocity_change_at
    FROM target t
    CROSS JOIN restricted x
    JOIN {{cases}} c ON c.id = t.id
    JOIN policies_threatclass tc ON tc.id = c.threat_class_id
    JOIN casework_subject subj ON subj.id = c.subject_id
    -- the subject's facets (none: its own figure stays)
    LEFT JOIN LATERAL (
        SELECT true AS present,
               max(f.reach) FILTER (WHERE f.threat_class_id = t.threat_class_id
                                       OR f.threat_class_id <> ALL (x.restricted)) AS reach
        FROM casework_subjectfacet f
        WHERE f.subject_id = t.subject_id
        HAVING count(*) > 0
    ) facet ON true
    -- the case's signals (none: the stored counts stay)
    LEFT JOIN LATERAL (
        SELECT count(*) AS signals,
               count(DISTINCT s.reporter_id) AS reporters,
               min(s.occurred_at) AS first_at,
               max(s.occurred_at) AS last_at,
               max(COALESCE(s.score, CASE WHEN src.kind = 'user_report' THEN 0 ELSE 1 END) * src.trust) AS strength,
               bool_or(s.holdout) AS holdout
        FROM casework_signal s
        JOIN policies_signalsource src ON src.id = s.source_id
        WHERE s.case_id = t.id
        HAVING count(*) > 0
    ) sig ON true
    -- its reporters: each distinct one once, by their first report on it, with their accuracy (their record on
    -- the case's class and on unrestricted classes: what everyone who may read the case may know of; a decision
    -- of a restricted class moves no other class's case)
    LEFT JOIN LATERAL (
        SELECT count(*) AS reporters,
               count(*) FILTER (WHERE f.young OR f.accuracy < %(low_accuracy)s) AS suspicious,
               sum(f.accuracy * CASE WHEN f.fresh THEN %(new_factor)s ELSE 1 END) AS weight,
               COALESCE(sum(f.accuracy * CASE WHEN f.fresh THEN %(new_factor)s ELSE 1 END)
                        FILTER (WHERE f.young OR f.accuracy < %(low_accuracy)s), 0) AS weight_suspicious,
               extract(epoch FROM max(f.occurred_at) - min(f.occurred_at)) / 3600.0 AS span_hours
        FROM (
            SELECT first.occurred_at, first.fresh, first.young,
                   (COALESCE(k.upheld, 0) + %(prior_upheld)s)::float8 / (COALESCE(k.decided, 0) + %(prior_decided)s)
                       AS accuracy
            FROM (
                SELECT DISTINCT ON (s.reporter_id)
                       s.reporter_id,
                       s.occurred_at,
                       s.occurred_at < r.first_seen_at + interval '1 day' AS fresh,
                       s.occurred_at < r.first_seen_at + interval '{SUSPICIOUS_AGE}' AS young
                FROM casework_signal s
                -- each reporter by its key (OFFSET 0: never a scan of every reporter hashed for each case)
                CROSS JOIN LATERAL (SELECT r.first_seen_at FROM casework_reporter r
                                     WHERE r.id = s.reporter_id OFFSET 0) r
                WHERE s.case_id = t.id AND s.reporter_id IS NOT NULL
                ORDER BY s.reporter_id, s.occurred_at
            ) first
            LEFT JOIN LATERAL (
                SELECT sum(rec.reports_upheld) AS upheld, sum(rec.reports_decided) AS decided
                FROM casework_reporterclassrecord rec
                WHERE rec.reporter_id = first.reporter_id
                  AND (rec.threat_class_id = t.threat_class_id OR rec.threat_class_id <> ALL (x.restricted))
            ) k ON true
        ) f
        HAVING count(*) > 0
    ) rep ON true
    -- signals on the subject (any source) in the last hour and the hour before, of the case's class or an
    -- unrestricted one (what everyone who may read the case may know of: a restricted class's activity on the
    -- subject moves no other class's case), and the next moment the velocity term changes (module doc)
    LEFT JOIN LATERAL (
        SELECT w.last_hour, w.prev_hour,
               LEAST(w.next_entry_or_exit,
                     w.prev_exits[GREATEST(w.prev_hour - w.last_hour, 0) + 1] + interval '2 hours') AS next_change_at
        FROM (
            SELECT count(*) FILTER (WHERE s.occurred_at > %(now)s - interval '1 hour'
                                      AND s.occurred_at <= %(now)s) AS last_hour,
                   count(*) FILTER (WHERE s.occurred_at <= %(now)s - interval '1 hour') AS prev_hour,
                   min(CASE WHEN s.occurred_at > %(now)s THEN s.occurred_at
                            WHEN s.occurred_at > %(now)s - interval '1 hour'
                            THEN s.occurred_at + interval '1 hour' END) AS next_entry_or_exit,
                   array_agg(s.occurred_at ORDER BY s.occurred_at)
                       FILTER (WHERE s.occurred_at <= %(now)s - interval '1 hour') AS prev_exits
            FROM casework_signal s
            WHERE s.subject_id = t.subject_id AND s.occurred_at > %(now)s - interval '2 hours'
              AND (s.threat_class_id = t.threat_class_id OR s.threat_class_id <> ALL (x.restricted))
            HAVING count(*) > 0
        ) w
    ) vel ON true
),
shaped AS (
    SELECT i.*,
           CASE WHEN i.brigading THEN i.weight_raw - (1 - %(damping)s) * i.weight_suspicious
                ELSE i.weight_raw END AS weight,
           LEAST(ln(1 + i.reach::float8) / ln(1 + %(reach_scale)s), 1) AS reach_term,
           ln(1 + i.velocity) + ln(GREATEST((i.velocity + 1)::float8 / (i.velocity_prev + 1), 1)) AS velocity_score,
           %(now)s >= i.sla_due_at AS breached,
           extract(epoch FROM %(now)s - i.sla_due_at)::float8 / %(doubling)s AS sla_periods
    FROM inputs i
),
terms AS (
    SELECT s.*,
           s.weight / (s.weight + %(reporter_half)s) AS reporter_term,
           1 + 0.5 * (s.velocity_score / (s.velocity_score + %(velocity_half)s))
               * CASE WHEN s.brigading THEN %(damping)s ELSE 1 END AS velocity_factor
    FROM shaped s
),
merited AS (
    SELECT t.*,
           0.5 * t.reach_term + t.strength + t.reporter_term AS evidence,
           GREATEST(t.severity * t.harm * (1 + 0.5 * t.reach_term + t.strength + t.reporter_term)
                    * t.velocity_factor, %(min_merit)s) AS merit
    FROM terms t
),
keyed AS (
    SELECT m.*,
           ln(m.merit) / {_LN2!r}
               - extract(epoch FROM m.sla_due_at - %(epoch)s)::float8 / %(doubling)s AS rank,
           CASE WHEN m.restricted THEN {TIER_RESTRICTED} ELSE 0 END
               + CASE WHEN m.breached THEN {TIER_BREACHED} ELSE 0 END AS rank_tier
    FROM merited m
),
ranked AS (
    SELECT k.*,
           -- ln(merit x aging factor) at now, from the rank exactly as priority_shown computes it
           {_LN2!r} * (k.rank + extract(epoch FROM %(now)s - %(epoch)s)::float8 / %(doubling)s) AS ln_z,
           CASE WHEN k.breached THEN %(breach_offset)s ELSE 0 END AS breach_offset,
           CASE WHEN k.restricted THEN %(restricted_offset)s ELSE 0 END AS restricted_offset
    FROM keyed k
),
based AS MATERIALIZED (
    SELECT r.*,
           CASE WHEN r.ln_z <= {_LN_KNEE!r} THEN exp(GREATEST(r.ln_z, -700))
                ELSE %(knee)s * (1 + r.ln_z - {_LN_KNEE!r}) END AS base
    FROM ranked r
)
"""

# What a ranking writes, from a ``based`` row ``r``: the re-rank's UPDATE and a new case's INSERT alike.
_RANKED = {
    "reach": "r.reach",
    "signal_count": "r.signals",
    "reporter_count": "r.reporters",
    "first_signal_at": "r.first_at",
    "last_signal_at": "r.last_at",
    "signal_strength": "r.strength",
    "reporter_weight": "r.weight_raw",
    "velocity": "r.velocity",
    "brigading": "r.brigading",
    "holdout": "r.holdout",
    "rank": "r.rank",
    "rank_tier": "r.rank_tier",
    "rank_due_at": "LEAST(CASE WHEN NOT r.breached THEN r.sla_due_at END, r.velocity_change_at)",
    "priority": "r.base + r.breach_offset + r.restricted_offset",
    "priority_breakdown": f"""jsonb_build_object(
            'severity', r.severity,
            'harm_weight', r.harm,
            'reach', round(r.reach_term::numeric, 4),
            'signal_strength', round(r.strength::numeric, 4),
            'reporter_weight', round(r.weight::numeric, 4),
            'reporter_term', round(r.reporter_term::numeric, 4),
            'brigading', r.brigading,
            'evidence', round(r.evidence::numeric, 4),
            'velocity', r.velocity,
            'velocity_growth', round(GREATEST((r.velocity + 1)::float8 / (r.velocity_prev + 1), 1)::numeric, 4),
            'velocity_factor', round(r.velocity_factor::numeric, 4),
            'merit', round(r.merit::numeric, 4),
            'aging_factor', round(exp(GREATEST(LEAST({_LN2!r} * r.sla_periods, 700), -700))::numeric, 4),
            'sla_breached', r.breached,
            'base', round(r.base::numeric, 4),
            'breach_offset', r.breach_offset,
            'restricted_offset', r.restricted_offset
        )""",
    "updated_at": "%(now)s",
}

_RANK_SQL = (
    _RANK_CTES.replace("{cases}", "casework_case")
    + f""",
-- Every rank computed (the sort needs all of them), the rows are locked, skipping those others hold
-- and those that changed since they were read (a fold, a claim, a mark: their new rank is someone
-- else's to compute, or the next run's): rows are held for the writes only. The locked rows carry
-- their new values, so the write joins each case once (not every computed row with every locked one).
-- Each computed row carries what was read of its case, so it meets its row by key alone (a join of the
-- computed rows with the target, estimated at one row, rescans one for each of the other: cases x cases).
locked AS (
    SELECT b.* FROM based b
      JOIN casework_case c ON c.id = b.id
     WHERE c.status IN ({ACTIVE_STATUSES_SQL})
       AND c.updated_at = b.seen_updated
       AND c.rank_due_at IS NOT DISTINCT FROM b.seen_due
     ORDER BY c.id
       FOR NO KEY UPDATE OF c SKIP LOCKED
)
UPDATE casework_case c SET
"""
    + ",\n".join(f"    {column} = {value}" for column, value in _RANKED.items())
    + """
FROM locked r
WHERE c.id = r.id
RETURNING c.id
"""
)
_REFRESH_SQL = f"WITH target AS MATERIALIZED ({_TARGET}),{_RANK_SQL}"
# ``case_reprioritise``'s: the same ranking of the cases it was given.
_REFRESH_BY_IDS_SQL = f"WITH target AS MATERIALIZED ({_TARGET_BY_IDS}),{_RANK_SQL}"

# New cases, ranked as they are inserted: one write of the row and of each of its index entries, where an
# insert followed by a re-rank wrote both twice. A fold reserved each case's id and stored its signals first
# (the signal's foreign key to its case is checked at commit), so the ranking reads them as a re-rank does.
# Each proposed row: [id, subject, class, queue, severity, harm weight, first signal, last signal, SLA seconds].
# A (subject, class) another transaction opened meanwhile conflicts and is left out (not returned).
_OPEN_SQL = f"""
WITH proposed AS MATERIALIZED (
    SELECT (r->>0)::bigint AS id, (r->>1)::bigint AS subject_id, (r->>2)::bigint AS threat_class_id,
           (r->>3)::bigint AS queue_id, (r->>4)::int AS severity, (r->>5)::float8 AS harm_weight,
           (r->>6)::timestamptz AS first_signal_at, (r->>7)::timestamptz AS last_signal_at,
           (r->>6)::timestamptz + make_interval(secs => (r->>8)::float8) AS sla_due_at,
           0 AS signal_count, 0 AS reporter_count, 0::float8 AS signal_strength, 0::float8 AS reporter_weight,
           false AS holdout
      FROM json_array_elements(%(rows)s::json) r
),
target AS MATERIALIZED (
    SELECT p.id, p.subject_id, p.threat_class_id, NULL::timestamptz AS seen_updated, NULL::timestamptz AS seen_due
      FROM proposed p
),{_RANK_CTES.replace("{cases}", "proposed")}
INSERT INTO casework_case (
    id, subject_id, threat_class_id, queue_id, status, severity, harm_weight, legal_hold, sla_due_at, created_at,
    {", ".join(_RANKED)}
)
SELECT p.id, p.subject_id, p.threat_class_id, p.queue_id, 'open', p.severity, p.harm_weight, false, p.sla_due_at,
       %(now)s, {", ".join(_RANKED.values())}
  FROM based r JOIN proposed p ON p.id = r.id
 ORDER BY p.subject_id, p.threat_class_id
ON CONFLICT DO NOTHING
RETURNING id
"""


# Marking cases due when an input of theirs moved in another case's transaction: a narrow row each
# (``RankMark``), never a write of the case row and its index entries, and no lock on the case. A mark
# already there is locked (the no-op update), not left as it is: the periodic job removes a mark before
# it re-ranks the case, so a mark made meanwhile must wait for that batch and be written after it, or
# the re-rank (which could not see this transaction's signals) would take it away. In case id order, as
# the job takes them: two markers or a marker and the job never wait on each other in a cycle.
def _marks_sql(ids: str) -> str:
    """SQL marking the cases selected by ``ids`` (a query of one ``id`` column, distinct) due at ``%(now)s``."""
    return f"""
INSERT INTO casework_rankmark AS m (case_id, marked_at)
SELECT due.id, %(now)s FROM ({ids}) due ORDER BY 1
ON CONFLICT (case_id) DO UPDATE SET marked_at = m.marked_at
"""


# Other active cases of the subjects just refreshed or opened: a new signal on a subject moves its velocity,
# which every one of its cases ranks by. They are marked due (the periodic job re-ranks them soon).
# Each step by its key (LATERAL kept apart by OFFSET 0): without statistics (a new installation, a restore
# before its first ANALYZE), the planner scanned every active case and joined the touched ones to it. Only
# subjects with cases of more than one class are looked up: two active cases of a subject are of two
# classes, and ``case_class_ids`` (kept by triggers, already written for this batch) lists every class of
# its cases, so a subject with cases of one class has no other to mark.
_SIBLINGS_DUE_SQL = _marks_sql(
    f"""
    SELECT o.id
      FROM (SELECT DISTINCT t.subject_id
              FROM unnest(%(touched)s::bigint[]) AS x(id)
              CROSS JOIN LATERAL (SELECT t.subject_id FROM casework_case t WHERE t.id = x.id OFFSET 0) t
              CROSS JOIN LATERAL (SELECT s.case_class_ids FROM casework_subject s
                                   WHERE s.id = t.subject_id OFFSET 0) s
             WHERE cardinality(s.case_class_ids) > 1) subj
      CROSS JOIN LATERAL (
          SELECT o.id FROM casework_case o
           WHERE o.subject_id = subj.subject_id
             AND o.status IN ({ACTIVE_STATUSES_SQL})
             AND NOT (o.id = ANY(%(touched)s::bigint[]))) o"""
)


# Reporters whose record changed (a decision upheld or rejected their report): their other active
# cases rank on a stale accuracy. A few reporters at a time; their cases re-ranked in bounded
# batches that skip rows others hold; then each reporter's mark cleared unless it moved meanwhile.
_REPORTERS_PENDING_SQL = """
SELECT id, rerank_pending_at FROM casework_reporter
 WHERE rerank_pending_at IS NOT NULL ORDER BY rerank_pending_at, id LIMIT %(reporters)s
"""

# Their cases, read once per run through the signals' reporter index (no lock), then re-ranked by id.
_REPORTERS_CASES_SQL = """
SELECT DISTINCT s.case_id FROM casework_signal s
 WHERE s.reporter_id = ANY(%(ids)s::bigint[]) AND s.case_id IS NOT NULL
 ORDER BY s.case_id
"""

# Past the run's budget, the rest of their cases are marked due instead, for the next runs to re-rank.
_CASES_MARK_DUE_SQL = _marks_sql(
    f"SELECT o.id FROM casework_case o WHERE o.id = ANY(%(ids)s::bigint[]) AND o.status IN ({ACTIVE_STATUSES_SQL})"
)

# The periodic job's batch of marks, in case id order from ``after``: taken (deleted, locked until the
# batch commits) before the cases are re-ranked, so the re-rank, a later statement, sees every signal
# committed by then. A mark another transaction holds (a marker not committed yet) is skipped: its
# transaction is still adding the input, and the mark stays for the next run.
_MARKS_TAKE_SQL = """
DELETE FROM casework_rankmark m
 WHERE m.case_id IN (SELECT case_id FROM casework_rankmark WHERE case_id > %(after)s
                      ORDER BY case_id LIMIT %(batch)s FOR UPDATE SKIP LOCKED)
RETURNING m.case_id, m.marked_at
"""

# The marks of cases a batch re-ranks for another reason (their moment came, their reporters' record moved),
# taken the same way before the re-rank: the re-rank covers what they asked for, so the case is not ranked
# again by the marks' pass of the same run.
_MARKS_OF_SQL = """
DELETE FROM casework_rankmark m
 WHERE m.case_id IN (SELECT case_id FROM casework_rankmark WHERE case_id = ANY(%(ids)s::bigint[])
                      ORDER BY case_id FOR UPDATE SKIP LOCKED)
RETURNING m.case_id, m.marked_at
"""

# The next batch of cases whose moment has come (never ranked, SLA just passed, a velocity window moved),
# read without a lock through the partial index of due active cases.
_DUE_SQL = f"""
SELECT c.id FROM casework_case c
 WHERE c.status IN ({ACTIVE_STATUSES_SQL}) AND c.rank_due_at <= %(now)s
 ORDER BY c.rank_due_at LIMIT %(batch)s
"""

# Taken cases the re-rank left (another transaction held the row, or changed it since it was read) are
# marked again, as they were; those no longer active need no rank.
_MARKS_KEEP_SQL = f"""
INSERT INTO casework_rankmark (case_id, marked_at)
SELECT k.id, k.at FROM unnest(%(ids)s::bigint[], %(ats)s::timestamptz[]) AS k(id, at)
  JOIN casework_case c ON c.id = k.id AND c.status IN ({ACTIVE_STATUSES_SQL})
 ORDER BY 1
ON CONFLICT (case_id) DO NOTHING
"""

_REPORTERS_DONE_SQL = """
UPDATE casework_reporter r SET rerank_pending_at = NULL
  FROM unnest(%(ids)s::bigint[], %(ats)s::timestamptz[]) AS p(id, at)
 WHERE r.id = p.id AND r.rerank_pending_at <= p.at
"""


def _params(now):
    return {
        "now": now,
        "epoch": RANK_EPOCH,
        "doubling": _DOUBLING_SECONDS,
        "knee": BASE_KNEE,
        "min_merit": MIN_MERIT,
        "prior_upheld": Reporter.PRIOR_UPHELD,
        "prior_decided": Reporter.PRIOR_DECIDED,
        "low_accuracy": LOW_ACCURACY,
        "new_factor": NEW_REPORTER_FACTOR,
        "brigade_min": BRIGADE_MIN_REPORTERS,
        "brigade_share": BRIGADE_SUSPICIOUS_SHARE,
        "brigade_rate": BRIGADE_REPORTERS_PER_HOUR,
        "damping": BRIGADE_DAMPING,
        "harm_cap": HARM_CAP,
        "reach_scale": REACH_SCALE,
        "reporter_half": REPORTER_HALF,
        "velocity_half": VELOCITY_HALF,
        "breach_offset": BREACH_OFFSET,
        "restricted_offset": RESTRICTED_OFFSET,
    }


def _refresh(sql, params) -> list[int]:
    """One batch of ``cases_reprioritise_all``: ``_REFRESH_SQL`` with its selection in a short transaction,
    committed asynchronously (``sweep_settings``), locking (skipping held rows) only to write."""
    with transaction.atomic(), connection.cursor() as cursor:
        # The statement's estimated cost invites a JIT compile that costs more than the statement.
        sweep_settings()
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def _batch_rerank(*, now, ids=(), marks_after=None, batch=BATCH) -> tuple[list[int], set[int]]:
    """One periodic batch in its own short transaction (``sweep_settings``): take the marks of its cases, re-rank
    the cases, mark again the taken ones the re-rank left. Returns ``(the cases, those re-ranked)``.

    The cases are ``ids`` (their marks taken too), or with ``marks_after`` the next ``batch`` marks after that
    case id. Marks are taken (deleted, locked until the batch commits) in a statement before the re-rank, so
    the re-rank sees every input their markers committed; a mark another transaction holds (its marker has not
    committed) is skipped and stays. Rows others hold are skipped by the re-rank: they stay due, or marked.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        sweep_settings()
        if marks_after is None:
            cursor.execute(_MARKS_OF_SQL, {"ids": _id_array(ids)})
        else:
            cursor.execute(_MARKS_TAKE_SQL, {"after": marks_after, "batch": batch})
        taken = sorted(cursor.fetchall())
        cases = sorted({*ids, *(i for i, _ in taken)})
        if not cases:
            return [], set()
        cursor.execute(_REFRESH_BY_IDS_SQL, {**_params(now), "ids": _id_array(cases)})
        done = {row[0] for row in cursor.fetchall()}
        left = [(i, at) for i, at in taken if i not in done]
        if left:
            cursor.execute(_MARKS_KEEP_SQL, {"ids": [i for i, _ in left], "ats": [at for _, at in left]})
    return cases, done


def _id_array(ids) -> str:
    # An array literal binds in one string, not one parameter per id.
    return "{" + ",".join(map(str, ids)) + "}"


def cases_open_ranked(*, rows, now) -> set[int]:
    """Insert new open cases ranked from their stored signals (``_OPEN_SQL``); returns the ids inserted.

    ``rows`` are the fold's proposed cases as one JSON array text (``_OPEN_SQL`` gives their shape), each
    with the id it reserved; one whose (subject, class) another transaction opened meanwhile is not
    inserted (the caller joins that case instead). Prepared: planning it costs more than running it.
    """
    with transaction.atomic(savepoint=False):
        jit_off()
        with prepared(_OPEN_SQL, {**_params(now), "rows": rows}) as cursor:
            return {row[0] for row in cursor.fetchall()}


def case_reprioritise(*, case_ids, now=None, opened=()) -> int:
    """Refresh the inputs and the rank of these cases (active ones only) from their signals.

    Rows another transaction holds are skipped: that transaction is changing them
    and re-ranks them itself or marks them due. The subjects' other active cases
    are marked due (their velocity moved), and so are those of ``opened``, cases
    just inserted ranked (``cases_open_ranked``), which are not ranked again.
    Returns the number of cases updated.
    """
    case_ids = sorted({int(i) for i in case_ids})
    touched = sorted(set(case_ids) | {int(i) for i in opened})
    if not touched:
        return 0
    now = now or timezone.now()
    params = {**_params(now), "ids": _id_array(case_ids), "touched": _id_array(touched)}
    # Each statement prepared (planned once per connection). No savepoint inside intake's transaction: an
    # error ends it whole.
    with transaction.atomic(savepoint=False):
        jit_off()
        updated = 0
        if case_ids:
            with prepared(_REFRESH_BY_IDS_SQL, params) as cursor:
                updated = len(cursor.fetchall())
        with prepared(_SIBLINGS_DUE_SQL, params):
            pass
        return updated


def reporters_cases_rerank(
    *, now=None, batch: int = BATCH, reporters: int = 100, budget_seconds: float = BUDGET_SECONDS
) -> int:
    """Re-rank the active cases of reporters whose record changed; returns the number of cases re-ranked.

    A reporter's accuracy weighs every case they reported (the reporter term of
    the evidence), so when a decision upholds or rejects their report
    (``rerank_pending_at`` set in the same statement), their other active cases'
    rank is stale. Work proportional to that change: only those cases, re-ranked
    by id in short transactions of at most ``batch`` cases that skip rows others
    hold (their holder is changing them), each case written once (not marked due
    first and ranked later: a reporter with many active cases would write each twice).
    Past ``budget_seconds`` the rest are marked due instead (one write each, re-ranked by
    the next runs), so a reporter with very many cases never makes one run long.
    The reporter rows are never locked here, so decisions never wait on this; a
    record that changes again meanwhile stays pending for the next run.
    """
    with connection.cursor() as cursor:
        cursor.execute(_REPORTERS_PENDING_SQL, {"reporters": reporters})
        pending = cursor.fetchall()
    if not pending:
        return 0
    ids = _id_array(r for r, _ in pending)
    with connection.cursor() as cursor:
        cursor.execute(_REPORTERS_CASES_SQL, {"ids": ids})
        case_ids = [row[0] for row in cursor.fetchall()]
    started, total = time.monotonic(), 0
    for chunk in chunks(case_ids, batch):
        at = now or timezone.now()
        if time.monotonic() - started <= budget_seconds:
            total += len(_batch_rerank(now=at, ids=chunk)[1])
        else:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(_CASES_MARK_DUE_SQL, {"ids": _id_array(chunk), "now": at})
    # A synchronous commit: once the marks are cleared, the batches' asynchronous commits before it are durable.
    with connection.cursor() as cursor:
        cursor.execute(_REPORTERS_DONE_SQL, {"ids": ids, "ats": [at for _, at in pending]})
    return total


def cases_reprioritise_due(*, now=None, batch: int = BATCH, budget_seconds: float = BUDGET_SECONDS) -> int:
    """Re-rank the active cases whose order may have changed (the periodic job). Returns the count.

    First the active cases of reporters whose record changed (``reporters_cases_rerank``),
    then the cases whose ``rank_due_at`` has come (never ranked, SLA just passed, a velocity
    window moved), then the marked ones (``RankMark``: an input moved in another case's
    transaction). Each batch of ``batch`` cases is its own short transaction and skips rows
    others hold (they stay due, or marked, for the next run); the run stops after ``budget_seconds``.
    """
    started = time.monotonic()
    total = reporters_cases_rerank(now=now, batch=batch, budget_seconds=budget_seconds)
    while True:
        at = now or timezone.now()
        with connection.cursor() as cursor:
            cursor.execute(_DUE_SQL, {"now": at, "batch": batch})
            due = [row[0] for row in cursor.fetchall()]
        done = _batch_rerank(now=at, ids=due)[1] if due else set()
        total += len(done)
        if time.monotonic() - started > budget_seconds:
            return total
        if len(done) < batch:
            break
    after = 0  # one pass over the marks in case id order: a mark left for a held case waits for the next run
    while time.monotonic() - started <= budget_seconds:
        taken, done = _batch_rerank(now=now or timezone.now(), marks_after=after, batch=batch)
        if not taken:
            break
        total += len(done)
        after = taken[-1]
    return total


def cases_reprioritise_all(*, now=None, batch: int = BATCH) -> int:
    """Re-rank every active case, in short id-ordered batches (after a change of formula). Returns the count.

    The queue never needs this to stay in order (the rank does not move with
    time); it exists for a change of the formula's constants or of many
    inputs at once (``manage.py docket_rerank``).
    """
    total, after = 0, 0
    while True:
        done = _refresh(
            _REFRESH_SQL.format(extra="AND c.id > %(after)s ORDER BY c.id LIMIT %(batch)s"),
            {**_params(now or timezone.now()), "after": after, "batch": batch},
        )
        total += len(done)
        if len(done) < batch:
            return total
        after = max(done)


def _base(ln_z: float) -> float:
    if ln_z <= _LN_KNEE:
        return math.exp(max(ln_z, -700))
    return BASE_KNEE * (1 + ln_z - _LN_KNEE)


def priority_shown(case, now=None) -> tuple[float, dict]:
    """The case's priority and breakdown at ``now`` (default: the present), for showing to a person.

    Computed from the stored rank and inputs, so it stays true between rankings:
    the aging factor, the breach and the base are those of ``now``. A case not
    ranked by this formula yet shows what was stored.
    """
    stored = dict(case.priority_breakdown or {})
    if "merit" not in stored or not case.is_active:
        return case.priority, stored
    now = now or timezone.now()
    periods = (now - case.sla_due_at).total_seconds() / _DOUBLING_SECONDS
    ln_z = _LN2 * (case.rank + (now - RANK_EPOCH).total_seconds() / _DOUBLING_SECONDS)
    base = _base(ln_z)
    breached = now >= case.sla_due_at
    breach_offset = BREACH_OFFSET if breached else 0
    restricted_offset = stored.get("restricted_offset", 0)
    stored.update(
        aging_factor=round(math.exp(max(min(_LN2 * periods, 700), -700)), 4),
        sla_breached=breached,
        base=round(base, 4),
        breach_offset=breach_offset,
    )
    return base + breach_offset + restricted_offset, stored


def priority_sql(now=None) -> tuple[str, list]:
    """SQL (and its parameters) for the priority at ``now`` of a ``casework_case`` row, as ``priority_shown``.

    For filters such as the case list's ``min_priority``; ordering uses ``rank_tier, rank`` (indexed).
    """
    now = now or timezone.now()
    periods = (now - RANK_EPOCH).total_seconds() / _DOUBLING_SECONDS
    ln_z = f"({_LN2!r} * (casework_case.rank + %s))"
    sql = f"""CASE WHEN casework_case.status IN ({ACTIVE_STATUSES_SQL})
                   AND casework_case.priority_breakdown ? 'merit' THEN
        CASE WHEN {ln_z} <= {_LN_KNEE!r} THEN exp(GREATEST({ln_z}, -700))
             ELSE {BASE_KNEE!r} * (1 + {ln_z} - {_LN_KNEE!r}) END
        + CASE WHEN casework_case.sla_due_at <= %s THEN {BREACH_OFFSET!r} ELSE 0 END
        + CASE WHEN casework_case.rank_tier >= {TIER_RESTRICTED} THEN {RESTRICTED_OFFSET!r} ELSE 0 END
      ELSE casework_case.priority END"""
    return sql, [periods, periods, periods, now]


# --- explaining a rank to a reviewer ---------------------------------------------------------------

# Each stored breakdown factor in words: (label, what it measures).
FACTORS = {
    "severity": ("Severity", "of the threat class, 1 to 5"),
    "harm_weight": ("Harm weight", "the class's harm multiplier"),
    "reach": ("Reach", "the subject's audience (as this class and unrestricted ones report it), log-scaled 0 to 1"),
    "signal_strength": ("Signal strength", "the best score times its source's trust, 0 to 1"),
    "reporter_weight": (
        "Reporter weight",
        "distinct reporters, each weighted by their past accuracy (on this class and unrestricted ones)",
    ),
    "reporter_term": ("Reporter term", "the reporter weight scaled to 0 to 1"),
    "brigading": ("Brigade suspected", "many new or inaccurate reporters at once: they count for little"),
    "evidence": ("Evidence", "half the reach, plus signal strength, plus the reporter term"),
    "velocity": ("Velocity", "signals on the subject in the last hour (this class and unrestricted ones)"),
    "velocity_growth": ("Velocity growth", "this hour's signals against the hour before (1 when not rising)"),
    "velocity_factor": ("Velocity multiplier", "1 to 1.5"),
    "merit": ("Merit", "severity x harm x (1 + evidence) x velocity: what does not change with time"),
    "aging_factor": ("Aging multiplier", "1 at the SLA, doubling every 24 hours nearer it (and past it)"),
    "sla_breached": ("Past its SLA", ""),
    "base": ("Base score", "merit x aging (compressed above 10,000 so the tiers stay apart)"),
    "breach_offset": ("Past-SLA tier", "added once the SLA has passed"),
    "restricted_offset": ("Restricted tier", "added for restricted and legal-escalation classes"),
}


def _number(value):
    return value if isinstance(value, int | float) and not isinstance(value, bool) else 0


def priority_explain(breakdown) -> dict:
    """A case's stored priority breakdown in plain language, for the "Why it ranks here" panel.

    Returns ``{"reasons": [...], "details": [{"label", "value", "meaning"}]}``:
    ``reasons`` are the two or three sentences that decide the rank, the tiers
    first (restricted, past SLA: they outrank any score), then the largest
    multipliers of the base score; ``details`` lists every factor with its
    meaning.
    """
    b = breakdown if isinstance(breakdown, dict) else {}
    if not b:
        return {"reasons": [], "details": []}
    reasons = []
    if _number(b.get("restricted_offset")) > 0:
        reasons.append("Restricted or legal class: it ranks above every unrestricted case in its queue.")
    if b.get("sla_breached") or _number(b.get("breach_offset")) > 0:
        reasons.append("Past its SLA: it ranks above every case of its class that is still within SLA.")

    severity, harm = _number(b.get("severity")), _number(b.get("harm_weight"))
    evidence = _number(b.get("evidence"))
    sources = {
        "its wide reach": 0.5 * _number(b.get("reach")),
        "a strong signal": _number(b.get("signal_strength")),
        "several reliable reporters": _number(b.get("reporter_term")),
    }
    strongest = max(sources, key=sources.get)
    velocity_factor = _number(b.get("velocity_factor")) or 1
    aging_factor = _number(b.get("aging_factor")) or 1
    # Candidate sentences with the size of their effect on the base score (a multiplier).
    candidates = [
        (max(severity * harm, 1), f"Its class is severity {severity:g} of 5 with harm weight {harm:g}."),
        (1 + evidence, f"Evidence multiplies it by {1 + evidence:.1f}, mostly from {strongest}."),
        (
            velocity_factor,
            f"Activity is rising: {_number(b.get('velocity')):g} signal(s) on the subject in the last hour "
            f"(x{velocity_factor:.2f}).",
        ),
        (aging_factor, f"It has been waiting: aging multiplies it by {aging_factor:.1f} as its SLA nears."),
    ]
    candidates = [c for c in candidates if c[0] > 1.05] or candidates[:1]
    candidates.sort(key=lambda c: -c[0])
    for _, sentence in candidates:
        if len(reasons) >= 3:
            break
        reasons.append(sentence)
    if b.get("brigading"):
        reasons[-1 if len(reasons) >= 3 else len(reasons) :] = [
            "It looks like a brigade: many new or inaccurate reporters, so their reports count for little."
        ]

    details = []
    for key, (label, meaning) in FACTORS.items():
        if key not in b:
            continue
        value = b[key]
        if isinstance(value, bool):
            shown = "yes" if value else "no"
        elif isinstance(value, int | float):
            shown = f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"
        else:
            shown = str(value)
        details.append({"key": key, "label": label, "value": shown, "meaning": meaning})
    return {"reasons": reasons, "details": details}
