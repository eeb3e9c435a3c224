"""Pages for QA second reviews, relabels, my decisions and the campaigns index."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from casework.models import Campaign
from policies.models import PolicyVersion
from policies.services import policy_version_activate, policy_version_draft_from
from reviews.models import Decision, QualityReview, RelabelItem
from tests.factories import CaseFactory, active_version, threat_class

pytestmark = pytest.mark.django_db


@pytest.fixture
def decider(make_user):
    return make_user("decider", "moderator")


def decision(kind, *, by, action="remove", minutes_ago=10):
    at = timezone.now() - timedelta(minutes=minutes_ago)
    case = CaseFactory(kind=kind, status="decided", decided_at=at, first_action_at=at)
    version = active_version(kind)
    return Decision.objects.create(
        case=case,
        reviewer=by.reviewer,
        action=action,
        rule=version.rules[0]["code"],
        policy_version=version,
        created_at=at,
        qa_sampled=True,
    )


@pytest.fixture
def qa(decider):
    d = decision("spam", by=decider)
    return QualityReview.objects.create(decision=d, created_at=timezone.now())


def qa_state():
    return sorted(QualityReview.objects.values_list("id", "status", "action", "agrees"))


def test_qa_list_shows_others_decisions_only(login, moderator, decider, qa):
    assert f'href="/qa/{qa.pk}/"' in login(moderator).get("/qa/").content.decode()
    assert f'href="/qa/{qa.pk}/"' not in login(decider).get("/qa/").content.decode()


def test_qa_review_is_blind_and_recorded(login, moderator, qa):
    client = login(moderator)
    page = client.get(f"/qa/{qa.pk}/").content.decode()
    assert "Record" in page and "Remove" in page  # the ladder in words
    assert "Sampled decisions" not in page and qa.decision.get_action_display() not in page.split("Your call")[0]
    response = client.post(f"/qa/{qa.pk}/", {"action": "remove", "rule": qa.decision.rule})
    assert response.status_code == 302 and response.url == "/qa/"
    qa.refresh_from_db()
    assert (qa.status, qa.agrees, qa.reviewer.user) == ("done", True, moderator)


def test_qa_refusal_re_renders_the_form_with_the_choice_kept(login, moderator, qa):
    client = login(moderator)
    before = qa_state()
    # A choice off the ladder is refused by the form; the page comes back with the error beside the field.
    response = client.post(f"/qa/{qa.pk}/", {"action": "teleport", "rule": qa.decision.rule})
    assert response.status_code == 400
    form = response.context["form"]
    assert "action" in form.errors and form["rule"].value() == qa.decision.rule
    assert 'class="field-error"' in response.content.decode()
    assert qa_state() == before


def test_qa_by_the_decider_is_not_offered_and_refused(login, decider, qa):
    client = login(decider)
    assert "your own decision" in client.get(f"/qa/{qa.pk}/").content.decode()
    before = qa_state()
    response = client.post(f"/qa/{qa.pk}/", {"action": "remove"})
    assert response.status_code == 403 and "cannot review their own decision" in response.content.decode()
    assert qa_state() == before


def test_qa_of_a_restricted_class_is_404_without_clearance(login, moderator, make_user):
    cleared = make_user("cleared", "moderator", clearances=["csam"])
    d = decision("csam", by=cleared)
    review = QualityReview.objects.create(decision=d, created_at=timezone.now())
    assert login(moderator).get(f"/qa/{review.pk}/").status_code == 404


def test_qa_is_for_case_workers(login, make_user, qa):
    assert login(make_user("ap", "appeals")).get("/qa/").status_code == 403


def test_relabel_page_records_a_relabel(login, moderator, decider, policy_admin):
    decision("spam", by=decider)
    v2 = policy_version_activate(
        version=policy_version_draft_from(version=active_version("spam"), actor=policy_admin), actor=policy_admin
    )
    item = RelabelItem.objects.get(policy_version=v2)
    client = login(moderator)
    assert f'href="/relabel/{item.pk}/"' in client.get("/relabel/").content.decode()
    response = client.post(f"/relabel/{item.pk}/", {"action": "no_violation", "rule": ""})
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.status, item.agrees) == ("done", False)
    assert PolicyVersion.objects.get(pk=v2.pk).status == "active"


def table_of(html):
    """The page's heading, its count line, and its table as rows of cell texts (header row first)."""

    def text(fragment):
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)).strip()

    [head] = re.findall(r'<div class="page-head">(.*?)</div>', html, re.S)
    rows = [
        [text(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, re.S)]
        for r in re.findall(r"<tr>(.*?)</tr>", html, re.S)
    ]
    return text(head), rows


