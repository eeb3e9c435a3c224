"""The moderator web UI: thin views over the reviews and casework services, one module per page family.

Views validate input, call one service and turn its ``DocketError`` into a
message (never an error page); a case the user may not see is a 404. Reads go
through ``reviews.selectors`` and the one visibility helper
(``docket.visibility.visible_or_404`` / ``restrict``), so a restricted case never leaks.

- ``queue``: home, claims and leases, a queue's list;
- ``case``: the case page, decide, escalate, note, assign;
- ``bulk``: bulk decisions on a queue's cases and a campaign's;
- ``escalations``: the seniors' view;
- ``sources``: a source's health and an admin's confirm / quarantine;
- ``work``: reviewer work that had only an API: blind QA reviews, relabels, my decisions, campaigns.
"""

from .bulk import campaign_bulk, campaign_detail, campaign_dismiss_view, queue_bulk
from .case import case_assign_view, case_decide, case_detail, case_escalate_view, case_note
from .escalations import escalations
from .queue import (
    assignment_release_view,
    assignment_renew_view,
    assignment_skip_view,
    home,
    queue_claim_view,
    queue_detail,
)
from .sources import source_confirm_view, source_detail, source_incident_resolve_view, source_quarantine_view

__all__ = [
    "assignment_release_view",
    "assignment_renew_view",
    "assignment_skip_view",
    "campaign_bulk",
    "campaign_dismiss_view",
    "campaign_detail",
    "case_assign_view",
    "case_decide",
    "case_detail",
    "case_escalate_view",
    "case_note",
    "escalations",
    "home",
    "queue_bulk",
    "queue_claim_view",
    "queue_detail",
    "source_confirm_view",
    "source_detail",
    "source_incident_resolve_view",
    "source_quarantine_view",
]
