"""Queue tallies: per-queue figures that cost the same at any backlog and are exact at every commit.

Every statement that inserts, updates or deletes cases also appends, through
a statement-level trigger on ``casework_case`` (``TALLY_TRIGGER_SQL``, in the
same transaction), the net change it made per (queue, threat class, hour of
creation): cases waiting (open or escalated), in review, past their SLA
(those the re-ranking job has moved to the breached tier) and created. The
rows are deltas, appended, never updated: no two transactions ever wait for
each other on a tally. A reader sums the rows it sees, which is exact for its
snapshot; ``queue_tallies_compact`` (periodic) folds the rows into one per
(queue, class, recent hour) in a single statement, so a read sums a few
hundred rows whatever the backlog.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from .models import ACTIVE_STATUSES_SQL, WAITING_STATUSES_SQL

# Creation hours kept apart (for arrival rates over the last hours); older ones fold into one row.
ARRIVAL_HOURS_KEPT = 8


def _deltas(table: str, sign: str) -> str:
    return f"""
        SELECT queue_id, threat_class_id, date_trunc('hour', created_at) AS hour,
               {sign}(status IN ({WAITING_STATUSES_SQL}))::int AS waiting,
               {sign}(status = 'in_review')::int AS in_review,
               {sign}(status IN ({ACTIVE_STATUSES_SQL}) AND rank_tier IN (1, 3))::int AS breached,
               {sign}1 AS arrived
          FROM {table}"""


def _apply(*parts: str) -> str:
    return f"""
        INSERT INTO casework_queuetally (queue_id, threat_class_id, hour, waiting, in_review, breached, arrived)
        SELECT queue_id, threat_class_id, hour, sum(waiting), sum(in_review), sum(breached), sum(arrived)
          FROM ({" UNION ALL ".join(parts)}) d
         GROUP BY queue_id, threat_class_id, hour
        HAVING sum(waiting) <> 0 OR sum(in_review) <> 0 OR sum(breached) <> 0 OR sum(arrived) <> 0;"""


# The trigger (installed by migration casework 0009): one function, three statement-level triggers.
TALLY_TRIGGER_SQL = f"""
CREATE OR REPLACE FUNCTION casework_case_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_apply(_deltas("new_cases", ""))}
    ELSIF TG_OP = 'UPDATE' THEN
        {_apply(_deltas("new_cases", ""), _deltas("old_cases", "-"))}
    ELSE
        {_apply(_deltas("old_cases", "-"))}
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER casework_case_tally_insert AFTER INSERT ON casework_case
    REFERENCING NEW TABLE AS new_cases FOR EACH STATEMENT EXECUTE FUNCTION casework_case_tally();
CREATE TRIGGER casework_case_tally_update AFTER UPDATE ON casework_case
    REFERENCING OLD TABLE AS old_cases NEW TABLE AS new_cases FOR EACH STATEMENT EXECUTE FUNCTION casework_case_tally();
CREATE TRIGGER casework_case_tally_delete AFTER DELETE ON casework_case
    REFERENCING OLD TABLE AS old_cases FOR EACH STATEMENT EXECUTE FUNCTION casework_case_tally();
"""

TALLY_TRIGGER_DROP_SQL = """
DROP TRIGGER IF EXISTS casework_case_tally_insert ON casework_case;
DROP TRIGGER IF EXISTS casework_case_tally_update ON casework_case;
DROP TRIGGER IF EXISTS casework_case_tally_delete ON casework_case;
DROP FUNCTION IF EXISTS casework_case_tally();
"""

# Every case, counted afresh (the migration's first fill; ``queue_tallies_rebuild`` after a TRUNCATE).
TALLY_REBUILD_SQL = f"""
DELETE FROM casework_queuetally;
{_apply(_deltas("casework_case", ""))}
"""

# One statement: the rows this snapshot sees go, their sums come back one per (queue, class, recent hour).
# Rows appended meanwhile by transactions not yet committed are not seen, so not touched: nothing is lost.
_COMPACT_SQL = """
WITH gone AS (
    DELETE FROM casework_queuetally RETURNING *
)
INSERT INTO casework_queuetally (queue_id, threat_class_id, hour, waiting, in_review, breached, arrived)
SELECT queue_id, threat_class_id, CASE WHEN hour >= %(keep_since)s THEN hour END,
       sum(waiting), sum(in_review), sum(breached),
       COALESCE(sum(arrived) FILTER (WHERE hour >= %(keep_since)s), 0)
  FROM gone
 GROUP BY 1, 2, 3
HAVING sum(waiting) <> 0 OR sum(in_review) <> 0 OR sum(breached) <> 0
    OR COALESCE(sum(arrived) FILTER (WHERE hour >= %(keep_since)s), 0) <> 0
"""


# Whether a compaction would change anything: two rows of one (queue, class, hour), or an hour to fold.
_FOLDED_SQL = """
SELECT NOT EXISTS (SELECT 1 FROM casework_queuetally WHERE hour < %(keep_since)s)
   AND NOT EXISTS (SELECT 1 FROM casework_queuetally
                    GROUP BY queue_id, threat_class_id, hour HAVING count(*) > 1),
       (SELECT count(*) FROM casework_queuetally)
"""


def queue_tallies_compact(*, now: datetime | None = None) -> int:
    """Fold the tally rows into one per (queue, class, recent hour); returns the rows left.

    When the rows are folded already (nothing appended since the last run, no hour to
    fold), nothing is written: an idle run rewrites no row.
    """
    now = now or timezone.now()
    keep_since = (now - timedelta(hours=ARRIVAL_HOURS_KEPT)).replace(minute=0, second=0, microsecond=0)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(_FOLDED_SQL, {"keep_since": keep_since})
        folded, rows = cur.fetchone()
        if folded:
            return rows
        cur.execute(_COMPACT_SQL, {"keep_since": keep_since})
        return cur.rowcount


def queue_tallies_rebuild() -> None:
    """Recount every case (after a bulk load that bypassed the trigger, such as a TRUNCATE)."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(TALLY_REBUILD_SQL)
