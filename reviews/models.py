"""Reviewers, assignments, decisions, enforcement, strikes, QA and relabel items."""

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import F, Q

from casework.models import Queue
from policies.models import Action, ThreatClass, class_visible_queryset


class Reviewer(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviewer")
    clearances = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    queues = models.ManyToManyField(Queue, related_name="reviewers", blank=True)
    max_active = models.PositiveSmallIntegerField(default=3)
    graphic_budget = models.PositiveSmallIntegerField(default=40, help_text="Graphic-class cases a day, at most.")
    on_shift = models.BooleanField(default=True)
    language = models.CharField(max_length=8, default="en")

    class Meta:
        constraints = [
            models.CheckConstraint(name="reviewer_max_active_positive", condition=Q(max_active__gte=1)),
        ]

    def __str__(self):
        return self.user.get_username()


class Assignment(models.Model):
    class State(models.TextChoices):
        ACTIVE = "active"
        COMPLETED = "completed"
        RELEASED = "released"
        SKIPPED = "skipped"
        EXPIRED = "expired"
        ESCALATED = "escalated"

    case = models.ForeignKey("casework.Case", on_delete=models.PROTECT, related_name="assignments")
    reviewer = models.ForeignKey(Reviewer, on_delete=models.PROTECT, related_name="assignments")
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    graphic = models.BooleanField(default=False, help_text="Counted against the exposure budget.")
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    claimed_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = class_visible_queryset("case__threat_class").as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["case"], condition=Q(state="active"), name="assignment_one_active_per_case"
            ),
            models.CheckConstraint(
                name="assignment_active_iff_not_ended",
                condition=(Q(state="active") & Q(ended_at__isnull=True))
                | (~Q(state="active") & Q(ended_at__isnull=False)),
            ),
            models.CheckConstraint(
                name="assignment_lease_after_claim", condition=Q(lease_expires_at__gt=F("claimed_at"))
            ),
        ]
        indexes = [
            models.Index(fields=["reviewer"], name="assignment_active_rev_idx", condition=Q(state="active")),
            models.Index(fields=["lease_expires_at"], name="assignment_lease_idx", condition=Q(state="active")),
            models.Index(fields=["reviewer", "claimed_at"], name="assignment_claimed_idx"),
            # The claim passes over cases this reviewer skipped lately: a probe, not a scan of their history.
            models.Index(fields=["reviewer", "ended_at"], name="assignment_skipped_idx", condition=Q(state="skipped")),
        ]

    def __str__(self):
        return f"assignment {self.pk} ({self.state})"


class Decision(models.Model):
    case = models.ForeignKey("casework.Case", on_delete=models.PROTECT, related_name="decisions")
    reviewer = models.ForeignKey(Reviewer, null=True, blank=True, on_delete=models.PROTECT, related_name="decisions")
    action = models.CharField(max_length=20, choices=Action.choices)
    rule = models.CharField(max_length=80, blank=True)
    policy_version = models.ForeignKey("policies.PolicyVersion", on_delete=models.PROTECT, related_name="decisions")
    rationale = models.TextField(blank=True, help_text="Internal: never leaves Docket.")
    public_explanation = models.TextField(
        blank=True,
        default="",
        db_default="",
        help_text="What the user and the statement of reasons are told (default: the rule's description).",
    )
    duration_days = models.PositiveIntegerField(null=True, blank=True)
    statement = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text="The statement of reasons as made with the decision; null when nothing was restricted.",
    )
    automated = models.BooleanField(default=False)
    holdout = models.BooleanField(default=False)
    qa_sampled = models.BooleanField(default=False)
    relabel = models.BooleanField(default=False, help_text="A relabel of an older decision under a new version.")
    campaign = models.ForeignKey(
        "casework.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    overturned = models.BooleanField(default=False)
    overturned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    objects = class_visible_queryset("case__threat_class").as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                name="decision_suspend_has_duration",
                condition=~Q(action="suspend") | Q(duration_days__isnull=False, duration_days__gte=1),
            ),
            models.CheckConstraint(
                name="decision_automated_xor_reviewer",
                condition=(Q(automated=True) & Q(reviewer__isnull=True))
                | (Q(automated=False) & Q(reviewer__isnull=False)),
            ),
            models.CheckConstraint(
                name="decision_overturned_has_time",
                condition=Q(overturned=False) | Q(overturned_at__isnull=False),
            ),
        ]
        indexes = [
            models.Index(fields=["created_at"], name="decision_created_at_idx"),
            models.Index(fields=["policy_version", "created_at"], name="decision_version_idx"),
        ]

    def __str__(self):
        return f"decision {self.pk}: {self.action}"


