"""Policy writes: version activation (threshold governance lives here too)."""

from django.db import transaction
from django.utils import timezone

from docket.errors import DocketError

from .models import PolicyVersion


@transaction.atomic
def policy_version_activate(*, version, actor):
    """Make ``version`` the policy's only active version; the previous one is retired.

    Returns the activated version. Decisions made from now on record it.
    """
    version = PolicyVersion.objects.select_for_update().get(pk=version.pk)
    if version.status == PolicyVersion.Status.ACTIVE:
        raise DocketError("invalid_transition", "This version is already active.", status=409)
    if version.status == PolicyVersion.Status.RETIRED:
        raise DocketError("invalid_transition", "A retired version cannot be reactivated; copy it.", status=409)
    now = timezone.now()
    PolicyVersion.objects.select_for_update().filter(policy=version.policy, status="active").update(
        status="retired", retired_at=now
    )
    version.status = PolicyVersion.Status.ACTIVE
    version.effective_at = now
    version.activated_by = actor
    version.save(update_fields=["status", "effective_at", "activated_by"])
    return version
