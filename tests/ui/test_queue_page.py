"""The queue page at any size: a page of cases with the total, filters (class, status, campaign, SLA state),
sorts (rank, oldest first, SLA due soonest), links that keep the filters, bad input as form errors."""

import re
from datetime import timedelta

import pytest
from django.test.utils import override_script_prefix
from django.urls import reverse
from django.utils import timezone

from casework.models import Campaign
from docket import api
from reviews.models import Decision
from reviews.selectors import QUEUE_MAX_PAGE, QUEUE_PAGE_SIZE
from reviews.services import queue_claim
from reviews.views.common import link_maker
from tests.factories import CaseFactory, queue, threat_class
from tests.ui.conftest import messages_of

pytestmark = pytest.mark.django_db


def ids(page):
    return [c.pk for c in page.context["cases"]]


def total_line(page):
    """The total as the reader sees it (tags left out)."""
    line = re.search(r'id="queue-total">(.*?)</p>', page.content.decode(), re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", "", line).split())


def pager_links(page):
    nav = re.search(r'<nav class="pager" aria-label="Pages">(.*?)</nav>', page.content.decode(), re.S).group(1)
    return [href.replace("&amp;", "&") for href in re.findall(r'href="([^"]*)"', nav)]


def campaign_of(kind, **kwargs):
    return Campaign.objects.create(threat_class=threat_class(kind), size=1, detected_at=timezone.now(), **kwargs)


# --- pages and the total --------------------------------------------------------------------------------------


def test_first_page_shows_the_total_from_the_tallies_and_the_rank_order(login, senior):
    cases = [CaseFactory(kind="spam", priority=float(p)) for p in range(QUEUE_PAGE_SIZE + 7)]
    CaseFactory(kind="spam", status="decided", decided_at=timezone.now())  # not active: neither listed nor counted
    page = login(senior).get("/queues/spam/")
    assert page.status_code == 200
    by_rank = [c.pk for c in reversed(cases)]
    assert ids(page) == by_rank[:QUEUE_PAGE_SIZE]
    listing = page.context["listing"]
    assert (listing.total, listing.total_is_estimate, listing.last_page) == (QUEUE_PAGE_SIZE + 7, False, 2)
    assert total_line(page) == f"{QUEUE_PAGE_SIZE + 7} cases in this queue · showing 1–{QUEUE_PAGE_SIZE}"
    assert pager_links(page) == ["?page=2", "?page=2"]  # the page number, then "Next"
    second = login(senior).get("/queues/spam/?page=2")
    assert ids(second) == by_rank[QUEUE_PAGE_SIZE:]
    assert total_line(second) == f"{QUEUE_PAGE_SIZE + 7} cases in this queue · showing {QUEUE_PAGE_SIZE + 1}–57"


def test_each_row_links_its_case_page_under_any_script_prefix(login, senior):
    cases = [CaseFactory(kind="spam", priority=float(p)) for p in range(3)]
    client = login(senior)
    for prefix in ("", "/docket"):
        with override_script_prefix(prefix + "/"):  # as the WSGI handler sets it from SCRIPT_NAME
            html = client.get("/queues/spam/").content.decode()
        rows = re.findall(r'<td><a href="([^"]*)">Case (\d+)</a></td>', html)
        assert sorted(rows) == sorted((f"{prefix}/cases/{c.pk}/", str(c.pk)) for c in cases)


def test_the_row_link_maker_answers_what_reverse_answers():
    case_url = link_maker("reviews:case", "case_id")
    for pk in (1, 7, 1234567890123):
        assert case_url(pk) == reverse("reviews:case", kwargs={"case_id": pk})
    assert link_maker("appeals:appeal", "appeal_id")(42) == "/appeals/42/"


def test_page_links_keep_the_filters_and_the_sort(login, senior):
    soon = timezone.now() + timedelta(minutes=30)
    for _ in range(QUEUE_PAGE_SIZE + 1):
        CaseFactory(kind="spam", first_signal_at=timezone.now() - timedelta(days=1), sla_due_at=soon)
    CaseFactory(kind="spam")  # due in 3 days: filtered out
    page = login(senior).get("/queues/spam/?sla=soon&threat_class=spam&sort=oldest")
    assert page.status_code == 200
    assert total_line(page) == f"{QUEUE_PAGE_SIZE + 1} cases match the filters · showing 1–{QUEUE_PAGE_SIZE}"
    assert set(pager_links(page)) == {"?threat_class=spam&sla=soon&sort=oldest&page=2"}
    second = login(senior).get("/queues/spam/" + pager_links(page)[0])
    assert len(ids(second)) == 1
    assert set(pager_links(second)) == {"?threat_class=spam&sla=soon&sort=oldest&page=1"}
    html = second.content.decode()
    # The filter form shows what is applied.
    assert '<option value="soon" selected>' in html and '<option value="oldest" selected>' in html


def test_filtered_total_is_exact_up_to_the_limit_then_a_marked_estimate(login, senior, monkeypatch):
    for _ in range(8):
        CaseFactory(kind="spam")
    page = login(senior).get("/queues/spam/?status=open")
    assert (page.context["listing"].total, page.context["listing"].total_is_estimate) == (8, False)
    assert "estimate" not in total_line(page)
    monkeypatch.setattr(api, "EXACT_COUNT_LIMIT", 5)  # the same path as 10,000, on 8 rows
    page = login(senior).get("/queues/spam/?status=open")
    listing = page.context["listing"]
    assert listing.total_is_estimate is True and listing.total >= 6
    assert total_line(page) == f"About {listing.total} cases match the filters estimate · showing 1–8"
    assert 'class="badge warn"' in page.content.decode().split('id="queue-total"')[1].split("</p>")[0]


def test_pages_stop_at_the_bound_and_say_how_to_reach_further(login, senior, monkeypatch):
    monkeypatch.setattr("reviews.selectors.QUEUE_PAGE_SIZE", 1)
    for p in range(QUEUE_MAX_PAGE + 2):
        CaseFactory(kind="spam", priority=float(p))
    page = login(senior).get(f"/queues/spam/?page={QUEUE_MAX_PAGE}")
    assert page.status_code == 200 and len(ids(page)) == 1
    listing = page.context["listing"]
    assert (listing.last_page, listing.has_next, listing.capped) == (QUEUE_MAX_PAGE, False, True)
    assert "Pages stop at 100: narrow the filters or change the sort" in page.content.decode()


# --- filters ----------------------------------------------------------------------------------------------------


def test_filter_by_class_on_a_hand_off_queue(login, senior):
    harassment = CaseFactory(kind="harassment", queue=queue("escalations"), status="escalated")
    ato = CaseFactory(kind="ato", queue=queue("escalations"), status="escalated")
    c = login(senior)
    assert set(ids(c.get("/queues/escalations/"))) == {harassment.pk, ato.pk}
    page = c.get("/queues/escalations/?threat_class=ato")
    assert ids(page) == [ato.pk]
    assert page.context["listing"].total == 1  # from the tallies: one class of the queue
    assert total_line(page) == "1 case matches the filters · showing 1–1"


def test_filter_by_status(login, senior, moderator):
    waiting = CaseFactory(kind="spam", priority=1.0)
    held = CaseFactory(kind="spam", priority=2.0)
    assert queue_claim(reviewer=moderator, queue_slug="spam").case_id == held.pk
    c = login(senior)
    assert ids(c.get("/queues/spam/?status=open")) == [waiting.pk]
    page = c.get("/queues/spam/?status=in_review")
    assert ids(page) == [held.pk]
    assert page.context["cases"][0].holder == "mod"
    assert ids(c.get("/queues/spam/?status=escalated")) == []


def test_filter_by_campaign(login, senior):
    campaign = campaign_of("spam")
    member = CaseFactory(kind="spam", campaign=campaign)
    CaseFactory(kind="spam")
    page = login(senior).get(f"/queues/spam/?campaign={campaign.pk}")
    assert ids(page) == [member.pk]
    assert page.context["listing"].total == 1


def test_filter_by_sla_state(login, senior):
    now = timezone.now()
    past = CaseFactory(kind="spam", first_signal_at=now - timedelta(days=4))  # due 1 day ago
    soon = CaseFactory(kind="spam", first_signal_at=now - timedelta(days=3) + timedelta(minutes=20))
    later = CaseFactory(kind="spam", first_signal_at=now)  # due in 3 days
    c = login(senior)
    assert ids(c.get("/queues/spam/?sla=past")) == [past.pk]
    assert ids(c.get("/queues/spam/?sla=soon")) == [soon.pk]
    assert ids(c.get("/queues/spam/?sla=ok")) == [later.pk]
    assert "Past SLA" in c.get("/queues/spam/").content.decode()  # the choice is named in words


# --- sorts ---------------------------------------------------------------------------------------------------


def test_sorts_rank_oldest_first_and_sla_due_soonest(login, senior):
    now = timezone.now()
    # created: a oldest, then b, then c; SLA due: c first (a short SLA), then a, then b; rank: b, c, a.
    a = CaseFactory(kind="spam", priority=1.0, first_signal_at=now - timedelta(hours=3))
    b = CaseFactory(kind="spam", priority=3.0, first_signal_at=now - timedelta(hours=2))
    c = CaseFactory(
        kind="spam", priority=2.0, first_signal_at=now - timedelta(hours=1), sla_due_at=now - timedelta(hours=5)
    )
    client = login(senior)
    assert ids(client.get("/queues/spam/")) == [b.pk, c.pk, a.pk]  # the claim order
    assert ids(client.get("/queues/spam/?sort=rank")) == [b.pk, c.pk, a.pk]
    assert ids(client.get("/queues/spam/?sort=oldest")) == [a.pk, b.pk, c.pk]
    assert ids(client.get("/queues/spam/?sort=sla")) == [c.pk, a.pk, b.pk]


# --- bad input ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, field, error",
    [
        ("status=decided", "status", "Choose open, in review or escalated."),
        ("status=%00", "status", "Choose open, in review or escalated."),
        ("sla=late", "sla", "Choose past SLA, due within 1 h or due later."),
        ("sort=priority", "sort", "Sort by rank, oldest first or SLA due soonest."),
        ("threat_class=nope", "threat_class", "No such class in this queue."),
        ("threat_class=harassment", "threat_class", "No such class in this queue."),  # not a class of this queue
        ("campaign=abc", "campaign", "No such campaign."),
        ("campaign=999999", "campaign", "No such campaign."),
        ("page=abc", "page", "A page is a number."),
        ("page=0", "page", "Ensure this value is greater than or equal to 1."),
        ("page=101", "page", "Pages go up to 100: narrow the filters or change the sort to reach further."),
        ("page=99999999999999999999999", "page", "Pages go up to 100: narrow the filters or change the sort"),
    ],
)
def test_a_bad_parameter_is_a_form_error_on_the_page(login, senior, query, field, error):
    CaseFactory(kind="spam")
    page = login(senior).get(f"/queues/spam/?{query}")
    assert page.status_code == 400
    assert page.context["listing"] is None and page.context["cases"] == []
    html = page.content.decode()
    assert re.search(rf'id="{field}-error">{re.escape(error)}', html), html
    assert "correct the filter above" in html


