"""The search box, the results page, the subject page, the case page's account history, media reveals."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from appeals.services import appeal_file
from casework.models import Case
from docket import roles
from docket.models import AccessLog
from docket.visibility import clearances_of
from reviews.models import Strike
from reviews.selectors import account_record
from tests.reliability.conftest import decide
from tests.support import signed_in

pytestmark = pytest.mark.django_db


def test_every_staff_page_has_the_search_box(inv):
    client = signed_in(inv.moderator)
    for url in ("/", "/dashboard/", f"/cases/{inv.alice.pk}/", "/search/?q=alice"):
        html = client.get(url).content.decode()
        assert 'id="site-search"' in html and 'data-shortcut="/"' in html, url


def test_results_link_to_subject_pages_and_keep_the_query(inv):
    html = signed_in(inv.moderator).get("/search/?q=dev-a").content.decode()
    assert 'value="dev-a"' in html
    assert 'href="/subjects/account/alice-1/" data-result' in html
    assert 'href="/subjects/account/bob-1/" data-result' in html
    assert "hidden-1" not in html


def test_a_bad_search_is_a_message_not_an_error_page(inv):
    page = signed_in(inv.moderator).get("/search/?q=x&attribute=nonsense")
    assert page.status_code == 200
    assert "Write it as &lt;key&gt;:&lt;value&gt;" in page.content.decode()
    assert 'value="x"' in page.content.decode()


def test_subject_page_shows_history_linked_and_second_hop(inv):
    decision = decide(inv.alice, inv.decider, inv.senior)
    client = signed_in(inv.moderator)
    html = client.get("/subjects/account/alice-1/").content.decode()
    assert f'href="/cases/{inv.alice.pk}/"' in html
    assert decision.rule in html and f"/api/v1/decisions/{decision.pk}/statement-of-reasons/" in html
    assert "bob-1" in html and "dev-a" in html
    assert "carol-1" not in html and "hidden-1" not in html
    assert 'href="/subjects/content/post-77/"' in html
    assert "carol-1" in client.get("/subjects/account/alice-1/?hops=2").content.decode()
    assert client.get("/subjects/account/hidden-1/").status_code == 404
    assert signed_in(inv.senior).get("/subjects/account/hidden-1/").status_code == 200
    assert AccessLog.objects.filter(kind="access", object_type="subject", detail__via="ui").count() == 3


def test_case_page_links_the_subject_page_with_prior_decisions_and_strikes(inv):
    decision = decide(inv.alice, inv.decider, inv.senior)
    # The content case: its owner's (alice's) prior decision and strike show at a glance.
    html = signed_in(inv.moderator).get(f"/cases/{inv.post.pk}/").content.decode()
    assert 'href="/subjects/account/alice-1/" data-shortcut="h"' in html
    record = html[html.index('id="account-record"') : html.index('aria-labelledby="signals-h"')]
    assert f"Case {inv.alice.pk}" in record and decision.rule in record
    assert 'class="badge warn">1</span>' in record


def test_an_account_with_no_record_costs_one_light_statement(inv):
    user = inv.moderator
    roles.names(user), clearances_of(user)
    post = Case.objects.select_related("subject__owner").get(pk=inv.post.pk)
    with CaptureQueriesContext(connection) as queries:
        record = account_record(user=user, case=post)
    assert record == {"account": post.subject.owner, "decisions": [], "strikes": []}
    assert len(queries) == 1
    decision = decide(inv.alice, inv.decider, inv.senior)  # a decision on another case of the account, a strike
    record = account_record(user=user, case=post)
    assert [d.pk for d in record["decisions"]] == [decision.pk]
    assert [s.decision_id for s in record["strikes"]] == [decision.pk]
    Strike.objects.filter(decision=decision).update(removed_at=decision.created_at)  # the strike lifted
    with CaptureQueriesContext(connection) as queries:
        record = account_record(user=user, case=post)
    assert [d.pk for d in record["decisions"]] == [decision.pk] and record["strikes"] == []
    assert len(queries) == 2


def test_the_account_history_reads_only_what_it_shows(inv):
    """Its prior decisions and strikes come without their cases' subjects and rows, the deciders' accounts and
    the decisions' texts (the case page reads them on every open), and showing them reads nothing more."""
    decision = decide(inv.alice, inv.decider, inv.senior)
    user = inv.moderator
    roles.names(user), clearances_of(user)  # read once per request before the history, by the page's other reads
    post = Case.objects.select_related("subject__owner").get(pk=inv.post.pk)
    with CaptureQueriesContext(connection) as queries:
        record = account_record(user=user, case=post)
        shown = [
            (d.case_id, d.case.threat_class.name, d.get_action_display(), d.rule, d.created_at, d.overturned)
            for d in record["decisions"]
        ]
        strikes = [(s.decision.get_action_display(), s.expires_at) for s in record["strikes"]]
    assert shown == [
        (
            inv.alice.pk,
            inv.alice.threat_class.name,
            decision.get_action_display(),
            decision.rule,
            decision.created_at,
            False,
        )
    ]
    assert strikes == [(decision.get_action_display(), Strike.objects.get(decision=decision).expires_at)]
    assert len(queries) == 3  # whether a decision or a strike exists, then each
    for sql in (q["sql"] for q in queries):
        for unread in ('"casework_subject"."attributes"', '"casework_case"."priority_breakdown"', '"auth_user"."'):
            assert unread not in sql
        assert '"reviews_decision"."rationale"' not in sql and '"reviews_decision"."statement"' not in sql


