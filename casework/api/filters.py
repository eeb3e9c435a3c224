"""The one FilterSet for cases, shared by the API and the moderator UI."""

import django_filters
from django.db.models import BooleanField, Subquery
from django.db.models.expressions import RawSQL

from casework.models import Case
from casework.priority import BY_RANK, BY_RANK_ALL, BY_RANK_ALL_REVERSED, priority_sql
from policies.models import ThreatClass


class CaseFilter(django_filters.FilterSet):
    # distinct=False: a case has one status, so no duplicates to remove; django-filter's default DISTINCT
    # made PostgreSQL sort every matching case before the first page (bench/pages.py shows the plan).
    status = django_filters.MultipleChoiceFilter(choices=Case.Status.choices, distinct=False)
    threat_class = django_filters.CharFilter(method="filter_threat_class", help_text="A threat class slug.")
    queue = django_filters.CharFilter(method="filter_queue", help_text="A queue slug.")
    campaign = django_filters.NumberFilter(field_name="campaign_id")
    subject = django_filters.CharFilter(field_name="subject__external_id", help_text="The subject's external id.")
    assigned_to = django_filters.CharFilter(method="filter_assigned_to", help_text="Username holding the case.")
    min_priority = django_filters.NumberFilter(method="filter_min_priority", help_text="Priority at least this, now.")
    ordering = django_filters.OrderingFilter(
        fields=(("priority", "priority"), ("created_at", "created_at"), ("sla_due_at", "sla_due_at")),
        help_text="priority, created_at or sla_due_at; prefix - for descending (default -priority).",
    )

    class Meta:
        model = Case
        fields = []

    # By id (a scalar subquery), not through a join on the slug: PostgreSQL then walks the queue's or class's
    # cases in index order instead of every case by priority until a page matches (bench/pages.py, plans).
    def filter_threat_class(self, queryset, name, value):
        return queryset.filter(threat_class_id=Subquery(ThreatClass.objects.filter(slug=value).values("id")[:1]))

    def filter_queue(self, queryset, name, value):
        queues = Case.queue.field.related_model.objects.filter(slug=value)
        return queryset.filter(queue_id=Subquery(queues.values("id")[:1]))

    def filter_min_priority(self, queryset, name, value):
        sql, params = priority_sql()
        return queryset.filter(RawSQL(f"({sql}) >= %s", [*params, value], output_field=BooleanField()))

    def filter_assigned_to(self, queryset, name, value):
        return queryset.filter(assignments__state="active", assignments__reviewer__user__username=value)

    @property
    def qs(self):
        queryset = super().qs
        ordering = self.form.cleaned_data.get("ordering") if self.form.is_valid() else None
        one_queue = bool(self.form.is_valid() and self.form.cleaned_data.get("queue"))
        if not ordering:
            return queryset.order_by(*(BY_RANK if one_queue else BY_RANK_ALL))
        # Priority orders by rank (casework.priority: the same order, indexed, not moving with time): within one
        # queue on its own index, across queues on the global one; a stable tie-break keeps pages apart.
        fields = []
        for field in queryset.query.order_by:
            if field == "-priority":
                fields += BY_RANK[:2] if one_queue else BY_RANK_ALL[:2]
            elif field == "priority":
                fields += ["rank_tier", "rank"] if one_queue else BY_RANK_ALL_REVERSED[:2]
            else:
                fields.append(field)
        last = BY_RANK_ALL_REVERSED[2] if ordering == ["priority"] and not one_queue else "id"
        queryset = queryset.order_by(*fields, last)
        return queryset
