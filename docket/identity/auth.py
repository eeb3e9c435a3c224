"""How a request proves who it is: API tokens that can expire, and staff sessions that end when idle."""

import time
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from docket import roles
from docket.rows import loaded_side_by_side, returning

from .models import ApiToken
from .services import token_expiry_record

# The last use of a token is written at most this often (not on every request).
LAST_USE_RESOLUTION = timedelta(seconds=60)
# A session's last activity is written at most this often.
SEEN_RESOLUTION_SECONDS = 60


@cache
def _token_sql():
    user = get_user_model()
    return (
        f"SELECT {returning(ApiToken, 't')}, {returning(user, 'u')}, {roles.names_sql('u.id')}"
        f" FROM {ApiToken._meta.db_table} t JOIN {user._meta.db_table} u ON u.id = t.user_id WHERE t.key = %s"
    )


def _token_with_user(key):
    """The token of ``key`` with its user and the user's roles (``roles.remember``ed), or ``None``: one
    hand-written statement, as every API request asks it (the ORM's compiling cost more than the read)."""
    with connection.cursor() as cur:
        cur.execute(_token_sql(), [key])
        row = cur.fetchone()
    if row is None:
        return None
    token, user = loaded_side_by_side(row, ApiToken, get_user_model())
    token.user = roles.remember(user, row[-1])
    return token


class TokenExpired(exceptions.AuthenticationFailed):
    default_detail = "This API token has expired. Ask an operator for a new one (docket_token USERNAME --rotate)."
    default_code = "token_expired"


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF token authentication on ``ApiToken``: expired tokens answer 401 ``token_expired``."""

    model = ApiToken

    def authenticate_credentials(self, key):
        # The user's roles come with the token (the permission check reads them next).
        token = _token_with_user(key)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
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
        return token.user, token


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
