"""Appeal reads: what a user may see, the outcome statement, and what the user is told.

The outcome statement and the notices are plain data built from the models;
``policies.notices`` renders the policy admins' templates with it.
"""

from datetime import timedelta
from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Exists, OuterRef, Q

from casework.models import Case, Queue, Subject
from docket import roles
from docket.conf import setting
from docket.rows import loaded_side_by_side, prepared, returning
from docket.visibility import clearances_of
from policies.models import Action, Policy, PolicyVersion, ThreatClass, class_visible
from policies.notices import notice_render, notice_templates, notices_render, redress
from reviews.models import Decision, Reviewer

from .models import Appeal


def _reviewer_of(user):
    return getattr(user, "reviewer", None) if user is not None and user.is_authenticated else None


def visible_q(user):
    """Appeals on cases the user may see: the one visibility rule, ``Case.objects.visible_to``."""
    return Q(decision__case__in=Case.objects.visible_to(user))


def decided_on_case_q(reviewer):
    """Appeals on a case where this reviewer made any decision: theirs is never the second look.

    The one conflict-of-interest rule: appeal claims exclude these, resolution refuses them, the page warns.
    """
    return Exists(Decision.objects.filter(case_id=OuterRef("decision__case_id"), reviewer=reviewer))


def has_conflict(reviewer, appeal) -> bool:
    """True when this reviewer decided on the appealed case (they may not review the appeal)."""
    return reviewer is not None and Appeal.objects.filter(decided_on_case_q(reviewer), pk=appeal.pk).exists()


def appeals_visible_to(user):
    """Appeals the user may see: restricted classes only with the matching clearance."""
    return Appeal.objects.filter(visible_q(user))


def appeals_list(user, *, status=None):
    """The appeals queue as staff see it, oldest deadline first, with what a list row shows."""
    qs = appeals_visible_to(user).select_related(
        "decision__case__threat_class", "decision__case__subject", "assigned_to__user", "resolved_by__user"
    )
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("deadline", "id")


# The appeal page's row: the appeal, its decision with the case (subject, class, queue), the policy version
# and the reviewer who decided, the decision that replaced it, and who holds and who resolved the appeal.
# ``(alias, model, (the alias it hangs on, the field), join)``; the people and the new decision may be absent.
@cache
def _appeal_row():
    user = get_user_model()
    return (
        ("a", Appeal, None, "appeals_appeal a"),
        ("d", Decision, ("a", "decision"), "JOIN reviews_decision d ON d.id = a.decision_id"),
        ("c", Case, ("d", "case"), "JOIN casework_case c ON c.id = d.case_id"),
        ("s", Subject, ("c", "subject"), "JOIN casework_subject s ON s.id = c.subject_id"),
        ("tc", ThreatClass, ("c", "threat_class"), "JOIN policies_threatclass tc ON tc.id = c.threat_class_id"),
        ("q", Queue, ("c", "queue"), "JOIN casework_queue q ON q.id = c.queue_id"),
        ("pv", PolicyVersion, ("d", "policy_version"), "JOIN policies_policyversion pv ON pv.id = d.policy_version_id"),
        ("p", Policy, ("pv", "policy"), "JOIN policies_policy p ON p.id = pv.policy_id"),
        ("dr", Reviewer, ("d", "reviewer"), "LEFT JOIN reviews_reviewer dr ON dr.id = d.reviewer_id"),
        ("du", user, ("dr", "user"), f"LEFT JOIN {user._meta.db_table} du ON du.id = dr.user_id"),
        ("nd", Decision, ("a", "new_decision"), "LEFT JOIN reviews_decision nd ON nd.id = a.new_decision_id"),
        ("ar", Reviewer, ("a", "assigned_to"), "LEFT JOIN reviews_reviewer ar ON ar.id = a.assigned_to_id"),
        ("au", user, ("ar", "user"), f"LEFT JOIN {user._meta.db_table} au ON au.id = ar.user_id"),
        ("rr", Reviewer, ("a", "resolved_by"), "LEFT JOIN reviews_reviewer rr ON rr.id = a.resolved_by_id"),
        ("ru", user, ("rr", "user"), f"LEFT JOIN {user._meta.db_table} ru ON ru.id = rr.user_id"),
    )


@cache
def _appeal_sql():
    columns = ", ".join(returning(model, alias) for alias, model, _, _ in _appeal_row())
    joins = " ".join(join for _, _, _, join in _appeal_row())
    return f"SELECT {columns} FROM {joins} WHERE a.id = %(id)s"


