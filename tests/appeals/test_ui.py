"""The appeals UI: queue, claim next, the appeal page, the resolve form, refusals as messages."""

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from appeals.models import Appeal
from appeals.selectors import appeal_for
from casework.models import CaseEvent
from policies.models import Action
from reviews.models import Decision, Enforcement
from tests.appeals.conftest import appeal_on, decide_for_real, decided
from tests.support import signed_in

pytestmark = pytest.mark.django_db


def texts(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_queue_lists_waiting_appeals_with_a_claim_button(decider, appeals_staff):
    appeal = appeal_on(decided(reviewer=decider.reviewer))

    response = signed_in(appeals_staff).get("/appeals/")

    assert response.status_code == 200
    html = response.content.decode()
    assert f'href="/appeals/{appeal.pk}/"' in html
    assert 'data-shortcut="c"' in html
    assert "Claim next appeal" in html


def test_the_queue_keeps_a_constant_query_count(decider, appeals_staff, django_assert_max_num_queries):
    client = signed_in(appeals_staff)
    for _ in range(3):
        appeal_on(decided(reviewer=decider.reviewer))
    client.get("/appeals/")
    for _ in range(20):
        appeal_on(decided(reviewer=decider.reviewer), holder=appeals_staff.reviewer)
        appeal_on(decided(reviewer=decider.reviewer))

    with django_assert_max_num_queries(12):
        response = client.get("/appeals/?status=")

    assert response.status_code == 200


def test_the_queue_pages_by_the_figures_it_counts_and_reads_only_what_its_rows_show(decider, appeals_staff):
    client = signed_in(appeals_staff)
    for _ in range(51):
        appeal_on(decided(reviewer=decider.reviewer))
    appeal_on(decided(reviewer=decider.reviewer), holder=appeals_staff.reviewer)  # in review
    pages = {
        "/appeals/": "Page 1 of 2",  # 51 waiting
        "/appeals/?status=": "Page 1 of 2",  # all 52
        "/appeals/?status=in_review": None,  # one page: no page links
        "/appeals/?status=&outcome=upheld": None,
        "/appeals/?status=received&page=2": "Page 2 of 2",
    }
    for url, shown in pages.items():
        with CaptureQueriesContext(connection) as queries:
            html = client.get(url).content.decode()
        assert (shown in html) if shown else ("Page 1 of" not in html), url
        counted_again = [q for q in queries.captured_queries if '"__count"' in q["sql"]]
        assert len(counted_again) == (1 if "outcome" in url else 0), url
        for sql in (q["sql"] for q in queries.captured_queries):  # a row reads what it shows, not the JSON
            assert '"priority_breakdown"' not in sql and '"attributes"' not in sql, sql
    html = client.get("/appeals/?status=received&page=2").content.decode()
    assert html.count('href="/appeals/') - html.count('href="/appeals/claim') >= 1  # the 51st row


def test_only_appeals_staff_see_the_appeals_ui(decider, moderator):
    appeal = appeal_on(decided(reviewer=decider.reviewer))

    assert signed_in(moderator).get("/appeals/").status_code == 403
    assert signed_in(moderator).get(f"/appeals/{appeal.pk}/").status_code == 403
    assert signed_in(moderator).post("/appeals/claim/").status_code == 403
    anonymous = Client().get("/appeals/")
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert Appeal.objects.get().status == "received"


def test_claim_next_goes_to_the_appeal_or_says_there_is_none(decider, appeals_staff):
    appeal = appeal_on(decided(reviewer=decider.reviewer))
    client = signed_in(appeals_staff)

    first = client.post("/appeals/claim/")
    second = client.post("/appeals/claim/", follow=True)

    assert first.status_code == 302 and first["Location"] == f"/appeals/{appeal.pk}/"
    assert texts(second) == ["No appeal is waiting for you right now."]


def test_the_appeal_page_shows_case_evidence_decision_reasons_and_statement(decider, appeals_staff, platform):
    decision = decide_for_real(decider)
    appeal = appeal_on(decision, holder=appeals_staff.reviewer, statement="It was my own shop.")

    response = signed_in(appeals_staff).get(f"/appeals/{appeal.pk}/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "It was my own shop." in html
    assert "The decision" in html and "Commercial spam" in html
    assert "Statement of reasons" in html and "decision_ground" in html
    assert html.count('class="evidence"') == 2
    assert 'id="resolve-form"' in html
    for key in ('data-action-key="u"', 'data-action-key="o"', 'data-action-key="m"', 'data-shortcut="c"'):
        assert key in html
    # the new action is limited to the ladder of the class
    assert '<option value="legal_report"' not in html
    assert '<option value="label"' in html


def test_the_appeal_page_shows_the_evidence_as_the_case_page_does(decider, appeals_staff, senior):
    """One signals list for both pages: sources by name and kind in words, not their slugs."""
    decision = decide_for_real(decider, reporters=1)
    appeal = appeal_on(decision, holder=appeals_staff.reviewer, statement="Mine.")
    [signal] = decision.case.signals.all()
    appeal_page = signed_in(appeals_staff).get(f"/appeals/{appeal.pk}/").content.decode()
    case_page = signed_in(senior).get(f"/cases/{decision.case_id}/").content.decode()
    for html in (appeal_page, case_page):
        assert '<strong>User reports</strong> <span class="badge">User Report</span>' in html
        assert f'Reporter <span class="mono">{signal.reporter.external_id}</span>' in html
    assert ">user-reports<" not in appeal_page and ">user_report<" not in appeal_page
    assert 'data-reveal-page="appeal"' in appeal_page and 'data-reveal-page="case"' in case_page
    assert '<h2 id="signals-h">Evidence</h2>' in appeal_page and '<h2 id="signals-h">Signals</h2>' in case_page


def test_the_appeal_page_tells_the_case_timeline_in_the_case_pages_words(decider, appeals_staff, senior):
    decision = decide_for_real(decider, reporters=1)
    appeal = appeal_on(decision, holder=appeals_staff.reviewer, statement="Mine.")
    label = dict(Action.choices)[decision.action]
    told = f"decided: {label} under {decision.rule}"
    appeal_page = signed_in(appeals_staff).get(f"/appeals/{appeal.pk}/").content.decode()
    assert told in appeal_page
    assert told in signed_in(senior).get(f"/cases/{decision.case_id}/").content.decode()
    assert "</strong> decided</div>" not in appeal_page  # the bare kind, as the appeal page once said it


def test_a_restricted_appeal_is_404_without_clearance(make_user, appeals_staff):
    senior = make_user("cib-senior", "senior,moderator", clearances=["cib"])
    appeal = appeal_on(decided(kind="cib", reviewer=senior.reviewer), holder=appeals_staff.reviewer)

    assert signed_in(appeals_staff).get(f"/appeals/{appeal.pk}/").status_code == 404
    assert (
        signed_in(appeals_staff)
        .post(f"/appeals/{appeal.pk}/resolve/", {"outcome": "upheld", "rationale": "x"})
        .status_code
        == 404
    )
    assert Appeal.objects.get(pk=appeal.pk).status == "in_review"


def test_the_appeal_page_reads_its_appeal_with_everything_shown_in_one_prepared_statement(
    decider, appeals_staff, django_assert_num_queries
):
    decision = decide_for_real(decider)
    appeal = appeal_on(decision, holder=appeals_staff.reviewer)
    signed_in(appeals_staff).post(
        f"/appeals/{appeal.pk}/resolve/",
        {"outcome": "modified", "action": "suspend", "rule": "SP-2", "duration_days": "7", "rationale": "Repeat."},
    )
    waiting = appeal_on(decided(reviewer=None))  # an automated decision: no decider, no holder, no outcome

    with django_assert_num_queries(1):
        resolved = appeal_for(appeals_staff, appeal.pk)
        case = resolved.decision.case
        shown = (
            resolved.decision.reviewer.user.username,
            resolved.assigned_to.user.username,
            resolved.resolved_by.user.username,
            (resolved.new_decision.action, resolved.new_decision.duration_days),
            (case.subject.external_id, case.threat_class.slug, case.queue.slug),
            resolved.decision.policy_version.policy.name,
        )
    fresh = Appeal.objects.get(pk=appeal.pk)
    assert shown == (
        decider.username,
        appeals_staff.username,
        appeals_staff.username,
        ("suspend", 7),
        (fresh.decision.case.subject.external_id, "spam", fresh.decision.case.queue.slug),
        fresh.decision.policy_version.policy.name,
    )
    with django_assert_num_queries(1):
        bare = appeal_for(appeals_staff, waiting.pk)
        assert (bare.decision.reviewer, bare.assigned_to, bare.resolved_by, bare.new_decision) == (None,) * 4
    assert appeal_for(appeals_staff, 10**9) is None

    client = signed_in(appeals_staff)
    for _ in range(7):  # past PostgreSQL's five custom plans: the statement is planned once, then reused
        assert client.get(f"/appeals/{appeal.pk}/").status_code == 200
    with connection.cursor() as cur:
        cur.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%FROM appeals_appeal a JOIN reviews_decision d%"],
        )
        plans = cur.fetchall()
    # (one statement per type psycopg gives the id: an int2-sized id and 10**9 differ)
    assert any(generic >= 2 and generic + custom >= 7 for generic, custom in plans), plans


def test_overturn_through_the_form(decider, appeals_staff):
    decision = decide_for_real(decider)
    appeal = appeal_on(decision, holder=appeals_staff.reviewer)

    response = signed_in(appeals_staff).post(
        f"/appeals/{appeal.pk}/resolve/", {"outcome": "overturned", "rationale": "Not spam."}, follow=True
    )

    assert response.redirect_chain == [("/appeals/", 302)]
    assert texts(response) == [f"Appeal {appeal.pk} resolved: overturned."]
    assert Decision.objects.get(pk=decision.pk).overturned is True
    assert Enforcement.objects.filter(decision=decision, kind="reverse").count() == 1


def test_modify_through_the_form(decider, appeals_staff):
    decision = decide_for_real(decider)
    appeal = appeal_on(decision, holder=appeals_staff.reviewer)

    signed_in(appeals_staff).post(
        f"/appeals/{appeal.pk}/resolve/",
        {"outcome": "modified", "action": "suspend", "rule": "SP-2", "duration_days": "7", "rationale": "Repeat."},
    )

    new = Appeal.objects.get(pk=appeal.pk).new_decision
    assert (new.action, new.rule, new.duration_days) == ("suspend", "SP-2", 7)


@pytest.mark.parametrize(
    "who, data, message",
    [
        ("other", {"outcome": "upheld", "rationale": "x"}, "Only the reviewer holding this appeal may resolve it."),
        ("decider", {"outcome": "upheld", "rationale": "x"}, "You made a decision on this case"),
        ("holder", {"outcome": "upheld", "rationale": ""}, "Reasons: This field is required."),
        ("holder", {"outcome": "modified", "action": "lock", "rationale": "x"}, "Lock account is not on the ladder"),
        ("holder", {"outcome": "modified", "rationale": "x"}, "The resolution is invalid."),
    ],
)
def test_refusals_are_messages_and_change_nothing(make_user, appeals_staff, appeals_staff_2, who, data, message):
    both = make_user("mod-and-appeals", "moderator,appeals")
    decision = decide_for_real(both)
    appeal = appeal_on(decision, holder=appeals_staff.reviewer)
    user = {"other": appeals_staff_2, "decider": both, "holder": appeals_staff}[who]
    before = (Decision.objects.count(), Enforcement.objects.count(), CaseEvent.objects.count())

    response = signed_in(user).post(f"/appeals/{appeal.pk}/resolve/", data, follow=True)

    assert response.status_code == 200
    assert response.redirect_chain == [(f"/appeals/{appeal.pk}/", 302)]
    assert len(texts(response)) == 1 and message in texts(response)[0]
    assert Appeal.objects.get(pk=appeal.pk).status == "in_review"
    assert (Decision.objects.count(), Enforcement.objects.count(), CaseEvent.objects.count()) == before


def test_forms_need_the_csrf_token(decider, appeals_staff):
    appeal = appeal_on(decided(reviewer=decider.reviewer))
    client = Client(enforce_csrf_checks=True)
    client.force_login(appeals_staff)

    assert client.post("/appeals/claim/").status_code == 403
    assert Appeal.objects.get(pk=appeal.pk).status == "received"


def test_a_resolved_appeal_shows_what_the_appellant_is_told(decider, appeals_staff):
    appeal = appeal_on(decided(reviewer=decider.reviewer), holder=appeals_staff.reviewer)
    client = signed_in(appeals_staff)
    client.post(f"/appeals/{appeal.pk}/resolve/", {"outcome": "upheld", "rationale": "Spam it is."})

    html = client.get(f"/appeals/{appeal.pk}/").content.decode()

    assert "The outcome of your appeal" in html
    assert "Outcome: the decision stands." in html
    assert 'id="resolve-form"' not in html