def test_restricted_case_page_and_reveal_are_logged(inv):
    senior = signed_in(inv.senior)
    assert senior.get(f"/cases/{inv.alice.pk}/").status_code == 200  # unrestricted: not logged
    assert not AccessLog.objects.filter(kind="access").exists()
    page = senior.get(f"/cases/{inv.hidden.pk}/").content.decode()
    assert f'data-reveal-url="/cases/{inv.hidden.pk}/reveal/"' in page
    assert senior.post(f"/cases/{inv.hidden.pk}/reveal/", {"items": "all", "page": "case"}).status_code == 204
    rows = list(
        AccessLog.objects.filter(kind="access")
        .order_by("id")
        .values_list("username", "action", "object_id", "threat_class")
    )
    assert rows == [
        ("inv-senior", "view", str(inv.hidden.pk), "csam"),
        ("inv-senior", "reveal", str(inv.hidden.pk), "csam"),
    ]
    moderator = signed_in(inv.moderator)
    assert moderator.post(f"/cases/{inv.hidden.pk}/reveal/").status_code == 404
    assert moderator.get(f"/cases/{inv.hidden.pk}/reveal/").status_code == 405
    assert AccessLog.objects.filter(kind="access").count() == 2


def test_exports_and_appeal_reads_are_logged(inv, api_for, make_user):
    decision = decide(inv.alice, inv.decider, inv.senior)
    appeal = appeal_file(decision_id=decision.pk, appellant="alice-1", statement="no", actor=inv.platform)
    appeals_user = make_user("inv-appeals", "appeals")
    assert api_for(inv.senior).get(f"/api/v1/cases/{inv.alice.pk}/export/").status_code == 200
    assert api_for(appeals_user).get(f"/api/v1/appeals/{appeal.pk}/").status_code == 200
    assert signed_in(appeals_user).get(f"/appeals/{appeal.pk}/").status_code == 200
    assert api_for(inv.senior).get(f"/api/v1/cases/{inv.hidden.pk}/").status_code == 200
    assert api_for(inv.senior).get(f"/api/v1/cases/{inv.alice.pk}/").status_code == 200  # unrestricted: not logged
    rows = list(
        AccessLog.objects.filter(kind="access")
        .order_by("id")
        .values_list("username", "action", "object_type", "object_id")
    )
    assert rows == [
        ("inv-senior", "export", "case", str(inv.alice.pk)),
        ("inv-appeals", "view", "appeal", str(appeal.pk)),
        ("inv-appeals", "view", "appeal", str(appeal.pk)),
        ("inv-senior", "view", "case", str(inv.hidden.pk)),
    ]
