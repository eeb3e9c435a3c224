"""Subjects, signals, source incidents, queues, cases, campaigns and the case timeline."""

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Now

from docket.hooks import Contributions
from docket.visibility import clearances_of
from policies.models import SignalSource, ThreatClass, visible_classes_q

from .events import Kind

# Each provider returns, for a reader (``user``, or ``None``), the ``Prefetch``es of what its app shows
# on a case (reviews: the active assignment as ``active_assignments``, the decisions as ``decision_list``).
case_display_prefetches = Contributions("casework.case_display_prefetches")


def case_display_prefetch_list(user=None) -> list:
    """What the apps prefetch for a case's display to ``user`` (``for_display``; ``prefetch_related_objects`` for
    a case read otherwise, whose attributes already set are not read again)."""
    return [prefetch for provide in case_display_prefetches for prefetch in provide(user=user)]


class CaseQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Cases the user may know exist: unrestricted classes, plus restricted ones they are cleared for."""
        return self.filter(visible_classes_q(clearances_of(user), prefix="threat_class__"))

    def active(self):
        return self.filter(status__in=self.model.ACTIVE_STATUSES)

    def for_display(self, user=None):
        """Everything the case representation reads, in a constant number of queries.

        With ``user``, what is shown is what that reader may see (decisions under a blind second
        review that is theirs to do are left out).
        """
        return self.select_related("subject", "subject__owner", "threat_class", "queue").prefetch_related(
            *case_display_prefetch_list(user)
        )


def _subject_visible_q(user):
    """A subject exists for ``user`` when it has a case they may see, or nothing of it (no case, no
    signal) belongs to a class they may not see (the rule of ``SubjectQuerySet.visible_to``).

    Read from the class ids the subject's row keeps (``casework.subject_classes``): its cases'
    classes meet the visible ones, or all its classes are among them.
    """
    visible = ArraySubquery(ThreatClass.objects.filter(visible_classes_q(clearances_of(user))).values("id"))
    return Q(case_class_ids__overlap=visible) | Q(class_ids__contained_by=visible)


class SubjectQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Subjects the user may know exist: one with a case of a class they may see, or one with no
        case and no signal of a class hidden from them. A subject whose only cases are restricted is absent."""
        return self.filter(_subject_visible_q(user))

    def hidden_from(self, user):
        """The subjects ``visible_to`` leaves out (what a figure over subjects must not count)."""
        return self.exclude(_subject_visible_q(user))


class CampaignQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Campaigns the user may know exist: their threat class is visible to the user.

        Whether any member case is visible does not matter: a campaign of a visible class
        is shown (with the members the user may see), one of a hidden class is absent.
        """
        return self.filter(visible_classes_q(clearances_of(user), prefix="threat_class__"))

    def with_visible_figures(self, user):
        """Each campaign annotated with what ``user`` may be told of its members.

        ``visible_size``: the stored size less the member subjects hidden from the user (a
        subject whose only cases are of a restricted class they are not cleared for);
        ``visible_open``: the active member cases the user may see. Links are narrowed by
        ``campaign_links_visible``. For a user who sees every class they are the stored figures.
        """

        hidden = (
            Subject.objects.hidden_from(user)
            .filter(campaign_id=OuterRef("pk"))
            .order_by()
            .values("campaign_id")
            .annotate(n=Count("id"))
            .values("n")
        )
        open_members = (
            Case.objects.visible_to(user)
            .active()
            .filter(campaign_id=OuterRef("pk"))
            .order_by()
            .values("campaign_id")
            .annotate(n=Count("id"))
            .values("n")
        )
        zero = Value(0, output_field=IntegerField())
        return self.annotate(
            visible_size=models.F("size") - Coalesce(Subquery(hidden, output_field=IntegerField()), zero),
            visible_open=Coalesce(Subquery(open_members, output_field=IntegerField()), zero),
        )


class ReporterQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Reporters the user may know exist: one of their signals is of a visible class, or none is of a hidden one."""

        visible = visible_classes_q(clearances_of(user), prefix="threat_class__")
        signals = Signal.objects.filter(reporter_id=OuterRef("pk"))
        return self.filter(Q(Exists(signals.filter(visible))) | ~Q(Exists(signals.exclude(visible))))

    def with_visible_record(self, user):
        """Each reporter with their record over the classes ``user`` may see (``ReporterClassRecord``):
        ``seen_decided`` and ``seen_upheld``. A decision of a hidden class tells the reader nothing."""
        visible = visible_classes_q(clearances_of(user), prefix="threat_class__")
        records = ReporterClassRecord.objects.filter(visible, reporter_id=OuterRef("pk")).values("reporter_id")
        return self.annotate(
            seen_decided=Coalesce(Subquery(records.annotate(n=Sum("reports_decided")).values("n")), 0),
            seen_upheld=Coalesce(Subquery(records.annotate(n=Sum("reports_upheld")).values("n")), 0),
        )


class SignalQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Signals of the classes the user may see (a held signal has no case: its own class decides)."""
        return self.filter(visible_classes_q(clearances_of(user), prefix="threat_class__"))


class CaseEventQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Timeline rows of the cases the user may see."""
        return self.filter(visible_classes_q(clearances_of(user), prefix="case__threat_class__"))


# Statuses in which a case still collects signals and awaits a decision (``Case.ACTIVE_STATUSES``).
ACTIVE_STATUSES = ("open", "in_review", "escalated")
# The same, as the list of an SQL ``status IN (...)`` for hand-written statements.
ACTIVE_STATUSES_SQL = ", ".join(f"'{s}'" for s in ACTIVE_STATUSES)
# Active cases waiting for a reviewer (not held by one): the queues' "waiting" figure and oldest wait.
WAITING_STATUSES = ("open", "escalated")
WAITING_STATUSES_SQL = ", ".join(f"'{s}'" for s in WAITING_STATUSES)


class Subject(models.Model):
    """What is reported: an account or a content item."""

    class Kind(models.TextChoices):
        ACCOUNT = "account"
        CONTENT = "content"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    external_id = models.CharField(max_length=200)
    owner = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="content",
        help_text="For content: the account that posted it.",
    )
    reach = models.BigIntegerField(default=0)
    attributes = models.JSONField(default=dict, blank=True)
    campaign = models.ForeignKey("Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="subjects")
    # Kept by database triggers on cases and signals (``casework.subject_classes``); never written by hand.
    case_class_ids = ArrayField(
        models.BigIntegerField(), default=list, blank=True, editable=False, help_text="Classes of its cases, sorted."
    )
    class_ids = ArrayField(
        models.BigIntegerField(),
        default=list,
        blank=True,
        editable=False,
        help_text="Classes of its cases and signals, sorted.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SubjectQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "external_id"], name="subject_unique_kind_external_id"),
            models.CheckConstraint(name="subject_reach_non_negative", condition=Q(reach__gte=0)),
            models.CheckConstraint(
                name="subject_only_content_has_owner", condition=Q(owner__isnull=True) | Q(kind="content")
            ),
        ]
        indexes = [
            # The case list's ``subject`` filter names the external id alone (the unique index leads with kind).
            models.Index(fields=["external_id"], name="subject_external_id_idx"),
        ]

    def __str__(self):
        return f"{self.kind}:{self.external_id}"


class SubjectFacet(models.Model):
    """What one threat class's signals said of a subject: the largest reach and the attribute values they carried.

    A subject is shown through the facets of the classes the reader may see (``casework.selectors.
    subject_facts``), so a restricted class's signals tell no one without its clearance what they
    carried; the subject's own ``reach`` and ``attributes`` merge every class (campaign detection,
    statements of reasons). Written by intake beside the subject.
    """

    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="facets")
    threat_class = models.ForeignKey("policies.ThreatClass", on_delete=models.PROTECT, related_name="+")
    reach = models.BigIntegerField(default=0)
    attributes = models.JSONField(default=dict, blank=True, help_text='{"kind": ["value", ...]}')

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subject", "threat_class"], name="subjectfacet_unique"),
            models.CheckConstraint(name="subjectfacet_reach_non_negative", condition=Q(reach__gte=0)),
        ]

    def __str__(self):
        return f"{self.subject_id} as {self.threat_class_id}"


