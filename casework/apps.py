from django.apps import AppConfig


class CaseworkConfig(AppConfig):
    name = "casework"
    verbose_name = "Casework"

    def ready(self):
        # Imported here, the one place Django allows it: these modules read models.
        from policies import services as policies_services

        from . import selectors

        # A threshold change's blast radius (policies, a layer below) counts the pair's stored signals.
        policies_services.signals_since.register(selectors.signals_since)