def appeal_for(user, appeal_id):
    """One appeal the user may see, with everything its page and its detail need; None when hidden.

    One hand-written statement, prepared (planned once per connection): the ORM's fifteen-table join, with
    the visibility rule as a subquery and an ordering, took PostgreSQL 16-25 ms to plan on every appeal
    page. The rule is ``class_visible`` (the one rule) on the class read with it.
    """
    with prepared(_appeal_sql(), {"id": int(appeal_id)}) as cursor:
        row = cursor.fetchone()
    if row is None:
        return None
    parts = _appeal_row()
    instances = loaded_side_by_side(row, *(model for _, model, _, _ in parts))
    by_alias = dict(zip((alias for alias, _, _, _ in parts), instances, strict=True))
    for alias, _, hung_on, _ in parts[1:]:  # each on its owner (an absent reviewer's user is absent too)
        owner = by_alias[hung_on[0]]
        if owner is not None:
            owner._meta.get_field(hung_on[1]).set_cached_value(owner, by_alias[alias])
    threat_class = by_alias["tc"]
    if not class_visible(restricted=threat_class.restricted, slug=threat_class.slug, clearances=clearances_of(user)):
        return None
    return by_alias["a"]


def _rule_title(version, code):
    return next((r.get("title", "") for r in version.rules if r.get("code") == code), "")


def appeal_outcome_statement(appeal):
    """The resolved appeal as a statement to the appellant; None while it is open.

    ``{"appeal", "decision", "outcome", "original_action", "new_action",
    "new_decision", "reasons", "policy": {"slug", "name", "version", "rule",
    "rule_title"}, "decided_by_human", "resolved_at", "redress": [{"kind",
    "description"}]}``.
    """
    if appeal.status != Appeal.Status.RESOLVED:
        return None
    decision = appeal.decision
    standing = appeal.new_decision or decision
    version = standing.policy_version
    rule = standing.rule if appeal.outcome != Appeal.Outcome.OVERTURNED else decision.rule
    ways = redress()
    return {
        "appeal": appeal.pk,
        "decision": decision.pk,
        "outcome": appeal.outcome,
        "original_action": decision.action,
        "new_action": appeal.new_action or ("no_violation" if appeal.outcome == Appeal.Outcome.OVERTURNED else None),
        "new_decision": appeal.new_decision_id,
        "reasons": appeal.rationale,
        "policy": {
            "slug": version.policy.slug,
            "name": version.policy.name,
            "version": version.number,
            "rule": rule,
            "rule_title": _rule_title(version, rule),
        },
        "decided_by_human": True,
        "resolved_at": appeal.resolved_at.isoformat(),
        "redress": [
            {"kind": "out_of_court_settlement", "description": ways["out_of_court"]},
            {"kind": "judicial_redress", "description": ways["judicial"]},
        ],
    }


def _decision_context(decision):
    version = decision.policy_version
    subject = decision.case.subject
    return {
        "id": decision.pk,
        "action": decision.action,
        "action_label": Action(decision.action).label,
        "rule": decision.rule,
        "rule_title": _rule_title(version, decision.rule),
        "duration_days": decision.duration_days,
        "automated": decision.automated,
        "policy": version.policy.name,
        "policy_version": version.number,
        "threat_class": decision.case.threat_class.name,
        "created_on": decision.created_at.date().isoformat(),
        "subject": {"kind": subject.kind, "external_id": subject.external_id},
    }


def _subject_language(decision):
    """The language the platform declared for the subject (attribute ``language``), else English."""
    value = (decision.case.subject.attributes or {}).get("language")
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) else "en"


def decision_notice(decision, *, language=None, templates=None):
    """``{"language", "subject", "body"}`` telling the user about a decision (and how to appeal it)."""
    [notice] = decision_notices([decision], language=language, templates=templates)
    return notice


def decision_notices(decisions, *, language=None, templates=None) -> list[dict]:
    """``decision_notice`` for each of many decisions, rendered together (``policies.notices.notices_render``)."""
    window = setting("APPEAL_WINDOW_DAYS")
    ways = redress()
    requests = [
        (
            language or _subject_language(decision),
            decision.action,
            {
                "decision": _decision_context(decision),
                "statement": {
                    "appeal_until": (decision.created_at + timedelta(days=window)).date().isoformat(),
                    "appeal_window_days": window,
                },
                "redress": ways,
            },
        )
        for decision in decisions
    ]
    return notices_render(kind="decision_notice", requests=requests, templates=templates)


def appeal_outcome_notice(appeal, *, templates=None):
    """``{"language", "subject", "body"}`` telling the appellant the outcome, in their language; None if open."""
    statement = appeal_outcome_statement(appeal)
    if statement is None:
        return None
    return notice_render(
        kind="appeal_outcome",
        language=appeal.language,
        action=appeal.decision.action,
        context={
            "decision": _decision_context(appeal.decision),
            "appeal": {
                "id": appeal.pk,
                "outcome": appeal.outcome,
                "rationale": appeal.rationale,
                "new_action": appeal.new_action,
                "new_action_label": Action(appeal.new_action).label if appeal.new_action else "",
                "resolved_on": appeal.resolved_at.date().isoformat(),
            },
            "statement": statement,
            "redress": redress(),
        },
        templates=templates,
    )


