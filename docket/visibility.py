"""Who may see what: restricted threat classes and the objects that belong to them.

One mechanism, NetBox's ``restrict`` pattern: every restricted model has a
``visible_to(user)`` queryset method (cases, campaigns, threat classes,
queues), built on the one rule in ``policies.models.visible_classes_q``
(an unrestricted class, or a restricted one the user holds the clearance
for). Views never filter by hand: API views read through ``RestrictedMixin``
(``docket.api``) and UI views through ``visible_or_404``, so a restricted
object cannot leak through a forgotten view.

The clearances live on reviewer profiles (an app); this core imports no app
and reads them through the lookup that app registers with the identity
services at start-up (``docket.identity.services.grants_register``).
"""

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
