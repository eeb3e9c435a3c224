"""Single sign-on through OpenID Connect (mozilla-django-oidc), roles and clearances from a groups claim.

The provider is named by its issuer (``OIDC_ISSUER``) or discovery URL; endpoints and signing keys come
from its discovery document, fetched when first needed (never at start-up, so an unreachable provider
does not stop password sign-in). At every sign-in the provider's groups are mapped through
``DOCKET_OIDC_ROLE_MAP`` to roles and clearances that replace the user's; no mapped role: refused.
"""

import logging
import time

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.http import HttpResponseRedirect
from django.shortcuts import render
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from docket import roles
from docket.errors import DocketError

from . import services
from .auth import SessionUserMixin

log = logging.getLogger(__name__)

BACKEND = "docket.identity.oidc.OIDCBackend"
DISCOVERY_TTL_SECONDS = 3600
_ENDPOINTS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}
_discovered = {"url": None, "at": 0.0, "doc": None}


def enabled():
    return bool(settings.OIDC_DISCOVERY_URL and settings.OIDC_RP_CLIENT_ID)


def discovery():
    """The provider's discovery document (cached for an hour)."""
    url = settings.OIDC_DISCOVERY_URL
    if _discovered["url"] != url or time.monotonic() - _discovered["at"] > DISCOVERY_TTL_SECONDS:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        _discovered.update(url=url, at=time.monotonic(), doc=response.json())
    return _discovered["doc"]


def setting(attr, *default):
    """mozilla-django-oidc's settings, with the provider's endpoints from discovery unless set explicitly."""
    if attr in _ENDPOINTS and not getattr(settings, attr, None):
        return discovery()[_ENDPOINTS[attr]]
    return import_from_settings(attr, *default)


def role_map(text=None):
    """``"tns-moderators=moderator,tns-csam=clearance:csam"`` -> ``{"tns-moderators": {"moderator"}, ...}``.

    Raises ``ImproperlyConfigured`` naming the first bad entry (unknown role, missing ``=``).
    """
    text = settings.DOCKET_OIDC_ROLE_MAP if text is None else text
    mapping = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        group, sep, grant = (part.strip() for part in entry.partition("="))
        if not sep or not group or not grant:
            raise ImproperlyConfigured(f"DOCKET_OIDC_ROLE_MAP: {entry!r} is not GROUP=ROLE or GROUP=clearance:CLASS")
        if not grant.startswith("clearance:") and grant not in roles.ALL:
            raise ImproperlyConfigured(
                f"DOCKET_OIDC_ROLE_MAP: {grant!r} is not a role ({', '.join(roles.ALL)}) nor clearance:CLASS"
            )
        mapping.setdefault(group, set()).add(grant)
    return mapping


def grants_for(groups, mapping=None):
    """The roles and clearances a list of provider groups grants: ``(roles, clearances)``."""
    mapping = role_map() if mapping is None else mapping
    granted_roles, clearances = set(), set()
    for group in groups:
        for grant in mapping.get(group, ()):
            if grant.startswith("clearance:"):
                clearances.add(grant.removeprefix("clearance:"))
            else:
                granted_roles.add(grant)
    return granted_roles, clearances


def _groups(claims):
    value = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    if isinstance(value, str):
        value = [value]
    return [str(g) for g in value if isinstance(g, str | int)]


