"""Intake and case endpoints: validate, call a service or a selector, answer."""

from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from casework.intake import signals_ingest
from casework.models import Case
from casework.selectors import case_events
from docket import roles
from docket.api import ErrorSerializer, RestrictedMixin, role_permission
from docket.audit import access_log_case_read

from .filters import CaseFilter
from .serializers import CaseDetailSerializer, CaseEventSerializer, SignalInSerializer, SignalResultSerializer

_ERRORS = {
    403: OpenApiResponse(ErrorSerializer, description="Not your role (`forbidden`)."),
    401: OpenApiResponse(ErrorSerializer, description="No valid credentials."),
}


class SignalIntakeView(APIView):
    permission_classes = [role_permission(roles.PLATFORM)]
    throttle_scope = "intake"

    @extend_schema(
        operation_id="signals_ingest",
        summary="Push one signal or a list of up to 1,000",
        request=PolymorphicProxySerializer(
            component_name="SignalIntake",
            serializers=[SignalInSerializer, SignalInSerializer(many=True)],
            resource_type_field_name=None,
            many=False,
        ),
        responses={
            201: PolymorphicProxySerializer(
                component_name="SignalIntakeResult",
                serializers=[SignalResultSerializer, SignalResultSerializer(many=True)],
                resource_type_field_name=None,
                many=False,
            ),
            200: OpenApiResponse(
                description="Nothing new: every signal was already stored; the stored result(s), same shape as 201."
            ),
            400: OpenApiResponse(
                ErrorSerializer,
                description="`invalid`, `unknown_source` or `unknown_threat_class`; nothing was stored. "
                "`errors` is keyed by field, or by index for a list.",
            ),
            429: OpenApiResponse(ErrorSerializer, description="Rate limited (`throttled`)."),
            **_ERRORS,
        },
    )
    def post(self, request):
        result = signals_ingest(items=request.data, actor=request.user)
        return Response(result.body, status=result.status)


@extend_schema_view(
    list=extend_schema(
        summary="Cases, highest priority first",
        responses={200: CaseDetailSerializer(many=True), 400: ErrorSerializer, **_ERRORS},
    ),
    retrieve=extend_schema(
        summary="One case",
        responses={
            200: CaseDetailSerializer,
            404: OpenApiResponse(ErrorSerializer, description="No such case, or not visible to you."),
            **_ERRORS,
        },
    ),
)
class CaseViewSet(RestrictedMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Case.objects.for_display()
    permission_classes = [role_permission(*roles.STAFF)]
    serializer_class = CaseDetailSerializer
    filterset_class = CaseFilter

    def base_queryset(self):
        return Case.objects.for_display(user=self.request.user)

    def retrieve(self, request, *args, **kwargs):
        case = self.get_object()
        access_log_case_read(user=request.user, case=case, via="api")
        return Response(self.get_serializer(case).data)

    @extend_schema(
        summary="The case's timeline, oldest first",
        filters=False,
        responses={
            200: CaseEventSerializer(many=True),
            404: OpenApiResponse(ErrorSerializer, description="No such case, or not visible to you."),
            **_ERRORS,
        },
    )
    @action(detail=True, methods=["get"], serializer_class=CaseEventSerializer, filterset_class=None)
    def events(self, request, pk=None):
        case = self.get_object()
        access_log_case_read(user=request.user, case=case, via="api")
        page = self.paginate_queryset(case_events(case=case, user=request.user))
        return self.get_paginated_response(CaseEventSerializer(page, many=True).data)
