"""The one accessor for Docket's own settings: ``setting("LEASE_SECONDS")``.

Every ``DOCKET[...]`` value and its default live in ``docket/settings.py`` (most
read from the environment there); code reads them through this function and
never restates a default, so a test's ``settings.DOCKET = {...}`` override and
an operator's environment variable reach every reader alike.
"""

from django.conf import settings


def setting(name: str):
    """``settings.DOCKET[name]``; a missing name is a programming error (``KeyError``), not a silent default."""
    return settings.DOCKET[name]
