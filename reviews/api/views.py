"""Thin views: check the role and visibility, validate input, call one service."""

from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from casework.api.hygiene import CampaignSerializer, VisibleCampaigns
from casework.models import Case
from docket import roles
from docket.api import Pagination, answer_after_commit, role_permission
from docket.errors import DocketError, not_found
from docket.visibility import restrict
from reviews import selectors, services
from reviews.models import RelabelItem

from .serializers import (
    AssignInputSerializer,
    AssignmentStateSerializer,
    DecisionInputSerializer,
    DecisionSerializer,
    EscalateInputSerializer,
    QualityReviewInputSerializer,
    QualityReviewSerializer,
    QueueSerializer,
    RelabelCompleteSerializer,
    RelabelItemSerializer,
    assignment_representation,
)

CASE_WORKERS = (roles.MODERATOR, roles.SENIOR)
READERS = (*roles.STAFF, roles.PLATFORM)


def _visible_case_or_404(user, case_id):
    if not restrict(Case.objects.all(), user).filter(pk=case_id).exists():
        raise not_found("No such case.")


class QueueListView(APIView):
    permission_classes = [role_permission(*roles.STAFF)]
    pagination_class = Pagination  # read by the schema: the answer is a page

    @extend_schema(responses=QueueSerializer(many=True))
    def get(self, request):
        rows = selectors.queues_overview(request.user)
        paginator = Pagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(QueueSerializer(page, many=True).data)


class QueueClaimView(APIView):
    permission_classes = [role_permission(*CASE_WORKERS)]

    @extend_schema(request=None, responses={201: OpenApiResponse(description="claimed"), 204: None})
    def post(self, request, slug):
        # The claim commits first (its case row is free before the answer is built); the
        # answer is then read on a fresh connection if need be, never answered as
        # "nothing was changed".
        assignment = services.queue_claim(reviewer=request.user, queue_slug=slug)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        body = answer_after_commit(
            lambda: assignment_representation(assignment, request, case=assignment.case),
            committed=f"The claim (assignment {assignment.pk})",
        )
        return Response(body, status=status.HTTP_201_CREATED)


class AssignmentActionView(APIView):
    permission_classes = [role_permission(*CASE_WORKERS)]
    action = None
    actions = {
        "renew": services.assignment_renew,
        "release": services.assignment_release,
        "skip": services.assignment_skip,
    }

    @extend_schema(request=None, responses=AssignmentStateSerializer)
    def post(self, request, pk):
        assignment = self.actions[self.action](assignment_id=pk, reviewer=request.user)
        return Response(AssignmentStateSerializer(assignment).data)


class CaseAssignView(APIView):
    permission_classes = [role_permission(roles.SENIOR)]

    @extend_schema(request=AssignInputSerializer, responses={201: OpenApiResponse(description="assigned")})
    def post(self, request, pk):
        _visible_case_or_404(request.user, pk)
        data = AssignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # As for a claim: the assignment commits first, its case row free before the answer is built.
        assignment = services.case_assign(
            case_id=pk, reviewer_username=data.validated_data["reviewer"], by=request.user
        )
        body = answer_after_commit(
            lambda: assignment_representation(assignment, request), committed=f"The assignment {assignment.pk}"
        )
        return Response(body, status=status.HTTP_201_CREATED)


class CaseDecisionView(APIView):
    permission_classes = [role_permission(*CASE_WORKERS)]

    @extend_schema(request=DecisionInputSerializer, responses={201: DecisionSerializer})
    def post(self, request, pk):
        data = DecisionInputSerializer(data=request.data)
        if not data.is_valid():
            _visible_case_or_404(request.user, pk)  # a hidden or missing case is a 404 before any 400
            data.is_valid(raise_exception=True)
        # decision_make answers 404 for a missing or hidden case itself, from the row it locks
        # (the decision's hot path reads the case once).
        decision = services.decision_make(case_id=pk, reviewer=request.user, **data.validated_data)
        return Response(DecisionSerializer(decision).data, status=status.HTTP_201_CREATED)


class CaseEscalateView(APIView):
    permission_classes = [role_permission(*CASE_WORKERS)]

    @extend_schema(request=EscalateInputSerializer, responses={200: OpenApiResponse(description="escalated")})
    def post(self, request, pk):
        _visible_case_or_404(request.user, pk)
        data = EscalateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        case = services.case_escalate(case_id=pk, actor=request.user, queue_slug=v["queue"], reason=v["reason"])
        return Response({"case": case.pk, "status": case.status, "queue": case.queue.slug})


