"""What every moderator page needs to draw its navigation."""

from docket import roles


def ui(request):
    """The signed-in user's roles for the navigation, read lazily (templates call these)."""
    user = getattr(request, "user", None)
    return {
        "ui_is_senior": lambda: roles.has(user, roles.SENIOR),
        "ui_is_staff": lambda: roles.has_any(user, roles.STAFF),
        "ui_is_appeals": lambda: roles.has(user, roles.APPEALS),
    }
