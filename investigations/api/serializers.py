"""Shapes of the subject search and the subject's history (API.md "Subjects, search, access log")."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from casework.models import Case, Subject
from policies.models import Action


class SubjectSearchQuerySerializer(serializers.Serializer):
    """Documentation of the query; ``investigations.selectors.SearchQuery.parse`` validates it."""

    q = serializers.CharField(
        required=False, help_text="An external id (exact or prefix), an attribute value, a reporter id or a case id."
    )
    kind = serializers.ChoiceField(choices=Subject.Kind.choices, required=False)
    attribute = serializers.CharField(required=False, help_text="<key>:<value>, e.g. ip:203.0.113.7.")


class SubjectHitSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Subject.Kind.choices)
    external_id = serializers.CharField()
    reach = serializers.IntegerField()
    open_cases = serializers.IntegerField()
    decided_cases = serializers.IntegerField()
    active_strikes = serializers.IntegerField()
    last_signal_at = serializers.DateTimeField(allow_null=True)


class SubjectSearchPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    count_is_estimate = serializers.BooleanField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = SubjectHitSerializer(many=True)


class SubjectRefSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Subject.Kind.choices)
    external_id = serializers.CharField()


class SubjectDecisionSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    action = serializers.ChoiceField(choices=Action.choices)
    rule = serializers.CharField()
    created_at = serializers.DateTimeField()
    overturned = serializers.BooleanField()


class SubjectCaseSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    threat_class = serializers.CharField(source="threat_class.slug")
    status = serializers.ChoiceField(choices=Case.Status.choices)
    created_at = serializers.DateTimeField()
    decisions = SubjectDecisionSerializer(many=True, source="decision_rows")


class SubjectStrikeSerializer(serializers.Serializer):
    decision = serializers.IntegerField(source="decision_id")
    weight = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    active = serializers.BooleanField()


class SharedValueSerializer(serializers.Serializer):
    kind = serializers.CharField()
    value = serializers.CharField()


class LinkedSubjectSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Subject.Kind.choices)
    external_id = serializers.CharField()
    via = SharedValueSerializer(many=True, help_text="The attribute values shared within the campaign window.")
    hop = serializers.IntegerField(help_text="1: shares a value with the subject; 2: with a hop-1 subject.")


class SignalDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    count = serializers.IntegerField()


class SubjectHistorySerializer(serializers.Serializer):
    """Read from ``investigations.selectors.subject_history`` (a ``SubjectHistory``)."""

    kind = serializers.ChoiceField(choices=Subject.Kind.choices, source="subject.kind")
    external_id = serializers.CharField(source="subject.external_id")
    reach = serializers.IntegerField(help_text="As the signals of the classes you may see reported it.")
    owner = serializers.SerializerMethodField()
    attributes = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    cases = SubjectCaseSerializer(many=True)
    strikes = SubjectStrikeSerializer(many=True)
    appeals = serializers.ListField(child=serializers.IntegerField())
    campaigns = serializers.ListField(child=serializers.IntegerField())
    linked = LinkedSubjectSerializer(many=True)
    content = SubjectRefSerializer(many=True, help_text="For an account: content items it posted.")
    signals_per_day = SignalDaySerializer(many=True, help_text="The last 30 days (UTC), oldest first.")

    @extend_schema_field(SubjectRefSerializer(allow_null=True))
    def get_owner(self, history):
        owner = history.owner
        return {"kind": owner.kind, "external_id": owner.external_id} if owner else None
