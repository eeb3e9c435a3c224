"""Words, not slugs: the home page says a queue is growing when cases arrive faster than they are decided."""

from datetime import timedelta

import pytest
from django.utils import timezone

from reviews.services import decision_make, queue_claim
from tests.factories import CaseFactory, active_version

pytestmark = pytest.mark.django_db


def test_drain_forecast_says_growing(login, moderator):
    now = timezone.now()
    for _ in range(4):
        CaseFactory(kind="spam", created_at=now - timedelta(minutes=5), first_signal_at=now - timedelta(minutes=5))
    assignment = queue_claim(reviewer=moderator, queue_slug="spam")
    decision_make(
        case_id=assignment.case_id,
        reviewer=moderator,
        action="remove",
        rule=active_version("spam").rules[0]["code"],
        rationale="spam",
    )
    response = login(moderator).get("/")
    (spam,) = [q for q in response.context["queues"] if q["slug"] == "spam"]
    assert spam["drain_state"] == "growing"
    row = response.content.decode().split('href="/queues/spam/"')[1].split("</tr>")[0]
    assert ">growing</span>" in row


def test_idle_queue_says_no_decisions_lately(login, moderator):
    CaseFactory(kind="spam")
    page = login(moderator).get("/").content.decode()
    row = page.split('href="/queues/spam/"')[1].split("</tr>")[0]
    assert "no decisions lately" in row
