"""Clearances for the core's identity services: reviewer profiles live here, so the reading and
granting of clearances at sign-in is registered from here (see ``docket.identity.services``)."""

from django.contrib.auth import get_user_model
from django.db import transaction

from docket.errors import DocketError
from docket.identity.services import account_grants_changed, grants_of
from docket.visibility import access_change_allowed

from .accounts import user_upsert
from .models import Reviewer


def session_profile():
    """The profile read with the session's user (``docket.identity.auth.session_profile``)."""
    return Reviewer


def clearances_of(user):
    # The profile this request already read (a claim or a decision reads it first) answers without a query.
    profile = Reviewer.user.field.remote_field  # user.reviewer
    if profile.is_cached(user):
        reviewer = profile.get_cached_value(user)
        return (reviewer.clearances if reviewer is not None else None) or ()
    return Reviewer.objects.filter(user=user).values_list("clearances", flat=True).first() or ()


@transaction.atomic
def grants_apply(*, username, roles, clearances, request=None):
    """Single sign-on: the user gets exactly ``roles`` and ``clearances``; no role strips every grant.

    Returns the user (``None`` if refused and unknown). An unknown clearance in the role map is a
    ``DocketError`` (``invalid_grant``), granting nothing.
    """
    user = get_user_model().objects.filter(username=username).first()
    if roles:
        try:
            return user_upsert(username=username, role_names=roles, clearances=clearances, via="oidc")
        except DocketError as e:
            raise DocketError(
                "invalid_grant", f"DOCKET_OIDC_ROLE_MAP grants something Docket does not know: {e.detail}"
            ) from None
    if user is None:
        return None
    before = grants_of(user)
    user.groups.clear()
    if user.is_staff:
        user.is_staff = False
        user.save(update_fields=["is_staff"])
    with access_change_allowed():  # the identity provider withdrew every grant
        Reviewer.objects.filter(user=user).update(clearances=[])
    account_grants_changed(user=user, before=before, after=grants_of(user), via="oidc", request=request)
    return user
