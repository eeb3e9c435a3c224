"""Thresholds, threshold changes, policies: input shapes and output fields."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from policies.models import Action, Policy, PolicyVersion, Threshold, ThresholdChange


class ThresholdSerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    threat_class = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    automation = serializers.CharField(source="threat_class.automation", read_only=True)
    auto_action = serializers.CharField(source="threat_class.auto_action", read_only=True)

    class Meta:
        model = Threshold
        fields = [
            "id",
            "source",
            "threat_class",
            "auto_action_at",
            "review_at",
            "automation",
            "auto_action",
            "updated_at",
        ]
        read_only_fields = fields


class BlastRadiusSerializer(serializers.Serializer):
    window_days = serializers.IntegerField()
    signals = serializers.IntegerField()
    newly_auto_actioned = serializers.IntegerField()
    newly_queued = serializers.IntegerField()
    newly_dropped = serializers.IntegerField()
    before = serializers.DictField(child=serializers.IntegerField(), required=False)
    after = serializers.DictField(child=serializers.IntegerField(), required=False)


class ThresholdChangeSerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    threat_class = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    proposed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    approved_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    blast_radius = BlastRadiusSerializer(read_only=True)

    class Meta:
        model = ThresholdChange
        fields = [
            "id",
            "status",
            "source",
            "threat_class",
            "auto_action_at",
            "review_at",
            "old_auto_action_at",
            "old_review_at",
            "reason",
            "blast_radius",
            "proposed_by",
            "approved_by",
            "created_at",
            "decided_at",
        ]
        read_only_fields = fields


class ThresholdChangeProposeSerializer(serializers.Serializer):
    """Types only; ranges, order and the reason are the service's rule."""

    source = serializers.CharField(max_length=60)
    threat_class = serializers.CharField(max_length=40)
    auto_action_at = serializers.FloatField(allow_null=True, required=False, default=None)
    review_at = serializers.FloatField()
    reason = serializers.CharField(max_length=2000, allow_blank=True, trim_whitespace=True)


class PolicyRuleSerializer(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField(default="")


class PolicyVersionSerializer(serializers.ModelSerializer):
    ladder = serializers.ListField(child=serializers.ChoiceField(choices=Action.choices))
    rules = PolicyRuleSerializer(many=True)

    class Meta:
        model = PolicyVersion
        fields = ["id", "number", "effective_at", "ladder", "rules"]
        read_only_fields = fields


class PolicySerializer(serializers.ModelSerializer):
    """A policy with what a decision under it may choose (``ladder``) and cite (``rules``)."""

    threat_class = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    active_version = serializers.SerializerMethodField()

    class Meta:
        model = Policy
        fields = ["slug", "name", "threat_class", "active_version"]
        read_only_fields = fields

    @extend_schema_field(PolicyVersionSerializer(allow_null=True))
    def get_active_version(self, policy):
        active = policy.active_versions  # prefetched by selectors.policies_visible
        return PolicyVersionSerializer(active[0]).data if active else None