class OIDCBackend(SessionUserMixin, OIDCAuthenticationBackend):
    """Authenticates the provider's answer; the user's roles and clearances follow its groups."""

    get_settings = staticmethod(setting)

    def __init__(self, *args, **kwargs):
        # Endpoints are resolved in authenticate(): building the backend (Django does, for every
        # password sign-in too) must not reach out to the provider.
        self.UserModel = get_user_model()

    def authenticate(self, request, **kwargs):
        if request is None or not enabled() or "code" not in request.GET or "state" not in request.GET:
            return None
        for attr in _ENDPOINTS:
            setattr(self, attr, setting(attr))
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = getattr(settings, "OIDC_RP_IDP_SIGN_KEY", None)
        return super().authenticate(request, **kwargs)

    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)
        issuer = discovery().get("issuer")
        audience = payload.get("aud")
        audience = audience if isinstance(audience, list) else [audience]
        if issuer and payload.get("iss") != issuer:
            raise SuspiciousOperation("The ID token was issued by another provider.")
        if self.OIDC_RP_CLIENT_ID not in audience:
            raise SuspiciousOperation("The ID token is meant for another client.")
        return payload

    def get_userinfo(self, access_token, id_token, payload):
        # Groups may come in the ID token or from the userinfo endpoint: both are read.
        claims = dict(payload)
        if self.OIDC_OP_USER_ENDPOINT:
            claims.update(super().get_userinfo(access_token, id_token, payload))
        return claims

    def get_or_create_user(self, access_token, id_token, payload):
        claims = self.get_userinfo(access_token, id_token, payload)
        username = str(claims.get(settings.OIDC_USERNAME_CLAIM) or claims.get("email") or "")[:150]
        if not username:
            self._refuse(username, "no_username", f"The provider sent no {settings.OIDC_USERNAME_CLAIM!r} claim.")
            return None
        groups = _groups(claims)
        granted_roles, clearances = grants_for(groups)
        try:
            user = services.oidc_grants_apply(
                username=username, role_names=granted_roles, clearances=clearances, request=self.request
            )
        except DocketError as e:
            self._refuse(username, "invalid_grant", e.detail, groups=groups)
            return None
        if user is None or not granted_roles:
            self._refuse(username, "no_mapped_group", "", groups=groups)
            return None
        return user

    def _refuse(self, username, reason, message, **detail):
        self.request.docket_oidc_refusal = {"username": username, "reason": reason, "message": message}
        services.sign_in_failed(username=username, method="oidc", reason=reason, request=self.request, detail=detail)


class OIDCStartView(OIDCAuthenticationRequestView):
    """Redirects to the provider's sign-in page."""

    get_settings = staticmethod(setting)

    def __init__(self, *args, **kwargs):
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID

    def get(self, request):
        if not enabled():
            return render(request, "identity/refused.html", {"reason": "not_configured"}, status=404)
        try:
            self.OIDC_OP_AUTH_ENDPOINT = setting("OIDC_OP_AUTHORIZATION_ENDPOINT")
        except (requests.RequestException, ValueError, KeyError):
            log.exception("OpenID Connect discovery failed")
            return render(request, "identity/refused.html", {"reason": "provider_unreachable"}, status=503)
        return super().get(request)


class OIDCCallbackView(OIDCAuthenticationCallbackView):
    """The provider's answer: signs the user in, or shows why not."""

    get_settings = staticmethod(setting)

    def get(self, request):
        try:
            return super().get(request)
        except (SuspiciousOperation, requests.RequestException, ValueError, KeyError) as e:
            log.warning("OpenID Connect sign-in failed: %s", e)
            services.sign_in_failed(username="", method="oidc", reason="provider_error", request=request)
            return render(request, "identity/refused.html", {"reason": "provider_error"}, status=400)

    def login_success(self):
        services.session_begin(self.request, user=self.user, method="oidc", backend=BACKEND)
        return HttpResponseRedirect(self.success_url)

    def login_failure(self):
        refusal = getattr(self.request, "docket_oidc_refusal", None)
        if refusal is None:
            if self.request.GET.get("error"):
                services.sign_in_failed(
                    username="",
                    method="oidc",
                    reason="provider_error",
                    request=self.request,
                    detail={"error": self.request.GET.get("error", "")[:100]},
                )
            return render(self.request, "identity/refused.html", {"reason": "provider_error"}, status=400)
        return render(self.request, "identity/refused.html", {"reason": refusal["reason"], **refusal}, status=403)