def test_a_bad_parameter_keeps_the_other_input(login, senior):
    page = login(senior).get("/queues/spam/?sla=past&sort=oldest&status=bogus")
    assert page.status_code == 400
    html = page.content.decode()
    assert '<option value="past" selected>' in html and '<option value="oldest" selected>' in html


# --- restricted classes ---------------------------------------------------------------------------------------


def test_restricted_cases_are_absent_from_list_total_and_filters(login, moderator, senior):
    visible = CaseFactory(kind="harassment", queue=queue("escalations"), status="escalated")
    hidden = CaseFactory(kind="csam", queue=queue("escalations"), status="escalated", priority=2e6)
    hidden_campaign = campaign_of("cib")
    CaseFactory(kind="cib", queue=queue("escalations"), status="escalated", campaign=hidden_campaign)
    c = login(moderator)
    page = c.get("/queues/escalations/")
    assert ids(page) == [visible.pk]
    assert page.context["listing"].total == 1
    html = page.content.decode()
    assert 'value="csam"' not in html and 'value="cib"' not in html
    assert f"Case {hidden.pk}" not in html
    for query, field, error in [
        ("threat_class=csam", "threat_class", "No such class in this queue."),
        (f"campaign={hidden_campaign.pk}", "campaign", "No such campaign."),  # as if it did not exist
    ]:
        refused = c.get(f"/queues/escalations/?{query}")
        assert refused.status_code == 400 and f'id="{field}-error">{error}' in refused.content.decode()
    cleared = login(senior).get("/queues/escalations/")
    assert cleared.context["listing"].total == 3
    assert ids(login(senior).get("/queues/escalations/?threat_class=csam")) == [hidden.pk]


