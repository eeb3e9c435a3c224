"""The DSA transparency report's figures for a period (Art. 15 and 24 DSA).

Each figure is defined in the docstring of the query that computes it,
following the harmonised reporting templates of Commission Implementing
Regulation (EU) 2024/2835 where they name the figure. The period is a range of
whole UTC days, ``from`` and ``to`` included. Restricted classes are counted
(the report is for the platform's compliance team, not for reviewers).

Counts of actions follow the statements of reasons: an action is a decision
with a statement (a restriction; ``no_violation`` has none), counted by what
its stored statement says, so later edits to classes never move a past
figure. Every figure is computed in PostgreSQL (set-based, over the
``created_at`` and ``received_at`` ranges), never by loading rows.
"""

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection

from docket.errors import DocketError
from policies.dsa import (
    AUTOMATED_DECISIONS,
    DECISION_ACCOUNTS,
    DECISION_GROUNDS,
    DECISION_MONETARIES,
    DECISION_PROVISIONS,
    DECISION_VISIBILITIES,
    SOURCE_TYPES,
    STATEMENT_CATEGORIES,
)

# Reports cover at most a little over a year (the Regulation's periods are six months or a year).
MAX_DAYS = 400
NOTICE_SOURCE_KINDS = ("user_report", "trusted_flagger", "legal_request")
RESTRICTIONS = sorted(DECISION_VISIBILITIES | DECISION_MONETARIES | DECISION_PROVISIONS | DECISION_ACCOUNTS)
APPEAL_OUTCOMES = ("upheld", "overturned", "modified")


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # included

    @property
    def bounds(self):
        """``[start 00:00 UTC, end + 1 day 00:00 UTC)``."""
        low = datetime.combine(self.start, datetime.min.time(), tzinfo=UTC)
        return low, datetime.combine(self.end + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def period_parse(raw_from, raw_to) -> Period:
    """Both dates ``YYYY-MM-DD``, ``from`` on or before ``to``, at most ``MAX_DAYS`` apart; ``400 invalid`` else."""
    errors = {}
    parsed = {}
    for name, raw in (("from", raw_from), ("to", raw_to)):
        try:
            if not isinstance(raw, str) or len(raw) != 10:
                raise ValueError
            parsed[name] = date.fromisoformat(raw)
        except ValueError:
            errors[name] = ["A date as YYYY-MM-DD."]
    if not errors and parsed["from"] > parsed["to"]:
        errors["to"] = ["On or after from."]
    if not errors and (parsed["to"] - parsed["from"]).days >= MAX_DAYS:
        errors["to"] = [f"A period of at most {MAX_DAYS} days."]
    if errors:
        raise DocketError("invalid", "Give the period as from=YYYY-MM-DD&to=YYYY-MM-DD.", errors=errors)
    return Period(parsed["from"], parsed["to"])


def _rows(sql, params):
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _zeros(keys):
    return dict.fromkeys(sorted(keys), 0)


def _seconds(value):
    return None if value is None else round(float(value), 1)


def notices_figures(period) -> dict:
    """Notices received in the period (template section "Notices received", Art. 15(1)(b) and 24(1)).

    A notice is a signal from a notice source (a user report, a trusted
    flagger, a legal request) received in the period; automated detections
    (classifiers, rules, hash matches) are the platform's own initiative and
    not notices. ``by_source_type`` uses the statement's source types:
    ``SOURCE_TRUSTED_FLAGGER`` for trusted flaggers (Art. 22, also given apart
    as ``trusted_flaggers``), ``SOURCE_ARTICLE_16`` for sources whose reports
    allege illegal content, ``SOURCE_TYPE_OTHER_NOTIFICATION`` for the rest.
    ``by_category`` is the DSA category of the reported threat class.
    """
    low, high = period.bounds
    rows = _rows(
        """
        SELECT tc.dsa_category,
               CASE WHEN src.kind = 'trusted_flagger' THEN 'SOURCE_TRUSTED_FLAGGER'
                    WHEN src.dsa_article_16 THEN 'SOURCE_ARTICLE_16'
                    ELSE 'SOURCE_TYPE_OTHER_NOTIFICATION' END AS source_type,
               count(*)
          FROM casework_signal s
          JOIN policies_signalsource src ON src.id = s.source_id
          JOIN policies_threatclass tc ON tc.id = s.threat_class_id
         WHERE s.received_at >= %s AND s.received_at < %s AND src.kind = ANY(%s)
         GROUP BY 1, 2
        """,
        [low, high, list(NOTICE_SOURCE_KINDS)],
    )
    by_category = _zeros(STATEMENT_CATEGORIES)
    by_source = _zeros(SOURCE_TYPES - {"SOURCE_VOLUNTARY"})
    for category, source_type, count in rows:
        by_category[category] = by_category.get(category, 0) + count
        by_source[source_type] += count
    return {
        "total": sum(by_source.values()),
        "by_source_type": by_source,
        "trusted_flaggers": by_source["SOURCE_TRUSTED_FLAGGER"],
        "by_category": by_category,
    }


def actions_figures(period) -> dict:
    """Restrictions imposed in the period, as their statements of reasons state them (Art. 15(1)(b)-(c), 24(1)).

    ``total``: decisions made in the period that have a statement of reasons.
    ``by_restriction``: per restriction key of the statement (Art. 17(1)(a)-(d));
    a statement naming two (a suspension restricts the account and the
    service) counts in both. ``by_category`` and ``by_ground`` from the
    statement. ``own_initiative``: ``source_type`` is ``SOURCE_VOLUNTARY``;
    ``on_notice``: any other source type, also given ``by_source_type``.
    ``automated``: counts by ``automated_decision``, with ``share`` the
    fraction fully automated and ``detection_share`` the fraction whose
    detection was automated (``automated_detection`` Yes). Shares are over
    ``total`` (null when there is none), rounded to four places.
    """
    low, high = period.bounds
    rows = _rows(
        """
        SELECT GROUPING(d.statement->>'category'), d.statement->>'category',
               GROUPING(d.statement->>'decision_ground'), d.statement->>'decision_ground',
               GROUPING(d.statement->>'source_type'), d.statement->>'source_type',
               GROUPING(d.statement->>'automated_decision'), d.statement->>'automated_decision',
               count(*), count(*) FILTER (WHERE d.statement->>'automated_detection' = 'Yes')
          FROM reviews_decision d
         WHERE d.created_at >= %s AND d.created_at < %s AND d.statement IS NOT NULL
         GROUP BY GROUPING SETS ((d.statement->>'category'), (d.statement->>'decision_ground'),
                                 (d.statement->>'source_type'), (d.statement->>'automated_decision'), ())
        """,
        [low, high],
    )
    by_category, by_ground = _zeros(STATEMENT_CATEGORIES), _zeros(DECISION_GROUNDS)
    by_source, automated = _zeros(SOURCE_TYPES), _zeros(AUTOMATED_DECISIONS)
    total = detected = 0
    for g_cat, cat, g_ground, ground, g_src, src, g_auto, auto, count, detection in rows:
        if not g_cat:
            by_category[cat] = by_category.get(cat, 0) + count
        elif not g_ground:
            by_ground[ground] = by_ground.get(ground, 0) + count
        elif not g_src:
            by_source[src] = by_source.get(src, 0) + count
        elif not g_auto:
            automated[auto] = automated.get(auto, 0) + count
        else:
            total, detected = count, detection
    restrictions = _zeros(RESTRICTIONS)
    for key, count in _rows(
        """
        SELECT r.key, count(*) FROM reviews_decision d
         CROSS JOIN LATERAL (
             SELECT jsonb_array_elements_text(CASE jsonb_typeof(d.statement->'decision_visibility')
                                              WHEN 'array' THEN d.statement->'decision_visibility'
                                              ELSE '[]'::jsonb END)
             UNION ALL SELECT d.statement->>'decision_monetary'
             UNION ALL SELECT d.statement->>'decision_provision'
             UNION ALL SELECT d.statement->>'decision_account'
         ) AS r(key)
         WHERE d.created_at >= %s AND d.created_at < %s AND d.statement IS NOT NULL AND r.key IS NOT NULL
         GROUP BY r.key
        """,
        [low, high],
    ):
        restrictions[key] = restrictions.get(key, 0) + count
    own = by_source.get("SOURCE_VOLUNTARY", 0)

    def share(part):
        return round(part / total, 4) if total else None

    return {
        "total": total,
        "by_restriction": restrictions,
        "by_category": by_category,
        "by_ground": by_ground,
        "own_initiative": own,
        "on_notice": total - own,
        "by_source_type": by_source,
        "automated": {
            "fully": automated["AUTOMATED_DECISION_FULLY"],
            "partially": automated["AUTOMATED_DECISION_PARTIALLY"],
            "not_automated": automated["AUTOMATED_DECISION_NOT_AUTOMATED"],
            "share": share(automated["AUTOMATED_DECISION_FULLY"]),
            "detection_share": share(detected),
        },
    }


def median_time_to_action_seconds(period):
    """Median time to act on a notice (Art. 15(1)(b): "the median time needed for taking the action").

    Over the actions of the period taken on notices (a statement whose
    source type is not ``SOURCE_VOLUNTARY``): from the first notice on the
    case being received to the decision. Null when there is none.
    """
    low, high = period.bounds
    [(value,)] = _rows(
        """
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM d.created_at - first.received_at))
          FROM reviews_decision d
          CROSS JOIN LATERAL (
              SELECT min(s.received_at) AS received_at FROM casework_signal s
                JOIN policies_signalsource src ON src.id = s.source_id
               WHERE s.case_id = d.case_id AND src.kind = ANY(%s)
          ) first
         WHERE d.created_at >= %s AND d.created_at < %s AND d.statement IS NOT NULL
           AND d.statement->>'source_type' <> 'SOURCE_VOLUNTARY' AND first.received_at IS NOT NULL
        """,
        [list(NOTICE_SOURCE_KINDS), low, high],
    )
    return _seconds(value)


def complaints_figures(period) -> dict:
    """Complaints through the internal complaint-handling system (Art. 15(1)(d), Art. 20).

    ``received``: appeals received in the period. ``resolved`` and
    ``by_outcome`` (``upheld``, ``overturned``, ``modified``): appeals resolved
    in the period, whenever received. ``reversed``: those whose decision was
    overturned or changed. ``median_time_to_resolve_s``: received to resolved,
    over the appeals resolved in the period (null when none).
    """
    low, high = period.bounds
    [(received,)] = _rows(
        "SELECT count(*) FROM appeals_appeal WHERE received_at >= %s AND received_at < %s", [low, high]
    )
    outcomes = _zeros(APPEAL_OUTCOMES)
    for outcome, count in _rows(
        """
        SELECT outcome, count(*) FROM appeals_appeal
         WHERE status = 'resolved' AND resolved_at >= %s AND resolved_at < %s GROUP BY outcome
        """,
        [low, high],
    ):
        outcomes[outcome] = count
    [(median,)] = _rows(
        """
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM resolved_at - received_at))
          FROM appeals_appeal WHERE status = 'resolved' AND resolved_at >= %s AND resolved_at < %s
        """,
        [low, high],
    )
    return {
        "received": received,
        "resolved": sum(outcomes.values()),
        "by_outcome": outcomes,
        "reversed": outcomes["overturned"] + outcomes["modified"],
        "median_time_to_resolve_s": _seconds(median),
    }


def suspensions_figures(period) -> dict:
    """Suspensions of accounts and of the service imposed in the period (Art. 23, 24(1)(b)).

    ``total``: statements in the period that suspend the account
    (``DECISION_ACCOUNT_SUSPENDED``) or the whole service
    (``DECISION_PROVISION_TOTAL_SUSPENSION``); ``for_illegal_content``: those
    on the ground of illegal content (Art. 23(1), manifestly illegal content);
    ``for_incompatible_content``: the rest. Docket does not suspend reporters
    or appellants, so Art. 23(2) suspensions are not counted here.
    """
    low, high = period.bounds
    [(total, illegal)] = _rows(
        """
        SELECT count(*), count(*) FILTER (WHERE d.statement->>'decision_ground' = 'DECISION_GROUND_ILLEGAL_CONTENT')
          FROM reviews_decision d
         WHERE d.created_at >= %s AND d.created_at < %s AND d.statement IS NOT NULL
           AND (d.statement->>'decision_account' = 'DECISION_ACCOUNT_SUSPENDED'
                OR d.statement->>'decision_provision' = 'DECISION_PROVISION_TOTAL_SUSPENSION')
        """,
        [low, high],
    )
    return {"total": total, "for_illegal_content": illegal, "for_incompatible_content": total - illegal}


def transparency_report(period) -> dict:
    """Every figure of the report for ``period`` (see each ``*_figures`` function for its definition)."""
    return {
        "period": {"from": period.start.isoformat(), "to": period.end.isoformat()},
        "notices": notices_figures(period),
        "actions": actions_figures(period),
        "median_time_to_action_s": median_time_to_action_seconds(period),
        "complaints": complaints_figures(period),
        "suspensions": suspensions_figures(period),
    }


def _flatten(prefix, value, out):
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, inner, out)
    else:
        out.append((prefix, "" if value is None else value))


def report_csv(report) -> str:
    """The report as CSV: one ``figure,value`` row per figure, dotted paths as in the JSON."""
    rows = []
    _flatten("", report, rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["figure", "value"])
    writer.writerows(rows)
    return buffer.getvalue()
