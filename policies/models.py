"""Threat classes, versioned policies, the action ladder, signal sources and their thresholds.

Nothing here imports or names the other apps' models.
"""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import F, Q

from docket.visibility import clearances_of

from . import dsa


class Action(models.TextChoices):
    """The action ladder, mildest first."""

    NO_VIOLATION = "no_violation", "No violation"
    LABEL = "label", "Label"
    REDUCE = "reduce", "Reduce reach"
    REMOVE = "remove", "Remove"
    LOCK = "lock", "Lock account"
    RESTRICT = "restrict", "Restrict"
    SUSPEND = "suspend", "Suspend"
    BAN = "ban", "Ban"
    LEGAL_REPORT = "legal_report", "Legal report"


LADDER = [a.value for a in Action]
# Actions the platform can undo without loss (used by automation tolerance).
REVERSIBLE_ACTIONS = frozenset({"no_violation", "label", "reduce", "lock", "restrict", "suspend"})
VIOLATIONS = frozenset(LADDER) - {"no_violation"}


def ladder_rank(action):
    return LADDER.index(action)


class Automation(models.TextChoices):
    NONE = "none", "None (a human decides)"
    REVERSIBLE = "reversible", "Reversible actions only"
    ANY = "any", "Any action above threshold"


def visible_classes_q(clearances, prefix=""):
    """The one visibility rule: an unrestricted threat class, or a restricted one among ``clearances``.

    ``prefix`` is the path from the filtered model to its class (``"threat_class__"`` for a case).
    """
    return Q(**{f"{prefix}restricted": False}) | Q(**{f"{prefix}slug__in": sorted(clearances)})


def class_visible(*, restricted, slug, clearances) -> bool:
    """``visible_classes_q`` for one class already read (a row a locking statement returned)."""
    return not restricted or slug in clearances


def class_visible_sql(alias: str, clearances: str) -> str:
    """``visible_classes_q`` as an SQL condition on the class row ``alias``, for a hand-written statement
    that reads the clearances itself: ``clearances`` is an SQL expression of a text array (a reviewer's
    ``r.clearances`` column)."""
    return f"(NOT {alias}.restricted OR {alias}.slug = ANY({clearances}))"


class ThreatClassQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Classes the user may know exist."""
        return self.filter(visible_classes_q(clearances_of(user)))

    def visible_with(self, clearances):
        """Classes visible to anyone holding exactly these clearances (metrics cache per clearance set)."""
        return self.filter(visible_classes_q(clearances))

    def hidden_from(self, user):
        """The restricted classes the user is not cleared for (what set-based SQL excludes by id)."""
        return self.exclude(visible_classes_q(clearances_of(user)))


def class_visible_queryset(class_path: str) -> type[models.QuerySet]:
    """A queryset class for a model that belongs to a threat class through ``class_path`` (``"case__threat_class"``
    for a decision): its ``visible_to(user)`` keeps the rows whose class the user may see, by the one rule."""
    prefix = f"{class_path}__"

    class ClassVisibleQuerySet(models.QuerySet):
        def visible_to(self, user):
            return self.filter(visible_classes_q(clearances_of(user), prefix=prefix))

    ClassVisibleQuerySet.__qualname__ = ClassVisibleQuerySet.__name__ = f"VisibleThrough_{class_path}"
    return ClassVisibleQuerySet


class ThreatClass(models.Model):
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    severity = models.PositiveSmallIntegerField(help_text="Base severity, 1 (low) to 5 (critical).")
    harm_weight = models.FloatField(default=1.0, help_text="Multiplier of harm in the priority.")
    sla_seconds = models.PositiveIntegerField(help_text="Time to first action.")
    automation = models.CharField(max_length=12, choices=Automation.choices, default=Automation.NONE)
    auto_action = models.CharField(
        max_length=20,
        choices=Action.choices,
        blank=True,
        help_text="The action automation takes above threshold (within the class's tolerance).",
    )
    restricted = models.BooleanField(default=False, help_text="Reviewers need this class as a clearance.")
    legal_escalation = models.BooleanField(default=False, help_text="A violation must file a legal report.")
    graphic = models.BooleanField(default=False, help_text="Counts against the daily exposure budget.")
    dsa_category = models.CharField(max_length=80, default="STATEMENT_CATEGORY_OTHER_VIOLATION_TC")
    dsa_keywords = ArrayField(models.CharField(max_length=80), default=list, blank=True)
    dsa_illegal = models.BooleanField(
        default=False, help_text="Decisions rest on illegality (DSA ground) rather than terms."
    )
    legal_ground = models.CharField(max_length=500, blank=True)
    dsa_territorial_scope = ArrayField(
        models.CharField(max_length=2),
        default=list,
        blank=True,
        help_text="Where decisions on this class apply by default (ISO codes); blank: DOCKET_DSA_TERRITORIAL_SCOPE.",
    )

    objects = ThreatClassQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "threat classes"
        ordering = ["-severity", "slug"]
        constraints = [
            models.CheckConstraint(name="threatclass_severity_1_to_5", condition=Q(severity__gte=1, severity__lte=5)),
            models.CheckConstraint(name="threatclass_harm_weight_positive", condition=Q(harm_weight__gt=0)),
            models.CheckConstraint(name="threatclass_sla_positive", condition=Q(sla_seconds__gt=0)),
            # The Transparency Database's enums (policies.dsa): a statement never carries what it refuses.
            models.CheckConstraint(
                name="threatclass_dsa_category_known", condition=Q(dsa_category__in=sorted(dsa.STATEMENT_CATEGORIES))
            ),
            models.CheckConstraint(
                name="threatclass_dsa_keywords_known", condition=Q(dsa_keywords__contained_by=sorted(dsa.KEYWORDS))
            ),
            models.CheckConstraint(
                name="threatclass_dsa_scope_eea",
                condition=Q(dsa_territorial_scope__contained_by=sorted(dsa.EUROPEAN_COUNTRY_CODES)),
            ),
            models.CheckConstraint(
                name="threatclass_auto_action_within_tolerance",
                condition=(Q(automation="none") & Q(auto_action=""))
                | (Q(automation="reversible") & Q(auto_action__in=sorted(REVERSIBLE_ACTIONS - {"no_violation"})))
                | (Q(automation="any") & ~Q(auto_action__in=["", "no_violation"])),
            ),
        ]

    def __str__(self):
        return self.slug

    @property
    def sla_hours(self):
        return self.sla_seconds / 3600


class Policy(models.Model):
    threat_class = models.ForeignKey(ThreatClass, on_delete=models.PROTECT, related_name="policies")
    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)

    class Meta:
        verbose_name_plural = "policies"
        ordering = ["slug"]

    def __str__(self):
        return self.name


class PolicyVersion(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        ACTIVE = "active"
        RETIRED = "retired"

    policy = models.ForeignKey(Policy, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    text = models.TextField()
    rules = models.JSONField(
        default=list, help_text='Violation labels reviewers cite: [{"code", "title", "description"}].'
    )
    ladder = ArrayField(models.CharField(max_length=20, choices=Action.choices))
    strike_weight = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    effective_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["policy", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "number"], name="policyversion_unique_number"),
            models.UniqueConstraint(
                fields=["policy"], condition=Q(status="active"), name="policyversion_one_active_per_policy"
            ),
            models.CheckConstraint(
                name="policyversion_active_has_effective_at",
                condition=~Q(status="active") | Q(effective_at__isnull=False),
            ),
            models.CheckConstraint(
                name="policyversion_retired_has_retired_at",
                condition=~Q(status="retired") | Q(retired_at__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.policy.slug} v{self.number}"

    @property
    def label(self):
        """The version as pages and messages name it: the policy's name and the number."""
        return f"{self.policy.name} v{self.number}"

    def rule_codes(self):
        return [r["code"] for r in self.rules]


