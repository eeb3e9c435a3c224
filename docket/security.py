"""Login throttling: at most ``LOGIN_FAILURE_LIMIT`` password checks per account and address in 15 minutes.

Every password sign-in attempt (the UI's and the admin's) first takes a
numbered slot from an atomic counter (Redis ``INCR``) keyed on the username
*and* the client's address; only the first ``LOGIN_FAILURE_LIMIT`` slots of a window
have their password checked, so attempts sent in parallel cannot all pass a
read-then-increment check. A successful sign-in clears its counter. Keyed on
the pair, failures on one account never lock the other accounts behind the
same address (an office, a proxy), nor this account from elsewhere.

Redis down: sign-in fails closed. The throttle cannot count, and an uncounted
sign-in page is an open door for password guessing against accounts that can
read restricted material, so the form answers "Sign-in is unavailable" and
checks no password until Redis is back. Whoever is signed in stays signed in
(sessions live in PostgreSQL) and API tokens keep working.
"""

import hashlib
import logging

from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError

from docket.conf import setting

log = logging.getLogger(__name__)

WINDOW_SECONDS = 15 * 60


class ThrottleUnavailable(Exception):
    """The counter's store (Redis) cannot be reached."""


def login_attempt_key(request, username) -> str:
    """The counter of one username (case-insensitive, hashed: any length, any characters) from one address."""
    address = request.META.get("REMOTE_ADDR", "") if request else ""
    account = hashlib.sha256((username or "").strip().casefold().encode()).hexdigest()[:32]
    return f"login-attempts:{account}:{address}"


def login_attempt_take(key) -> int:
    """Take the next attempt of the window atomically; returns its number (1 for the first)."""
    try:
        for _ in range(2):
            cache.add(key, 0, WINDOW_SECONDS)  # starts the window; a no-op while one is running
            try:
                return cache.incr(key)
            except ValueError:  # the window ended between the two calls: start the next one
                continue
        raise ThrottleUnavailable("the attempt counter keeps expiring")
    except ThrottleUnavailable:
        raise
    except Exception as e:  # Redis down or refusing: nothing was counted
        raise ThrottleUnavailable(str(e)) from e


def login_attempts_clear(key) -> None:
    try:
        cache.delete(key)
    except Exception:  # the window expires by itself
        log.warning("could not clear a sign-in attempt counter", exc_info=True)


class ThrottledLoginMixin:
    """For an ``AuthenticationForm``: take an attempt before the password is checked, refuse past the limit."""

    throttle_messages = {
        "throttled": "Too many failed sign-in attempts. Wait 15 minutes and try again.",
        "throttle_unavailable": "Sign-in is unavailable for a moment. Try again shortly.",
    }

    def clean(self):
        username, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if username is None or not password:  # nothing to check: the field errors say what is missing
            return super().clean()
        key = login_attempt_key(self.request, username)
        try:
            attempt = login_attempt_take(key)
        except ThrottleUnavailable:
            log.error("sign-in refused: the attempt counter (Redis) is unavailable", exc_info=True)
            raise ValidationError(self.throttle_messages["throttle_unavailable"], code="throttle_unavailable") from None
        if attempt > setting("LOGIN_FAILURE_LIMIT"):
            raise ValidationError(self.throttle_messages["throttled"], code="throttled")
        cleaned = super().clean()  # a wrong password raises here: its attempt stays counted
        login_attempts_clear(key)
        return cleaned


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    """The sign-in form (the moderator UI's and the admin's: both sign in through the same page)."""
