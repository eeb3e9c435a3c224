"""Who may see what: restricted threat classes and the objects that belong to them.

One mechanism, NetBox's ``restrict`` pattern: every restricted model has a
``visible_to(user)`` queryset method (cases, campaigns, threat classes,
queues), built on the one rule in ``policies.models.visible_classes_q``
(an unrestricted class, or a restricted one the user holds the clearance
for). Views never filter by hand: API views read through ``RestrictedMixin``
(``docket.api``), UI views through ``visible_or_404`` and the Django admin
through ``policies.admin.RestrictedAdminMixin``, so a restricted object cannot
leak through a forgotten view. Superusers follow the same rule.

The clearances live on reviewer profiles (an app); this core imports no app
and reads them through the lookup that app registers with the identity
services at start-up (the hook ``docket.identity.services.user_clearances``).
"""

from contextlib import contextmanager

from django.db import connection
from django.http import Http404

from docket.identity.services import clearances_of as registered_clearances_of


def clearances_of(user) -> frozenset[str]:
    """The threat class slugs the user is cleared for (cached on the user object for the request)."""
    if not user or not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_docket_clearances", None)
    if cached is None:
        cached = registered_clearances_of(user)
        user._docket_clearances = cached
    return cached


def restrict(queryset, user):
    """``queryset`` narrowed to what ``user`` may see (its model's ``visible_to``)."""
    return queryset.visible_to(user)


def visible_or_404(queryset, user, **lookup):
    """The one object of ``queryset`` matching ``lookup`` that ``user`` may see; ``Http404`` otherwise.

    A hidden object answers exactly like a missing one: the page gives no hint that it exists.
    """
    found = restrict(queryset, user).filter(**lookup).first()
    if found is None:
        raise Http404(f"No such {queryset.model._meta.verbose_name}.")
    return found


# The name of the transaction-local setting the database's guards read (the triggers on
# ``reviews_reviewer.clearances`` and on a threat class's ``restricted``/``legal_escalation``/``slug``).
ACCESS_CHANGE_SETTING = "docket.access_change"


@contextmanager
def access_change_allowed():
    """Let the current transaction change clearances or a class's restricted/legal flags.

    The database refuses those changes otherwise, whoever issues them (the admin, a
    script, the shell). Opened only by the services that own them: the approval of an
    access change by a second policy admin (``reviews.services.access``) and the
    installer's grants (``docket_user``, single sign-on's groups). Closed again on leaving;
    a transaction that fails inside ends with it (the setting is transaction-local).
    """
    if not connection.in_atomic_block:
        raise RuntimeError("access_change_allowed() must run inside a transaction.")
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, 'approved', true)", [ACCESS_CHANGE_SETTING])
    yield
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, '', true)", [ACCESS_CHANGE_SETTING])
