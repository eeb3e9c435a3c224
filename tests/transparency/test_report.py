"""The transparency report on a hand-computed scenario: exact figures, JSON and CSV, and who may read it."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from appeals.models import Appeal
from policies.models import SignalSource
from reviews.accounts import user_upsert
from reviews.models import Decision
from reviews.statements import Publication, decisions_publish
from tests.factories import CaseFactory, ReporterFactory, SignalFactory, active_version

pytestmark = pytest.mark.django_db


def at(day, hour=0):
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def signal(case, source, received):
    SignalFactory(
        case=case,
        subject=case.subject,
        threat_class=case.threat_class,
        source=source,
        disposition="queued",
        reporter=ReporterFactory() if source.kind in ("user_report", "trusted_flagger") else None,
        score=0.9 if source.kind == "classifier" else None,
        occurred_at=received,
        received_at=received,
    )


def decision(case, action, when, *, reviewer=None, duration_days=None, group=False):
    d = Decision.objects.create(
        case=case,
        reviewer=reviewer,
        automated=reviewer is None,
        action=action,
        rule=""
        if action == "no_violation" or reviewer is None
        else active_version(case.threat_class.slug).rule_codes()[0],
        policy_version=active_version(case.threat_class.slug),
        duration_days=duration_days,
        created_at=when,
    )
    d = Decision.objects.select_related("case__threat_class", "case__subject", "policy_version__policy").get(pk=d.pk)
    decisions_publish([Publication(decision=d, group=group)], now=when)  # the pipeline's statement, as made then
    return d


def appeal(d, received, *, resolved=None, outcome="", by=None, appellant="u-owner"):
    return Appeal.objects.create(
        decision=d,
        appellant=appellant,
        statement="please",
        received_at=received,
        deadline=received + timedelta(hours=72),
        status="resolved" if resolved else "received",
        outcome=outcome,
        resolved_by=by if resolved else None,
        resolved_at=resolved,
        rationale="Reviewed." if resolved else "",
    )


@pytest.fixture
def scenario(make_user):
    """March 2026, by hand:

    - A (spam): two plain user reports at 03-02 10:00 and 11:00; a moderator removes it at 12:00.
    - B (harassment): an Art. 16 notice at 03-05 00:00 and a trusted flagger at 06:00; a senior's
      bulk decision suspends it for 7 days at 03-06 00:00.
    - C (spam): a classifier at 03-10; automation removes it at 03-10 01:00.
    - D (csam): a user report at 03-12; no violation (no statement).
    - E (spam): a user report at 04-01 00:00, after the period.
    - Appeals: on A received 03-03, upheld 03-04; on B received 03-07, overturned 03-07 12:00;
      on C received 03-20, open.
    """
    reports = SignalSource.objects.get(slug="user-reports")
    art16 = SignalSource.objects.create(slug="illegal-notices", kind="user_report", dsa_article_16=True)
    flagger = SignalSource.objects.create(slug="flagger", name="Hotline e.V.", kind="trusted_flagger")
    classifier = SignalSource.objects.create(slug="clf", kind="classifier")
    moderator = user_upsert(username="tr-mod", role_names=["moderator"]).reviewer
    senior = user_upsert(username="tr-senior", role_names=["senior", "moderator"], clearances=["csam"]).reviewer
    staff = make_user("tr-appeals", "appeals").reviewer

    a = CaseFactory(kind="spam")
    signal(a, reports, at(2, 10))
    signal(a, reports, at(2, 11))
    da = decision(a, "remove", at(2, 12), reviewer=moderator)
    b = CaseFactory(kind="harassment")
    signal(b, art16, at(5))
    signal(b, flagger, at(5, 6))
    db = decision(b, "suspend", at(6), reviewer=senior, duration_days=7, group=True)
    c = CaseFactory(kind="spam")
    signal(c, classifier, at(10))
    dc = decision(c, "remove", at(10, 1))
    d = CaseFactory(kind="csam")
    signal(d, reports, at(12))
    decision(d, "no_violation", at(12, 5), reviewer=senior)
    e = CaseFactory(kind="spam")
    signal(e, reports, datetime(2026, 4, 1, tzinfo=UTC))

    appeal(da, at(3), resolved=at(4), outcome="upheld", by=staff)
    appeal(db, at(7), resolved=at(7, 12), outcome="overturned", by=staff)
    appeal(dc, at(20))


EXPECTED_NOTICES = {
    "total": 5,
    "by_source_type": {"SOURCE_ARTICLE_16": 1, "SOURCE_TRUSTED_FLAGGER": 1, "SOURCE_TYPE_OTHER_NOTIFICATION": 3},
    "trusted_flaggers": 1,
}


def nonzero(counts):
    return {k: v for k, v in counts.items() if v}


def test_the_figures_of_the_scenario(scenario, api_for, policy_admin):
    answer = api_for(policy_admin).get("/api/v1/transparency-report/?from=2026-03-01&to=2026-03-31")
    assert answer.status_code == 200, answer.content
    report = answer.json()
    assert report["period"] == {"from": "2026-03-01", "to": "2026-03-31"}

    notices = report["notices"]
    assert {k: notices[k] for k in EXPECTED_NOTICES} == EXPECTED_NOTICES
    assert nonzero(notices["by_category"]) == {
        "STATEMENT_CATEGORY_OTHER_VIOLATION_TC": 2,
        "STATEMENT_CATEGORY_CYBER_VIOLENCE": 2,
        "STATEMENT_CATEGORY_PROTECTION_OF_MINORS": 1,
    }
    assert len(notices["by_category"]) == 16  # every category of the template, zeros included

    actions = report["actions"]
    assert actions["total"] == 3  # no_violation restricts nothing: no statement, not an action
    assert nonzero(actions["by_restriction"]) == {
        "DECISION_VISIBILITY_CONTENT_REMOVED": 2,
        "DECISION_ACCOUNT_SUSPENDED": 1,
        "DECISION_PROVISION_TOTAL_SUSPENSION": 1,
    }
    assert nonzero(actions["by_category"]) == {
        "STATEMENT_CATEGORY_OTHER_VIOLATION_TC": 2,
        "STATEMENT_CATEGORY_CYBER_VIOLENCE": 1,
    }
    assert nonzero(actions["by_ground"]) == {"DECISION_GROUND_INCOMPATIBLE_CONTENT": 3}
    assert (actions["own_initiative"], actions["on_notice"]) == (1, 2)
    assert nonzero(actions["by_source_type"]) == {
        "SOURCE_TYPE_OTHER_NOTIFICATION": 1,
        "SOURCE_TRUSTED_FLAGGER": 1,
        "SOURCE_VOLUNTARY": 1,
    }
    assert actions["automated"] == {
        "fully": 1,
        "partially": 1,
        "not_automated": 1,
        "share": 0.3333,
        "detection_share": 0.3333,
    }
    # A: 2 h from the first report; B: 24 h from the first notice. Median of two: their mean.
    assert report["median_time_to_action_s"] == 46800.0
    assert report["complaints"] == {
        "received": 3,
        "resolved": 2,
        "by_outcome": {"modified": 0, "overturned": 1, "upheld": 1},
        "reversed": 1,
        "median_time_to_resolve_s": 64800.0,  # 24 h and 12 h
    }
    assert report["suspensions"] == {"total": 1, "for_illegal_content": 0, "for_incompatible_content": 1}


def test_the_csv_has_the_same_figures(scenario, api_for, policy_admin):
    answer = api_for(policy_admin).get("/api/v1/transparency-report/?from=2026-03-01&to=2026-03-31&format=csv")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/csv")
    assert 'filename="transparency-report-2026-03-01-2026-03-31.csv"' in answer["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(answer.content.decode())))
    assert rows[0] == ["figure", "value"]
    figures = dict(rows[1:])
    assert figures["period.from"] == "2026-03-01"
    assert figures["notices.total"] == "5"
    assert figures["notices.trusted_flaggers"] == "1"
    assert figures["notices.by_source_type.SOURCE_ARTICLE_16"] == "1"
    assert figures["actions.total"] == "3"
    assert figures["actions.by_restriction.DECISION_ACCOUNT_SUSPENDED"] == "1"
    assert figures["actions.automated.share"] == "0.3333"
    assert figures["median_time_to_action_s"] == "46800.0"
    assert figures["complaints.by_outcome.overturned"] == "1"
    assert figures["complaints.median_time_to_resolve_s"] == "64800.0"
    assert figures["suspensions.total"] == "1"
    json_figures = api_for(policy_admin).get("/api/v1/transparency-report/?from=2026-03-01&to=2026-03-31").json()
    assert len(rows) - 1 == _leaf_count(json_figures)


def _leaf_count(value):
    return sum(_leaf_count(v) for v in value.values()) if isinstance(value, dict) else 1


def test_a_narrower_period_counts_only_itself(scenario, api_for, policy_admin):
    report = api_for(policy_admin).get("/api/v1/transparency-report/?from=2026-03-06&to=2026-03-10").json()
    assert report["notices"]["total"] == 0
    assert report["actions"]["total"] == 2  # B on the 6th, C on the 10th (the whole day is included)
    assert report["median_time_to_action_s"] == 86400.0
    assert report["complaints"]["received"] == 1
    empty = api_for(policy_admin).get("/api/v1/transparency-report/?from=2025-01-01&to=2025-01-31").json()
    assert empty["actions"]["automated"]["share"] is None
    assert empty["median_time_to_action_s"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "from"),
        ("?from=2026-03-01", "to"),
        ("?from=2026-3-1&to=2026-03-31", "from"),
        ("?from=2026-03-31&to=2026-03-01", "to"),
        ("?from=2024-01-01&to=2026-03-01", "to"),
        ("?from=2026-03-01&to=2026-03-31&format=xml", "format"),
    ],
)
def test_a_bad_period_is_a_400_with_the_field(api_for, policy_admin, query, field):
    answer = api_for(policy_admin).get(f"/api/v1/transparency-report/{query}")
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid"
    assert field in answer.json()["errors"]


def test_only_policy_admins_read_it(api_for, make_user, platform):
    for user in (make_user("tr-m", "moderator"), make_user("tr-s", "senior"), platform):
        answer = api_for(user).get("/api/v1/transparency-report/?from=2026-03-01&to=2026-03-31")
        assert (answer.status_code, answer.json()["code"]) == (403, "forbidden")


def test_the_page_shows_the_period_the_figures_and_charts(scenario, client, policy_admin, make_user):
    client.force_login(policy_admin)
    page = client.get("/transparency/?from=2026-03-01&to=2026-03-31")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'value="2026-03-01"' in html and 'value="2026-03-31"' in html
    assert "Download CSV" in html
    assert "Other violation tc" in html
    assert 'class="meter"' in html
    bad = client.get("/transparency/?from=2026-03-31&to=2026-03-01")
    assert bad.status_code == 400
    assert "On or after from." in bad.content.decode()
    client.force_login(make_user("tr-mod2", "moderator"))
    assert client.get("/transparency/").status_code == 403
