"""The source page and the dashboard: a source's status, what it holds, its incident, and an admin's decision."""

import re

import pytest

from casework.hygiene import sources_check_health
from casework.management.commands.simulate import scenario_run
from casework.models import Signal, SourceIncident
from policies.models import SignalSource
from tests.casework.test_hygiene import NOW, add_signals, last_hour, normal_weeks
from tests.factories import SourceFactory

from .conftest import messages_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def broken(db):
    """The shipped scenario: a week-old spam classifier bursts junk scores; 40 of its 60 signals are held."""
    scenario_run("broken-classifier", count=60, seed=1)
    source = SignalSource.objects.get(slug="spam-classifier")
    assert source.status == "suspect"
    return source


def held(source):
    return Signal.objects.filter(source=source, disposition="held").count()


def text(page):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.content.decode()))


def test_a_suspect_source_shows_what_it_holds_and_why_on_its_page(login, policy_admin, broken):
    page = login(policy_admin).get("/sources/spam-classifier/")

    assert page.status_code == 200
    body = text(page)
    assert "Suspect: its signals are held" in body
    assert "This source holds 40 signals" in body
    assert "for a score shift" in body
    assert "0 of its 20 subjects also reported by other sources within 6 h (needs 2)" in body
    assert "Class-wide rise not considered" in body
    assert "Confirm the spike is real (release 40 held)" in body
    assert "Quarantine the source" in body
    assert "Open incident" not in body


def test_the_dashboard_shows_the_suspect_source_holding_its_signals(login, policy_admin, broken):
    page = login(policy_admin).get("/dashboard/")

    html = page.content.decode()
    row = re.search(r'<a href="/sources/spam-classifier/">Spam classifier</a>.*?</tr>', html).group(0)
    assert "Suspect" in row and "holding 40" in row and "incident" not in row
    assert "No open incidents." in html
    assert page.context["totals"]["held"] == 40


def test_confirm_from_the_source_page_releases_the_held_signals(login, policy_admin, broken):
    client = login(policy_admin)

    page = client.post("/sources/spam-classifier/confirm/", follow=True)

    broken.refresh_from_db()
    assert page.redirect_chain == [("/sources/spam-classifier/", 302)]
    assert messages_of(page) == ["Confirmed: Spam classifier is healthy; 40 held signals entered the queue."]
    assert (broken.status, held(broken)) == ("healthy", 0)
    body = text(page)
    assert "healthy" in body and "Suspect" not in body
    assert "Confirmed by padmin" in body


def test_quarantine_from_the_source_page_keeps_them_held(login, policy_admin, broken):
    page = login(policy_admin).post("/sources/spam-classifier/quarantine/", follow=True)

    broken.refresh_from_db()
    assert messages_of(page) == ["Quarantined: the signals of Spam classifier stay held, stored and out of the queue."]
    assert (broken.status, held(broken)) == ("quarantined", 40)
    body = text(page)
    assert "Quarantined: its signals stay held" in body and "This source holds 40 signals" in body
    assert "Quarantine the source" not in body and "Confirm the spike is real (release 40 held)" in body


def test_a_moderator_sees_the_source_but_cannot_decide(login, moderator, broken):
    client = login(moderator)

    page = client.get("/sources/spam-classifier/")
    refused = client.post("/sources/spam-classifier/quarantine/", follow=True)

    assert "Quarantine the source" not in text(page) and "A policy admin can confirm" in text(page)
    assert messages_of(refused) == ["Only a policy admin confirms or quarantines a source."]
    broken.refresh_from_db()
    assert (broken.status, held(broken)) == ("suspect", 40)


def test_an_unknown_source_is_404(login, policy_admin):
    client = login(policy_admin)
    assert client.get("/sources/nope/").status_code == 404
    assert client.post("/sources/nope/confirm/").status_code == 404


@pytest.fixture
def incident(db):
    """A mature classifier's 20x spike, users reporting 30 of its 100 accounts: an open incident."""
    classifier = SourceFactory(slug="spam-model", kind="classifier", trust=0.9)
    normal_weeks(classifier, per_hour=5)
    spike = add_signals(classifier, last_hour(100), scores=[0.3])
    add_signals(SignalSource.objects.get(slug="user-reports"), last_hour(30), on=[s.subject for s in spike[:30]])
    assert sources_check_health(now=NOW)["incidents"] == ["spam-model"]
    return classifier


def test_an_open_incident_says_what_corroborated_it_and_what_an_admin_can_do(login, policy_admin, incident):
    client = login(policy_admin)

    dashboard = text(client.get("/dashboard/"))
    page = text(client.get("/sources/spam-model/"))

    corroboration = "30 of its 100 subjects also reported by other sources within 6 h (needs 10)."
    assert corroboration in dashboard and "confirm or quarantine" in dashboard
    assert "Open incident: rate spike" in page and corroboration in page
    assert "100 signals in the hour against 5.0 usual" in page
    assert "Confirm the spike is real" in page and "Quarantine the source" in page


def test_quarantining_a_source_with_an_incident_closes_it_on_every_page(login, policy_admin, incident):
    client = login(policy_admin)

    client.post("/sources/spam-model/quarantine/")

    dashboard = client.get("/dashboard/")
    html = dashboard.content.decode()
    row = re.search(r'<a href="/sources/spam-model/">spam-model</a>.*?</tr>', html).group(0)
    assert "Quarantined" in row and "incident" not in row
    assert "No open incidents." in html and dashboard.context["totals"]["incidents"] == 0
    assert "Open incident" not in text(client.get("/sources/spam-model/"))
    assert SourceIncident.objects.get().detail["resolution"] == "quarantined"


def test_confirming_an_incident_records_who_and_offers_only_quarantine(login, policy_admin, incident):
    client = login(policy_admin)

    client.post("/sources/spam-model/confirm/")

    page = text(client.get("/sources/spam-model/"))
    assert "Open incident: rate spike" in page and "Confirmed real by padmin." in page
    assert "Confirm the spike is real" not in page and "Quarantine the source" in page
    assert "Confirmed real by padmin." in text(client.get("/dashboard/"))


def test_resolving_an_incident_from_the_source_page_closes_it_and_keeps_the_status(login, policy_admin, incident):
    client = login(policy_admin)
    assert "Resolve the incident" in text(client.get("/sources/spam-model/"))

    page = client.post("/sources/spam-model/resolve-incident/", follow=True)

    assert messages_of(page) == ["Resolved: the incident of spam-model is closed; the source keeps its status."]
    resolved = SourceIncident.objects.get()
    assert (resolved.status, resolved.detail["resolution"], resolved.detail["resolved_by"]) == (
        "resolved",
        "resolved",
        "padmin",
    )
    assert SignalSource.objects.get(slug="spam-model").status == "healthy"
    page = text(client.get("/sources/spam-model/"))
    assert "Open incident" not in page and "Resolve the incident" not in page
    again = client.post("/sources/spam-model/resolve-incident/", follow=True)
    assert messages_of(again) == ["spam-model has no open incident."]
