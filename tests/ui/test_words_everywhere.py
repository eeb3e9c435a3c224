"""Words, not slugs: every page a reviewer or admin reads names queues, classes, sources, actions, statuses and
events by their labels, over the demo's data (every workflow has something to show)."""

import html
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from casework.events import Kind as EventKind
from casework.models import Campaign, Case, Queue, SourceIncident
from policies.models import Action, SignalSource, ThreatClass, ThresholdChange
from reviews.accounts import user_upsert
from reviews.models import QualityReview, RelabelItem
from reviews.services import queue_claim
from tests.factories import CaseFactory
from tests.ui.conftest import messages_of

pytestmark = pytest.mark.django_db

# What is shown for an identifier (subject ids, rule codes, a source's slug beside its name) is set in
# monospace on purpose; chart labels, cells, badges, headings, options and messages must be words.
_IDENTIFIER = re.compile(
    r'<(span|td|dd|code|kbd)[^>]*class="[^"]*\bmono\b[^"]*"[^>]*>.*?</\1>|<code>.*?</code>|<kbd>.*?</kbd>', re.S
)
_HIDDEN = re.compile(r"<(script|style|textarea)[^>]*>.*?</\1>|<!--.*?-->", re.S)
# An element whose whole text is one thing: a cell, a badge, a heading, an option, a chart label, a link.
_LEAF = re.compile(r"<(td|th|span|option|text|h1|h2|a|dd|strong|legend|label)\b[^>]*>([^<]*)</\1>")


def _slugs():
    words = set(ThreatClass.objects.values_list("slug", flat=True))
    words |= set(Queue.objects.values_list("slug", flat=True))
    words |= set(SignalSource.objects.values_list("slug", flat=True))
    words |= set(Action.values) | set(EventKind.values)
    words |= set(SignalSource.Kind.values) | set(SignalSource.Status.values) | set(Case.Status.values)
    words |= {"rate_spike", "score_shift", "idle", "enforce", "reverse"}
    return words


def slugs_shown(response, slugs):
    """Slugs a reader sees on the page: anywhere when they carry ``_`` or ``-``, else as a whole element's text."""
    page = _IDENTIFIER.sub(" ", _HIDDEN.sub(" ", response.content.decode()))
    found = set()
    for _tag, text in _LEAF.findall(page):
        text = html.unescape(text).strip()
        if text in slugs:
            found.add(text)
    visible = html.unescape(re.sub(r"<[^>]+>", " ", page))
    for slug in slugs:
        if ("_" in slug or "-" in slug) and re.search(rf"(?<![\w/-]){re.escape(slug)}(?![\w/-])", visible):
            found.add(slug)
    return found


@pytest.fixture
def demo():
    call_command("docket_demo", "--password", "demo-pass-123")
    # The dashboard's incident table and the source page's incident: one corroborated spike.
    source = SignalSource.objects.get(slug="ato-rules")
    SourceIncident.objects.create(
        source=source, kind="rate_spike", detail={"current_rate": 90, "baseline_rate": 5.0}, opened_at=source.created_at
    )


def client_for(username):
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


def test_no_page_shows_a_slug_where_a_label_belongs(demo):
    slugs = _slugs()
    case = Case.objects.filter(queue__slug="spam").order_by("id").first()
    escalated = Case.objects.filter(queue__slug="escalations").first()
    decided = Case.objects.filter(status="decided").first()
    pages = {
        "senior": [
            "/",
            "/dashboard/",
            "/escalations/",
            "/queues/spam/",
            "/queues/escalations/",
            "/queues/csam/",
            f"/cases/{case.pk}/",
            f"/cases/{decided.pk}/",
            "/campaigns/",
            "/sources/",
            "/sources/spam-classifier/",
            "/sources/ato-rules/",
            "/qa/",
            "/relabel/",
            "/decisions/mine/",
            *(f"/campaigns/{c.pk}/" for c in Campaign.objects.all()),
            *(f"/qa/{r.pk}/" for r in QualityReview.objects.filter(status="pending")[:2]),
            *(f"/relabel/{r.pk}/" for r in RelabelItem.objects.all()[:2]),
        ],
        "mod2": ["/", "/decisions/mine/"],
        "padmin": [
            "/thresholds/",
            "/sources/",
            "/dashboard/",
            "/admin/policies/threatclass/",
            *(f"/threshold-changes/{c.pk}/" for c in ThresholdChange.objects.all()),
        ],
    }
    if escalated is not None:
        pages["senior"].append(f"/cases/{escalated.pk}/")
    shown = {}
    for username, paths in pages.items():
        client = client_for(username)
        for path in paths:
            response = client.get(path)
            assert response.status_code == 200, (username, path, response.status_code)
            found = slugs_shown(response, slugs)
            if found:
                shown[path] = sorted(found)
    assert shown == {}


def test_the_checker_finds_a_slug_in_a_cell_and_a_hyphenated_one_anywhere(demo):
    class Page:
        def __init__(self, body):
            self.content = body.encode()

    slugs = _slugs()
    assert slugs_shown(Page("<td>payment_fraud</td>"), slugs) == {"payment_fraud"}
    assert slugs_shown(Page('<span class="badge">suspect</span>'), slugs) == {"suspect"}
    assert slugs_shown(Page("<p>Confirmed: spam-classifier is healthy</p>"), slugs) == {"spam-classifier"}
    assert slugs_shown(Page('<p>Commercial spam <span class="mono">spam-classifier</span></p>'), slugs) == set()
    assert slugs_shown(Page("<td>Spam</td><td>Hash match</td>"), slugs) == set()


def test_messages_name_queues_and_actions(db):
    senior = user_upsert(username="lead", role_names=["senior", "moderator"], password="pw", queues=["spam"])
    client = Client()
    client.force_login(senior)
    empty = client.post("/queues/spam/claim/", follow=True)
    assert messages_of(empty) == ["The Spam queue has no case for you right now."]

    case = CaseFactory(kind="spam", priority=100.0)
    assignment = queue_claim(reviewer=senior, queue_slug="spam")
    back = client.post(f"/assignments/{assignment.pk}/release/", follow=True)
    assert messages_of(back) == [f"Case {case.pk} went back to the Spam queue."]
    assignment = queue_claim(reviewer=senior, queue_slug="spam")
    refused = client.post(f"/cases/{case.pk}/decision/", {"action": "legal_report", "rule": "SP-1"})
    [message] = messages_of(refused)
    assert message.startswith("Legal report is not on the ladder of Spam v1: No violation, Label, ")
    # The source pages' messages: tests/ui/test_sources.py ("Confirmed: Spam classifier is healthy; ...").
