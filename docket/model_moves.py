"""For migrations that move a model to another app: its rows stay, and so do its permissions.

A moved model keeps its table (renamed or not) and every row in it. Its content type is moved too,
so the permissions granted on it, and the admin history of its rows, follow it to the new app
instead of staying behind on a content type no model has any more.
"""

from django.db import migrations

CONTENT_TYPES_MIGRATION = ("contenttypes", "0002_remove_content_type_name")


def _content_type_relabel(model, old_app, new_app):
    def relabel(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        rows = ContentType.objects.using(schema_editor.connection.alias)
        # A database that already has the new app's content type (it was migrated there before) keeps both.
        if not rows.filter(app_label=new_app, model=model).exists():
            rows.filter(app_label=old_app, model=model).update(app_label=new_app)

    return relabel


def content_type_move(model, *, old_app, new_app):
    """A ``RunPython`` giving ``old_app``'s content type of ``model`` (lower case) to ``new_app``, and back on reverse.

    The migration running it depends on ``CONTENT_TYPES_MIGRATION``.
    """
    return migrations.RunPython(
        _content_type_relabel(model, old_app, new_app), _content_type_relabel(model, new_app, old_app)
    )
