from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"
    verbose_name = "Reviews"

    def ready(self):
        # Imported here, the one place Django allows it: these modules read models.
        from casework import retention
        from casework import selectors as casework_selectors
        from casework.intake import automated_decisions
        from docket.identity import auth as identity_auth
        from docket.identity import services as identity_services
        from policies import services as policies_services

        from . import identity, selectors
        from . import retention as reviews_retention
        from .services import decisions_automated, relabel_sample_start

        # Clearances live on reviewer profiles: the core (identity, visibility) reads them through this.
        identity_services.user_clearances.register(identity.clearances_of)
        identity_services.grants_apply.register(identity.grants_apply)
        # Every staff page reads the reviewer profile: it comes with the session's user, in one statement.
        identity_auth.session_profile.register(identity.session_profile)
        # Intake (casework, a layer below) asks the reviews decision pipeline to decide auto-actioned cases.
        automated_decisions.register(decisions_automated)
        # A case's display (casework) shows its assignment and decisions; its recommended action reads strikes.
        casework_selectors.case_display_prefetches.register(selectors.case_display_prefetches)
        casework_selectors.strike_actions.register(selectors.strike_actions)
        # Retention and export (casework) cover what reviews keeps of a case: decisions and enforcements.
        retention.personal_data_purgers.register(reviews_retention.decisions_purge_personal_data)
        retention.export_contributions.register(reviews_retention.case_export_items)
        # A policy version's activation (policies) starts a relabel sample of recent decisions under it.
        policies_services.version_activated.register(relabel_sample_start)
        # Case reads (casework) leave out decisions under a blind second review the reader may do.
        casework_selectors.blind_decisions.register(selectors.decisions_blind_to)
