"""The moderator UI reads through the one visibility mechanism and decides campaigns through the one service."""

import pytest
from django.utils import timezone

from casework.models import Campaign
from reviews.models import Decision
from tests.factories import CaseFactory, active_version, threat_class

pytestmark = pytest.mark.django_db


def test_a_campaign_of_a_visible_class_shows_even_with_no_visible_member(login, make_user):
    plain_senior = make_user("plain-senior", "senior")
    campaign = Campaign.objects.create(threat_class=threat_class("spam"), size=1, detected_at=timezone.now())
    CaseFactory(kind="csam", campaign=campaign)  # its only member is hidden from this senior
    page = login(plain_senior).get(f"/campaigns/{campaign.pk}/")
    assert page.status_code == 200 and list(page.context["cases"]) == []


def test_the_campaign_page_decides_all_or_nothing_through_the_service(login, senior):
    campaign = Campaign.objects.create(threat_class=threat_class("spam"), size=2, detected_at=timezone.now())
    spam = CaseFactory(kind="spam", campaign=campaign)
    csam = CaseFactory(kind="csam", campaign=campaign)  # "restrict" is not on csam's ladder
    page = login(senior).post(
        f"/campaigns/{campaign.pk}/bulk-decision/",
        {"cases": [spam.pk, csam.pk], "action": "restrict", "rule": "SP-1"},
        follow=True,
    )
    [message] = [str(m) for m in page.context["messages"]]
    assert message.startswith(f"Nothing was decided. Case {csam.pk}: Restrict is not on the ladder")
    assert Decision.objects.count() == 0
    assert Campaign.objects.get(pk=campaign.pk).status == "open"


def test_the_campaign_page_offers_only_open_members_and_its_class_ladder(login, senior):
    campaign = Campaign.objects.create(threat_class=threat_class("csam"), size=2, detected_at=timezone.now())
    waiting = CaseFactory(kind="csam", campaign=campaign)
    decided = CaseFactory(kind="csam", campaign=campaign, status="decided", decided_at=timezone.now())
    page = login(senior).get(f"/campaigns/{campaign.pk}/")
    html = page.content.decode()
    assert [c.pk for c in page.context["cases"]] == [waiting.pk]
    assert f'name="cases" value="{waiting.pk}"' in html
    assert f'name="cases" value="{decided.pk}"' not in html  # listed, but not selectable
    assert [c.pk for c in page.context["decided_cases"]] == [decided.pk]
    assert f'href="/cases/{decided.pk}/"' in html
    ladder = active_version("csam").ladder
    assert [a["value"] for a in page.context["ladder_all"]] == ladder
    assert '<option value="label">' not in html and "label" not in ladder
    assert [g["threat_class"].slug for g in page.context["rule_groups"]] == ["csam"]