class SubjectAttribute(models.Model):
    """One (kind, value) a subject carries (device, ip, payment, link_domain…).

    Kept as rows so campaign detection can join on shared values in SQL. ``seen_by`` tells which
    classes' signals brought the value, and when each last did: campaign detection links a campaign
    only through values of the classes its readers may see (``casework.campaigns``).
    """

    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="attribute_rows")
    kind = models.CharField(max_length=40)
    value = models.CharField(max_length=300)
    seen_at = models.DateTimeField(help_text="When a signal of any class last brought it (to the hour).")
    seen_by = models.JSONField(
        default=dict,
        blank=True,
        help_text='{"<threat class id>": <epoch seconds>}: when a signal of each class last brought it (to the hour).',
    )
    # What "may this reader be told that this subject holds this value?" reads, kept on the row by database
    # triggers (``casework.subject_classes``) so a search decides it from the value index alone; never
    # written by hand.
    subject_case_class_ids = ArrayField(
        models.BigIntegerField(), null=True, editable=False, help_text="The subject's ``case_class_ids``."
    )
    subject_class_ids = ArrayField(
        models.BigIntegerField(), null=True, editable=False, help_text="The subject's ``class_ids``."
    )
    seen_class_ids = ArrayField(
        models.BigIntegerField(),
        null=True,
        editable=False,
        help_text="Classes whose facet of the subject carries the value, sorted; empty: none does; "
        "null: the subject has no facet at all.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subject", "kind", "value"], name="subjectattribute_unique"),
            # Filled by the triggers on every insert (and on the first write of a row older than them).
            models.CheckConstraint(
                name="subjectattribute_holder_classes_kept",
                condition=Q(subject_case_class_ids__isnull=False, subject_class_ids__isnull=False),
            ),
        ]
        indexes = [
            models.Index(fields=["kind", "value"], name="subjectattr_kind_value_idx"),
            models.Index(fields=["seen_at"], name="subjectattr_seen_at_idx"),
        ]

    def __str__(self):
        return f"{self.kind}={self.value}"


class SourceIncident(models.Model):
    """A corroborated spike: real abuse, shown on the dashboard, signals not held."""

    class Status(models.TextChoices):
        OPEN = "open"
        RESOLVED = "resolved"

    source = models.ForeignKey(SignalSource, on_delete=models.CASCADE, related_name="incidents")
    kind = models.CharField(max_length=20, help_text="rate_spike or score_shift")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    detail = models.JSONField(default=dict)
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["source"], condition=Q(status="open"), name="sourceincident_one_open_per_source"
            ),
        ]

    KIND_LABELS = {"rate_spike": "rate spike", "score_shift": "score shift"}

    def __str__(self):
        return f"{self.kind} on {self.source_id} ({self.status})"

    @property
    def kind_label(self):
        return self.KIND_LABELS.get(self.kind, self.kind.replace("_", " "))


class Reporter(models.Model):
    """Someone who reports, with the track record that weighs their reports."""

    external_id = models.CharField(max_length=200, unique=True)
    first_seen_at = models.DateTimeField()
    reports_decided = models.PositiveIntegerField(default=0)
    reports_upheld = models.PositiveIntegerField(default=0)
    rerank_pending_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the record last changed with the reporter's other active cases not yet re-ranked for it.",
    )

    objects = ReporterQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="reporter_upheld_le_decided", condition=Q(reports_upheld__lte=F("reports_decided"))
            ),
        ]
        indexes = [
            models.Index(
                fields=["rerank_pending_at"],
                name="reporter_rerank_pending_idx",
                condition=Q(rerank_pending_at__isnull=False),
            ),
        ]

    def __str__(self):
        return self.external_id

    # Beta(2, 2) prior: a new reporter counts as 50% accurate until they have a record.
    PRIOR_UPHELD = 2
    PRIOR_DECIDED = 4

    @classmethod
    def accuracy_of(cls, upheld, decided):
        """The accuracy of a record of ``upheld`` reports out of ``decided``, with the prior."""
        return (upheld + cls.PRIOR_UPHELD) / (decided + cls.PRIOR_DECIDED)

    @property
    def accuracy(self):
        return self.accuracy_of(self.reports_upheld, self.reports_decided)


