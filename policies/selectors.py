"""Policy reads: thresholds, threshold changes, relabel work and the classes a clearance set shows."""

from django.db.models import Q

from docket import roles

from .models import RelabelItem, ThreatClass, Threshold, ThresholdChange


def threat_classes_visible(clearances):
    """Threat classes visible with these clearances: every unrestricted one, and the cleared restricted ones."""
    return ThreatClass.objects.filter(Q(restricted=False) | Q(slug__in=sorted(clearances)))


def thresholds_list():
    """Every threshold in force, with its source and class (policy admins govern all classes)."""
    return Threshold.objects.select_related("source", "threat_class").order_by("source__slug", "threat_class__slug")


def threshold_changes_list():
    return ThresholdChange.objects.select_related("source", "threat_class", "proposed_by", "approved_by").order_by(
        "-created_at", "-id"
    )


def relabel_items_for(user):
    """Relabel items of the classes ``user`` may see, oldest first."""
    from casework.selectors import clearances_of

    visible = threat_classes_visible(clearances_of(user))
    qs = RelabelItem.objects.select_related(
        "policy_version__policy__threat_class", "decision__case__subject", "reviewer__user"
    ).filter(policy_version__policy__threat_class__in=visible)
    if not roles.has_any(user, roles.STAFF):
        return qs.none()
    return qs
