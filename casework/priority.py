"""Case priority: one SQL statement that refreshes a case's inputs from its signals and ranks it.

DESIGN.md "Priority". For every case it touches, ``_REFRESH_SQL`` recomputes
from the stored signals the counts (signals, distinct reporters), the first and
last signal time, the signal strength (max of score x source trust), the
reporter weight (distinct reporters weighted by their accuracy, new reporters
down-weighted), brigading, the subject's velocity, and then the priority and its
breakdown. ``case_reprioritise`` (intake and the per-case task) and
``cases_reprioritise_all`` (the beat sweep) run the very same statement, so a
case ranks the same whichever path computed it.

The priority is ``base + breach offset + restricted offset`` where

    base = severity x harm x (1 + evidence) x velocity factor x aging factor
    evidence = 0.5 x reach term + signal strength + reporter term   (each in [0, 1])

Every term is bounded, so ``base < BREACH_OFFSET``: a case past its SLA ranks
above every case of its class that is not, and a restricted or legal-escalation
case above every unrestricted case (``RESTRICTED_OFFSET``), whatever its inputs.
Within those tiers the priority rises with each input and with time.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone

from .models import Case, Reporter

# Inputs and their shaping. Changing one changes every case's rank at the next sweep.
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
BREACH_OFFSET = 1e5
RESTRICTED_OFFSET = 1e6

_ACTIVE = ", ".join(f"'{s}'" for s in Case.ACTIVE_STATUSES)

_REFRESH_SQL = f"""
WITH target AS (
    SELECT c.id, c.subject_id
    FROM casework_case c
    WHERE c.status IN ({_ACTIVE}) {{extra}}
    ORDER BY c.id
    FOR UPDATE OF c SKIP LOCKED
),
sig AS (
    SELECT s.case_id,
           count(*) AS signals,
           count(DISTINCT s.reporter_id) AS reporters,
           min(s.occurred_at) AS first_at,
           max(s.occurred_at) AS last_at,
           max(COALESCE(s.score, CASE WHEN src.kind = 'user_report' THEN 0 ELSE 1 END) * src.trust) AS strength,
           bool_or(s.holdout) AS holdout
    FROM casework_signal s
    JOIN target t ON t.id = s.case_id
    JOIN casework_signalsource src ON src.id = s.source_id
    GROUP BY s.case_id
),
first_reports AS (  -- each distinct reporter once per case: their first report on it
    SELECT DISTINCT ON (s.case_id, s.reporter_id)
           s.case_id,
           s.occurred_at,
           (r.reports_upheld + %(prior_upheld)s)::float8 / (r.reports_decided + %(prior_decided)s) AS accuracy,
           s.occurred_at < r.first_seen_at + interval '1 day' AS fresh,
           s.occurred_at < r.first_seen_at + interval '{SUSPICIOUS_AGE}' AS young
    FROM casework_signal s
    JOIN target t ON t.id = s.case_id
    JOIN casework_reporter r ON r.id = s.reporter_id
    ORDER BY s.case_id, s.reporter_id, s.occurred_at
),
rep AS (
    SELECT case_id,
           count(*) AS reporters,
           count(*) FILTER (WHERE young OR accuracy < %(low_accuracy)s) AS suspicious,
           sum(accuracy * CASE WHEN fresh THEN %(new_factor)s ELSE 1 END) AS weight,
           COALESCE(sum(accuracy * CASE WHEN fresh THEN %(new_factor)s ELSE 1 END)
                    FILTER (WHERE young OR accuracy < %(low_accuracy)s), 0) AS weight_suspicious,
           extract(epoch FROM max(occurred_at) - min(occurred_at)) / 3600.0 AS span_hours
    FROM first_reports
    GROUP BY case_id
),
vel AS (  -- signals on the subject (any class, any source) in the last hour and the hour before
    SELECT s.subject_id,
           count(*) FILTER (WHERE s.occurred_at > %(now)s - interval '1 hour') AS last_hour,
           count(*) FILTER (WHERE s.occurred_at <= %(now)s - interval '1 hour') AS prev_hour
    FROM casework_signal s
    WHERE s.subject_id IN (SELECT subject_id FROM target)
      AND s.occurred_at > %(now)s - interval '2 hours'
      AND s.occurred_at <= %(now)s
    GROUP BY s.subject_id
),
inputs AS (
    SELECT c.id,
           c.severity::float8 AS severity,
           LEAST(c.harm_weight, %(harm_cap)s) AS harm,
           tc.restricted OR tc.legal_escalation AS restricted,
           subj.reach,
           COALESCE(sig.signals, c.signal_count) AS signals,
           COALESCE(sig.reporters, c.reporter_count) AS reporters,
           COALESCE(sig.first_at, c.first_signal_at) AS first_at,
           COALESCE(sig.last_at, c.last_signal_at) AS last_at,
           LEAST(GREATEST(COALESCE(sig.strength, c.signal_strength), 0), 1) AS strength,
           c.holdout OR COALESCE(sig.holdout, false) AS holdout,
           c.sla_due_at,
           CASE WHEN sig.case_id IS NULL THEN c.reporter_weight ELSE COALESCE(rep.weight, 0) END AS weight_raw,
           COALESCE(rep.weight_suspicious, 0) AS weight_suspicious,
           COALESCE(
               rep.reporters >= %(brigade_min)s
               AND rep.suspicious >= %(brigade_share)s * rep.reporters
               AND rep.reporters >= %(brigade_rate)s * GREATEST(rep.span_hours, 1.0),
               false
           ) AS brigading,
           COALESCE(vel.last_hour, 0) AS velocity,
           COALESCE(vel.prev_hour, 0) AS velocity_prev
    FROM target t
    JOIN casework_case c ON c.id = t.id
    JOIN policies_threatclass tc ON tc.id = c.threat_class_id
    JOIN casework_subject subj ON subj.id = c.subject_id
    LEFT JOIN sig ON sig.case_id = c.id
    LEFT JOIN rep ON rep.case_id = c.id
    LEFT JOIN vel ON vel.subject_id = c.subject_id
),
shaped AS (
    SELECT i.*,
           CASE WHEN i.brigading THEN i.weight_raw - (1 - %(damping)s) * i.weight_suspicious
                ELSE i.weight_raw END AS weight,
           LEAST(ln(1 + i.reach::float8) / ln(1 + %(reach_scale)s), 1) AS reach_term,
           ln(1 + i.velocity) + ln(GREATEST((i.velocity + 1)::float8 / (i.velocity_prev + 1), 1)) AS velocity_score,
           GREATEST(extract(epoch FROM i.sla_due_at - i.first_at), 1) AS sla_span,
           %(now)s > i.sla_due_at AS breached
    FROM inputs i
),
terms AS (
    SELECT s.*,
           s.weight / (s.weight + %(reporter_half)s) AS reporter_term,
           1 + 0.5 * (s.velocity_score / (s.velocity_score + %(velocity_half)s))
               * CASE WHEN s.brigading THEN %(damping)s ELSE 1 END AS velocity_factor,
           1 + 2 * LEAST(GREATEST(extract(epoch FROM %(now)s - s.first_at) / s.sla_span, 0), 1)
             + LEAST(GREATEST(extract(epoch FROM %(now)s - s.sla_due_at) / s.sla_span, 0), 1) AS aging_factor
    FROM shaped s
),
ranked AS (
    SELECT t.*,
           0.5 * t.reach_term + t.strength + t.reporter_term AS evidence,
           t.severity * t.harm * (1 + 0.5 * t.reach_term + t.strength + t.reporter_term)
               * t.velocity_factor * t.aging_factor AS base,
           CASE WHEN t.breached THEN %(breach_offset)s ELSE 0 END AS breach_offset,
           CASE WHEN t.restricted THEN %(restricted_offset)s ELSE 0 END AS restricted_offset
    FROM terms t
)
UPDATE casework_case c SET
    reach = r.reach,
    signal_count = r.signals,
    reporter_count = r.reporters,
    first_signal_at = r.first_at,
    last_signal_at = r.last_at,
    signal_strength = r.strength,
    reporter_weight = r.weight_raw,
    velocity = r.velocity,
    brigading = r.brigading,
    holdout = r.holdout,
    priority = r.base + r.breach_offset + r.restricted_offset,
    priority_breakdown = jsonb_build_object(
        'severity', r.severity,
        'harm_weight', r.harm,
        'reach', round(r.reach_term::numeric, 4),
        'signal_strength', round(r.strength::numeric, 4),
        'reporter_weight', round(r.weight::numeric, 4),
        'reporter_term', round(r.reporter_term::numeric, 4),
        'brigading', r.brigading,
        'evidence', round(r.evidence::numeric, 4),
        'velocity', r.velocity,
        'velocity_growth', round(((r.velocity + 1)::float8 / (r.velocity_prev + 1))::numeric, 4),
        'velocity_factor', round(r.velocity_factor::numeric, 4),
        'aging_factor', round(r.aging_factor::numeric, 4),
        'sla_breached', r.breached,
        'base', round(r.base::numeric, 4),
        'breach_offset', r.breach_offset,
        'restricted_offset', r.restricted_offset
    ),
    updated_at = %(now)s
