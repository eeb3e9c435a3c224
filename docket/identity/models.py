"""Identity tables of the core: API tokens that expire, the sessions a user holds, staff accounts for the admin."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    """A user's API token (``Authorization: Token <key>``): at most one per user, optionally expiring.

    Rotation replaces the row, so a rotated-away key no longer exists. ``last_used_at`` is
    refreshed at most once a minute (see ``docket.identity.auth``), never on every request.
    """

    key = models.CharField(max_length=40, primary_key=True)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_token")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    last_used_at = models.DateTimeField(null=True, blank=True)
    expiry_recorded_at = models.DateTimeField(
        null=True, blank=True, help_text="When its expiry was written to the audit log (once)."
    )

    class Meta:
        verbose_name = "API token"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__isnull=True) | models.Q(expires_at__gte=models.F("created_at")),
                name="apitoken_expires_not_before_creation",
            ),
        ]
        indexes = [
            # The expiry sweep reads only tokens whose expiry is not yet recorded.
            models.Index(
                fields=["expires_at"],
                name="apitoken_expiry_pending_idx",
                condition=models.Q(expires_at__isnull=False, expiry_recorded_at__isnull=True),
            ),
        ]

    def __str__(self):
        return f"token of {self.user}"

    @staticmethod
    def generate_key():
        return secrets.token_hex(20)

    def is_expired(self, now=None):
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())


class UserSession(models.Model):
    """A signed-in session, so that a user's sessions can all be ended (sign-out everywhere)."""

    session_key = models.CharField(max_length=40, primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    method = models.CharField(max_length=20, help_text="password, or oidc")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"], name="usersession_user_idx")]

    def __str__(self):
        return f"{self.method} session of {self.user_id}"


class StaffAccount(get_user_model()):
    """Users as policy admins see them in the admin: roles, second factor, token; with the reset action."""

    class Meta:
        proxy = True
        verbose_name = "staff account"
        permissions = [("reset_second_factor", "Can reset a user's second factor")]