class SignalSource(models.Model):
    """Where signals come from, and how far they are trusted: configuration governed like thresholds.

    Casework's signal hygiene keeps the figures (rates, score summary) and moves the status.
    """

    class Kind(models.TextChoices):
        USER_REPORT = "user_report"
        CLASSIFIER = "classifier"
        RULE = "rule"
        HASH_MATCH = "hash_match"
        TRUSTED_FLAGGER = "trusted_flagger"
        LEGAL_REQUEST = "legal_request"

    class Status(models.TextChoices):
        HEALTHY = "healthy"
        SUSPECT = "suspect"
        QUARANTINED = "quarantined"

    # Kinds whose signals carry a score (required on intake).
    SCORED_KINDS = frozenset({"classifier", "rule", "hash_match"})

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    trust = models.FloatField(default=1.0, help_text="Weight of this source's signals, 0 to 1.")
    dsa_article_16 = models.BooleanField(
        default=False,
        help_text="Its reports are notices alleging illegal content (DSA Art. 16); others are other notifications.",
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.HEALTHY)
    baseline_rate = models.FloatField(null=True, blank=True, help_text="Signals per hour, this hour of week.")
    current_rate = models.FloatField(null=True, blank=True, help_text="Signals per hour, last hour.")
    score_summary = models.JSONField(default=dict, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    health_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(name="signalsource_trust_in_unit", condition=Q(trust__gte=0, trust__lte=1)),
        ]

    def __str__(self):
        return self.slug


class Threshold(models.Model):
    """Per source and threat class, where automation acts and where review starts."""

    source = models.ForeignKey(SignalSource, on_delete=models.CASCADE, related_name="thresholds")
    threat_class = models.ForeignKey(ThreatClass, on_delete=models.CASCADE, related_name="thresholds")
    auto_action_at = models.FloatField(null=True, blank=True, help_text="Score at which automation acts.")
    review_at = models.FloatField(default=0.0, help_text="Score at which a signal enters review.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "threat_class"], name="threshold_unique_source_class"),
            models.CheckConstraint(name="threshold_review_in_unit", condition=Q(review_at__gte=0, review_at__lte=1)),
            models.CheckConstraint(
                name="threshold_auto_in_unit_and_above_review",
                condition=Q(auto_action_at__isnull=True) | Q(auto_action_at__gte=F("review_at"), auto_action_at__lte=1),
            ),
        ]

    def __str__(self):
        return f"{self.source_id}/{self.threat_class_id}"


class ThresholdChangeQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Changes of the classes ``user`` may see: a change's blast radius counts its class's signals."""
        return self.filter(visible_classes_q(clearances_of(user), prefix="threat_class__"))


class ThresholdChange(models.Model):
    """A proposed move of a threshold, applied only when a second admin approves.

    Its blast radius counts the stored signals of its class, so a change of a restricted class is
    proposed, read and decided only by policy admins cleared for it (``visible_to``).
    """

    class Status(models.TextChoices):
        PROPOSED = "proposed"
        APPLIED = "applied"
        REJECTED = "rejected"

    source = models.ForeignKey(SignalSource, on_delete=models.PROTECT, related_name="+")
    threat_class = models.ForeignKey(ThreatClass, on_delete=models.PROTECT, related_name="+")
    old_auto_action_at = models.FloatField(null=True, blank=True)
    old_review_at = models.FloatField(null=True, blank=True)
    auto_action_at = models.FloatField(null=True, blank=True)
    review_at = models.FloatField()
    reason = models.TextField()
    blast_radius = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PROPOSED)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    objects = ThresholdChangeQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                name="thresholdchange_second_person_approves",
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=F("proposed_by")),
            ),
            models.CheckConstraint(
                name="thresholdchange_applied_has_approver",
                condition=~Q(status="applied") | Q(approved_by__isnull=False, decided_at__isnull=False),
            ),
            models.CheckConstraint(
                name="thresholdchange_values_in_unit",
                condition=Q(review_at__gte=0, review_at__lte=1)
                & (Q(auto_action_at__isnull=True) | Q(auto_action_at__gte=F("review_at"), auto_action_at__lte=1)),
            ),
        ]

    def __str__(self):
        return f"threshold change {self.pk} ({self.status})"


class MessageTemplate(models.Model):
    """What the user is told, per kind, language and (optionally) action."""

    class Kind(models.TextChoices):
        DECISION_NOTICE = "decision_notice"
        APPEAL_OUTCOME = "appeal_outcome"
        REPORT_OUTCOME = "report_outcome"
        REPORT_RECEIVED = "report_received"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    language = models.CharField(max_length=8, default="en")
    action = models.CharField(max_length=20, blank=True, help_text="Blank: any action.")
    subject = models.CharField(max_length=200)
    body = models.TextField(help_text="Django template syntax; context: decision, appeal, statement.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "language", "action"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "language", "action"], name="messagetemplate_unique"),
        ]

    def __str__(self):
        return f"{self.kind}/{self.language}/{self.action or '*'}"
