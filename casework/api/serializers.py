"""Case and intake representations (API.md "Intake" and "Cases").

Intake input is validated by ``casework.intake`` (one rule, one place); the
input serializers here only describe it for the OpenAPI schema.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from casework.models import Case, CaseEvent, Signal, Subject
from casework.priority import priority_shown
from casework.selectors import recommended_actions
from docket.api import FieldsBuiltOnce
from policies.models import Action
from policies.selectors import active_versions_by_class


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


class CaseSubjectSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    class Meta:
        model = Subject
        fields = ["kind", "external_id", "reach"]


class CaseAssignmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reviewer = serializers.CharField(source="reviewer.user.username")
    lease_expires_at = serializers.DateTimeField()


class CasePolicyRuleSerializer(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()


class CasePolicySerializer(serializers.Serializer):
    """What a decision on the case may choose (``ladder``) and cite (``rules``): the class's active version."""

    version = serializers.IntegerField(source="id", help_text="The policy version id a decision records.")
    ladder = serializers.ListField(child=serializers.ChoiceField(choices=Action.choices))
    rules = CasePolicyRuleSerializer(many=True)


def _reader(context):
    """Who the answer is for (``None`` without a request: only unrestricted classes count for them)."""
    return getattr(context.get("request"), "user", None)


class _CaseListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        cases = list(data.all() if hasattr(data, "all") else data)
        # One pass for the whole page instead of two queries per case.
        versions = active_versions_by_class(c.threat_class_id for c in cases)
        self._context["active_versions"] = versions
        self._context["recommended_actions"] = recommended_actions(
            cases, user=_reader(self._context), versions=versions
        )
        return super().to_representation(cases)


class CaseDetailSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    """A case as API.md lists it. Read with ``Case.objects.visible_to(user).for_display()``."""

    subject = CaseSubjectSerializer(read_only=True)
    threat_class = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    queue = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    priority_breakdown = serializers.DictField(read_only=True, help_text="{factor: value}: why the case ranks here.")
    assignment = serializers.SerializerMethodField()
    decisions = serializers.SerializerMethodField()
    recommended_action = serializers.SerializerMethodField()
    policy = serializers.SerializerMethodField()

    def to_representation(self, case):
        data = super().to_representation(case)
        # The subject's reach as the case's readers may know it (its class's and unrestricted classes' signals).
        data["subject"]["reach"] = case.reach
        # The priority and its breakdown at the time of the answer (they age), not as last ranked.
        data["priority"], data["priority_breakdown"] = priority_shown(case)
        return data

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
            "policy",
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
        if known is None or case.id not in known:
            known = recommended_actions([case], user=_reader(self.context), versions=self._active_versions(case))
            self.context["recommended_actions"] = known
        return known[case.id]

    def _active_versions(self, case):
        known = self.context.get("active_versions")
        if known is None or case.threat_class_id not in known:
            known = active_versions_by_class([case.threat_class_id])
            self.context["active_versions"] = known
        return known

    @extend_schema_field(CasePolicySerializer(allow_null=True))
    def get_policy(self, case):
        version = self._active_versions(case).get(case.threat_class_id)
        return CasePolicySerializer(version).data if version is not None else None


class CaseEventSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label", read_only=True)

    class Meta:
        model = CaseEvent
        fields = ["at", "actor", "kind", "detail"]
        read_only_fields = fields
