"""Shapes of the reviews API: inputs validated here, rules left to the services."""

from django.db.models import prefetch_related_objects
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from casework.api.serializers import CaseDetailSerializer
from casework.models import case_display_prefetch_list
from casework.selectors import case_visible, recommended_actions
from casework.services import ESCALATION_QUEUES
from docket.api import FieldsBuiltOnce
from docket.audit import access_log_case_read
from policies.models import LADDER, Action
from reviews.models import Decision, QualityReview, RelabelItem
from reviews.statements import transparency_status


class TransparencyDbSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["not_configured", "pending", "submitted", "rejected", "not_required"])
    puid = serializers.CharField(allow_null=True)
    submitted_at = serializers.DateTimeField(allow_null=True)
    errors = serializers.DictField()


class QueueSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    threat_classes = serializers.ListField(child=serializers.CharField())
    depth = serializers.IntegerField()
    in_review = serializers.IntegerField()
    oldest_wait_seconds = serializers.IntegerField(allow_null=True)
    breaching = serializers.IntegerField()
    forecast_drain_hours = serializers.FloatField(allow_null=True)
    drain_state = serializers.ChoiceField(choices=["idle", "draining", "growing"])


def assignment_representation(assignment, request, *, case=None):
    """A claim's answer: the assignment and the case in the full detail of ``casework.api``.

    ``case``: the case as the claim left it (with its subject, class and queue; the claim only picks cases
    the claimer may see, read the class's active version and probed whether it has decisions and its
    account strikes), so only what the display adds to it is read, and only where the probes found
    something (the assignment is this one).
    Without it the case is read by id, visibility checked.
    """
    context = {"request": request}
    if case is None:
        case = case_visible(user=request.user, case_id=assignment.case_id)
    else:
        case.active_assignments = [assignment]
        if case.has_decisions:
            prefetch_related_objects([case], *case_display_prefetch_list(request.user))
        else:
            case.decision_list = []
        # The class's active version, as the claim read it (the one a decision checks against).
        versions = context["active_versions"] = {case.threat_class_id: case.policy_version}
        if not case.has_strikes:  # the next step is the mildest violation: no strike to read
            context["recommended_actions"] = recommended_actions(
                [case], user=request.user, versions=versions, last_actions={}
            )
    access_log_case_read(user=request.user, case=case, via="api")
    return {
        "assignment": assignment.pk,
        "lease_expires_at": serializers.DateTimeField().to_representation(assignment.lease_expires_at),
        "case": CaseDetailSerializer(case, context=context).data,
    }


class AssignmentStateSerializer(serializers.Serializer):
    assignment = serializers.IntegerField(source="pk")
    case = serializers.IntegerField(source="case_id")
    state = serializers.CharField()
    lease_expires_at = serializers.DateTimeField()


class AssignInputSerializer(serializers.Serializer):
    reviewer = serializers.CharField(max_length=150)


class DecisionInputSerializer(serializers.Serializer):
    action = serializers.CharField(max_length=40)
    rule = serializers.CharField(max_length=80, required=False, allow_blank=True, default="")
    rationale = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    duration_days = serializers.IntegerField(min_value=1, max_value=3650, required=False, allow_null=True)
    public_explanation = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    territorial_scope = serializers.ListField(
        child=serializers.CharField(max_length=2), required=False, allow_null=True, allow_empty=True, max_length=30
    )
    decision_ground = serializers.CharField(max_length=40, required=False, allow_blank=True, allow_null=True)
    legal_ground = serializers.CharField(max_length=500, required=False, allow_blank=True, allow_null=True)


class EscalateInputSerializer(serializers.Serializer):
    queue = serializers.ChoiceField(choices=list(ESCALATION_QUEUES))
    reason = serializers.CharField(max_length=2000)


class DecisionSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    case = serializers.IntegerField(source="case_id")
    policy_version = serializers.IntegerField(source="policy_version_id")
    reviewer = serializers.SerializerMethodField()
    transparency_db = serializers.SerializerMethodField()

    class Meta:
        model = Decision
        fields = [
            "id",
            "case",
            "action",
            "rule",
            "policy_version",
            "reviewer",
            "automated",
            "rationale",
            "public_explanation",
            "duration_days",
            "created_at",
            "overturned",
            "transparency_db",
        ]

    def get_reviewer(self, obj) -> str | None:
        return obj.reviewer.user.get_username() if obj.reviewer_id else None

    @extend_schema_field(TransparencyDbSerializer)
    def get_transparency_db(self, obj) -> dict:
        status = transparency_status(obj)
        status["submitted_at"] = serializers.DateTimeField().to_representation(status["submitted_at"])
        return status


class QualityReviewSerializer(serializers.ModelSerializer):
    """Blind: the case under review, never the first decision's action, rule or reviewer."""

    case = serializers.IntegerField(source="decision.case_id")

    class Meta:
        model = QualityReview
        fields = ["id", "case", "status", "created_at"]


class QualityReviewInputSerializer(serializers.Serializer):
    action = serializers.CharField(max_length=40)
    rule = serializers.CharField(max_length=80, required=False, allow_blank=True, default="")


class RelabelItemSerializer(serializers.ModelSerializer):
    """Blind: the original decision's action and rule are not shown."""

    threat_class = serializers.CharField(source="policy_version.policy.threat_class.slug", read_only=True)
    policy_version = serializers.SerializerMethodField()
    case = serializers.IntegerField(source="decision.case_id", read_only=True)
    subject = serializers.SerializerMethodField()
    reviewer = serializers.SerializerMethodField()
    ladder = serializers.ListField(source="policy_version.ladder", read_only=True)
    # Blank until the item is done; declared so the schema admits the blank.
    action = serializers.ChoiceField(choices=Action.choices, allow_blank=True, read_only=True)

    class Meta:
        model = RelabelItem
        fields = [
            "id",
            "status",
            "threat_class",
            "policy_version",
            "case",
            "subject",
            "ladder",
            "reviewer",
            "action",
            "rule",
            "created_at",
            "completed_at",
        ]
        read_only_fields = fields

    def get_policy_version(self, item) -> str:
        return str(item.policy_version)

    def get_subject(self, item) -> dict:
        subject = item.decision.case.subject
        return {"kind": subject.kind, "external_id": subject.external_id}

    def get_reviewer(self, item) -> str | None:
        return item.reviewer.user.get_username() if item.reviewer_id else None


class RelabelCompleteSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=LADDER)
    rule = serializers.CharField(max_length=80, allow_blank=True, required=False, default="")