FROM ranked r
WHERE c.id = r.id
"""


def _params(now):
    return {
        "now": now,
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


def _refresh(extra, params):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_REFRESH_SQL.format(extra=extra), params)
        return cursor.rowcount


def case_reprioritise(*, case_ids, now=None) -> int:
    """Refresh the inputs and the priority of these cases (active ones only) from their signals.

    Rows another transaction holds are skipped: that transaction is changing them
    and the beat sweep catches up. Returns the number of cases updated.
    """
    case_ids = sorted({int(i) for i in case_ids})
    if not case_ids:
        return 0
    # An array literal binds in one string, not one parameter per id.
    ids = "{" + ",".join(map(str, case_ids)) + "}"
    return _refresh("AND c.id = ANY(%(ids)s::bigint[])", {**_params(now or timezone.now()), "ids": ids})


def cases_reprioritise_all(*, now=None) -> int:
    """Refresh every active case in one set-based UPDATE (the beat sweep). Returns the count."""
    return _refresh("", _params(now or timezone.now()))


# --- explaining a rank to a reviewer ---------------------------------------------------------------

# Each stored breakdown factor in words: (label, what it measures).
FACTORS = {
    "severity": ("Severity", "of the threat class, 1 to 5"),
    "harm_weight": ("Harm weight", "the class's harm multiplier"),
    "reach": ("Reach", "the subject's audience, log-scaled from 0 to 1"),
    "signal_strength": ("Signal strength", "the best score times its source's trust, 0 to 1"),
    "reporter_weight": ("Reporter weight", "distinct reporters, each weighted by their past accuracy"),
    "reporter_term": ("Reporter term", "the reporter weight scaled to 0 to 1"),
    "brigading": ("Brigade suspected", "many new or inaccurate reporters at once: they count for little"),
    "evidence": ("Evidence", "half the reach, plus signal strength, plus the reporter term"),
    "velocity": ("Velocity", "signals on the subject in the last hour"),
    "velocity_growth": ("Velocity growth", "this hour's signals against the hour before"),
    "velocity_factor": ("Velocity multiplier", "1 to 1.5"),
    "aging_factor": ("Aging multiplier", "1 to 4, rising as the SLA nears and passes"),
    "sla_breached": ("Past its SLA", ""),
    "base": ("Base score", "severity x harm x (1 + evidence) x velocity x aging"),
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
