"""How a request proves who it is: API tokens that can expire, and staff sessions that end when idle."""

import time
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db import connection
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from docket import roles
from docket.hooks import Hook
from docket.rows import loaded, loaded_side_by_side, returning

from .models import ApiToken
from .services import token_expiry_record

# The last use of a token is written at most this often (not on every request).
LAST_USE_RESOLUTION = timedelta(seconds=60)
# A session's last activity is written at most this often.
SEEN_RESOLUTION_SECONDS = 60


def _user_with_roles_sql(alias):
    """The user's columns and its role names (last), for a statement that reads the user as ``alias``."""
    return f"{returning(get_user_model(), alias)}, {roles.names_sql(f'{alias}.id')}"


@cache
def _token_sql():
    user = get_user_model()
    return (
        f"SELECT {returning(ApiToken, 't')}, {_user_with_roles_sql('u')}"
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


# ``session_profile()``: the model of the profile a higher layer keeps for a user (``reviews``' reviewer
# profile, with its clearances), one row per user through a one-to-one field named ``user``. It is read with
# the session's user, in the same statement, and cached as the user's reverse relation: the request's first
# read of the profile (every staff page's) costs no query.
session_profile = Hook("docket.identity.session_profile")


@cache
def _session_sql(profile):
    user = get_user_model()
    if profile is None:
        return f"SELECT {_user_with_roles_sql('u')} FROM {user._meta.db_table} u WHERE u.id = %s"
    column = profile._meta.get_field("user").column
    return (
        f"SELECT {_user_with_roles_sql('u')}, {returning(profile, 'p')} FROM {user._meta.db_table} u"
        f" LEFT JOIN {profile._meta.db_table} p ON p.{column} = u.id WHERE u.id = %s"
    )


def session_user(user_id):
    """The signed-in session's user, with its roles (``roles.remember``ed) and its profile (see
    ``session_profile``), or ``None``: one hand-written statement on every staff page, where the ORM
    spent three (the user, its roles, its profile), each compiled anew."""
    user_model = get_user_model()
    profile = session_profile.provider() if session_profile.provider is not None else None
    with connection.cursor() as cur:
        cur.execute(_session_sql(profile), [user_id])
        row = cur.fetchone()
    if row is None:
        return None
    width = len(user_model._meta.concrete_fields)
    user = roles.remember(loaded(user_model, row[:width]), row[width])
    if profile is not None:
        values = row[width + 1 :]
        field = profile._meta.get_field("user")
        # No profile row: the LEFT JOIN's columns are all NULL, and the cached ``None`` answers
        # ``user.<profile>`` with ``DoesNotExist``, as a read would.
        found = loaded(profile, values) if values[0] is not None else None
        if found is not None:
            field.set_cached_value(found, user)
        field.remote_field.set_cached_value(user, found)
    return user


class SessionUserMixin:
    """An authentication backend's ``get_user`` (the session's user on every request) by ``session_user``;
    a deactivated user is signed out on their next request, whichever backend signed them in."""

    def get_user(self, user_id):
        user = session_user(user_id)
        return user if user is not None and user.is_active else None


class PasswordBackend(SessionUserMixin, ModelBackend):
    """Django's username and password sign-in; the session's user read by ``session_user``."""


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
