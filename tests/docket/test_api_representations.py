"""``docket.api.FieldsBuiltOnce``: a model representation introspects its model once per class."""

from rest_framework import serializers

from casework.models import Subject
from docket.api import FieldsBuiltOnce


def test_a_model_representation_introspects_its_model_once_and_each_instance_gets_its_own_fields(monkeypatch):
    built = []
    build_field = serializers.ModelSerializer.build_field

    def counted(self, *args, **kwargs):
        built.append(args[0])
        return build_field(self, *args, **kwargs)

    monkeypatch.setattr(serializers.ModelSerializer, "build_field", counted)

    class SubjectShape(FieldsBuiltOnce, serializers.ModelSerializer):
        label = serializers.CharField(source="external_id")

        class Meta:
            model = Subject
            fields = ["kind", "external_id", "reach", "label"]

    first = SubjectShape(Subject(kind="account", external_id="u-1", reach=5)).data
    introspected = len(built)
    second = SubjectShape(Subject(kind="content", external_id="p-2", reach=0)).data

    assert introspected == 3  # kind, external_id, reach: once, for the first instance
    assert len(built) == introspected  # none for the second
    assert first == {"kind": "account", "external_id": "u-1", "reach": 5, "label": "u-1"}
    assert second == {"kind": "content", "external_id": "p-2", "reach": 0, "label": "p-2"}
    one, other = SubjectShape().fields, SubjectShape().fields
    assert one["kind"] is not other["kind"] and one["label"] is not other["label"]
    assert one["kind"].parent is not other["kind"].parent