# Whatever an outbox row's notice reads of the appeal behind it.
_APPEAL_RELATED = (
    "decision__case__subject",
    "decision__case__threat_class",
    "decision__policy_version__policy",
    "new_decision__policy_version__policy",
)
_REVERSING = (Appeal.Outcome.OVERTURNED, Appeal.Outcome.MODIFIED)


# ``_appeals_behind``'s probe: the appeals that reversed a decision, that name a decision as their
# replacement, or that modified a decision of a case to an action not yet linked to its replacement.
_APPEALS_BEHIND_SQL = """
SELECT a.id FROM appeals_appeal a
 WHERE (a.status = %(resolved)s AND a.decision_id = ANY(%(reversed)s) AND a.outcome = ANY(%(reversing)s))
    OR a.new_decision_id = ANY(%(new)s)
    OR (a.status = %(resolved)s AND a.outcome = %(modified)s AND a.new_decision_id IS NULL
        AND a.decision_id IN (SELECT d.id FROM reviews_decision d WHERE d.case_id = ANY(%(cases)s)))
"""


def _latest(appeals):
    return max(appeals, key=lambda a: a.resolved_at, default=None)


def _appeals_behind(enforcements):
    """For each outbox row, the resolved appeal that caused it, or None; one query for all of them.

    A reversal: the latest appeal that overturned or replaced its decision. An
    enforcement: the appeal that names its decision as the replacement, else
    the latest appeal on its case modified to its action and not yet linked
    to the decision that replaces.
    """
    reversed_ids = {e.decision_id for e in enforcements if e.kind == "reverse"}
    enforced = [e.decision for e in enforcements if e.kind != "reverse"]
    if not reversed_ids and not enforced:
        return []
    # Ids first: most outbox rows (every first decision) have no appeal behind them, and this
    # narrow query costs a fraction of the wide one, which only runs when there is something to read.
    # Its lists go as arrays: a wave's thousands of ids as three parameters, not one each.
    with connection.cursor() as cur:
        cur.execute(
            _APPEALS_BEHIND_SQL,
            {
                "resolved": Appeal.Status.RESOLVED,
                "modified": Appeal.Outcome.MODIFIED,
                "reversing": list(_REVERSING),
                "reversed": sorted(reversed_ids),
                "new": sorted({d.pk for d in enforced}),
                "cases": sorted({d.case_id for d in enforced}),
            },
        )
        ids = [row[0] for row in cur.fetchall()]
    appeals = list(Appeal.objects.filter(pk__in=ids).select_related(*_APPEAL_RELATED).order_by("pk")) if ids else []
    behind = []
    for e in enforcements:
        decision = e.decision
        if e.kind == "reverse":
            behind.append(
                _latest(
                    a
                    for a in appeals
                    if a.decision_id == decision.pk and a.status == Appeal.Status.RESOLVED and a.outcome in _REVERSING
                )
            )
            continue
        named = next((a for a in appeals if a.new_decision_id == decision.pk), None)
        behind.append(
            named
            or _latest(
                a
                for a in appeals
                if a.decision.case_id == decision.case_id
                and a.status == Appeal.Status.RESOLVED
                and a.outcome == Appeal.Outcome.MODIFIED
                and a.new_decision_id is None
                and a.new_action == decision.action
            )
        )
    return behind


def enforcement_notices(enforcements, *, templates=None) -> list[dict]:
    """What the webhook for each outbox row tells the user: ``{"notice": {...}}``, plus
    ``"appeal_outcome"`` (the outcome statement) when an appeal caused it.

    The rows' decisions come with their case (class, subject) and policy version
    (policy); the appeals behind the rows are read in one query, the templates
    once (``templates``: ``policies.notices.notice_templates``, read here if not given).
    """
    if templates is None:
        templates = notice_templates(["decision_notice", "appeal_outcome"])
    behind = _appeals_behind(enforcements)
    plain = [e.decision for e, appeal in zip(enforcements, behind, strict=True) if appeal is None]
    notices = iter(decision_notices(plain, templates=templates))
    out = []
    for appeal in behind:
        if appeal is not None:
            out.append(
                {
                    "notice": appeal_outcome_notice(appeal, templates=templates),
                    "appeal_outcome": appeal_outcome_statement(appeal),
                }
            )
        else:
            out.append({"notice": next(notices)})
    return out


def can_review_appeals(user):
    return roles.has(user, roles.APPEALS) and _reviewer_of(user) is not None
