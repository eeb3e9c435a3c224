"""The one FilterSet for cases, shared by the API and the moderator UI."""

import django_filters

from casework.models import Case


class CaseFilter(django_filters.FilterSet):
    # distinct=False: a case has one status, so no duplicates to remove; django-filter's default DISTINCT
    # made PostgreSQL sort every matching case before the first page (bench/pages.py shows the plan).
    status = django_filters.MultipleChoiceFilter(choices=Case.Status.choices, distinct=False)
    threat_class = django_filters.CharFilter(field_name="threat_class__slug")
    queue = django_filters.CharFilter(field_name="queue__slug")
    campaign = django_filters.NumberFilter(field_name="campaign_id")
    subject = django_filters.CharFilter(field_name="subject__external_id", help_text="The subject's external id.")
    assigned_to = django_filters.CharFilter(method="filter_assigned_to", help_text="Username holding the case.")
    min_priority = django_filters.NumberFilter(field_name="priority", lookup_expr="gte")
    ordering = django_filters.OrderingFilter(
        fields=(("priority", "priority"), ("created_at", "created_at"), ("sla_due_at", "sla_due_at")),
        help_text="priority, created_at or sla_due_at; prefix - for descending (default -priority).",
    )

    class Meta:
        model = Case
        fields = []

    def filter_assigned_to(self, queryset, name, value):
        return queryset.filter(assignments__state="active", assignments__reviewer__user__username=value)

    @property
    def qs(self):
        queryset = super().qs
        ordering = self.form.cleaned_data.get("ordering") if self.form.is_valid() else None
        if not ordering:
            queryset = queryset.order_by("-priority", "id")
        else:
            # A stable tie-break keeps pages from overlapping.
            queryset = queryset.order_by(*queryset.query.order_by, "id")
        return queryset
