from django.apps import AppConfig


class TransparencyConfig(AppConfig):
    """The DSA transparency report (Art. 15 and 24): a top-layer reader of every app, writing nothing."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "transparency"
