"""Thin API views: validate input, call a service or a selector, render."""

from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from docket import roles
from docket.api import role_permission
from policies import selectors, services
from policies.models import ThresholdChange

from .serializers import (
    PolicySerializer,
    ThresholdChangeProposeSerializer,
    ThresholdChangeSerializer,
    ThresholdSerializer,
)

PolicyAdminOnly = role_permission(roles.POLICY_ADMIN)
Staff = role_permission(*roles.STAFF)

ERROR = OpenApiResponse(description='`{"code", "detail"}` (validation adds `errors`).')


class ThresholdFilter(filters.FilterSet):
    source = filters.CharFilter(field_name="source__slug")
    threat_class = filters.CharFilter(field_name="threat_class__slug")


class ThresholdList(generics.ListAPIView):
    """Thresholds in force per (source, threat class)."""

    permission_classes = [PolicyAdminOnly]
    serializer_class = ThresholdSerializer
    filterset_class = ThresholdFilter

    def get_queryset(self):
        return selectors.thresholds_list()


class ThresholdChangeFilter(ThresholdFilter):
    status = filters.ChoiceFilter(choices=ThresholdChange.Status.choices)


class ThresholdChangeListCreate(generics.ListCreateAPIView):
    """Proposals with their blast radius; POST proposes one."""

    permission_classes = [PolicyAdminOnly]
    serializer_class = ThresholdChangeSerializer
    filterset_class = ThresholdChangeFilter

    def get_queryset(self):
        return selectors.threshold_changes_list(user=self.request.user)

    @extend_schema(
        request=ThresholdChangeProposeSerializer,
        responses={201: ThresholdChangeSerializer, 400: ERROR, 403: ERROR},
    )
    def post(self, request, *args, **kwargs):
        data = ThresholdChangeProposeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        change = services.threshold_change_propose(
            source_slug=v["source"],
            threat_class_slug=v["threat_class"],
            auto_action_at=v["auto_action_at"],
            review_at=v["review_at"],
            reason=v["reason"],
            actor=request.user,
        )
        return Response(ThresholdChangeSerializer(change).data, status=status.HTTP_201_CREATED)


class ThresholdChangeDetail(generics.RetrieveAPIView):
    permission_classes = [PolicyAdminOnly]
    serializer_class = ThresholdChangeSerializer

    def get_queryset(self):
        return selectors.threshold_changes_list(user=self.request.user)


class _ThresholdChangeAction(APIView):
    permission_classes = [PolicyAdminOnly]
    serializer_class = ThresholdChangeSerializer
    answer_status = status.HTTP_200_OK

    def act(self, pk, actor):
        raise NotImplementedError

    @extend_schema(request=None, responses={200: ThresholdChangeSerializer, 403: ERROR, 404: ERROR, 409: ERROR})
    def post(self, request, pk):
        change = self.act(pk, request.user)
        change = selectors.threshold_changes_list(user=request.user).get(pk=change.pk)
        return Response(ThresholdChangeSerializer(change).data, status=self.answer_status)


class ThresholdChangeApprove(_ThresholdChangeAction):
    """A second policy admin applies the change; the proposer gets ``403 self_approval``."""

    def act(self, pk, actor):
        return services.threshold_change_approve(change_id=pk, actor=actor)


class ThresholdChangeReject(_ThresholdChangeAction):
    def act(self, pk, actor):
        return services.threshold_change_reject(change_id=pk, actor=actor)


class ThresholdChangeRollback(_ThresholdChangeAction):
    """Proposes the values an applied change replaced (201, a new proposal)."""

    answer_status = status.HTTP_201_CREATED

    @extend_schema(request=None, responses={201: ThresholdChangeSerializer, 403: ERROR, 404: ERROR, 409: ERROR})
    def post(self, request, pk):
        return super().post(request, pk)

    def act(self, pk, actor):
        return services.threshold_change_rollback_proposal(change_id=pk, actor=actor)


class _VisiblePolicies:
    """Policies of restricted classes exist only for users cleared for the class."""

    permission_classes = [role_permission(*roles.STAFF, roles.PLATFORM)]
    serializer_class = PolicySerializer

    def get_queryset(self):
        return selectors.policies_visible_to(self.request.user)


@extend_schema(summary="Policies with the ladder and rules of their active version")
class PolicyList(_VisiblePolicies, generics.ListAPIView):
    pass


@extend_schema(
    summary="One policy",
    responses={200: PolicySerializer, 404: OpenApiResponse(description="No such policy, or not visible to you.")},
)
class PolicyDetail(_VisiblePolicies, generics.RetrieveAPIView):
    lookup_field = "slug"
