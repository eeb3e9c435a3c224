"""A model points only down the layers: no relation from a lower app's model to a higher app's.

`lint-imports` checks imports; a relation named by model label (``"reviews.Decision"``) is no import,
so this test checks the relations themselves, against the layer order of the import contract.
"""

import tomllib
from pathlib import Path

from django.apps import apps

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def layer_ranks():
    """App label -> its layer's height (the core 0); apps of one layer (``a | b``) share a height."""
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    layers = contract["layers"]
    return {app.strip(): len(layers) - 1 - height for height, layer in enumerate(layers) for app in layer.split("|")}


def upward_relations(ranks, models):
    """``"app.Model.field -> app.Model"`` for every relation a model declares to a model of a higher
    layer, or of another app of its own layer (independent apps do not know each other)."""
    found = set()
    for model in models:
        source = model._meta.app_label
        for field in model._meta.get_fields():
            if not field.is_relation or field.auto_created or field.related_model is None:
                continue
            target = field.related_model._meta.app_label
            if source not in ranks or target not in ranks or target == source:
                continue
            if ranks[target] >= ranks[source]:
                found.add(f"{model._meta.label}.{field.name} -> {field.related_model._meta.label}")
    return found


def test_the_layers_are_read_from_the_import_contract():
    ranks = layer_ranks()
    assert ranks["docket"] < ranks["policies"] < ranks["casework"] < ranks["reviews"] < ranks["appeals"]
    assert ranks["appeals"] < ranks["oversight"] == ranks["investigations"] == ranks["transparency"]


def test_no_model_points_up_the_layers():
    assert upward_relations(layer_ranks(), apps.get_models()) == set()


def test_a_relation_up_the_layers_or_across_one_is_found():
    """The check itself: a lower model naming a higher one is reported; one naming a lower one is not."""
    Case = apps.get_model("casework", "Case")
    Decision = apps.get_model("reviews", "Decision")
    ranks = {**layer_ranks(), "casework": layer_ranks()["reviews"] + 1}
    found = upward_relations(ranks, [Decision, Case])
    assert "reviews.Decision.case -> casework.Case" in found
    assert not any(relation.startswith("casework.Case.") for relation in found)
