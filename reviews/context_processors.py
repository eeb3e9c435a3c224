"""What every moderator page needs to draw its navigation."""

from docket import roles


def ui(request):
    """The signed-in user's roles for the navigation, read lazily (templates call these)."""
    user = getattr(request, "user", None)
    return {
        "ui_is_senior": lambda: roles.has(user, roles.SENIOR),
        "ui_is_staff": lambda: roles.has_any(user, roles.STAFF),
        "ui_is_appeals": lambda: roles.has(user, roles.APPEALS),
        "ui_works_cases": lambda: roles.has_any(user, (roles.MODERATOR, roles.SENIOR)),
        "ui_is_policy_admin": lambda: roles.has(user, roles.POLICY_ADMIN) or getattr(user, "is_superuser", False),
        "ui_is_platform": lambda: roles.has(user, roles.PLATFORM),
    }
