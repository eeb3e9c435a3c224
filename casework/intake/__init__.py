"""Intake: platform signals become stored signals and prioritised cases.

Three modules: ``validate`` (a batch checked whole), ``store`` (written in set-based
statements) and ``fold`` (signals into cases; the public fold API hygiene uses too).

``signals_ingest`` is the one intake path: the API, ``simulate`` and
``docket_demo`` call it. A batch is validated whole before anything is written,
then stored in a few set-based statements (not a statement per signal):

0. take a slot of the intake gate (``INTAKE_CONCURRENCY`` batches write at once, the rest wait
   their turn, so a flood never takes every core from the reviewers);
1. claim the batch's ``(source, external_id)`` keys (transaction-scoped advisory locks, so a
   concurrent duplicate waits and then writes nothing of its payload) and look up which are
   already stored (repeats answer the stored result);
2. upsert subjects (content owners as accounts), their attribute rows and the reporters;
3. decide each signal's disposition (the threshold rule, ``policies.thresholds.disposition_for``);
4. fold queued signals into cases: lock the active case of (subject, class), or reserve an id for
   a new one;
5. insert the signals ``ON CONFLICT DO NOTHING`` (a backstop: a key stored meanwhile answers the
   stored result, so a duplicate never counts twice), then insert the new cases ranked from them;
6. refresh the joined cases from their signals (counts, strength, priority: ``casework.priority``),
   write their events, let automation decide auto-actioned cases. Every case the batch touched
   is ranked when it commits: no re-rank is left to a worker.
"""

from .fold import cases_settle, routes_resolve, signals_fold
from .store import (
    AUTO_ACTIONED,
    BELOW_THRESHOLD,
    FOLDED,
    HELD,
    QUEUED,
    IntakeResult,
    automated_decisions,
    signals_ingest,
)
from .validate import IntakeReference

__all__ = [
    "AUTO_ACTIONED",
    "BELOW_THRESHOLD",
    "FOLDED",
    "HELD",
    "QUEUED",
    "IntakeReference",
    "IntakeResult",
    "automated_decisions",
    "cases_settle",
    "routes_resolve",
    "signals_fold",
    "signals_ingest",
]
