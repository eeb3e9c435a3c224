"""Who may take which work: the one eligibility rule for queue claims, named assignment and appeal claims.

``eligibility_check`` refuses, in this order: a missing clearance
(``clearance_required``, 403), a queue the reviewer does not work
(``forbidden``, 403), being off shift (``off_shift``, 409), holding
``max_active`` items already (``capacity_reached``, 409), and a graphic case
past today's exposure budget (``exposure_budget_reached``, 409). A check whose
figure is not known yet (``None``) is skipped, so a caller that counts inside
its own statement (the queue claim) asks again with the counts.
"""

from dataclasses import dataclass, replace

from casework.models import Queue
from docket.errors import conflict, forbidden
from policies.models import ThreatClass


@dataclass(frozen=True, slots=True)
class ReviewerLoad:
    """What the rule reads about one reviewer, taken under the reviewer row lock."""

    username: str
    on_shift: bool
    max_active: int
    clearances: frozenset
    graphic_budget: int = 0
    active: int | None = None  # items held now (cases, or appeals for an appeal claim)
    graphic_today: int | None = None  # graphic cases claimed since midnight

    def counted(self, *, active, graphic_today=None):
        return replace(self, active=active, graphic_today=graphic_today)


@dataclass(frozen=True, slots=True)
class Clearance:
    """A clearance the work needs, and what needs it (shown in the refusal)."""

    slug: str
    needed_by: str = ""  # e.g. "this queue"


def _class_name(slug):
    """A refusal names the class (a clearance is a class's slug), read only when refusing."""
    return ThreatClass.objects.filter(slug=slug).values_list("name", flat=True).first() or slug


def _queue_name(slug):
    return Queue.objects.filter(slug=slug).values_list("name", flat=True).first() or slug


def eligibility_check(
    load: ReviewerLoad, *, needs=(), works_queue=True, queue_slug="", graphic=False, holds="case(s)"
) -> None:
    """Refuse (``DocketError``) when the reviewer may not take this work now; see the module doc for the order."""
    who = load.username
    for need in needs:
        if need.slug and need.slug not in load.clearances:
            tail = f"; {need.needed_by} needs that clearance" if need.needed_by else ""
            raise forbidden(f"{who} is not cleared for {_class_name(need.slug)}{tail}.", code="clearance_required")
    if not works_queue:
        raise forbidden(f"{who} does not work the {_queue_name(queue_slug)} queue.")
    if not load.on_shift:
        raise conflict("off_shift", f"{who} is off shift.")
    if load.active is not None and load.active >= load.max_active:
        raise conflict("capacity_reached", f"{who} already holds {load.active} {holds}, the maximum.")
    if graphic and load.graphic_today is not None and load.graphic_today >= load.graphic_budget:
        raise conflict(
            "exposure_budget_reached",
            f"{who} has reached today's exposure budget of {load.graphic_budget} graphic case(s).",
        )
