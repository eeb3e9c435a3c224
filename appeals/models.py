"""Disputes of decisions, reviewed independently of the original decider."""

from django.db import models
from django.db.models import F, Q

from policies.models import Action, class_visible_queryset


class Appeal(models.Model):
    class Status(models.TextChoices):
        RECEIVED = "received"
        IN_REVIEW = "in_review"
        RESOLVED = "resolved"

    class Outcome(models.TextChoices):
        UPHELD = "upheld"
        OVERTURNED = "overturned"
        MODIFIED = "modified"

    decision = models.ForeignKey("reviews.Decision", on_delete=models.PROTECT, related_name="appeals")
    appellant = models.CharField(max_length=200)
    statement = models.TextField(blank=True)
    language = models.CharField(max_length=8, default="en")
    received_at = models.DateTimeField()
    deadline = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    assigned_to = models.ForeignKey(
        "reviews.Reviewer", null=True, blank=True, on_delete=models.PROTECT, related_name="appeals_held"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, blank=True)
    new_action = models.CharField(max_length=20, choices=Action.choices, blank=True)
    new_decision = models.OneToOneField(
        "reviews.Decision", null=True, blank=True, on_delete=models.PROTECT, related_name="replaces_appeal"
    )
    resolved_by = models.ForeignKey(
        "reviews.Reviewer", null=True, blank=True, on_delete=models.PROTECT, related_name="appeals_resolved"
    )
    rationale = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    objects = class_visible_queryset("decision__case__threat_class").as_manager()

    class Meta:
        ordering = ["deadline", "id"]
        constraints = [
            models.UniqueConstraint(fields=["decision", "appellant"], name="appeal_once_per_appellant_decision"),
            models.CheckConstraint(
                name="appeal_in_review_has_holder",
                condition=~Q(status="in_review") | Q(assigned_to__isnull=False, claimed_at__isnull=False),
            ),
            models.CheckConstraint(
                # Never resolved by automation alone: a named human reviewer resolves.
                name="appeal_resolved_complete",
                condition=(
                    Q(status="resolved") & ~Q(outcome="") & Q(resolved_by__isnull=False, resolved_at__isnull=False)
                )
                | (~Q(status="resolved") & Q(outcome="") & Q(resolved_at__isnull=True)),
            ),
            models.CheckConstraint(
                name="appeal_modified_has_new_action",
                condition=~Q(outcome="modified") | ~Q(new_action=""),
            ),
            models.CheckConstraint(name="appeal_deadline_after_receipt", condition=Q(deadline__gt=F("received_at"))),
        ]
        indexes = [models.Index(fields=["status", "deadline"], name="appeal_status_deadline_idx")]

    def __str__(self):
        return f"appeal {self.pk} ({self.status})"
