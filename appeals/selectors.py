"""Appeal reads: what a user may see, the outcome statement, and what the user is told.

The outcome statement and the notices are plain data built from the models;
``policies.notices`` renders the policy admins' templates with it.
"""

from datetime import timedelta

from django.db.models import Exists, OuterRef, Q

from casework.models import Case
from docket import roles
from docket.conf import setting
from policies.models import Action
from policies.notices import notice_render, redress
from reviews.models import Decision

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


def appeal_for(user, appeal_id):
    """One appeal the user may see, with everything its page and its detail need; None when hidden."""
    return (
        appeals_visible_to(user)
        .select_related(
            "decision__case__threat_class",
            "decision__case__subject",
            "decision__case__queue",
            "decision__policy_version__policy",
            "decision__reviewer__user",
            "new_decision",
            "assigned_to__user",
            "resolved_by__user",
        )
        .filter(pk=appeal_id)
        .first()
    )


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


def decision_notice(decision, *, language=None):
    """``{"language", "subject", "body"}`` telling the user about a decision (and how to appeal it)."""
    window = setting("APPEAL_WINDOW_DAYS")
    appeal_until = (decision.created_at + timedelta(days=window)).date().isoformat()
    return notice_render(
        kind="decision_notice",
        language=language or _subject_language(decision),
        action=decision.action,
        context={
            "decision": _decision_context(decision),
            "statement": {"appeal_until": appeal_until, "appeal_window_days": window},
            "redress": redress(),
        },
    )


def appeal_outcome_notice(appeal):
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
    )


def _appeal_behind(enforcement):
    """The resolved appeal that caused this outbox row, if any."""
    decision = enforcement.decision
    if enforcement.kind == "reverse":
        # The reversed decision was overturned or replaced on appeal.
        return (
            Appeal.objects.filter(
                decision=decision, status=Appeal.Status.RESOLVED, outcome__in=[Appeal.Outcome.OVERTURNED, "modified"]
            )
            .order_by("-resolved_at")
            .first()
        )
    # An enforcement of a decision that replaced another on appeal.
    return Appeal.objects.filter(new_decision=decision).first() or (
        Appeal.objects.filter(
            decision__case_id=decision.case_id,
            status=Appeal.Status.RESOLVED,
            outcome=Appeal.Outcome.MODIFIED,
            new_decision__isnull=True,
            new_action=decision.action,
        )
        .order_by("-resolved_at")
        .first()
    )


def enforcement_notices(enforcement):
    """What the webhook for one outbox row tells the user: ``{"notice": {...}}``, plus
    ``"appeal_outcome"`` (the outcome statement) when an appeal caused it."""
    appeal = _appeal_behind(enforcement)
    if appeal is not None:
        appeal = Appeal.objects.select_related(
            "decision__case__subject", "decision__case__threat_class", "decision__policy_version__policy"
        ).get(pk=appeal.pk)
        return {"notice": appeal_outcome_notice(appeal), "appeal_outcome": appeal_outcome_statement(appeal)}
    return {"notice": decision_notice(enforcement.decision)}


def can_review_appeals(user):
    return roles.has(user, roles.APPEALS) and _reviewer_of(user) is not None
