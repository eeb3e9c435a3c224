"""Thin API views over the guard metrics."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from docket import roles
from docket.api import role_permission
from oversight import metrics

Staff = role_permission(*roles.STAFF)

ERROR = OpenApiResponse(description='`{"code", "detail"}` (validation adds `errors`).')


class Metrics(APIView):
    """Guard metrics per threat class (restricted ones only with the clearance), queue and source."""

    permission_classes = [Staff]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 403: ERROR})
    def get(self, request):
        return Response(metrics.metrics_snapshot(request.user))
