from django.apps import AppConfig


class InvestigationsConfig(AppConfig):
    """Search and the subject's whole history: reads across casework, reviews and appeals (a top layer)."""

    name = "investigations"
    verbose_name = "Investigations"
