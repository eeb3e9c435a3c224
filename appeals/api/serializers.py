"""Appeal payloads: validation of input only; the rules are in appeals.services."""

from rest_framework import serializers

from appeals.models import Appeal
from appeals.selectors import appeal_outcome_statement


def _username(reviewer):
    return reviewer.user.get_username() if reviewer is not None else None


class AppealFileSerializer(serializers.Serializer):
    decision = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    appellant = serializers.CharField(max_length=200)
    statement = serializers.CharField(max_length=20000, allow_blank=True, required=False, default="")
    language = serializers.CharField(max_length=8, required=False, default="en")


class AppealFiledSerializer(serializers.ModelSerializer):
    class Meta:
        model = Appeal
        fields = ["id", "status", "deadline", "decision", "appellant", "received_at"]


class AppealResolveSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Appeal.Outcome.choices)
    action = serializers.CharField(max_length=40, allow_blank=True, allow_null=True, required=False, default=None)
    rule = serializers.CharField(max_length=80, allow_blank=True, allow_null=True, required=False, default=None)
    rationale = serializers.CharField(max_length=20000, allow_blank=True, required=False, default="")
    duration_days = serializers.IntegerField(min_value=1, max_value=36500, allow_null=True, required=False)


class AppealSerializer(serializers.ModelSerializer):
    """An appeal as appeals staff and the platform read it."""

    case = serializers.IntegerField(source="decision.case_id", read_only=True)
    threat_class = serializers.SlugRelatedField(source="decision.case.threat_class", slug_field="slug", read_only=True)
    original_action = serializers.CharField(source="decision.action", read_only=True)
    assigned_to = serializers.SerializerMethodField()
    resolved_by = serializers.SerializerMethodField()
    outcome = serializers.SerializerMethodField()
    new_action = serializers.SerializerMethodField()

    class Meta:
        model = Appeal
        fields = [
            "id",
            "decision",
            "case",
            "threat_class",
            "original_action",
            "appellant",
            "statement",
            "language",
            "status",
            "received_at",
            "deadline",
            "assigned_to",
            "claimed_at",
            "outcome",
            "new_action",
            "new_decision",
            "rationale",
            "resolved_by",
            "resolved_at",
        ]

    def get_assigned_to(self, appeal) -> str | None:
        return _username(appeal.assigned_to)

    def get_resolved_by(self, appeal) -> str | None:
        return _username(appeal.resolved_by)

    def get_outcome(self, appeal) -> str | None:
        return appeal.outcome or None

    def get_new_action(self, appeal) -> str | None:
        return appeal.new_action or None


class AppealDetailSerializer(AppealSerializer):
    outcome_statement = serializers.SerializerMethodField()

    class Meta(AppealSerializer.Meta):
        fields = [*AppealSerializer.Meta.fields, "outcome_statement"]

    def get_outcome_statement(self, appeal) -> dict | None:
        return appeal_outcome_statement(appeal)


class AppealClaimSerializer(AppealDetailSerializer):
    """The claimed appeal: ``appeal`` is its id, the detail fields beside it."""

    appeal = serializers.IntegerField(source="id")

    class Meta(AppealDetailSerializer.Meta):
        fields = ["appeal", *[f for f in AppealDetailSerializer.Meta.fields if f != "id"]]