class DeliveryStatus(models.TextChoices):
    """Where a row of a webhook outbox (``Enforcement``, ``Notice``) stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class Enforcement(models.Model):
    """The outbox: one row per action to deliver to the platform."""

    class Kind(models.TextChoices):
        ENFORCE = "enforce"
        REVERSE = "reverse"

    Status = DeliveryStatus

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="enforcements")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.ENFORCE)
    action = models.CharField(max_length=20, choices=Action.choices)
    duration_days = models.PositiveIntegerField(null=True, blank=True)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = class_visible_queryset("decision__case__threat_class").as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["decision", "kind", "action"], name="enforcement_once_per_decision"),
            models.CheckConstraint(
                name="enforcement_delivered_has_time",
                condition=~Q(status="delivered") | Q(delivered_at__isnull=False),
            ),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="enforcement_due_idx", condition=Q(status="pending")),
        ]

    def __str__(self):
        return f"{self.kind} {self.action} ({self.status})"


class Strike(models.Model):
    """Graduated enforcement: a violation counts against the account for a while."""

    account = models.ForeignKey("casework.Subject", on_delete=models.PROTECT, related_name="strikes")
    decision = models.OneToOneField(Decision, on_delete=models.PROTECT, related_name="strike")
    weight = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True)

    objects = class_visible_queryset("decision__case__threat_class").as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(name="strike_expires_after_created", condition=Q(expires_at__gt=F("created_at"))),
            models.CheckConstraint(name="strike_weight_positive", condition=Q(weight__gte=1)),
        ]
        indexes = [models.Index(fields=["account", "expires_at"], name="strike_account_idx")]

    def __str__(self):
        return f"strike {self.pk} on subject {self.account_id}"


class QualityReview(models.Model):
    """A blind second review of a sampled decision."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"

    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="quality_reviews")
    reviewer = models.ForeignKey(Reviewer, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    action = models.CharField(max_length=20, choices=Action.choices, blank=True)
    rule = models.CharField(max_length=80, blank=True)
    agrees = models.BooleanField(null=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = class_visible_queryset("decision__case__threat_class").as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["decision"], name="qualityreview_one_per_decision"),
            models.CheckConstraint(
                name="qualityreview_done_complete",
                condition=~Q(status="done")
                | Q(reviewer__isnull=False, agrees__isnull=False, completed_at__isnull=False),
            ),
        ]

    def __str__(self):
        return f"QA of decision {self.decision_id} ({self.status})"


