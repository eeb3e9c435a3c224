"""Appeals API: thin views that validate and call appeals.services."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from appeals import selectors, services
from appeals.api.filters import AppealFilter
from appeals.api.serializers import (
    AppealClaimSerializer,
    AppealDetailSerializer,
    AppealFiledSerializer,
    AppealFileSerializer,
    AppealResolveSerializer,
    AppealSerializer,
)
from docket import roles
from docket.api import answer_after_commit, role_permission
from docket.audit import access_log_appeal_read
from docket.errors import forbidden, not_found

AppealsStaff = role_permission(roles.APPEALS)
Platform = role_permission(roles.PLATFORM)


def _reviewer(request):
    reviewer = getattr(request.user, "reviewer", None)
    if reviewer is None:
        raise forbidden("Appeals are reviewed by members of the appeals staff.")
    return reviewer


def _appeal(request, appeal_id):
    appeal = selectors.appeal_for(request.user, appeal_id)
    if appeal is None:
        raise not_found("No such appeal.")
    return appeal


def _detail(request, appeal_id):
    return AppealDetailSerializer(_appeal(request, appeal_id)).data


class AppealListCreateView(generics.ListAPIView):
    """``GET``: the appeals queue (appeals staff). ``POST``: file an appeal (the platform)."""

    serializer_class = AppealSerializer
    filterset_class = AppealFilter

    def get_permissions(self):
        return [Platform() if self.request.method == "POST" else AppealsStaff()]

    def get_queryset(self):
        return selectors.appeals_list(self.request.user)

    @extend_schema(request=AppealFileSerializer, responses={201: AppealFiledSerializer})
    def post(self, request):
        payload = AppealFileSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        appeal = services.appeal_file(
            decision_id=data["decision"],
            appellant=data["appellant"],
            statement=data["statement"],
            language=data["language"],
            actor=request.user,
        )
        return Response(AppealFiledSerializer(appeal).data, status=status.HTTP_201_CREATED)


class AppealDetailView(APIView):
    permission_classes = [role_permission(roles.APPEALS, roles.PLATFORM)]

    @extend_schema(responses={200: AppealDetailSerializer})
    def get(self, request, pk):
        appeal = _appeal(request, pk)
        access_log_appeal_read(user=request.user, appeal=appeal, via="api")
        return Response(AppealDetailSerializer(appeal).data)


class AppealClaimView(APIView):
    permission_classes = [AppealsStaff]

    @extend_schema(request=None, responses={201: AppealClaimSerializer, 204: OpenApiResponse(description="None left")})
    def post(self, request):
        # The claim commits first (the appeal row is free before the answer is built); the
        # answer is then read on a fresh connection if need be, never answered as
        # "nothing was changed".
        appeal = services.appeal_claim(reviewer=_reviewer(request))
        if appeal is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        # Like a queue claim's "assignment": "appeal" is the id to resolve; the
        # appeal's other fields stand beside it.
        detail = answer_after_commit(lambda: _detail(request, appeal.pk), committed=f"The claim of appeal {appeal.pk}")
        body = {"appeal": detail.pop("id"), **detail}
        return Response(body, status=status.HTTP_201_CREATED)


class AppealResolveView(APIView):
    permission_classes = [AppealsStaff]

    @extend_schema(request=AppealResolveSerializer, responses={200: AppealDetailSerializer})
    def post(self, request, pk):
        payload = AppealResolveSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        services.appeal_resolve(
            appeal_id=pk,
            reviewer=_reviewer(request),
            outcome=data["outcome"],
            action=data["action"] or None,
            rule=data["rule"],
            rationale=data["rationale"],
            duration_days=data.get("duration_days"),
        )
        return Response(_detail(request, pk))


class AppealReleaseView(APIView):
    permission_classes = [AppealsStaff]

    @extend_schema(request=None, responses={200: AppealDetailSerializer})
    def post(self, request, pk):
        services.appeal_release(appeal_id=pk, reviewer=_reviewer(request))
        return Response(_detail(request, pk))