class ReporterClassRecord(models.Model):
    """A reporter's record on one threat class: their reports of it that were decided, and upheld.

    A case ranks by its reporters' records on its own class and on unrestricted ones
    (``casework.priority``), so a decision of a restricted class moves no other class's case;
    ``Reporter``'s counters are the record over every class. Kept by the decision pipeline
    (``reviews.services.decisions``) in the same statement as those counters.
    """

    reporter = models.ForeignKey(Reporter, on_delete=models.CASCADE, related_name="class_records")
    threat_class = models.ForeignKey("policies.ThreatClass", on_delete=models.PROTECT, related_name="+")
    reports_decided = models.PositiveIntegerField(default=0)
    reports_upheld = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reporter", "threat_class"], name="reporterclassrecord_unique"),
            models.CheckConstraint(
                name="reporterclassrecord_upheld_le_decided", condition=Q(reports_upheld__lte=F("reports_decided"))
            ),
        ]

    def __str__(self):
        return f"{self.reporter_id} on {self.threat_class_id}"


class Campaign(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        DECIDED = "decided"
        DISMISSED = "dismissed"

    threat_class = models.ForeignKey("policies.ThreatClass", on_delete=models.PROTECT, related_name="+")
    # Which classes' attribute values may link its members: empty, those of unrestricted classes only (its
    # members, size and links are the same whatever restricted classes' signals say); a restricted class,
    # that class's and unrestricted ones' (its threat class is then that class). ``casework.campaigns``.
    link_class = models.ForeignKey(
        "policies.ThreatClass",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The restricted class whose signals' values may link its members; empty: unrestricted classes only.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    links = models.JSONField(default=list, help_text='[{"kind", "value"}] shared by the members.')
    size = models.PositiveIntegerField(default=0)
    detected_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    objects = CampaignQuerySet.as_manager()

    class Meta:
        # Newest first, not largest: the stored size counts every member, and a reader may see only some (a list
        # by size, such as the admin's, would move when members hidden from its reader join).
        ordering = ["-detected_at", "-id"]

    def __str__(self):
        # Not its size: that counts every member, and a reader may see only some (the admin names it so).
        return f"campaign {self.pk}"


class QueueQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Queues the user may know exist: no clearance required, or one the user holds."""
        return self.filter(Q(required_clearance="") | Q(required_clearance__in=sorted(clearances_of(user))))


class Queue(models.Model):
    """Where cases wait for a human: intake routes a new case into the first queue taking its class
    (``casework.intake.fold.queue_routes``); reviewers work the queues their profile names."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    threat_classes = models.ManyToManyField("policies.ThreatClass", related_name="queues", blank=True)
    required_clearance = models.CharField(
        max_length=40, blank=True, help_text="A clearance (threat class slug) needed to work this queue."
    )
    sla_seconds = models.PositiveIntegerField(null=True, blank=True, help_text="Blank: the class's SLA.")
    position = models.PositiveSmallIntegerField(default=100)

    objects = QueueQuerySet.as_manager()

    class Meta:
        ordering = ["position", "slug"]

    def __str__(self):
        return self.slug


def _queue_rank_index(status):
    """A queue's cases of one status in claim order: ``case_<status>_queue_rank_idx``."""
    return models.Index(
        "queue",
        F("rank_tier").desc(),
        F("rank").desc(),
        "id",
        name=f"case_{status}_queue_rank_idx",
        condition=Q(status=status),
    )


class Case(models.Model):
    """The unit of review: one open case per (subject, threat class)."""

    class Status(models.TextChoices):
        OPEN = "open"
        IN_REVIEW = "in_review"
        ESCALATED = "escalated"
        DECIDED = "decided"
        APPEALED = "appealed"
        CLOSED = "closed"

    ACTIVE_STATUSES = ACTIVE_STATUSES

    # No index of their own: case_subject_class_idx and case_class_status_idx lead with them (below).
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="cases", db_index=False)
    threat_class = models.ForeignKey(
        "policies.ThreatClass", on_delete=models.PROTECT, related_name="cases", db_index=False
    )
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="cases")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    severity = models.PositiveSmallIntegerField()
    harm_weight = models.FloatField()
    reach = models.BigIntegerField(default=0)
    signal_count = models.PositiveIntegerField(default=0)
    reporter_count = models.PositiveIntegerField(default=0)
    signal_strength = models.FloatField(default=0.0, help_text="Max of score x source trust.")
    reporter_weight = models.FloatField(default=0.0, help_text="Distinct reporters weighted by their past accuracy.")
    velocity = models.FloatField(default=0.0, help_text="Signals on the subject in the last hour.")
    brigading = models.BooleanField(default=False)
    holdout = models.BooleanField(default=False, help_text="Automation would have acted; a human reviews.")
    legal_hold = models.BooleanField(
        default=False, help_text="Evidence kept past retention until an admin releases the hold."
    )
    legal_hold_released_at = models.DateTimeField(null=True, blank=True)
    personal_data_purged_at = models.DateTimeField(null=True, blank=True)
    first_signal_at = models.DateTimeField()
    last_signal_at = models.DateTimeField()
    sla_due_at = models.DateTimeField()
    priority = models.FloatField(default=0.0, help_text="The priority when the case was last ranked (see rank).")
    priority_breakdown = models.JSONField(default=dict)
    # The queue order (casework.priority): tier (2 restricted/legal + 1 past SLA), then rank, a key that
    # does not move with time (aging is expressed through sla_due_at), so nothing needs rewriting as
    # the clock runs; rank_due_at is the next moment the case's order changes by itself (its SLA
    # breach, a velocity window), when the periodic job re-ranks it. New cases are due at once.
    rank_tier = models.PositiveSmallIntegerField(db_default=0)
    rank = models.FloatField(db_default=0.0)
    rank_due_at = models.DateTimeField(null=True, blank=True, db_default=Now())
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="cases")
    created_at = models.DateTimeField()
    first_action_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CaseQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subject", "threat_class"],
                condition=Q(status__in=list(ACTIVE_STATUSES)),
                name="case_one_active_per_subject_class",
            ),
            models.CheckConstraint(
                name="case_decided_has_decided_at",
                condition=~Q(status__in=["decided", "appealed", "closed"]) | Q(decided_at__isnull=False),
            ),
            models.CheckConstraint(
                name="case_closed_has_closed_at", condition=~Q(status="closed") | Q(closed_at__isnull=False)
            ),
            models.CheckConstraint(
                name="case_active_not_closed",
                condition=~Q(status__in=list(ACTIVE_STATUSES)) | Q(closed_at__isnull=True),
            ),
            models.CheckConstraint(
                name="case_signal_times_ordered", condition=Q(first_signal_at__lte=F("last_signal_at"))
            ),
            models.CheckConstraint(name="case_counts_consistent", condition=Q(reporter_count__lte=F("signal_count"))),
            models.CheckConstraint(name="case_severity_1_to_5", condition=Q(severity__gte=1, severity__lte=5)),
        ]
        indexes = [
            # The claim's two picks (reviews.services.claims), each over its own status: a queue's escalated
            # cases, then its open ones, highest-ranked first. Without the escalated one PostgreSQL read the
            # escalated cases of every queue, or the queue's whole active backlog, to find none.
            *(_queue_rank_index(status) for status in ("open", "escalated")),
            # Lists across queues, highest first (casework.priority.BY_RANK_ALL). On negated columns, so a
            # claim (one queue, ordered by the plain columns) cannot pick it: PostgreSQL would walk it past
            # every other queue's restricted and breached cases before the first of the queue's own.
            models.Index(F("rank_tier") * -1, F("rank") * -1, "id", name="case_rank_idx"),
            # The case list by class, in the same order: a page of the class's cases, where a walk of the
            # global order filtered by class, or every case of the class sorted, cost its backlog.
            models.Index("threat_class", F("rank_tier") * -1, F("rank") * -1, "id", name="case_class_rank_idx"),
            # A queue's page and the case list by queue: its waiting and held cases by rank, without
            # walking the higher-ranked cases of every other queue (bench/pages.py shows the plan).
            models.Index(
                "queue",
                F("rank_tier").desc(),
                F("rank").desc(),
                "id",
                name="case_active_queue_rank_idx",
                condition=Q(status__in=list(ACTIVE_STATUSES)),
            ),
            # A queue's page sorted oldest first or SLA due soonest (reviews.selectors.queue_listing): a walk
            # of the queue's active cases in that order, or an index range for an SLA-state filter.
            # The class is included so that a bounded count (and the visibility rule) reads the index alone.
            models.Index(
                fields=["queue", "created_at", "id"],
                include=["threat_class"],
                name="case_active_queue_created_idx",
                condition=Q(status__in=list(ACTIVE_STATUSES)),
            ),
            models.Index(
                fields=["queue", "sla_due_at", "id"],
                include=["threat_class"],
                name="case_active_queue_sla_idx",
                condition=Q(status__in=list(ACTIVE_STATUSES)),
            ),
            # A queue's oldest waiting case per class (casework.tallies: the oldest wait, one index probe each).
            models.Index(
                "queue",
                "threat_class",
                "created_at",
                name="case_waiting_oldest_idx",
                condition=Q(status__in=list(WAITING_STATUSES)),
            ),
            # Active cases past their SLA the re-ranking job has not moved to the breached tier yet (a few).
            models.Index(
                "queue",
                "sla_due_at",
                name="case_unflagged_sla_idx",
                condition=Q(status__in=list(ACTIVE_STATUSES), rank_tier__in=[0, 2]),
            ),
            # The re-ranking job: active cases whose next order-changing moment has come.
            models.Index(
                "rank_due_at",
                name="case_rank_due_idx",
                condition=Q(status__in=list(ACTIVE_STATUSES), rank_due_at__isnull=False),
            ),
            # SLA escalation (reviews.sla): one severity's open cases in one queue, oldest SLA first. Read for each
            # severity from the escalation's minimum up and each queue but the escalation queues, so neither the
            # low-severity breaches left in their queues nor the breaches in the escalation queues are read.
            # Severity first: no other index leads with it, so none can take the escalation's bounds.
            models.Index(
                "severity",
                "queue",
                "sla_due_at",
                "id",
                name="case_open_sev_queue_sla_idx",
                condition=Q(status="open"),
            ),
            # The case list ordered by SLA (``ordering=sla_due_at``) across statuses: a walk, not a sort of all.
            models.Index("sla_due_at", "id", name="case_sla_idx"),
            # A class's cases (metrics, the foreign key's check when a class is deleted).
            models.Index(fields=["threat_class", "status"], name="case_class_status_idx"),
            # A subject's cases with their classes, read from the index alone (the visibility of subjects in
            # search, the class ids a subject keeps, the foreign key's check when a subject is deleted).
            models.Index(fields=["subject"], include=["threat_class"], name="case_subject_class_idx"),
            models.Index(fields=["created_at"], name="case_created_at_idx"),
            # The retention purge (casework.retention): closed cases not purged yet, oldest closure first.
            # Purged ones leave it, so a run reads what is left to purge, never the purged history.
            models.Index(
                "closed_at",
                "id",
                name="case_purge_due_idx",
                condition=Q(status="closed", personal_data_purged_at__isnull=True),
            ),
        ]

    def __str__(self):
        return f"case {self.pk}"

    @property
    def is_active(self):
        return self.status in self.ACTIVE_STATUSES


