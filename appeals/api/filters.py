"""One FilterSet for appeals, shared by the API list and the appeals UI."""

import django_filters

from appeals.models import Appeal


class AppealFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Appeal.Status.choices)
    outcome = django_filters.ChoiceFilter(choices=Appeal.Outcome.choices)

    class Meta:
        model = Appeal
        fields = ["status", "outcome"]