# --- bulk decisions on the page shown ---------------------------------------------------------------------------


def test_bulk_decision_from_a_filtered_page_returns_to_it(login, senior):
    campaign = campaign_of("spam")
    members = [CaseFactory(kind="spam", campaign=campaign) for _ in range(2)]
    CaseFactory(kind="spam")
    c = login(senior)
    page = c.get(f"/queues/spam/?campaign={campaign.pk}&sort=oldest")
    action = re.search(r'<form method="post" action="([^"]+)" id="bulk-form"', page.content.decode()).group(1)
    action = action.replace("&amp;", "&")
    assert action == f"/queues/spam/bulk-decision/?campaign={campaign.pk}&sort=oldest&page=1"
    response = c.post(action, {"cases": [m.pk for m in members], "action": "remove", "rule": "SP-1"})
    assert response.status_code == 302
    assert response["Location"] == f"/queues/spam/?campaign={campaign.pk}&sort=oldest&page=1"
    assert Decision.objects.filter(case__in=members, action="remove").count() == 2


def test_refused_bulk_decision_re_renders_the_filtered_page_with_the_selection(login, senior, moderator):
    campaign = campaign_of("spam")
    member = CaseFactory(kind="spam", campaign=campaign, priority=1.0)
    other = CaseFactory(kind="spam", priority=5.0)
    page = login(senior).post(
        f"/queues/spam/bulk-decision/?campaign={campaign.pk}&page=1",
        {"cases": [member.pk], "action": "suspend", "rule": "SP-1", "rationale": "sold accounts"},
    )
    assert page.status_code == 400
    assert ids(page) == [member.pk] and other.pk not in ids(page)  # the filtered page, as it was
    html = page.content.decode()
    assert f'value="{member.pk}" id="sel-{member.pk}" aria-label="Select case {member.pk}" checked' in html
    assert "sold accounts" in html
    assert any("Duration" in m or "duration" in m for m in messages_of(page))


# --- cost ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["", "?threat_class=spam", "?status=open&sort=sla", "?sla=past&sort=oldest&page=2", "?campaign={campaign}"],
)
def test_a_page_costs_a_bounded_number_of_queries(login, senior, query, django_assert_max_num_queries):
    campaign = campaign_of("spam")
    for p in range(QUEUE_PAGE_SIZE + 5):
        CaseFactory(
            kind="spam",
            priority=float(p),
            campaign=campaign if p % 2 else None,
            first_signal_at=timezone.now() - timedelta(days=4),
        )
    c = login(senior)
    # Session, user, roles, clearances, the queue and its classes; the class choices; the total (the tallies, or
    # a bounded count); the page; the queues the user claims from; the rules of the classes listed; a class or
    # campaign asked for, looked up.
    with django_assert_max_num_queries(13):
        page = c.get("/queues/spam/" + query.format(campaign=campaign.pk))
    assert page.status_code == 200 and page.context["cases"]
