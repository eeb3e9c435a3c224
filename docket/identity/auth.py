"""How a request proves who it is: API tokens that can expire, and staff sessions that end when idle."""

import time
from datetime import timedelta

from django.conf import settings
from django.contrib import auth, messages
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from docket import roles

from .models import ApiToken
from .services import token_expiry_record

# The last use of a token is written at most this often (not on every request).
LAST_USE_RESOLUTION = timedelta(seconds=60)
# A session's last activity is written at most this often.
SEEN_RESOLUTION_SECONDS = 60


class TokenExpired(exceptions.AuthenticationFailed):
    default_detail = "This API token has expired. Ask an operator for a new one (docket_token USERNAME --rotate)."
    default_code = "token_expired"


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF token authentication on ``ApiToken``: expired tokens answer 401 ``token_expired``."""

    model = ApiToken

    def authenticate_credentials(self, key):
        try:
            # The user's roles come with the token (the permission check reads them next).
            token = roles.with_names(ApiToken.objects.select_related("user"), "user").get(key=key)
        except ApiToken.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        now = timezone.now()
        if token.is_expired(now):
            if token.expiry_recorded_at is None:
                token_expiry_record(token=token)
            raise TokenExpired()
        if token.last_used_at is None or now - token.last_used_at >= LAST_USE_RESOLUTION:
            # Conditional: concurrent requests of the same minute write once between them.
            ApiToken.objects.filter(pk=token.pk, last_used_at=token.last_used_at).update(last_used_at=now)
        return roles.remember(token.user, token.docket_role_names), token


def session_seen_at_login(sender, request, user, **kwargs):
    """``user_logged_in`` receiver: every new session starts its idle clock (no extra write later)."""
    if getattr(request, "session", None) is not None:
        request.session["docket_seen"] = time.time()


class IdleSessionMiddleware:
    """Signs a session user out after ``DOCKET_SESSION_IDLE_MINUTES`` without a request.

    The session's last activity is refreshed at most once a minute, so an active user's
    session is not rewritten on every page.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        idle_minutes = settings.DOCKET_SESSION_IDLE_MINUTES
        session = getattr(request, "session", None)
        if idle_minutes and session is not None and auth.SESSION_KEY in session:
            now = time.time()
            seen = session.get("docket_seen")
            if seen is not None and now - seen > idle_minutes * 60:
                auth.logout(request)
                messages.info(request, f"You were signed out after {idle_minutes} minutes without activity.")
            elif seen is None or now - seen >= SEEN_RESOLUTION_SECONDS:
                session["docket_seen"] = now
        return self.get_response(request)
