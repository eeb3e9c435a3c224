"""Policy reads: thresholds, threshold changes, versions and the classes a clearance set shows."""

import difflib

from django.db.models import F, Prefetch

from .models import Action, Policy, PolicyVersion, ThreatClass, Threshold, ThresholdChange

ACTION_LABELS = dict(Action.choices)


def thresholds_list():
    """Every threshold in force, with its source and class (policy admins govern all classes)."""
    return Threshold.objects.select_related("source", "threat_class").order_by("source__slug", "threat_class__slug")


def threshold_changes_list(*, user):
    """The threshold changes ``user`` may read (of the classes they may see), newest first."""
    return (
        ThresholdChange.objects.visible_to(user)
        .select_related("source", "threat_class", "proposed_by", "approved_by")
        .order_by("-created_at", "-id")
    )


def policy_version_active(policy_id):
    return PolicyVersion.objects.filter(policy_id=policy_id, status="active").first()


def policy_version_diff(version, against):
    """What ``version`` changes relative to ``against`` (normally the policy's active version).

    Returns ``{"against", "text": [(kind, line)], "text_changed", "rules": {"added", "removed",
    "changed": [(old, new)]}, "ladder": {"added", "removed", "order_changed"}, "strike_weight":
    (old, new) or None, "changed"}`` where text lines are tagged ``"+"``, ``"-"``, ``" "`` (context)
    or ``"@"`` (a hunk header). With ``against`` None everything counts as added.
    """
    old_text = against.text if against else ""
    old_rules = {r["code"]: r for r in (against.rules if against else [])}
    new_rules = {r["code"]: r for r in version.rules}
    old_ladder = list(against.ladder) if against else []
    new_ladder = list(version.ladder)

    text = []
    for line in difflib.unified_diff(old_text.splitlines(), version.text.splitlines(), lineterm="", n=2):
        if line.startswith(("---", "+++")):
            continue
        text.append((line[:1] if line[:1] in "+-@" else " ", line[1:] if line[:1] in "+- " else line))
    rules = {
        "added": [r for code, r in new_rules.items() if code not in old_rules],
        "removed": [r for code, r in old_rules.items() if code not in new_rules],
        "changed": [
            (old_rules[code], r)
            for code, r in new_rules.items()
            if code in old_rules and _rule_text(old_rules[code]) != _rule_text(r)
        ],
    }
    ladder = {
        "added": [ACTION_LABELS.get(a, a) for a in new_ladder if a not in old_ladder],
        "removed": [ACTION_LABELS.get(a, a) for a in old_ladder if a not in new_ladder],
        "order_changed": [a for a in new_ladder if a in old_ladder] != [a for a in old_ladder if a in new_ladder],
    }
    old_weight = against.strike_weight if against else None
    strike_weight = (old_weight, version.strike_weight) if old_weight != version.strike_weight else None
    text_changed = old_text != version.text
    changed = bool(
        text_changed
        or any(rules.values())
        or ladder["added"]
        or ladder["removed"]
        or ladder["order_changed"]
        or strike_weight
    )
    return {
        "against": against,
        "text": text,
        "text_changed": text_changed,
        "rules": rules,
        "ladder": ladder,
        "strike_weight": strike_weight,
        "changed": changed,
    }


def _rule_text(rule):
    return rule.get("title"), rule.get("description")


def policies_visible_to(user):
    """Policies of the classes ``user`` may see, each with ``active_versions`` (its active version, or none)."""
    return (
        Policy.objects.filter(threat_class__in=ThreatClass.objects.visible_to(user))
        .select_related("threat_class")
        .prefetch_related(
            Prefetch("versions", queryset=PolicyVersion.objects.filter(status="active"), to_attr="active_versions")
        )
        .order_by("slug")
    )


def active_versions_by_class(class_ids) -> dict[int, PolicyVersion | None]:
    """Per threat class id asked, its active policy version (None without one), in one query."""
    class_ids = set(class_ids)
    found = PolicyVersion.objects.filter(status="active", policy__threat_class_id__in=class_ids).annotate(
        threat_class_id=F("policy__threat_class_id")
    )
    return {**dict.fromkeys(class_ids), **{v.threat_class_id: v for v in found}}
