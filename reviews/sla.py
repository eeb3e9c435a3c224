"""SLA escalation: high-severity cases left waiting past their SLA go to the seniors.

Priority already lifts a breached case to the top of its queue; when nobody in
that queue takes it, a case of severity ``DOCKET["SLA_ESCALATION_MIN_SEVERITY"]``
or more that is still unclaimed ``DOCKET["SLA_ESCALATION_GRACE_SECONDS"]`` after
its SLA moves to the ``escalations`` queue. Low-severity backlogs (spam) stay
in their queues: flooding the seniors with them would bury what matters.
"""

from datetime import timedelta

from django.utils import timezone

from casework import events
from casework.models import Case, Queue
from casework.services import ESCALATION_QUEUES, case_events_add_bulk, transition_allowed
from docket.batches import BATCH_SIZE, batches
from docket.conf import setting


def cases_escalate_sla_breaches(*, now=None, batch: int = BATCH_SIZE) -> int:
    """Move every open, unassigned, high-severity case past SLA + grace to ``escalations``.

    Set-based, in short batches (one UPDATE and one bulk insert of events
    each, in SLA order over the SLA index); rows another transaction holds are
    skipped and caught on the next run. Not a first action: the SLA clock of
    the case is unchanged. Returns how many cases moved.
    """
    now = now or timezone.now()
    if not transition_allowed("open", "escalated"):  # the transition table has the last word
        return 0
    target = Queue.objects.get(slug="escalations")

    def escalate(size):
        due = (
            Case.objects.filter(
                status="open",
                severity__gte=setting("SLA_ESCALATION_MIN_SEVERITY"),
                sla_due_at__lt=now - timedelta(seconds=setting("SLA_ESCALATION_GRACE_SECONDS")),
            )
            .exclude(queue__slug__in=ESCALATION_QUEUES)
            .order_by("sla_due_at")
            .select_for_update(no_key=True, skip_locked=True, of=("self",))
        )
        moved = list(due.values_list("id", "queue__slug")[:size])
        if not moved:
            return 0
        Case.objects.filter(id__in=[case_id for case_id, _ in moved]).update(
            status="escalated", queue=target, updated_at=now
        )
        rows = []
        for case_id, queue in moved:
            event = events.sla_escalated(from_status="open", from_queue=queue, to_queue=target.slug)
            rows.append((case_id, event, "system", now))
        case_events_add_bulk(rows)
        return len(moved)

    return batches(escalate, size=batch)
