from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"
    verbose_name = "Reviews"

    def ready(self):
        # Imported here: the module reads models, which exist only once apps are loaded.
        from docket.identity.services import grants_register
        from reviews.identity import clearances_of, grants_apply

        grants_register(clearances_of=clearances_of, apply=grants_apply)
