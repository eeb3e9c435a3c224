from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"
    verbose_name = "Reviews"

    def ready(self):
        # Imported here, the one place Django allows it: these modules read models.
        from casework import retention
        from casework import selectors as casework_selectors
        from casework.intake import automation_register, fold
        from docket.identity.services import grants_register
        from reviews.identity import clearances_of, grants_apply

        from . import retention as reviews_retention
        from . import selectors
        from .services import decision_automated, decisions_automated

        # Clearances live on reviewer profiles: the core (identity, visibility) reads them through this.
        grants_register(clearances_of=clearances_of, apply=grants_apply)
        # Intake (casework, a layer below) asks the reviews decision pipeline to decide auto-actioned cases.
        automation_register(decision_automated, decide_many=decisions_automated)
        # A case's display (casework) shows its assignment and decisions; its recommended action reads strikes.
        casework_selectors.case_display_prefetches.register(selectors.case_display_prefetches)
        casework_selectors.strike_actions.register(selectors.strike_actions)
        # Intake (casework) routes a new case to the queue reviews says takes its class.
        fold.queue_routes.register(selectors.queue_routes)
        # Retention and export (casework) cover what reviews keeps of a case: decisions and enforcements.
        retention.personal_data_purgers.register(reviews_retention.decisions_purge_personal_data)
        retention.export_contributions.register(reviews_retention.case_export_items)
        # Case reads (casework) leave out decisions under a blind second review the reader may do.
        casework_selectors.blind_decisions.register(selectors.decisions_blind_to)
