"""``GET /api/v1/access-log/``: the access log for policy admins (API.md "Subjects, search, access log")."""

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers

from docket import roles
from docket.api import ErrorSerializer, role_permission

from .audit import access_log_list
from .models import AccessLog


class AccessLogSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="username", read_only=True)
    action = serializers.ChoiceField(choices=AccessLog.Action.choices, read_only=True)

    class Meta:
        model = AccessLog
        fields = ["at", "user", "action", "object_type", "object_id", "threat_class"]
        read_only_fields = fields


class AccessLogFilter(filters.FilterSet):
    user = filters.CharFilter(field_name="username", help_text="A username.")
    threat_class = filters.CharFilter(field_name="threat_class", help_text="A threat class slug.")
    action = filters.ChoiceFilter(choices=AccessLog.Action.choices)
    since = filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte", help_text="ISO 8601 time, inclusive.")

    class Meta:
        model = AccessLog
        fields = ["user", "threat_class", "action", "since"]


@extend_schema(
    summary="Who viewed, revealed or exported what, newest first",
    responses={200: AccessLogSerializer(many=True), 400: ErrorSerializer},
)
class AccessLogList(generics.ListAPIView):
    permission_classes = [role_permission(roles.POLICY_ADMIN)]
    serializer_class = AccessLogSerializer
    filterset_class = AccessLogFilter

    def get_queryset(self):
        return access_log_list()
