"""Reviews' part of retention and export (``casework.retention``): decisions' rationales, decisions and enforcements.

Registered in ``ReviewsConfig.ready`` as contributions to ``casework.retention``.
"""

from .models import Decision, Enforcement


def decisions_purge_personal_data(*, case_ids):
    """Purge the free text of these cases' decisions (the rationale); one UPDATE."""
    Decision.objects.filter(case_id__in=case_ids).update(rationale="")


def case_export_items(*, case_id) -> list[dict]:
    """The case's decisions, then their enforcements, as chain-of-custody export items."""
    items = []
    decisions = Decision.objects.filter(case_id=case_id).select_related("policy_version", "reviewer__user")
    for d in decisions.order_by("id"):
        items.append(
            {
                "type": "decision",
                "data": {
                    "id": d.pk,
                    "action": d.action,
                    "rule": d.rule,
                    "policy_version": d.policy_version_id,
                    "reviewer": d.reviewer.user.username if d.reviewer else None,
                    "automated": d.automated,
                    "rationale": d.rationale,
                    "created_at": d.created_at,
                    "overturned": d.overturned,
                },
            }
        )
    for enf in Enforcement.objects.filter(decision__case_id=case_id).order_by("id"):
        items.append(
            {
                "type": "enforcement",
                "data": {
                    "id": str(enf.public_id),
                    "decision": enf.decision_id,
                    "kind": enf.kind,
                    "action": enf.action,
                    "status": enf.status,
                    "delivered_at": enf.delivered_at,
                },
            }
        )
    return items