class Signal(models.Model):
    """One report or detection. Never lost: even held signals are stored."""

    class Disposition(models.TextChoices):
        QUEUED = "queued"
        AUTO_ACTIONED = "auto_actioned"
        HELD = "held"
        BELOW_THRESHOLD = "below_threshold"

    # The foreign keys have no index of their own: an index of Meta.indexes leads with each (every signal
    # intake stores writes an entry into every index).
    source = models.ForeignKey(SignalSource, on_delete=models.PROTECT, related_name="signals", db_index=False)
    external_id = models.CharField(max_length=200)
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="signals", db_index=False)
    threat_class = models.ForeignKey(
        "policies.ThreatClass", on_delete=models.PROTECT, related_name="signals", db_index=False
    )
    score = models.FloatField(null=True, blank=True)
    reporter = models.ForeignKey(
        Reporter, null=True, blank=True, on_delete=models.PROTECT, related_name="signals", db_index=False
    )
    reason = models.TextField(blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    disposition = models.CharField(max_length=16, choices=Disposition.choices)
    case = models.ForeignKey(
        Case, null=True, blank=True, on_delete=models.PROTECT, related_name="signals", db_index=False
    )
    holdout = models.BooleanField(default=False)
    released_at = models.DateTimeField(null=True, blank=True)

    objects = SignalQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="signal_unique_source_external_id"),
            models.CheckConstraint(
                name="signal_score_in_unit", condition=Q(score__isnull=True) | Q(score__gte=0, score__lte=1)
            ),
            models.CheckConstraint(
                name="signal_case_matches_disposition",
                condition=(Q(disposition__in=["queued", "auto_actioned"]) & Q(case__isnull=False))
                | (Q(disposition__in=["held", "below_threshold"]) & Q(case__isnull=True)),
            ),
            models.CheckConstraint(
                name="signal_occurred_not_after_received", condition=Q(occurred_at__lte=F("received_at"))
            ),
        ]
        indexes = [
            models.Index(fields=["source", "occurred_at"], name="signal_source_occurred_idx"),
            # A source's score sample (casework.hygiene): its latest scored signals, never a walk past the
            # unscored ones (a user-report source sends no scores).
            models.Index(
                fields=["source", "occurred_at"],
                name="signal_scored_source_idx",
                condition=Q(score__isnull=False),
            ),
            models.Index(fields=["subject", "occurred_at"], name="signal_subject_occurred_idx"),
            models.Index(fields=["threat_class", "occurred_at"], name="signal_class_occurred_idx"),
            models.Index(fields=["case"], name="signal_case_idx"),
            models.Index(fields=["source"], name="signal_held_idx", condition=Q(disposition="held")),
            # The subjects a reporter reported (search), and the reporter's foreign key.
            models.Index(
                fields=["reporter", "subject", "threat_class"],
                name="signal_reporter_idx",
                condition=Q(reporter__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.source_id}:{self.external_id}"


class CaseEvent(models.Model):
    """The case timeline. Append-only: a database trigger refuses UPDATE and DELETE."""

    case = models.ForeignKey(Case, on_delete=models.DO_NOTHING, related_name="events", db_constraint=True)
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+"
    )
    actor_label = models.CharField(max_length=150, help_text="Username, 'system' or 'automation'.")
    kind = models.CharField(max_length=40, choices=Kind.choices)
    detail = models.JSONField(default=dict)

    Kind = Kind

    objects = CaseEventQuerySet.as_manager()

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["case", "at"], name="caseevent_case_at_idx")]

    def __str__(self):
        return f"{self.kind} on case {self.case_id}"


