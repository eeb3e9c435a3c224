"""The core's one table: the append-only log of who looked at what (and, later, who signed in)."""

from django.conf import settings
from django.db import models


class AccessLog(models.Model):
    """One access to sensitive material, or one audit event.

    Append-only: a database trigger refuses UPDATE and DELETE. ``kind`` separates
    the families of rows (``access``: views, reveals and exports of restricted
    material, subject histories and appeals; ``audit``: other security events such
    as sign-ins), ``action`` says what happened within the family. Objects are
    named by type and id (no foreign keys), so the log outlives nothing it names
    and the core imports no app.
    """

    class Kind(models.TextChoices):
        ACCESS = "access"
        AUDIT = "audit"

    class Action(models.TextChoices):
        VIEW = "view"
        REVEAL = "reveal"
        EXPORT = "export"

    at = models.DateTimeField()
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.ACCESS)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+"
    )
    username = models.CharField(max_length=150, help_text="Kept as written, even if the user is renamed.")
    action = models.CharField(max_length=40, help_text="view, reveal, export (access); an audit event's name.")
    object_type = models.CharField(max_length=40, blank=True, help_text="case, subject, appeal, …")
    object_id = models.CharField(max_length=250, blank=True)
    threat_class = models.CharField(max_length=40, blank=True, help_text="The class of what was seen, if any.")
    detail = models.JSONField(default=dict, blank=True, help_text="Where from (api, ui), and the like.")

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "access log entry"
        verbose_name_plural = "access log"
        indexes = [
            models.Index(fields=["kind", "at"], name="accesslog_kind_at_idx"),
            models.Index(fields=["user", "at"], name="accesslog_user_at_idx"),
            models.Index(fields=["object_type", "object_id"], name="accesslog_object_idx"),
        ]

    def __str__(self):
        return f"{self.username} {self.action} {self.object_type} {self.object_id}"


from docket.identity.models import ApiToken, StaffAccount, UserSession  # noqa: E402,F401  (identity tables)
