"""``docket_demo`` leaves work for every role, and every demo login lands on a page with navigation."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from appeals.models import Appeal
from appeals.services import appeal_claim
from oversight.management.commands.docket_demo import USERS
from policies.models import ThresholdChange
from reviews.models import QualityReview
from reviews.selectors import quality_reviews_pending
from tests.twofactor import client_sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo():
    call_command("docket_demo", "--password", "demo-pass-123")
    return get_user_model().objects


def test_demo_leaves_qa_appeals_and_a_threshold_change_waiting(demo):
    mod, appeals, padmin = demo.get(username="mod"), demo.get(username="appeals"), demo.get(username="padmin")
    assert quality_reviews_pending(mod.reviewer).count() >= 2
    assert Appeal.objects.filter(status="received").count() == 2
    change = ThresholdChange.objects.get(status="proposed")
    assert change.proposed_by.username == "padmin2" and change.proposed_by != padmin
    assert appeal_claim(reviewer=appeals.reviewer) is not None


def test_demo_work_is_made_once(demo):
    before = (QualityReview.objects.count(), Appeal.objects.count(), ThresholdChange.objects.count())
    call_command("docket_demo")
    assert (QualityReview.objects.count(), Appeal.objects.count(), ThresholdChange.objects.count()) == before


def test_every_demo_login_lands_on_a_page_with_navigation(demo):
    for username, _, _ in USERS:
        client = Client()
        client_sign_in(client, username, "demo-pass-123")
        response = client.get("/", follow=True)
        page = response.content.decode()
        assert response.status_code == 200, username
        assert 'class="site-nav"' in page and "Sign out" in page, username
