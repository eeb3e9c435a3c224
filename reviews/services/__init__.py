"""Reviews: every write of the reviews app, one module per job.

- ``claims``: queue claims, leases, hand-offs, named assignment;
- ``eligibility``: who may take which work (claims, assignment, appeal claims);
- ``decisions``: the one decision pipeline (human, bulk, automated, replacing) and escalation;
- ``campaigns``: a campaign's decision and dismissal (API and UI);
- ``reversals``: overturning and replacing decisions;
- ``quality``: blind QA;
- ``relabel``: blind relabels of a sample of decisions under a newly activated policy version;
- ``access``: clearances and restricted classes, changed only with a second policy admin.

Lock order is always case row first, then assignment/reviewer rows, so claims,
decisions and the lease sweep never deadlock each other. Side effects (webhook
delivery) are enqueued after commit: nothing leaves Docket before the decision
that caused it has committed.
"""

from .access import (
    access_change_approve,
    access_change_propose_class_flags,
    access_change_propose_clearances,
    access_change_reject,
)
from .campaigns import campaign_decide, campaign_dismiss
from .claims import (
    assignment_release,
    assignment_renew,
    assignment_skip,
    case_assign,
    leases_expire,
    queue_claim,
)
from .common import reviewer_of
from .decisions import (
    active_version_for,
    case_escalate,
    decision_automated,
    decision_make,
    decisions_automated,
    decisions_bulk,
    decisions_write,
)
from .eligibility import Clearance, ReviewerLoad, eligibility_check
from .quality import quality_review_complete
from .relabel import relabel_item_complete, relabel_sample_start
from .reversals import decision_overturn, decision_replace

__all__ = [
    "Clearance",
    "ReviewerLoad",
    "access_change_approve",
    "access_change_propose_class_flags",
    "access_change_propose_clearances",
    "access_change_reject",
    "active_version_for",
    "assignment_release",
    "assignment_renew",
    "assignment_skip",
    "campaign_decide",
    "campaign_dismiss",
    "case_assign",
    "case_escalate",
    "decision_automated",
    "decisions_automated",
    "decisions_bulk",
    "decision_make",
    "decision_overturn",
    "decision_replace",
    "decisions_write",
    "eligibility_check",
    "leases_expire",
    "queue_claim",
    "quality_review_complete",
    "relabel_item_complete",
    "relabel_sample_start",
    "reviewer_of",
]
