"""``GET /api/v1/transparency-report/?from=YYYY-MM-DD&to=YYYY-MM-DD[&format=csv]`` (policy admins)."""

from types import SimpleNamespace

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from docket import roles
from docket.api import role_permission
from docket.errors import DocketError
from transparency.report import period_parse, report_csv, transparency_report


class _FormatIsOurs(DefaultContentNegotiation):
    """``format=csv`` picks the report's form here, not a DRF renderer: errors stay in the JSON envelope."""

    settings = SimpleNamespace(URL_FORMAT_OVERRIDE=None)


class TransparencyReportView(APIView):
    permission_classes = [role_permission(roles.POLICY_ADMIN)]
    content_negotiation_class = _FormatIsOurs

    @extend_schema(
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, required=True),
            OpenApiParameter("to", OpenApiTypes.DATE, required=True),
            OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"]),
        ],
        responses={200: OpenApiResponse(description="The period's DSA transparency figures (JSON or CSV).")},
    )
    def get(self, request):
        period = period_parse(request.query_params.get("from"), request.query_params.get("to"))
        report = transparency_report(period)
        form = request.query_params.get("format", "json")
        if form not in ("json", "csv"):
            raise DocketError("invalid", "format is json or csv.", errors={"format": ["json or csv"]})
        if form == "csv":
            response = HttpResponse(report_csv(report), content_type="text/csv; charset=utf-8")
            name = f"transparency-report-{period.start.isoformat()}-{period.end.isoformat()}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        return Response(report)
