from django.apps import AppConfig


class AppealsConfig(AppConfig):
    name = "appeals"
    verbose_name = "Appeals"

    def ready(self):
        # Imported here, the one place Django allows it: these modules read models.
        from reviews.webhooks import payload_notices

        from .selectors import enforcement_notices

        # The webhook (reviews, a layer below) tells the user what an appeal decided, when one caused the row.
        payload_notices.register(enforcement_notices)
