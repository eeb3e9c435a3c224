"""Chain-of-custody export of a case (seniors and policy admins, clearance still applies)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from casework.retention import case_export
from casework.selectors import case_visible
from docket import roles
from docket.api import ErrorSerializer, role_permission
from docket.audit import access_log_case_read


class CaseExportView(APIView):
    permission_classes = [role_permission(roles.SENIOR, roles.POLICY_ADMIN)]

    @extend_schema(
        operation_id="case_export",
        summary="The case with every item and its sha256, for chain of custody",
        responses={
            200: inline_serializer(
                "CaseExport",
                {
                    "case": serializers.IntegerField(),
                    "exported_at": serializers.DateTimeField(),
                    "items": serializers.ListField(child=serializers.DictField()),
                    "manifest_sha256": serializers.CharField(),
                },
            ),
            403: OpenApiResponse(ErrorSerializer, description="Not a senior or policy admin."),
            404: OpenApiResponse(ErrorSerializer, description="No such case, or not visible to you."),
        },
    )
    def get(self, request, pk):
        case = case_visible(user=request.user, case_id=pk)
        body = case_export(case_id=pk)
        access_log_case_read(user=request.user, case=case, action="export", via="api")
        return Response(body)
