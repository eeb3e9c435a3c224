"""Case and intake representations (API.md "Intake" and "Cases").

Intake input is validated by ``casework.intake`` (one rule, one place); the
input serializers here only describe it for the OpenAPI schema.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from casework.models import Case, CaseEvent, Signal, Subject
from casework.selectors import recommended_action, recommended_actions
from policies.models import Action


class SignalSubjectInSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Subject.Kind.choices)
    external_id = serializers.CharField(max_length=200)
    owner = serializers.CharField(
        max_length=200, required=False, allow_null=True, help_text="For content: the account that posted it."
    )
    reach = serializers.IntegerField(min_value=0, required=False, default=0)
    attributes = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField(max_length=300)),
        required=False,
        help_text='Shared-attribute values, e.g. {"device": ["d-9"], "ip": ["203.0.113.7"]}.',
    )


class SignalInSerializer(serializers.Serializer):
    source = serializers.SlugField(help_text="A registered source (400 unknown_source otherwise).")
    external_id = serializers.CharField(max_length=200, help_text="Idempotency key, unique per source.")
    threat_class = serializers.SlugField(help_text="A threat class slug (400 unknown_threat_class otherwise).")
    subject = SignalSubjectInSerializer()
    score = serializers.FloatField(
        min_value=0,
        max_value=1,
        required=False,
        allow_null=True,
        help_text="Required for classifier, rule and hash_match sources.",
    )
    reporter = serializers.CharField(
        max_length=200, required=False, allow_null=True, help_text="Required for user_report sources."
    )
    reason = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    occurred_at = serializers.DateTimeField(required=False, help_text="Defaults to the time of receipt.")


class SignalResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    case = serializers.IntegerField(allow_null=True)
    disposition = serializers.ChoiceField(choices=Signal.Disposition.choices)


class CaseSubjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Subject
        fields = ["kind", "external_id", "reach"]


class CaseAssignmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reviewer = serializers.CharField(source="reviewer.user.username")
    lease_expires_at = serializers.DateTimeField()


class _CaseListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        cases = list(data.all() if hasattr(data, "all") else data)
        # One pass for the whole page instead of two queries per case.
        self._context["recommended_actions"] = recommended_actions(cases)
        return super().to_representation(cases)


class CaseDetailSerializer(serializers.ModelSerializer):
    """A case as API.md lists it. Read with ``Case.objects.visible_to(user).for_display()``."""

    subject = CaseSubjectSerializer(read_only=True)
    threat_class = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    queue = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    priority_breakdown = serializers.DictField(read_only=True, help_text="{factor: value}: why the case ranks here.")
    assignment = serializers.SerializerMethodField()
    decisions = serializers.SerializerMethodField()
    recommended_action = serializers.SerializerMethodField()

    class Meta:
        model = Case
        fields = [
            "id",
            "subject",
            "threat_class",
            "status",
            "queue",
            "priority",
            "priority_breakdown",
            "severity",
            "signal_count",
            "reporter_count",
            "first_signal_at",
            "last_signal_at",
            "sla_due_at",
            "campaign",
            "assignment",
            "decisions",
            "recommended_action",
        ]
        read_only_fields = fields
        list_serializer_class = _CaseListSerializer

    @extend_schema_field(CaseAssignmentSerializer(allow_null=True))
    def get_assignment(self, case):
        active = getattr(case, "active_assignments", None)
        if active is None:
            active = list(case.assignments.filter(state="active").select_related("reviewer__user"))
        return CaseAssignmentSerializer(active[0]).data if active else None

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_decisions(self, case):
        decisions = getattr(case, "decision_list", None)
        if decisions is None:
            return list(case.decisions.order_by("id").values_list("id", flat=True))
        return [d.id for d in decisions]

    @extend_schema_field(serializers.ChoiceField(choices=Action.choices, allow_null=True))
    def get_recommended_action(self, case):
        known = self.context.get("recommended_actions")
        if known is not None and case.id in known:
            return known[case.id]
        return recommended_action(case)


class CaseEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label", read_only=True)

    class Meta:
        model = CaseEvent
        fields = ["at", "actor", "kind", "detail"]
        read_only_fields = fields
