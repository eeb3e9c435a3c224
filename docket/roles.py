"""Roles are Django groups; these helpers are the one place that reads them."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied

MODERATOR = "moderator"
SENIOR = "senior"
APPEALS = "appeals"
POLICY_ADMIN = "policy_admin"
PLATFORM = "platform"

ALL = (MODERATOR, SENIOR, APPEALS, POLICY_ADMIN, PLATFORM)
# Roles that review cases or appeals and so need a Reviewer profile.
REVIEWING = (MODERATOR, SENIOR, APPEALS)
STAFF = (MODERATOR, SENIOR, APPEALS, POLICY_ADMIN)


def names(user):
    """The user's role names, cached on the user object for the request."""
    if not user or not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_docket_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        user._docket_roles = cached
    return cached


def names_sql(user_id_column: str) -> str:
    """An SQL array of the role names of the user whose id is ``user_id_column`` (a column of the statement,
    e.g. ``"u.id"``): a request that reads its user with it reads the roles in the same query (``remember``
    them on the user), not in one more."""
    groups, links = Group._meta.db_table, Group.user_set.through._meta.db_table
    return (
        f"ARRAY(SELECT g.name FROM {groups} g JOIN {links} ug ON ug.group_id = g.id"
        f" WHERE ug.user_id = {user_id_column})"
    )


def remember(user, role_names):
    """Cache ``role_names`` (read with ``names_sql``) as ``names(user)`` for the request."""
    user._docket_roles = frozenset(role_names or ())
    return user


def has(user, role):
    return role in names(user)


def has_any(user, roles):
    return bool(names(user) & set(roles))


# Model permissions each role gets in the Django admin. The API checks roles
# itself; these only decide what the admin shows and lets change.
_ADMIN_PERMISSIONS = {
    POLICY_ADMIN: {
        "policies": {
            "threatclass": "avcd",
            "policy": "avcd",
            "policyversion": "avc",
            "threshold": "v",
            "thresholdchange": "avc",
            "signalsource": "avc",
            "messagetemplate": "avcd",
        },
        "reviews": {
            "reviewer": "avcd",
            "accesschange": "av",
            "decision": "v",
            "enforcement": "v",
            "assignment": "v",
            "qualityreview": "v",
            "strike": "v",
            "statementsubmission": "v",
            "notice": "v",
        },
        "casework": {
            "queue": "avcd",
            "case": "v",
            "signal": "v",
            "caseevent": "v",
            "subject": "v",
            "campaign": "v",
            "sourceincident": "v",
            "reporter": "v",
        },
        "appeals": {"appeal": "v"},
        "docket": {"accesslog": "v", "staffaccount": "v"},
    },
}
_VERBS = {"a": "add", "v": "view", "c": "change", "d": "delete"}


def ensure_groups(**kwargs):
    """Create the role groups and give each its admin permissions (idempotent)."""

    for name in ALL:
        group, _ = Group.objects.get_or_create(name=name)
        wanted = []
        for models in _ADMIN_PERMISSIONS.get(name, {}).values():
            for model, verbs in models.items():
                wanted += [f"{_VERBS[v]}_{model}" for v in verbs]
        if wanted:
            perms = Permission.objects.filter(
                content_type__app_label__in=_ADMIN_PERMISSIONS[name].keys(), codename__in=wanted
            )
            group.permissions.set(perms)


def role_required(*allowed):
    """A view decorator: signed in (else the login page) and in one of ``allowed`` (else 403)."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(request, *args, **kwargs):
            if not has_any(request.user, allowed):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
