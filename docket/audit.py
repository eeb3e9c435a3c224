"""The access log: who viewed, revealed or exported sensitive material (and other audit events).

Rows are written by services (``access_log_add``), never by signals, and never
changed: the table refuses UPDATE and DELETE. Other apps name what was seen by
type and id (``case``/``42``, ``subject``/``account:u-1``, ``appeal``/``7``).
"""

from __future__ import annotations

from django.utils import timezone

from .models import AccessLog


def _username(user) -> str:
    if user is None or not getattr(user, "is_authenticated", False):
        return "anonymous"
    return user.get_username()


def access_log_add(
    *,
    user,
    action: str,
    object_type: str = "",
    object_id: str | int = "",
    threat_class: str = "",
    kind: str = AccessLog.Kind.ACCESS,
    detail: dict | None = None,
    at=None,
) -> AccessLog:
    """Append one row to the log: ``user`` did ``action`` on the named object. Never updated afterwards."""
    return access_log_add_many(
        user=user,
        action=action,
        objects=[(object_type, object_id, threat_class)],
        kind=kind,
        detail=detail,
        at=at,
    )[0]


def access_log_add_many(
    *, user, action: str, objects, kind: str = AccessLog.Kind.ACCESS, detail: dict | None = None, at=None
) -> list[AccessLog]:
    """One row per ``(object_type, object_id, threat_class)`` of ``objects``, in one INSERT (atomic by itself)."""
    at = at or timezone.now()
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    rows = [
        AccessLog(
            at=at,
            kind=kind,
            user_id=user.pk if authenticated else None,
            username=_username(user),
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            threat_class=threat_class or "",
            detail=detail or {},
        )
        for object_type, object_id, threat_class in objects
    ]
    if len(rows) == 1:  # one INSERT on its own, without the transaction bulk_create opens around it
        rows[0].save(force_insert=True)
        return rows
    return AccessLog.objects.bulk_create(rows)


def access_log_list(*, kind: str = AccessLog.Kind.ACCESS):
    """Rows of one family, newest first."""
    return AccessLog.objects.filter(kind=kind).order_by("-at", "-id")


def access_log_case_read(*, user, case, action: str = AccessLog.Action.VIEW, via: str, restricted_only: bool = True):
    """Log a read of ``case`` (any object with ``pk`` and ``threat_class``): always for an export,
    otherwise when its class is restricted (``restricted_only``)."""
    if restricted_only and action == AccessLog.Action.VIEW and not case.threat_class.restricted:
        return None
    return access_log_add(
        user=user,
        action=action,
        object_type="case",
        object_id=case.pk,
        threat_class=case.threat_class.slug,
        detail={"via": via},
    )


def access_log_appeal_read(*, user, appeal, via: str):
    """Log a read of an appeal (any object with ``pk`` and ``decision.case.threat_class``)."""
    return access_log_add(
        user=user,
        action=AccessLog.Action.VIEW,
        object_type="appeal",
        object_id=appeal.pk,
        threat_class=appeal.decision.case.threat_class.slug,
        detail={"via": via},
    )
