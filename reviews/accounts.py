"""Users, their roles and reviewer profiles: the one place that writes them (API tokens: ``docket.accounts``)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from casework.models import Queue
from docket import roles
from docket.errors import DocketError
from docket.identity.services import account_grants_changed, grants_of
from docket.visibility import access_change_allowed
from policies.models import ThreatClass

from .models import Reviewer


@transaction.atomic
def user_upsert(
    *,
    username,
    role_names,
    password=None,
    queues=None,
    clearances=None,
    max_active=None,
    graphic_budget=None,
    by=None,
    via="docket_user",
):
    """Create or update a user with exactly these roles; reviewers get a profile.

    ``queues`` and ``clearances`` replace the reviewer's when given. Returns the
    user; raises ``DocketError`` (code ``invalid``) for unknown roles, queues or
    clearances, changing nothing. A change of roles or clearances of an existing user is
    audited and signs them out everywhere.

    This is the installer's path (``docket_user``, the demo) and single sign-on's (the
    identity provider's groups): it grants clearances directly. Inside Docket, clearances
    change only through an access change a second policy admin approves
    (``reviews.services.access``); the database refuses any other write.
    """
    role_names = [r.strip() for r in role_names if r.strip()]
    unknown = sorted(set(role_names) - set(roles.ALL))
    if not role_names or unknown:
        raise DocketError(
            "invalid",
            f"Unknown or missing role(s): {', '.join(unknown) or '(none)'}; choose from {', '.join(roles.ALL)}.",
        )
    queue_objs = None
    if queues is not None:
        queue_objs = list(Queue.objects.filter(slug__in=queues))
        missing = sorted(set(queues) - {q.slug for q in queue_objs})
        if missing:
            raise DocketError("invalid", f"Unknown queue(s): {', '.join(missing)}.")
    if clearances is not None:
        known = set(ThreatClass.objects.filter(slug__in=clearances).values_list("slug", flat=True))
        missing = sorted(set(clearances) - known)
        if missing:
            raise DocketError("invalid", f"Unknown clearance(s): {', '.join(missing)}.")
    if max_active is not None and max_active < 1:
        raise DocketError("invalid", "max-active must be at least 1.")
    if graphic_budget is not None and graphic_budget < 0:
        raise DocketError("invalid", "graphic-budget must not be negative.")

    User = get_user_model()
    user, created = User.objects.get_or_create(username=username)
    before = grants_of(None if created else user)
    if password:
        user.set_password(password)
    elif created:
        user.set_unusable_password()
    user.is_staff = roles.POLICY_ADMIN in role_names
    user.save()
    user.groups.set(Group.objects.filter(name__in=role_names))
    if set(role_names) & set(roles.REVIEWING):
        reviewer, _ = Reviewer.objects.get_or_create(user=user)
        if clearances is not None:
            reviewer.clearances = sorted(set(clearances))
        if max_active is not None:
            reviewer.max_active = max_active
        if graphic_budget is not None:
            reviewer.graphic_budget = graphic_budget
        with access_change_allowed():  # the installer's (or the identity provider's) grant
            reviewer.save()
        if queue_objs is not None:
            reviewer.queues.set(queue_objs)
        elif created or not reviewer.queues.exists():
            reviewer.queues.set(_default_queues(role_names, reviewer.clearances))
    user._docket_roles = frozenset(role_names)
    account_grants_changed(user=user, before=before, after=grants_of(user), by=by, via=via)
    return user


def _default_queues(role_names, clearances):
    """Queues a new reviewer works when none are named: unrestricted ones, plus cleared ones."""
    queues = Queue.objects.all()
    allowed = []
    for q in queues:
        if q.required_clearance and q.required_clearance not in clearances:
            continue
        if q.slug in ("escalations", "legal") and roles.SENIOR not in role_names:
            continue
        allowed.append(q)
    return allowed
