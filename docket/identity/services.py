"""Identity services: every write about sign-in, the second factor, API tokens and sessions, each audited.

Audit rows go to the one append-only log of the core (``docket.audit``, kind ``audit``): the actor is
``user`` (``None`` when nobody is signed in yet), the account concerned is ``object_type="user"``
with its username as ``object_id``.

Roles are Django groups (the core's); clearances live on reviewer profiles, in ``reviews``. The core
reads and writes clearances only through the functions that ``reviews`` registers at start-up
(the hooks ``user_clearances`` and ``grants_apply``), so nothing here imports an app.
"""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.contrib import auth
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from docket import roles
from docket.audit import access_log_add
from docket.errors import DocketError
from docket.hooks import Hook
from docket.models import AccessLog

from .models import ApiToken, UserSession

RECOVERY_CODE_COUNT = 10
# A password accepted while the second factor is still to come is good for this long.
PENDING_SECONDS = 5 * 60


# --- hooks: clearances live in an upper layer -------------------------------------------------------


# ``reviews`` owns clearances and registers both when ready.
# ``user_clearances(user)``: the threat class slugs ``user`` is cleared for.
user_clearances = Hook("docket.identity.user_clearances")
# ``grants_apply(*, username, roles, clearances, request)``: give the account exactly these roles and
# clearances; returns the user, or ``None`` when refused (empty roles strip access).
grants_apply = Hook("docket.identity.grants_apply")


def clearances_of(user) -> frozenset:
    if user is None or not user.is_authenticated or user_clearances.provider is None:
        return frozenset()
    return frozenset(user_clearances(user))


def grants_of(user) -> dict:
    """What a user may do, as the audit records it: ``{"roles": [...], "clearances": [...]}``."""
    if user is None or user.pk is None:
        return {"roles": [], "clearances": []}
    return {
        "roles": sorted(user.groups.values_list("name", flat=True)),
        "clearances": sorted(clearances_of(user)),
    }


# --- audit --------------------------------------------------------------------------------------------


def audit_add(*, action, user, account=None, request=None, detail=None):
    """Append one audit row: ``user`` (the actor, or None) did ``action`` concerning ``account`` (a username)."""
    detail = dict(detail or {})
    if request is not None:
        detail.setdefault("ip", request.META.get("REMOTE_ADDR", ""))
    return access_log_add(
        user=user,
        action=action,
        kind=AccessLog.Kind.AUDIT,
        object_type="user" if account else "",
        object_id=account or "",
        detail=detail,
    )


def audit_list():
    """Audit rows (not accesses), newest first."""
    return AccessLog.objects.filter(kind=AccessLog.Kind.AUDIT).order_by("-at", "-id")


# --- roles and clearances -------------------------------------------------------------------------------


@transaction.atomic
def account_grants_changed(*, user, before, after, by=None, via, request=None):
    """Record a change of roles or clearances and sign the user out everywhere; nothing if unchanged.

    ``before``/``after`` are ``grants_of`` snapshots. Returns whether anything changed.
    """
    if before == after:
        return False
    ended = sessions_end(user=user)
    audit_add(
        action="roles_changed",
        user=by,
        account=user.get_username(),
        request=request,
        detail={"before": before, "after": after, "via": via, "sessions_ended": ended},
    )
    return True


def oidc_grants_apply(*, username, role_names, clearances, request=None):
    """Give ``username`` exactly these roles and clearances (from the provider's groups), at sign-in.

    With no role the user is refused: an existing account loses every role and clearance (and its
    sessions); no account is created. Returns the user, or ``None`` when refused.
    """
    if grants_apply.provider is None:
        raise DocketError("unavailable", "No app has registered how clearances are granted.", status=503)
    return grants_apply(username=username, roles=sorted(role_names), clearances=sorted(clearances), request=request)


# --- sessions --------------------------------------------------------------------------------------------


def session_begin(request, *, user, method, backend, second_factor=None):
    """Sign ``user`` in on this request's session (after every check passed) and record it."""
    auth.login(request, user, backend=backend)
    now = timezone.now()
    UserSession.objects.filter(user=user, created_at__lt=now - timedelta(seconds=settings.SESSION_COOKIE_AGE)).delete()
    UserSession.objects.update_or_create(
        session_key=request.session.session_key, defaults={"user": user, "method": method, "created_at": now}
    )
    audit_add(
        action="sign_in",
        user=user,
        account=user.get_username(),
        request=request,
        detail={"method": method, "second_factor": second_factor},
    )


