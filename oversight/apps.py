from django.apps import AppConfig


class OversightConfig(AppConfig):
    """Guard metrics, the dashboard and the demo: a top-layer reader of every app."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "oversight"
    verbose_name = "Oversight"
