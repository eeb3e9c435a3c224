"""Login throttling: repeated failures for one username or address are refused for a while."""

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError

FAILURE_LIMIT = getattr(settings, "DOCKET_LOGIN_FAILURE_LIMIT", 5)
WINDOW_SECONDS = 15 * 60


def _keys(request, username):
    address = request.META.get("REMOTE_ADDR", "") if request else ""
    return [f"login-fail:user:{(username or '').lower()}", f"login-fail:addr:{address}"]


def _count(key):
    try:
        return cache.get(key, 0)
    except Exception:  # a cache outage must not lock everybody out
        return 0


def _bump(key):
    try:
        if not cache.add(key, 1, WINDOW_SECONDS):
            cache.incr(key)
    except Exception:
        pass


class ThrottledAuthenticationForm(AuthenticationForm):
    """The login form, refusing after ``FAILURE_LIMIT`` failures in 15 minutes."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed sign-in attempts. Wait 15 minutes and try again.",
    }

    def clean(self):
        username = self.cleaned_data.get("username")
        keys = _keys(self.request, username)
        if any(_count(k) >= FAILURE_LIMIT for k in keys):
            raise ValidationError(self.error_messages["throttled"], code="throttled")
        try:
            return super().clean()
        except ValidationError:
            for key in keys:
                _bump(key)
            raise
