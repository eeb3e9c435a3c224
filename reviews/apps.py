from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"
    verbose_name = "Reviews"

    def ready(self):
        # Imported here, the one place Django allows it: these modules read models.
        from casework import selectors as casework_selectors
        from casework.intake import automation_register
        from docket.identity.services import grants_register
        from reviews.identity import clearances_of, grants_apply

        from . import selectors
        from .services import decision_automated, decisions_automated

        # Clearances live on reviewer profiles: the core (identity, visibility) reads them through this.
        grants_register(clearances_of=clearances_of, apply=grants_apply)
        # Intake (casework, a layer below) asks the reviews decision pipeline to decide auto-actioned cases.
        automation_register(decision_automated, decide_many=decisions_automated)
        # A case's display (casework) shows its assignment and decisions; its recommended action reads strikes.
        casework_selectors.case_display_prefetches.register(selectors.case_display_prefetches)
        casework_selectors.strike_actions.register(selectors.strike_actions)
