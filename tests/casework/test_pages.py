"""Pages for sources and threshold governance, over the same services as the API."""

import pytest

from policies.models import Threshold, ThresholdChange
from policies.services import threshold_change_propose
from tests.factories import SignalFactory, SourceFactory, threat_class

pytestmark = pytest.mark.django_db


@pytest.fixture
def second_admin(make_user):
    return make_user("padmin2", "policy_admin")


@pytest.fixture
def change(policy_admin):
    source = SourceFactory(slug="spam-clf", kind="classifier")
    for score in (0.2, 0.5, 0.85, 0.95):
        SignalFactory(source=source, threat_class=threat_class("spam"), score=score)
    return threshold_change_propose(
        source_slug="spam-clf",
        threat_class_slug="spam",
        auto_action_at=0.9,
        review_at=0.4,
        reason="classifier v7 is calibrated",
        actor=policy_admin,
    )


def governance():
    return (
        sorted(Threshold.objects.values_list("source_id", "auto_action_at", "review_at")),
        sorted(ThresholdChange.objects.values_list("id", "status", "approved_by_id")),
    )


def test_sources_index_lists_health_in_words(login, moderator):
    SourceFactory(slug="spam-clf", kind="classifier", name="Spam classifier", status="quarantined")
    page = login(moderator).get("/sources/").content.decode()
    assert 'href="/sources/spam-clf/"' in page and "Spam classifier" in page
    assert "Quarantined" in page and "Pipeline judged broken" in page


def test_sources_index_is_for_staff(login, platform):
    assert login(platform).get("/sources/").status_code == 403


def test_thresholds_index_lists_waiting_changes(login, second_admin, change):
    page = login(second_admin).get("/thresholds/").content.decode()
    assert f'href="/threshold-changes/{change.pk}/"' in page and "Waiting for a second admin" in page


def test_thresholds_pages_are_for_policy_admins(login, moderator, change):
    for url in ("/thresholds/", f"/threshold-changes/{change.pk}/"):
        assert login(moderator).get(url).status_code == 403


def test_change_detail_shows_the_blast_radius_as_a_table(login, second_admin, change):
    response = login(second_admin).get(f"/threshold-changes/{change.pk}/")
    page = response.content.decode()
    rows = {r["key"]: (r["before"], r["after"], r["delta"]) for r in response.context["rows"]}
    radius = change.blast_radius
    assert rows["auto_actioned"] == (radius["before"]["auto_actioned"], radius["after"]["auto_actioned"], 1)
    assert '<table id="blast-radius">' in page and "Actioned automatically" in page
    assert "{" not in page.split('id="blast-radius"')[1].split("</table>")[0]  # a table, not JSON
    assert "Approve and apply" in page


def test_second_admin_approves_from_the_page(login, second_admin, change):
    response = login(second_admin).post(f"/threshold-changes/{change.pk}/approve/", follow=True)
    assert "approved and applied" in response.content.decode()
    change.refresh_from_db()
    assert (change.status, change.approved_by) == ("applied", second_admin)
    assert Threshold.objects.get().auto_action_at == 0.9


def test_proposer_sees_no_approve_button_and_is_refused_on_the_page(login, policy_admin, change):
    client = login(policy_admin)
    assert "Approve and apply" not in client.get(f"/threshold-changes/{change.pk}/").content.decode()
    before = governance()
    response = client.post(f"/threshold-changes/{change.pk}/approve/")
    assert response.status_code == 403
    assert "must be approved by another policy admin" in response.content.decode()
    assert 'id="blast-radius"' in response.content.decode()  # the page again, not an error page
    assert governance() == before


def test_reject_moves_nothing(login, second_admin, change):
    login(second_admin).post(f"/threshold-changes/{change.pk}/reject/")
    change.refresh_from_db()
    assert change.status == "rejected" and not Threshold.objects.exists()


def test_unknown_change_is_404(login, second_admin):
    assert login(second_admin).get("/threshold-changes/99999/").status_code == 404
    assert login(second_admin).post("/threshold-changes/99999/approve/").status_code == 404