class RelabelItem(models.Model):
    """A recent decision re-reviewed, blind, under a newly activated policy version.

    Kept apart from QA (one QualityReview per decision): a decision may be
    QA-sampled and later relabelled under each new version.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"

    policy_version = models.ForeignKey("policies.PolicyVersion", on_delete=models.CASCADE, related_name="relabel_items")
    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="relabel_items")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reviewer = models.ForeignKey(Reviewer, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=20, choices=Action.choices, blank=True)
    rule = models.CharField(max_length=80, blank=True)
    agrees = models.BooleanField(null=True, help_text="Violation vs no violation, same as the original decision.")
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = class_visible_queryset("decision__case__threat_class").as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["policy_version", "decision"], name="relabelitem_once_per_version"),
            models.CheckConstraint(
                name="relabelitem_done_complete",
                condition=~Q(status="done")
                | (Q(reviewer__isnull=False, agrees__isnull=False, completed_at__isnull=False) & ~Q(action="")),
            ),
        ]
        indexes = [
            models.Index(fields=["policy_version"], name="relabelitem_pending_idx", condition=Q(status="pending"))
        ]

    def __str__(self):
        return f"relabel of decision {self.decision_id} under {self.policy_version_id} ({self.status})"


class Installation(models.Model):
    """This Docket installation: one row, made by the migration that creates the table.

    Its ``puid_prefix`` (random per database) keeps statement identifiers unique
    across installations that submit to one Transparency Database account.
    """

    puid_prefix = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(name="installation_single_row", condition=Q(id=1))]

    def __str__(self):
        return self.puid_prefix


class StatementSubmission(models.Model):
    """The Transparency Database outbox: one row per statement of reasons to submit."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUBMITTED = "submitted"
        REJECTED = "rejected"

    decision = models.OneToOneField(Decision, on_delete=models.PROTECT, related_name="submission")
    puid = models.CharField(max_length=500, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    errors = models.JSONField(default=dict, blank=True, help_text="Field -> messages, as the database answered.")
    last_error = models.TextField(blank=True, help_text="The last transport failure (retried).")
    tdb_uuid = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)

    objects = class_visible_queryset("decision__case__threat_class").as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="statementsubmission_submitted_has_time",
                condition=~Q(status="submitted") | Q(submitted_at__isnull=False),
            ),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="statementsub_due_idx", condition=Q(status="pending")),
            models.Index(fields=["created_at"], name="statementsub_rejected_idx", condition=Q(status="rejected")),
        ]

    def __str__(self):
        return f"{self.puid} ({self.status})"


class NoticeQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Notices the user may know exist: none of the case, decision or signal it names is of a hidden class."""
        hidden = ThreatClass.objects.hidden_from(user)
        return (
            self.exclude(case__threat_class__in=hidden)
            .exclude(decision__case__threat_class__in=hidden)
            .exclude(signal__threat_class__in=hidden)
        )


class Notice(models.Model):
    """The notices outbox: what a reporter or an appellant is told, POSTed signed like enforcements."""

    class Kind(models.TextChoices):
        REPORT_RECEIVED = "report_received"
        REPORT_OUTCOME = "report_outcome"
        APPEAL_OUTCOME = "appeal_outcome"

    Status = DeliveryStatus

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    key = models.CharField(max_length=300, unique=True, help_text="What this notice is about: sent once.")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    case = models.ForeignKey("casework.Case", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decision = models.ForeignKey(Decision, null=True, blank=True, on_delete=models.PROTECT, related_name="notices")
    signal = models.ForeignKey("casework.Signal", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    payload = models.JSONField(help_text="The webhook body, fixed when the notice is made.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = NoticeQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="notice_delivered_has_time", condition=~Q(status="delivered") | Q(delivered_at__isnull=False)
            ),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="notice_due_idx", condition=Q(status="pending")),
            models.Index(fields=["signal"], name="notice_receipt_idx", condition=Q(kind="report_received")),
        ]

    def __str__(self):
        return f"notice {self.kind} ({self.status})"


class AccessChange(models.Model):
    """A proposed change of who may see restricted material, applied only when a second policy admin approves.

    Either a reviewer's clearances (``kind="clearances"``) or a threat class's
    ``restricted`` / ``legal_escalation`` flags (``kind="class_flags"``). Shaped as a
    ``ThresholdChange``: the values in force when proposed are kept beside the new ones,
    the approver is never the proposer, and nobody proposes or approves a change of their
    own clearances (``account``, the reviewer's user, is kept for the database to check).
    The reviewer and class rows themselves refuse a change made any other way (a trigger).
    """

    class Kind(models.TextChoices):
        CLEARANCES = "clearances"
        CLASS_FLAGS = "class_flags", "class flags"

    class Status(models.TextChoices):
        PROPOSED = "proposed"
        APPLIED = "applied"
        REJECTED = "rejected"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    reviewer = models.ForeignKey(
        Reviewer, null=True, blank=True, on_delete=models.PROTECT, related_name="access_changes"
    )
    account = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The reviewer's user: whose clearances change.",
    )
    old_clearances = ArrayField(models.CharField(max_length=40), null=True, blank=True)
    clearances = ArrayField(models.CharField(max_length=40), null=True, blank=True)
    threat_class = models.ForeignKey(
        "policies.ThreatClass", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    old_restricted = models.BooleanField(null=True, blank=True)
    restricted = models.BooleanField(null=True, blank=True)
    old_legal_escalation = models.BooleanField(null=True, blank=True)
    legal_escalation = models.BooleanField(null=True, blank=True)
    reason = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PROPOSED)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Who approved (applied) or rejected it.",
    )
    created_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                name="accesschange_kind_fields",
                condition=(
                    Q(kind="clearances")
                    & Q(reviewer__isnull=False, account__isnull=False)
                    & Q(old_clearances__isnull=False, clearances__isnull=False)
                    & Q(threat_class__isnull=True, restricted__isnull=True, legal_escalation__isnull=True)
                    & Q(old_restricted__isnull=True, old_legal_escalation__isnull=True)
                )
                | (
                    Q(kind="class_flags")
                    & Q(threat_class__isnull=False)
                    & Q(old_restricted__isnull=False, restricted__isnull=False)
                    & Q(old_legal_escalation__isnull=False, legal_escalation__isnull=False)
                    & Q(reviewer__isnull=True, account__isnull=True)
                    & Q(old_clearances__isnull=True, clearances__isnull=True)
                ),
            ),
            models.CheckConstraint(
                name="accesschange_second_person_approves",
                condition=~Q(status="applied") | (Q(decided_by__isnull=False) & ~Q(decided_by=F("proposed_by"))),
            ),
            models.CheckConstraint(
                name="accesschange_not_own_clearances",
                condition=Q(account__isnull=True)
                | (~Q(proposed_by=F("account")) & (~Q(status="applied") | ~Q(decided_by=F("account")))),
            ),
            models.CheckConstraint(
                name="accesschange_decided_has_time",
                condition=(Q(status="proposed") & Q(decided_at__isnull=True, decided_by__isnull=True))
                | (~Q(status="proposed") & Q(decided_at__isnull=False)),
            ),
            # One open proposal per reviewer and per class: the approver compares it with what is in force.
            models.UniqueConstraint(
                fields=["reviewer"], condition=Q(status="proposed"), name="accesschange_one_open_per_reviewer"
            ),
            models.UniqueConstraint(
                fields=["threat_class"], condition=Q(status="proposed"), name="accesschange_one_open_per_class"
            ),
        ]

    def __str__(self):
        return f"access change {self.pk} ({self.status})"

    @property
    def subject_label(self):
        """What changes: the reviewer or the class, by name."""
        if self.kind == self.Kind.CLEARANCES:
            return f"clearances of {self.account.get_username()}"
        return f"flags of the {self.threat_class.slug} class"

    @property
    def change_summary(self):
        """Before → after, in words."""
        if self.kind == self.Kind.CLEARANCES:
            before = ", ".join(self.old_clearances) or "none"
            after = ", ".join(self.clearances) or "none"
            return f"{before} → {after}"
        parts = []
        for field in ("restricted", "legal_escalation"):
            old, new = getattr(self, f"old_{field}"), getattr(self, field)
            parts.append(f"{field}: {'yes' if old else 'no'} → {'yes' if new else 'no'}")
        return "; ".join(parts)
