from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DocketConfig(AppConfig):
    name = "docket"
    verbose_name = "Docket"

    def ready(self):
        # Imported here, where Django allows it: these modules read models (roles, identity, the
        # identity admin), which cannot be imported while the app registry is still loading.
        from docket.roles import ensure_groups

        # After each app migrates (permissions of later apps appear as they do),
        # the role groups exist with their admin permissions. Idempotent.
        post_migrate.connect(ensure_groups, dispatch_uid="docket_ensure_groups")
        from django.contrib.auth.signals import user_logged_in

        from docket.identity.auth import session_seen_at_login

        user_logged_in.connect(session_seen_at_login, dispatch_uid="docket_session_seen")
        # The identity pages of the admin (the admin's autodiscovery imports only docket.admin).
        import docket.identity.admin  # noqa: F401