def test_the_qa_and_relabel_lists_each_show_their_columns_their_rows_and_an_empty_state(
    login, moderator, decider, policy_admin, qa
):
    case = qa.decision.case
    assert table_of(login(moderator).get("/qa/").content.decode()) == (
        "QA: blind second reviews 1 waiting for you",
        [
            ["Review", "Class", "Subject", "Sampled"],
            [
                f"Review case {case.pk}",
                case.threat_class.name,
                f"{case.subject.kind}:{case.subject.external_id}",
                timezone.localtime(qa.created_at).strftime("%b %-d, %H:%M"),
            ],
        ],
    )
    assert table_of(login(moderator).get("/relabel/").content.decode()) == (
        "Relabels under new policy versions 0 waiting",
        [["Item", "Policy version", "Class", "Queued"], ["Nothing to relabel."]],
    )
    v2 = policy_version_activate(
        version=policy_version_draft_from(version=active_version("spam"), actor=policy_admin), actor=policy_admin
    )
    item = RelabelItem.objects.get(policy_version=v2)
    assert table_of(login(moderator).get("/relabel/").content.decode())[1][1] == [
        f"Relabel case {item.decision.case_id}",
        f"{v2.policy.name} v{v2.number}",
        v2.policy.threat_class.name,
        timezone.localtime(item.created_at).strftime("%b %-d, %H:%M"),
    ]
    assert table_of(login(decider).get("/qa/").content.decode())[1][1] == ["Nothing to review."]


def test_my_decisions_lists_mine_with_labels(login, decider, moderator):
    mine = decision("spam", by=decider, action="reduce")
    decision("spam", by=moderator)
    page = login(decider).get("/decisions/mine/").content.decode()
    assert f'href="/cases/{mine.case_id}/"' in page and "Reduce reach" in page
    assert page.count('href="/cases/') == 1


def test_campaigns_index_lists_visible_open_campaigns(login, moderator):
    spam = Campaign.objects.create(threat_class=threat_class("spam"), size=6, detected_at=timezone.now())
    cib = Campaign.objects.create(threat_class=threat_class("cib"), size=9, detected_at=timezone.now())
    done = Campaign.objects.create(
        threat_class=threat_class("spam"), size=5, detected_at=timezone.now(), status="dismissed"
    )
    page = login(moderator).get("/campaigns/").content.decode()
    assert f'href="/campaigns/{spam.pk}/"' in page
    assert f'href="/campaigns/{cib.pk}/"' not in page  # restricted class, no clearance
    assert f'href="/campaigns/{done.pk}/"' not in page
    assert f'href="/campaigns/{done.pk}/"' in login(moderator).get("/campaigns/?status=all").content.decode()


def test_senior_dismisses_a_campaign_after_confirming(login, senior, moderator):
    campaign = Campaign.objects.create(threat_class=threat_class("spam"), size=6, detected_at=timezone.now())
    url = f"/campaigns/{campaign.pk}/dismiss/"
    assert "Dismiss the campaign" in login(senior).get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "Dismiss the campaign" not in login(moderator).get(f"/campaigns/{campaign.pk}/").content.decode()
    login(senior).post(url, {})  # no confirmation: nothing happens
    assert Campaign.objects.get(pk=campaign.pk).status == "open"
    login(moderator).post(url, {"confirm": "yes"})  # not a senior: refused
    assert Campaign.objects.get(pk=campaign.pk).status == "open"
    response = login(senior).post(url, {"confirm": "yes"}, follow=True)
    assert "dismissed as coincidental" in response.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).status == "dismissed"
