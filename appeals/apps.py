from django.apps import AppConfig


class AppealsConfig(AppConfig):
    name = "appeals"
    verbose_name = "Appeals"

    def ready(self):
        # Imported here, the one place Django allows it: these modules read models.
        from casework.retention import personal_data_purgers
        from reviews.webhooks import payload_notices

        from .selectors import enforcement_notices
        from .services import appeals_purge_personal_data

        # The webhook (reviews, a layer below) tells the user what an appeal decided, when one caused the row.
        payload_notices.register(enforcement_notices)
        # Retention (casework) purges what each app keeps of a case: appeals, the appellants' statements.
        personal_data_purgers.register(appeals_purge_personal_data)