class DecisionDetailView(APIView):
    permission_classes = [role_permission(*READERS)]

    def _decision(self, request, pk):
        decision = selectors.decisions_visible_to(request.user).filter(pk=pk).first()
        if decision is None:
            raise not_found("No such decision.")
        return decision

    @extend_schema(responses=DecisionSerializer)
    def get(self, request, pk):
        return Response(DecisionSerializer(self._decision(request, pk)).data)


class StatementOfReasonsView(DecisionDetailView):
    @extend_schema(responses={200: OpenApiResponse(description="DSA statement of reasons")})
    def get(self, request, pk):
        decision = self._decision(request, pk)
        if decision.statement is None:
            raise DocketError(
                "no_statement", "Nothing was restricted, so there is no statement of reasons.", status=404
            )
        return Response(decision.statement)


class QualityReviewListView(APIView):
    permission_classes = [role_permission(*CASE_WORKERS)]
    pagination_class = Pagination  # read by the schema: the answer is a page

    @extend_schema(responses=QualityReviewSerializer(many=True))
    def get(self, request):
        reviewer = services.reviewer_of(request.user)
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.quality_reviews_pending(reviewer), request, view=self)
        return paginator.get_paginated_response(QualityReviewSerializer(page, many=True).data)


class QualityReviewCompleteView(APIView):
    permission_classes = [role_permission(*CASE_WORKERS)]

    @extend_schema(request=QualityReviewInputSerializer, responses={200: OpenApiResponse(description="recorded")})
    def post(self, request, pk):
        data = QualityReviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        review = services.quality_review_complete(review_id=pk, reviewer=request.user, **data.validated_data)
        return Response({"id": review.pk, "status": review.status, "agrees": review.agrees})


# --- campaigns: one decision service for the API and the UI (reviews.services.campaigns) ---


class CampaignDecisionView(APIView):
    """A senior's one decision for the open member cases they may see; each case gets its own decision.

    ``reviews.services.campaign_decide``, as the campaign page: all or nothing; the campaign is
    decided once no open member remains.
    """

    permission_classes = [role_permission(roles.SENIOR)]

    @extend_schema(
        request=DecisionInputSerializer,
        responses={201: inline_serializer("CampaignDecided", {"decisions": serializers.IntegerField()})},
    )
    def post(self, request, pk):
        data = DecisionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        made = services.campaign_decide(campaign_id=pk, actor=request.user, **data.validated_data)
        return Response({"decisions": len(made)}, status=status.HTTP_201_CREATED)


class CampaignDismissView(VisibleCampaigns, APIView):
    """A senior judges the cluster coincidental."""

    permission_classes = [role_permission(roles.SENIOR)]

    @extend_schema(request=None, responses=CampaignSerializer)
    def post(self, request, pk):
        services.campaign_dismiss(campaign_id=pk, actor=request.user)
        return Response(CampaignSerializer(self.visible_object(pk=pk)).data)


# --- relabels: blind re-review of a sample of decisions under a newly activated policy version ---

RELABEL_ERROR = OpenApiResponse(description='`{"code", "detail"}` (validation adds `errors`).')


class RelabelFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=RelabelItem.Status.choices)
    threat_class = filters.CharFilter(field_name="policy_version__policy__threat_class__slug")


class RelabelList(generics.ListAPIView):
    """The relabel sample of newly activated versions (blind: no original action shown)."""

    permission_classes = [role_permission(*roles.REVIEWING)]
    serializer_class = RelabelItemSerializer
    filterset_class = RelabelFilter

    def get_queryset(self):
        return selectors.relabel_items_for(self.request.user)


class RelabelComplete(APIView):
    permission_classes = [role_permission(*roles.REVIEWING)]

    @extend_schema(
        request=RelabelCompleteSerializer,
        responses={200: RelabelItemSerializer, 400: RELABEL_ERROR, 403: RELABEL_ERROR},
    )
    def post(self, request, pk):
        # Invisible (restricted) items answer 404 like any unknown id.
        generics.get_object_or_404(selectors.relabel_items_for(request.user), pk=pk)
        data = RelabelCompleteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reviewer = getattr(request.user, "reviewer", None)
        item = services.relabel_item_complete(item_id=pk, reviewer=reviewer, **data.validated_data)
        item = selectors.relabel_items_for(request.user).get(pk=item.pk)
        return Response(RelabelItemSerializer(item).data)