def sessions_end(*, user) -> int:
    """End every session the user holds (sign-out everywhere). Returns how many were ended."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    keys = list(UserSession.objects.filter(user=user).values_list("session_key", flat=True))
    for key in keys:
        store(session_key=key).delete()
    UserSession.objects.filter(session_key__in=keys).delete()
    return len(keys)


def sign_in_failed(*, username, method, reason, request=None, detail=None):
    audit_add(
        action="sign_in_failed",
        user=None,
        account=(username or "")[:150],
        request=request,
        detail={"method": method, "reason": reason, **(detail or {})},
    )


# --- the second factor -----------------------------------------------------------------------------------


def second_factor_enrolled(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def second_factor_required(user) -> bool:
    """Password sign-in asks for a second factor: clearance holders always, staff under DOCKET_REQUIRE_2FA,
    and anyone who has enrolled one."""
    if clearances_of(user):
        return True
    if settings.DOCKET_REQUIRE_2FA and (user.is_staff or roles.has_any(user, roles.STAFF)):
        return True
    return second_factor_enrolled(user)


@transaction.atomic
def second_factor_enrol_begin(*, user) -> TOTPDevice:
    """The authenticator secret being enrolled (one unconfirmed device per user, reused until confirmed)."""
    if second_factor_enrolled(user):
        raise DocketError("already_enrolled", "A second factor is already set up for this account.", status=409)
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("id").first()
    return device or TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)


def second_factor_enrol_confirm(*, user, code, request=None) -> list[str]:
    """Confirm the authenticator with a current code; returns fresh recovery codes (shown once)."""
    codes = _enrol_confirm(user=user, code=code, request=request)
    if codes is None:  # raised outside the transaction: the failure's audit row and throttle stay
        raise DocketError("invalid_code", "That code is not valid. Enter the 6 digits your authenticator shows now.")
    return codes


@transaction.atomic
def _enrol_confirm(*, user, code, request):
    device = TOTPDevice.objects.select_for_update(no_key=True).filter(user=user, confirmed=False).order_by("id").first()
    if device is None:
        raise DocketError("invalid", "Start the set-up again: no authenticator is waiting to be confirmed.")
    if not device.verify_token(_normalise(code)):
        audit_add(
            action="second_factor_failed",
            user=None,
            account=user.get_username(),
            request=request,
            detail={"during": "enrolment"},
        )
        return None
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = _recovery_codes_replace(user)
    audit_add(
        action="second_factor_enrolled",
        user=user,
        account=user.get_username(),
        request=request,
        detail={"device": "totp", "recovery_codes": len(codes)},
    )
    return codes


def _recovery_codes_replace(user) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="recovery codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=c) for c in codes])
    return codes


def _normalise(code):
    return "".join((code or "").split()).replace("-", "").lower()[:16]


def second_factor_verify(*, user, code, request=None) -> str:
    """Check a code from the authenticator, or a recovery code (each works once).

    Returns ``"totp"`` or ``"recovery"``; raises ``DocketError`` (``invalid_code``) otherwise.
    Repeated failures are throttled by each device (django-otp's growing delay).
    """
    kind = _verify(user=user, code=_normalise(code))
    if kind is None:  # raised outside the transaction, so the device's throttle count stays
        raise DocketError("invalid_code", "That code is not valid, or was already used.")
    return kind


@transaction.atomic
def _verify(*, user, code):
    if code.isdigit():
        devices, kind = TOTPDevice.objects.select_for_update(no_key=True).filter(user=user, confirmed=True), "totp"
    else:
        devices, kind = (
            StaticDevice.objects.select_for_update(no_key=True).filter(user=user, confirmed=True),
            "recovery",
        )
    for device in devices:
        if device.verify_token(code):
            return kind
    return None


@transaction.atomic
def second_factor_reset(*, user, by, request=None):
    """Remove the user's authenticator and recovery codes (a lost phone) and sign them out everywhere.

    Their next password sign-in asks them to set up a new authenticator.
    """
    if by is None or not (by.is_superuser or roles.has(by, roles.POLICY_ADMIN)):
        raise DocketError("forbidden", "Only a policy admin can reset a second factor.", status=403)
    had = TOTPDevice.objects.filter(user=user).count()
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    ended = sessions_end(user=user)
    audit_add(
        action="second_factor_reset",
        user=by,
        account=user.get_username(),
        request=request,
        detail={"devices_removed": had, "sessions_ended": ended},
    )


# --- API tokens ---------------------------------------------------------------------------------------------


@transaction.atomic
def token_issue(*, user, expires_days=None, rotate=False, by=None) -> ApiToken:
    """The user's API token: created if absent, replaced by a new key with ``rotate`` (the old key stops
    working at once), and set to expire ``expires_days`` from now when given (0: now, which revokes it).
    Every change is audited."""
    if expires_days is not None and expires_days < 0:
        raise DocketError("invalid", "--expires-days must be 0 (expires now) or more.")
    now = timezone.now()
    expires_at = now + timedelta(days=expires_days) if expires_days is not None else None
    token = ApiToken.objects.select_for_update(no_key=True).filter(user=user).first()
    account = user.get_username()
    if token is None or rotate:
        action = "token_rotated" if token is not None else "token_created"
        if token is not None:
            token.delete()
        token = ApiToken.objects.create(key=ApiToken.generate_key(), user=user, created_at=now, expires_at=expires_at)
        audit_add(action=action, user=by, account=account, detail={"expires_at": _iso(expires_at)})
    elif expires_days is not None:
        token.expires_at = expires_at
        token.expiry_recorded_at = None
        token.save(update_fields=["expires_at", "expiry_recorded_at"])
        audit_add(action="token_expiry_set", user=by, account=account, detail={"expires_at": _iso(expires_at)})
    return token


def _iso(value):
    return value.isoformat() if value else None


def token_expiry_record(*, token) -> bool:
    """Write the audit row for an expired token, once (whichever comes first: its refusal or the sweep)."""
    with transaction.atomic():
        updated = ApiToken.objects.filter(
            pk=token.pk, expires_at__lte=timezone.now(), expiry_recorded_at__isnull=True
        ).update(expiry_recorded_at=timezone.now())
        if updated:
            audit_add(
                action="token_expired",
                user=None,
                account=token.user.get_username(),
                detail={"expires_at": _iso(token.expires_at)},
            )
    return bool(updated)


def tokens_expired_record(*, batch=500) -> int:
    """The periodic sweep: record every token that expired since the last run (short batches)."""
    recorded = 0
    while True:
        with transaction.atomic():
            due = list(
                ApiToken.objects.select_for_update(no_key=True, skip_locked=True, of=("self",))
                .select_related("user")
                .filter(expires_at__lte=timezone.now(), expiry_recorded_at__isnull=True)
                .order_by("expires_at")[:batch]
            )
            for token in due:
                recorded += token_expiry_record(token=token)
        if len(due) < batch:
            return recorded