class QueueTally(models.Model):
    """Net changes to a queue's figures, appended by a trigger on every case statement (``casework.tallies``).

    Summed per (queue, threat class): active cases waiting (open or escalated),
    in review, in the breached tier, and created per hour of creation. Never
    updated in place (no two transactions wait on a tally); compacted periodically.
    """

    queue_id = models.BigIntegerField()
    threat_class_id = models.BigIntegerField()
    hour = models.DateTimeField(null=True, help_text="Hour of creation of the cases counted; null for older hours.")
    waiting = models.BigIntegerField(default=0)
    in_review = models.BigIntegerField(default=0)
    breached = models.BigIntegerField(default=0)
    arrived = models.BigIntegerField(default=0)

    def __str__(self):
        return f"tally queue {self.queue_id} class {self.threat_class_id} hour {self.hour}"


class RankMark(models.Model):
    """A case to re-rank because an input of another case moved (``casework.priority``): a row, not a case write.

    A new signal on a subject moves the velocity of its other active cases, and a decision moves its
    reporters' accuracy on theirs. Writing the mark into the case row (``rank_due_at``) rewrote the row
    and every one of its index entries, holding it meanwhile; a mark here is a narrow insert, and the
    periodic job (``cases_reprioritise_due``) re-ranks the marked cases in short batches and removes
    their marks. A case id, not a foreign key: a mark on a case that is gone or no longer active is
    simply removed by the next run.
    """

    case_id = models.BigIntegerField(primary_key=True)
    marked_at = models.DateTimeField(help_text="When the case was first marked since it was last re-ranked.")

    def __str__(self):
        return f"case {self.case_id} marked at {self.marked_at}"
