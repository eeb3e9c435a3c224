"""Restricted threat classes (csam, cib) are invisible to users without the clearance, everywhere.

Two kinds of proof:

* differential: everything an uncleared user can read (lists with every filter, counts, queues,
  metrics, campaigns, QA and relabel work, appeals) is recorded, then restricted activity happens
  (new csam and cib cases through intake, on a subject the user can see, claims, escalations into the
  shared escalations and legal queues, decisions, appeals, a campaign) and everything is read again:
  not one byte may differ. What cannot change cannot tell. The Django admin likewise, as an uncleared
  policy admin: every changelist with every filter it offers, searches, raw-id popups, and the change
  view of every row and of the ids the activity fills.
* indistinguishable: asking for a restricted object by id answers exactly what asking for an id that
  does not exist answers, on every detail endpoint and UI page, and no UI page names a restricted
  case, subject or class.

Source figures are part of it: the held signals and the rates on ``/sources/``, a source's page and the
dashboard count only the classes the reader may see (the health job splits each rate by class). A
source's status and incidents are the source's own, whatever class moved it, and are shown to all.
"""

import json
import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.db import connection
from django.utils import timezone
from django.utils.http import urlencode

from appeals.services import appeal_file
from casework.campaigns import campaigns_detect
from casework.hygiene import source_quarantine, sources_check_health, sources_overview
from casework.intake import signals_ingest
from casework.models import Campaign, Case, CaseEvent, Queue, Reporter, Signal, Subject
from casework.priority import cases_reprioritise_all, cases_reprioritise_due
from policies.models import ThreatClass, ThresholdChange
from reviews.accounts import user_upsert
from reviews.models import Decision
from reviews.services import case_assign, case_escalate
from tests.factories import SourceFactory

from .conftest import RESTRICTED, _campaign, api_client, decide, rule_of, ui_client, violation_of

pytestmark = pytest.mark.django_db

MISSING = 999_999_999
VOLATILE = {"generated_at", "oldest_wait_seconds"}  # move with the clock, not with data


def _normalised(data):
    if isinstance(data, dict):
        return {k: _normalised(v) for k, v in data.items() if k not in VOLATILE}
    if isinstance(data, list):
        return [_normalised(v) for v in data]
    return data


def _reads(world):
    """Every list and count the uncleared users can read, as (who, url)."""
    subject = world.spam_open.subject.external_id
    cases = [
        "/api/v1/cases/",
        "/api/v1/cases/?page_size=500",
        f"/api/v1/cases/?subject={subject}",
        f"/api/v1/cases/?campaign={world.camp_cib.pk}",
        f"/api/v1/cases/?campaign={world.camp_spam.pk}",
        "/api/v1/cases/?assigned_to=r-moderator-cleared",
        "/api/v1/cases/?assigned_to=r-senior",
        "/api/v1/cases/?min_priority=0&ordering=-created_at",
        *(f"/api/v1/cases/?threat_class={slug}" for slug in ("csam", "cib", "spam")),
        *(f"/api/v1/cases/?queue={slug}" for slug in ("csam", "cib", "spam", "escalations", "legal")),
        *(f"/api/v1/cases/?status={status}" for status in ("open", "in_review", "escalated", "decided", "appealed")),
        f"/api/v1/cases/{world.spam_open.pk}/",
        f"/api/v1/cases/{world.spam_open.pk}/events/",
        "/api/v1/queues/",
        "/api/v1/metrics/",
        "/api/v1/campaigns/",
        "/api/v1/campaigns/?status=open",
        f"/api/v1/campaigns/{world.camp_spam.pk}/",
        "/api/v1/quality-reviews/",
        "/api/v1/relabels/",
        f"/api/v1/subjects/?q={subject}",
        "/api/v1/subjects/?q=u-",
        "/api/v1/subjects/?q=u-hidden",
        "/api/v1/subjects/?q=u-rep-0",  # the reporter of the restricted signals
        f"/api/v1/subjects/account/{subject}/",
        f"/api/v1/subjects/account/{subject}/?hops=2",
    ]
    reads = [(who, url) for who in ("moderator", "policy_admin", "uncleared_senior") for url in cases]
    reads += [("uncleared_appeals", url) for url in ("/api/v1/appeals/", "/api/v1/appeals/?status=received")]
    reads += [("uncleared_appeals", "/api/v1/relabels/")]
    return reads


def _read_all(clients, world):
    out = {}
    for who, url in _reads(world):
        response = clients[who].get(url)
        out[(who, url)] = (response.status_code, json.dumps(_normalised(response.json()), sort_keys=True))
    return out


def _restricted_activity(world):
    """csam and cib cases through intake (one on a subject the uncleared can see), held, escalated, decided."""
    cast = world.cast
    seen_subject = world.spam_open.subject.external_id
    items = [
        {
            "source": "user-reports",
            "external_id": f"restricted-{i}",
            "threat_class": kind,
            "subject": {"kind": "account", "external_id": subject},
            "reporter": f"u-rep-{i}",
            "reason": "restricted",
        }
        for i, (kind, subject) in enumerate(
            [("csam", seen_subject), ("cib", seen_subject), ("csam", "u-hidden-1"), ("cib", "u-hidden-2")]
            + [("cib", f"u-hidden-net-{n}") for n in range(3)]
        )
    ]
    result = signals_ingest(items=items, actor=cast["platform"])
    case_ids = [row["case"] for row in result.body]
    assert None not in case_ids
    new = list(Case.objects.filter(pk__in=case_ids).order_by("pk"))
    csam_seen, cib_seen, csam_hidden, cib_hidden, *network = new
    case_assign(case_id=csam_seen.pk, reviewer_username="r-moderator-cleared", by=cast["senior"])
    case_assign(case_id=csam_hidden.pk, reviewer_username="r-senior", by=cast["senior"])
    case_escalate(case_id=csam_hidden.pk, actor=cast["senior"], queue_slug="escalations", reason="restricted")
    case_escalate(case_id=cib_seen.pk, actor=cast["senior"], queue_slug="legal", reason="restricted")
    decision = decide(cib_hidden, world.decider, cast["senior"])

    appeal_file(decision_id=decision.pk, appellant="u-someone", statement="no", actor=cast["platform"])
    _campaign("cib", network, decision.created_at)
    return new, decision


@pytest.fixture
def uncleared(world):
    world.cast["uncleared_senior"] = user_upsert(username="r-senior-uncleared", role_names=["senior", "moderator"])
    world.cast["uncleared_appeals"] = world.cast["appeals"]
    return world


def test_restricted_activity_changes_nothing_an_uncleared_user_can_read(uncleared):
    world = uncleared
    clients = {who: api_client(user) for who, user in world.cast.items()}
    before = _read_all(clients, world)
    _restricted_activity(world)
    after = _read_all(clients, world)
    differ = [f"{who} GET {url}" for (who, url), answer in before.items() if after[(who, url)] != answer]
    assert differ == []
    # The cleared see the same activity: the reads are not blind to it.
    cleared = api_client(world.cast["moderator_cleared"])
    assert cleared.get("/api/v1/cases/?threat_class=csam").json()["count"] == 3 + 2  # the world's 3 and 2 new
    assert world.spam_open.subject.external_id in json.dumps(cleared.get("/api/v1/cases/?threat_class=cib").json())


def _detail_urls(world, new, decision):
    csam_seen = new[0]
    hidden = [
        ("/api/v1/cases/{}/", csam_seen.pk),
        ("/api/v1/cases/{}/events/", csam_seen.pk),
        ("/api/v1/cases/{}/export/", csam_seen.pk),
        ("/api/v1/decisions/{}/", decision.pk),
        ("/api/v1/decisions/{}/statement-of-reasons/", decision.pk),
        ("/api/v1/campaigns/{}/", world.camp_cib.pk),
        ("/api/v1/relabels/{}/complete/", world.relabel_csam.pk),
        ("/api/v1/quality-reviews/{}/complete/", world.qa_csam.pk),
        ("/api/v1/appeals/{}/", world.ap_csam.pk),
    ]
    return hidden


def test_a_restricted_id_answers_exactly_like_an_id_that_does_not_exist(uncleared):
    world = uncleared
    new, decision = _restricted_activity(world)
    different = []
    for who in ("moderator", "policy_admin", "uncleared_senior", "uncleared_appeals", "platform"):
        client = api_client(world.cast[who])
        for template, pk in _detail_urls(world, new, decision):
            method = client.post if template.endswith("complete/") else client.get
            body = {"action": "remove"} if template.endswith("complete/") else None
            hidden = method(template.format(pk), body, format="json")
            missing = method(template.format(MISSING), body, format="json")
            if (hidden.status_code, hidden.json()) != (missing.status_code, missing.json()):
                different.append(f"{who} {template.format(pk)}: {hidden.status_code} {hidden.json()}")
        for external_id in ("u-hidden-1", "u-hidden-net-0"):
            hidden = client.get(f"/api/v1/subjects/account/{external_id}/")
            missing = client.get("/api/v1/subjects/account/u-never-seen/")
            if (hidden.status_code, hidden.json()) != (missing.status_code, missing.json()):
                different.append(f"{who} subject {external_id}: {hidden.status_code} {hidden.json()}")
    assert different == []


def test_no_ui_page_names_a_restricted_case_subject_or_class(uncleared):
    world = uncleared
    new, decision = _restricted_activity(world)
    restricted_cases = list(Case.objects.filter(threat_class__slug__in=RESTRICTED).values_list("pk", flat=True))
    hidden_subjects = ["u-hidden-1", "u-hidden-2", "u-hidden-net-0"]
    tells = [re.compile(rf"/cases/{pk}/") for pk in restricted_cases]
    tells += [re.compile(rf"\b{slug}\b", re.IGNORECASE) for slug in RESTRICTED]
    tells += [re.compile(re.escape(s)) for s in hidden_subjects]
    pages = {
        "moderator": [
            "/",
            "/dashboard/",
            "/queues/spam/",
            "/queues/escalations/",
            "/queues/legal/",
            f"/cases/{world.spam_open.pk}/",  # its subject also has csam and cib cases now
            f"/campaigns/{world.camp_spam.pk}/",
            "/search/?q=u-",
            "/search/?q=u-hidden",
            f"/subjects/account/{world.spam_open.subject.external_id}/?hops=2",
        ],
        "uncleared_senior": ["/", "/dashboard/", "/escalations/", "/queues/escalations/", "/queues/legal/"],
        "uncleared_appeals": ["/appeals/"],
    }
    leaks = []
    for who, urls in pages.items():
        client = ui_client(world.cast[who])
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, (who, url)
            html = response.content.decode()
            leaks += [f"{who} {url}: {tell.pattern}" for tell in tells if tell.search(html)]
        hidden, missing = client.get("/subjects/account/u-hidden-1/"), client.get("/subjects/account/u-never-seen/")
        if hidden.status_code != missing.status_code:
            leaks.append(f"{who} subject page u-hidden-1: {hidden.status_code} vs {missing.status_code}")
        # A restricted case on the case page, a restricted campaign on the campaign page (the id of one may
        # well be a visible object of the other kind).
        for template, pk in (("/cases/{}/", new[0].pk), ("/campaigns/{}/", world.camp_cib.pk)):
            hidden, missing = client.get(template.format(pk)), client.get(template.format(MISSING))
            if hidden.status_code != missing.status_code:
                leaks.append(f"{who} {template.format(pk)}: {hidden.status_code} vs {missing.status_code}")
    assert leaks == []


def test_appeals_staff_without_clearance_are_never_handed_a_restricted_appeal(uncleared):
    world = uncleared
    _restricted_activity(world)
    client = api_client(world.cast["uncleared_appeals"])
    claimed = []
    while (response := client.post("/api/v1/appeals/claim/")).status_code == 201:
        claimed.append(response.json()["appeal"])
    assert response.status_code == 204
    assert claimed == [world.ap_spam.pk]


# --- mixed campaigns, shared subjects and reporters ---------------------------------------------------------------
#
# A spam campaign of five accounts that one reporter reported; then restricted activity touches it: csam accounts
# that share the campaign's address (and a device of their own) are reported (they do not join: a csam signal's
# values link no campaign of an unrestricted class), a csam signal lands on a campaign member (for the pages, with a
# far larger reach, an address and a payment id of its own) and on content three members own (those cases join
# the campaign through their owners), the member's csam case is decided (a strike on the account), detection and
# the re-ranking job run. The clock stands still meanwhile, so every figure a page computes "as of now" is
# comparable.

MIX_IP = "198.51.100.1"
CSAM_ONLY = "d-csam-pair"  # a device only the csam accounts carry
CSAM_IP, CSAM_PAYMENT = "203.0.113.99", "pay-csam-1"  # values only a csam signal on a spam member carries


def _mix_signal(
    n, kind, subject, *, reach=0, attributes=None, owner=None, subject_kind="account", reporter=None, source=None
):
    return {
        "source": source or "user-reports",
        "external_id": f"mix-{n}",
        "threat_class": kind,
        "subject": {
            "kind": subject_kind,
            "external_id": subject,
            "owner": owner,
            "reach": reach,
            "attributes": attributes or {},
        },
        "reporter": reporter or ("u-rep-shared" if kind == "spam" else "u-rep-csam"),
        "reason": f"mixed {kind}",
    }


@pytest.fixture
def frozen(monkeypatch):
    """The clock stands still: pages computed "as of now" (SLA left, aging, velocity) compare byte for byte."""
    at = timezone.now().replace(microsecond=0)
    monkeypatch.setattr(timezone, "now", lambda: at)
    return at


@pytest.fixture
def mixed(uncleared, frozen):
    world = uncleared
    items = [
        _mix_signal(i, "spam", f"u-mix-{i}", reach=100 * (i + 1), attributes={"ip": [MIX_IP], "device": ["d-mix"]})
        for i in range(5)
    ]
    result = signals_ingest(items=items, actor=world.cast["platform"])
    world.mix_cases = [Case.objects.get(pk=row["case"]) for row in result.body]
    campaigns_detect(now=frozen)
    cases_reprioritise_all(now=frozen)
    world.mix_campaign = Campaign.objects.get(subjects__external_id="u-mix-0")
    assert world.mix_campaign.threat_class.slug == "spam" and world.mix_campaign.size == 5
    return world


def _mixed_restricted_activity(world, frozen, *, carrying=False):
    """csam accounts share the spam campaign's address; csam content of three members joins it; a csam case on a
    member, reported by the campaign's reporter, decided (a strike on the account, an upheld report on the
    reporter's record: what the members' spam cases rank by).

    ``carrying``: the csam signal on the member also brings a far larger reach, an address and a payment id.
    """
    cast = world.cast
    carried = {"reach": 5_000_000, "attributes": {"ip": [CSAM_IP], "payment": [CSAM_PAYMENT]}} if carrying else {}
    items = [
        _mix_signal(10, "csam", "u-mix-0", reporter="u-rep-shared", **carried),
        _mix_signal(11, "csam", "c-mix-csam", subject_kind="content", owner="u-mix-0"),
        _mix_signal(12, "csam", "u-mix-csam-0", attributes={"ip": [MIX_IP], "device": [CSAM_ONLY]}),
        _mix_signal(13, "csam", "u-mix-csam-1", attributes={"ip": [MIX_IP], "device": [CSAM_ONLY]}),
        _mix_signal(14, "csam", "c-mix-csam-1", subject_kind="content", owner="u-mix-1"),
        _mix_signal(15, "csam", "c-mix-csam-2", subject_kind="content", owner="u-mix-2"),
    ]
    result = signals_ingest(items=items, actor=cast["platform"])
    csam_on_member = Case.objects.get(pk=result.body[0]["case"])
    decide(csam_on_member, world.decider, cast["senior"])
    campaigns_detect(now=frozen)
    cases_reprioritise_due(now=frozen)  # the beat job: the member's other cases were marked due
    world.mix_campaign.refresh_from_db()
    assert world.mix_campaign.size == 5  # the csam accounts did not join: only csam signals brought them the address
    assert {link["value"] for link in world.mix_campaign.links} == {MIX_IP, "d-mix"}
    assert world.mix_campaign.cases.filter(threat_class__slug="csam").count() == 3  # the content's (open)


def _hidden_members_join(world, frozen):
    """The csam accounts are also named, with the campaign's address, by spam reports of a quarantined source (held,
    no case): through that unrestricted value they join the spam campaign, as members hidden from the uncleared."""

    SourceFactory(slug="mix-held", kind="user_report")
    source_quarantine(source_slug="mix-held", actor=world.cast["policy_admin"])
    items = [
        _mix_signal(50 + n, "spam", f"u-mix-csam-{n}", attributes={"ip": [MIX_IP]}, source="mix-held") for n in (0, 1)
    ]
    assert {row["disposition"] for row in signals_ingest(items=items, actor=world.cast["platform"]).body} == {"held"}
    campaigns_detect(now=frozen)
    world.mix_campaign.refresh_from_db()
    assert world.mix_campaign.size == 7


_CSRF = re.compile(r'(name="csrfmiddlewaretoken" value="|"X-CSRFToken": ")[^"]*"')


def _mixed_reads(world):
    campaign = world.mix_campaign.pk
    member, other = world.mix_cases[0].pk, world.mix_cases[1].pk
    ui = [
        f"/campaigns/{campaign}/",
        "/campaigns/",
        "/campaigns/?status=all",
        f"/cases/{member}/",
        f"/cases/{other}/",
        "/subjects/account/u-mix-0/",
        "/subjects/account/u-mix-0/?hops=2",
        "/search/?q=u-mix",
        f"/search/?q={CSAM_PAYMENT}",
    ]
    api = [
        "/api/v1/campaigns/",
        f"/api/v1/campaigns/{campaign}/",
        f"/api/v1/cases/{member}/",
        f"/api/v1/cases/?campaign={campaign}",
        "/api/v1/subjects/account/u-mix-0/",
        "/api/v1/subjects/?q=u-mix",
        *(f"/api/v1/subjects/?q={value}" for value in (CSAM_ONLY, CSAM_IP, CSAM_PAYMENT)),
        f"/api/v1/subjects/?attribute=payment:{CSAM_PAYMENT}",
    ]
    return ui, api


def _read_mixed(world):
    ui, api = _mixed_reads(world)
    out = {}
    for who in ("moderator", "uncleared_senior"):
        browser, client = ui_client(world.cast[who]), api_client(world.cast[who])
        for url in ui:
            response = browser.get(url)
            out[(who, url)] = (response.status_code, _CSRF.sub(r"\1-\"", response.content.decode()))
        for url in api:
            response = client.get(url)
            out[(who, url)] = (response.status_code, json.dumps(_normalised(response.json()), sort_keys=True))
    return out


def test_restricted_activity_on_a_campaign_subject_or_reporter_changes_no_page_an_uncleared_user_reads(
    mixed, frozen, settings
):
    world = mixed
    # A value held by more subjects than this links nothing: the two csam accounts that join the campaign's
    # address must not push it over the bound for a reader who cannot see them.
    settings.DOCKET = {**settings.DOCKET, "CAMPAIGN_MAX_VALUE_SHARE": 6}
    before = _read_mixed(world)
    assert [key for key, (status, _) in before.items() if status != 200] == []
    ranked = Case.objects.filter(pk__in=[c.pk for c in world.mix_cases]).order_by("pk")
    ranks = list(ranked.values_list("pk", "rank", "priority", "priority_breakdown", "reporter_weight"))
    _mixed_restricted_activity(world, frozen, carrying=True)
    after = _read_mixed(world)
    differ = [f"{who} GET {url}" for (who, url), answer in before.items() if after[(who, url)] != answer]
    assert differ == []
    # The spam cases were re-ranked for their reporter's changed record (it now holds the upheld csam report),
    # and rank exactly as before: their priority and its explanation (on the pages above) are unmoved.
    assert Reporter.objects.filter(external_id="u-rep-shared", reports_upheld=1, rerank_pending_at=None).exists()
    assert list(ranked.values_list("pk", "rank", "priority", "priority_breakdown", "reporter_weight")) == ranks
    # The cleared read the activity: the members' csam cases are in the campaign.
    cleared = api_client(world.cast["senior"]).get(f"/api/v1/campaigns/{world.mix_campaign.pk}/").json()
    assert cleared["size"] == 5
    assert cleared["cases"] == sorted(Case.objects.filter(campaign=world.mix_campaign).values_list("pk", flat=True))
    assert len(cleared["cases"]) == 5 + 3

    # Seven subjects now hold the campaign's address, more than links anything, for a reader who sees them all.
    def via(user):
        linked = api_client(user).get("/api/v1/subjects/account/u-mix-0/").json()["linked"]
        return {link["external_id"]: sorted(v["value"] for v in link["via"]) for link in linked}

    assert via(world.cast["moderator"])["u-mix-1"] == [MIX_IP, "d-mix"]
    assert via(world.cast["senior"])["u-mix-1"] == ["d-mix"]


def test_a_mixed_campaign_is_sized_and_linked_by_the_members_the_reader_may_see(mixed, frozen):
    world = mixed
    _mixed_restricted_activity(world, frozen)
    _hidden_members_join(world, frozen)
    campaign = world.mix_campaign
    spam_ids = sorted(c.pk for c in world.mix_cases)
    seen = api_client(world.cast["moderator"]).get(f"/api/v1/campaigns/{campaign.pk}/").json()
    assert (seen["size"], seen["links"], seen["cases"]) == (
        5,
        [{"kind": "device", "value": "d-mix"}, {"kind": "ip", "value": MIX_IP}],
        spam_ids,
    )
    listed = api_client(world.cast["moderator"]).get("/api/v1/campaigns/").json()["results"]
    assert [(c["id"], c["size"]) for c in listed if c["id"] == campaign.pk] == [(campaign.pk, 5)]
    page = ui_client(world.cast["moderator"]).get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "5 subjects" in page and CSAM_ONLY not in page
    index = ui_client(world.cast["moderator"]).get("/campaigns/").content.decode()
    row = re.search(rf'href="/campaigns/{campaign.pk}/".*?</tr>', index, re.S).group(0)
    assert re.findall(r'<td class="num">(\d+)</td>', row) == ["5", "5"] and CSAM_ONLY not in row
    # The cleared are told the whole network.
    cleared = api_client(world.cast["senior"]).get(f"/api/v1/campaigns/{campaign.pk}/").json()
    assert cleared["size"] == 7
    assert cleared["cases"] == sorted(Case.objects.filter(campaign=campaign).values_list("pk", flat=True))
    assert cleared["links"] == [{"kind": "ip", "value": MIX_IP}, {"kind": "device", "value": "d-mix"}]


PAIR_IP = "192.0.2.77"  # an address three spam accounts share: too few for a campaign of their own


def _unrestricted_campaigns():
    """Every campaign of an unrestricted class as stored: its row, its member subjects and cases (of any class)."""
    return {
        campaign.pk: (
            campaign.threat_class.slug,
            campaign.status,
            campaign.size,
            campaign.links,
            campaign.updated_at,
            sorted(campaign.subjects.values_list("external_id", flat=True)),
            sorted(campaign.cases.filter(threat_class__restricted=False).values_list("pk", flat=True)),
        )
        for campaign in Campaign.objects.filter(threat_class__restricted=False).select_related("threat_class")
    }


def test_values_only_restricted_signals_brought_link_no_campaign_of_an_unrestricted_class(mixed, frozen):
    """Detection, run again after csam signals share values with visible subjects (new csam accounts carrying the
    campaign's device and the pair's address, a csam signal bringing the pair's address to a member and the
    campaign's device to one of the pair): every campaign of an unrestricted class, its members, size and links
    are as they were, and so is everything the uncleared read."""
    world = mixed
    pair = [_mix_signal(40 + n, "spam", f"u-pair-{n}", attributes={"ip": [PAIR_IP]}) for n in range(3)]
    pair_cases = [row["case"] for row in signals_ingest(items=pair, actor=world.cast["platform"]).body]
    campaigns_detect(now=frozen)
    stored = _unrestricted_campaigns()
    assert stored[world.mix_campaign.pk][2:4] == (5, world.mix_campaign.links)
    assert [pk for pk, row in stored.items() if "u-pair-0" in row[5]] == []  # the pair is too small a component
    before = _read_mixed(world)

    shared = {"ip": [PAIR_IP], "device": ["d-mix"]}
    items = [_mix_signal(60 + n, "csam", f"u-csam-net-{n}", attributes=shared) for n in range(5)]
    items += [
        _mix_signal(70, "csam", "u-mix-1", attributes={"ip": [PAIR_IP]}),
        _mix_signal(71, "csam", "u-pair-0", attributes={"device": ["d-mix"]}),
    ]
    signals_ingest(items=items, actor=world.cast["platform"])
    campaigns_detect(now=frozen)

    assert _unrestricted_campaigns() == stored
    after = _read_mixed(world)
    assert [f"{who} GET {url}" for (who, url), answer in before.items() if after[(who, url)] != answer] == []
    # Not blind: the csam network is a campaign of its own class, for the cleared, linked through the csam
    # signals' values and the pair's address; the pair's spam cases stay out of it.
    network = Campaign.objects.get(threat_class__slug="csam")
    assert network.link_class.slug == "csam"
    members = set(network.subjects.values_list("external_id", flat=True))
    assert members == {f"u-csam-net-{n}" for n in range(5)} | {f"u-pair-{n}" for n in range(3)}
    assert Case.objects.filter(pk__in=pair_cases, campaign__isnull=False).count() == 0
    assert {link["value"] for link in network.links} == {PAIR_IP, "d-mix"}
    assert api_client(world.cast["senior"]).get(f"/api/v1/campaigns/{network.pk}/").json()["size"] == 8
    assert api_client(world.cast["moderator"]).get(f"/api/v1/campaigns/{network.pk}/").status_code == 404


def test_a_reporters_record_on_the_case_page_counts_only_the_classes_the_reader_may_see(mixed):
    world = mixed
    # The spam campaign's reporter also reported a csam account, and that report was upheld.
    result = signals_ingest(
        items=[_mix_signal(20, "csam", "u-rep-target", reporter="u-rep-shared")], actor=world.cast["platform"]
    )
    decide(Case.objects.get(pk=result.body[0]["case"]), world.decider, world.cast["senior"])
    page = f"/cases/{world.mix_cases[0].pk}/"
    uncleared = ui_client(world.cast["moderator"]).get(page).content.decode()
    cleared = ui_client(world.cast["senior"]).get(page).content.decode()
    assert "u-rep-shared</span> · accuracy 50% (0/0 upheld)" in uncleared
    assert "u-rep-shared</span> · accuracy 60% (1/1 upheld)" in cleared


def _decide_campaign(via, user, campaign, kind):
    """A senior's campaign decision through the API or the campaign page; the answer's status."""
    fields = {"action": violation_of(kind), "rule": rule_of(kind), "rationale": "network"}
    if via == "api":
        return api_client(user).post(f"/api/v1/campaigns/{campaign.pk}/decision/", fields, format="json").status_code
    open_ids = Case.objects.visible_to(user).active().filter(campaign=campaign).values_list("pk", flat=True)
    response = ui_client(user).post(f"/campaigns/{campaign.pk}/bulk-decision/", {**fields, "cases": list(open_ids)})
    return response.status_code


@pytest.mark.parametrize("uncleared_via, cleared_via", [("api", "ui"), ("ui", "api")])
def test_an_uncleared_senior_decides_only_the_members_they_see_and_leaves_the_campaign_to_the_cleared(
    mixed, frozen, uncleared_via, cleared_via
):
    world = mixed
    _mixed_restricted_activity(world, frozen)
    campaign = world.mix_campaign
    members = Case.objects.filter(campaign=campaign)
    csam_open = set(members.filter(threat_class__slug="csam", status="open").values_list("pk", flat=True))
    assert len(csam_open) == 3  # the members' content (the member's own csam case is decided)

    assert _decide_campaign(uncleared_via, world.cast["uncleared_senior"], campaign, "spam") in (201, 302)
    campaign.refresh_from_db()
    assert campaign.status == "open"  # the csam members are still open
    assert set(members.active().values_list("pk", flat=True)) == csam_open
    assert not members.filter(threat_class__slug="spam").active().exists()
    # The uncleared senior sees nothing left to decide; the campaign reads as open to both.
    seen = api_client(world.cast["uncleared_senior"]).get(f"/api/v1/campaigns/{campaign.pk}/").json()
    assert seen["status"] == "open" and seen["size"] == 5

    assert _decide_campaign(cleared_via, world.cast["senior"], campaign, "csam") in (201, 302)
    campaign.refresh_from_db()
    assert campaign.status == "decided"
    assert not members.active().exists()


def _dismiss_campaign(via, user, campaign):
    """A senior's dismissal through the API or the campaign page; the answer's status and message."""
    if via == "api":
        response = api_client(user).post(f"/api/v1/campaigns/{campaign.pk}/dismiss/")
        return response.status_code, response.json()
    browser = ui_client(user)
    response = browser.post(f"/campaigns/{campaign.pk}/dismiss/", {"confirm": "yes"})
    page = browser.get(response["Location"]).content.decode() if response.status_code == 302 else ""
    return response.status_code, page


def _membership(campaign):
    """(status, size, member subjects, member cases with their status) as stored."""
    campaign.refresh_from_db()
    return (
        campaign.status,
        campaign.size,
        sorted(campaign.subjects.values_list("external_id", flat=True)),
        sorted(campaign.cases.values_list("pk", "status")),
    )


@pytest.mark.parametrize("uncleared_via, cleared_via", [("api", "ui"), ("ui", "api")])
def test_an_uncleared_senior_dismisses_only_the_members_they_see_and_leaves_the_campaign_to_the_cleared(
    mixed, frozen, uncleared_via, cleared_via
):
    world = mixed
    _mixed_restricted_activity(world, frozen)
    _hidden_members_join(world, frozen)
    campaign = world.mix_campaign
    spam = sorted(Case.objects.filter(campaign=campaign, threat_class__slug="spam").values_list("pk", "status"))
    csam = sorted(Case.objects.filter(campaign=campaign, threat_class__slug="csam").values_list("pk", "status"))
    assert (len(spam), len(csam)) == (5, 5)  # the content's and the hidden accounts' (all open)
    campaigns_before = Campaign.objects.count()

    status, answer = _dismiss_campaign(uncleared_via, world.cast["uncleared_senior"], campaign)
    assert status == (200 if uncleared_via == "api" else 302)
    # The members the uncleared senior may see left as a dismissed campaign of their own, their cases as they were;
    # the campaign stays open with the hidden accounts and the csam cases.
    part = Campaign.objects.exclude(pk=campaign.pk).get(subjects__external_id="u-mix-0")
    assert Campaign.objects.count() == campaigns_before + 1
    assert _membership(part) == ("dismissed", 5, [f"u-mix-{n}" for n in range(5)], spam)
    assert (part.threat_class_id, part.link_class_id) == (campaign.threat_class_id, campaign.link_class_id)
    assert part.links == [{"kind": "device", "value": "d-mix"}, {"kind": "ip", "value": MIX_IP}]
    hidden_left = ("open", 2, ["u-mix-csam-0", "u-mix-csam-1"], csam)
    assert _membership(campaign) == hidden_left
    events = CaseEvent.objects.filter(case_id__in=[pk for pk, _ in spam], kind="campaign_joined").order_by("id")
    assert [e.detail for e in events][-5:] == [{"campaign": part.pk, "dismissed_from": campaign.pk}] * 5
    if uncleared_via == "api":
        assert (answer["status"], answer["size"], answer["cases"]) == ("open", 0, [])
    else:
        assert f"(now campaign {part.pk})" in answer and "Not a campaign?" not in answer
    # Nothing the uncleared senior may see is left to dismiss; detection leaves both parts as they are.
    assert _dismiss_campaign("api", world.cast["uncleared_senior"], campaign)[0] == 409
    campaigns_detect(now=frozen)
    assert _membership(campaign) == hidden_left
    assert _membership(part)[:3] == ("dismissed", 5, [f"u-mix-{n}" for n in range(5)])

    status, _ = _dismiss_campaign(cleared_via, world.cast["senior"], campaign)
    assert status == (200 if cleared_via == "api" else 302)
    assert _membership(campaign) == ("dismissed", *hidden_left[1:])
    assert Case.objects.filter(pk__in=[pk for pk, _ in csam], status="open").count() == 5  # cases stay as they are


@pytest.mark.parametrize("via", ["api", "ui"])
def test_a_senior_cleared_for_every_member_dismisses_the_whole_campaign(mixed, frozen, via):
    world = mixed
    _mixed_restricted_activity(world, frozen)
    _hidden_members_join(world, frozen)
    campaign = world.mix_campaign
    before = _membership(campaign)
    campaigns_before = Campaign.objects.count()
    status, _ = _dismiss_campaign(via, world.cast["senior"], campaign)
    assert status == (200 if via == "api" else 302)
    assert _membership(campaign) == ("dismissed", *before[1:])
    assert Campaign.objects.count() == campaigns_before


def test_members_hidden_from_the_reader_joining_a_campaign_move_no_list_of_campaigns(mixed, frozen):
    """The admin's campaign list, the campaigns page and the API list, as uncleared staff read them, keep their order
    and figures when members hidden from them join a campaign (its stored size grows past another's)."""
    world = mixed
    _mixed_restricted_activity(world, frozen)
    Campaign.objects.create(threat_class=world.mix_campaign.threat_class, size=6, links=[], detected_at=frozen)
    admin, moderator = ui_client(world.cast["policy_admin"]), ui_client(world.cast["moderator"])
    api = api_client(world.cast["moderator"])

    def lists():
        listed = admin.get("/admin/casework/campaign/").content.decode()
        page = moderator.get("/campaigns/?status=all").content.decode()
        return (
            re.findall(r'href="/admin/casework/campaign/(\d+)/change/', listed),
            re.findall(r'<tr><td><a href="/campaigns/(\d+)/">.*?</tr>', page, re.S),
            json.dumps(_normalised(api.get("/api/v1/campaigns/").json()), sort_keys=True),
        )

    before = lists()
    assert str(world.mix_campaign.pk) in before[0]
    _hidden_members_join(world, frozen)  # stored size 7, above the other campaign's 6; 5 seen
    assert lists() == before


def test_a_contents_owner_is_named_only_to_a_reader_who_may_see_the_account(uncleared):
    world = uncleared
    items = [
        _mix_signal(30, "csam", "u-csam-owner"),
        _mix_signal(31, "spam", "c-owned", subject_kind="content", owner="u-csam-owner"),
    ]
    signals_ingest(items=items, actor=world.cast["platform"])
    url = "/subjects/content/c-owned/"
    seen = api_client(world.cast["moderator"]).get(f"/api/v1{url}").json()
    assert seen["owner"] is None
    assert "u-csam-owner" not in ui_client(world.cast["moderator"]).get(url).content.decode()
    cleared = api_client(world.cast["senior"]).get(f"/api/v1{url}").json()
    assert cleared["owner"] == {"kind": "account", "external_id": "u-csam-owner"}
    assert "u-csam-owner" in ui_client(world.cast["senior"]).get(url).content.decode()
    # The admin likewise.
    content = Subject.objects.get(external_id="c-owned")
    admin_page = f"/admin/casework/subject/{content.pk}/change/"
    assert "u-csam-owner" not in ui_client(world.cast["policy_admin"]).get(admin_page).content.decode()
    assert "account:u-csam-owner" in ui_client(_cleared_policy_admin()).get(admin_page).content.decode()


def _cleared_policy_admin():
    return user_upsert(username="r-padmin-cleared", role_names=["policy_admin", "senior"], clearances=["csam", "cib"])


def test_the_reporter_admin_tells_the_record_of_the_classes_the_admin_may_see(mixed, frozen):
    world = mixed
    decide(world.mix_cases[1], world.decider, world.cast["senior"])  # the campaign's reporter: a spam report upheld
    _mixed_restricted_activity(world, frozen)  # and their csam report on a member, upheld
    reporter = Reporter.objects.get(external_id="u-rep-shared")
    assert (reporter.reports_decided, reporter.reports_upheld) == (2, 2)  # over every class
    listed = "/admin/casework/reporter/?q=u-rep-shared"
    for user, told in ((world.cast["policy_admin"], "1"), (_cleared_policy_admin(), "2")):
        page = ui_client(user).get(listed).content.decode()
        assert re.findall(r'<td class="field-seen_(?:decided|upheld)">(\d+)</td>', page) == [told, told]
        change = ui_client(user).get(f"/admin/casework/reporter/{reporter.pk}/change/").content.decode()
        assert change.count(f'<div class="readonly">{told}</div>') == 2
    # When they were first seen counts every class (their first report may be of a hidden one): not shown.
    assert "field-first_seen_at" not in ui_client(world.cast["policy_admin"]).get(listed).content.decode()


def test_the_subject_admin_tells_the_reach_and_values_of_the_classes_the_admin_may_see(mixed, frozen):
    world = mixed
    _mixed_restricted_activity(world, frozen, carrying=True)  # a csam signal on u-mix-0: reach 5M, an ip, a payment
    member = Subject.objects.get(external_id="u-mix-0")
    assert member.reach == 5_000_000  # the subject's own figure merges every class
    pages = {"change": f"/admin/casework/subject/{member.pk}/change/", "list": "/admin/casework/subject/?q=u-mix-0"}
    for who, client in (
        ("uncleared", ui_client(world.cast["policy_admin"])),
        ("cleared", ui_client(_cleared_policy_admin())),
    ):
        change, listed = (client.get(url).content.decode() for url in pages.values())
        told = re.search(r'<td class="field-shown_reach">([^<]*)</td>', listed).group(1)
        if who == "uncleared":
            assert told == "100" and '<div class="readonly">100</div>' in change
            assert f"ip: {MIX_IP}" in change and "device: d-mix" in change
            assert CSAM_IP not in change + listed and CSAM_PAYMENT not in change + listed and "5000000" not in change
        else:
            assert told == "5000000" and '<div class="readonly">5000000</div>' in change
            assert f"ip: {MIX_IP}, {CSAM_IP}" in change and f"payment: {CSAM_PAYMENT}" in change


# --- the Django admin ----------------------------------------------------------------------------------------------

# Change views of casework models are read for every id up to this far above the table's highest id before the
# restricted activity: the rows it adds land there (the test checks), and before it they did not exist.
ID_MARGIN = {"caseevent": 40, "notice": 20}
ADMIN_SEARCHES = ("u-", "u-hidden", "u-hidden-1", "u-rep-0", "restricted", "csam", "cib")
_ADMIN_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')
_ADMIN_MESSAGES = re.compile(r'<ul class="messagelist">.*?</ul>', re.DOTALL)
_ADMIN_FILTERS = re.compile(r'<nav id="changelist-filter".*?</nav>', re.DOTALL)


def _admin_normalised(response):
    if response.status_code != 200:
        return (response.status_code, response.get("Location"))
    return (200, _ADMIN_MESSAGES.sub("", _ADMIN_CSRF.sub("", response.content.decode())))


# The admin's models that belong to a threat class (through a case, a decision or their own class).
CASEWORK_MODELS = (
    "casework.case casework.signal casework.subject casework.caseevent casework.campaign casework.reporter "
    "reviews.assignment reviews.decision reviews.enforcement reviews.strike reviews.qualityreview "
    "reviews.statementsubmission reviews.notice appeals.appeal"
).split()


def _casework_admins():
    """The highest id each casework table has handed out (its sequence: earlier tests' rolled-back rows took ids)."""

    highest = {}
    with connection.cursor() as cursor:
        for label in CASEWORK_MODELS:
            model = apps.get_model(label)
            cursor.execute(
                "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence(%s, 'id')), 0)", [model._meta.db_table]
            )
            highest[model] = cursor.fetchone()[0]
    return highest


def _admin_urls(client, highest):
    """Every changelist (with facets, every filter link it offers, filters naming every class and queue by id,
    searches, the raw-id popup) and the change view of every row, plus, for casework models, of the ids above
    ``highest`` that the restricted activity fills."""

    by_id = {model: list(model.objects.values_list("pk", flat=True)) for model in (ThreatClass, Queue)}
    urls = ["/admin/"]
    for model, model_admin in admin.site._registry.items():
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        lists = {base, base + "?_facets=1", base + "?_popup=1&_to_field=id"}
        page = client.get(base + "?_facets=1")
        assert page.status_code in (200, 403), base
        for sidebar in _ADMIN_FILTERS.findall(page.content.decode()):
            lists |= {base + href.replace("&amp;", "&") for href in re.findall(r'href="(\?[^"#]*)"', sidebar)}
        for spec in model_admin.list_filter:
            name = spec if isinstance(spec, str) else spec[0] if isinstance(spec, tuple) else ""
            field = model._meta.get_field(name) if name and "__" not in name else None
            if field is not None and field.is_relation and field.remote_field.model in by_id:
                lists |= {f"{base}?{name}__id__exact={pk}" for pk in by_id[field.remote_field.model]}
        if model_admin.search_fields:
            lists |= {f"{base}?{urlencode({'q': q})}" for q in ADMIN_SEARCHES}
        ids = set(model._default_manager.values_list("pk", flat=True))
        if model in highest:
            top = highest[model]
            ids |= set(range(top + 1, top + ID_MARGIN.get(model._meta.model_name, 10) + 1))
        urls += sorted(lists) + [f"{base}{pk}/change/" for pk in sorted(ids)]
        if model is Case:
            urls += [f"{base}{pk}/history/" for pk in sorted(ids)]
    return urls


def test_restricted_activity_changes_nothing_an_uncleared_policy_admin_reads_in_the_admin(uncleared):
    world = uncleared
    client = ui_client(world.cast["policy_admin"])
    highest = _casework_admins()
    urls = _admin_urls(client, highest)
    before = {url: _admin_normalised(client.get(url)) for url in urls}
    new, decision = _restricted_activity(world)
    # The reads covered every row the activity added.
    margin = {m: top + ID_MARGIN.get(m._meta.model_name, 10) for m, top in highest.items()}
    assert [m.__name__ for m, top in _casework_admins().items() if top > margin[m]] == []
    after = {url: _admin_normalised(client.get(url)) for url in urls}
    differ = [url for url in urls if after[url] != before[url]]
    assert differ == []
    # Not blind: the new restricted rows were read, and a cleared admin sees them.
    assert f"/admin/casework/case/{new[0].pk}/change/" in before
    assert f"/admin/reviews/decision/{decision.pk}/change/" in before
    cleared = ui_client(_cleared_policy_admin())
    assert cleared.get(f"/admin/casework/case/{new[0].pk}/change/").status_code == 200
    page = cleared.get(f"/admin/reviews/decision/{decision.pk}/change/")
    rationale = Decision.objects.get(pk=decision.pk).rationale
    assert page.status_code == 200 and f'<div class="readonly">{rationale}</div>' in page.content.decode()
    listed = cleared.get(f"/admin/casework/case/?threat_class__id__exact={new[0].threat_class_id}").content.decode()
    assert world.spam_open.subject.external_id in listed and "u-hidden-1" in listed


# --- the dashboard and the source pages: held signals, rates ----------------------------------------------------

_PAGE_CSRF = re.compile(r'(name="csrfmiddlewaretoken" value="|"X-CSRFToken": ")[^"]*"')


def _held_signals(n, kind, start):
    return [
        {
            "source": "held-reports",
            "external_id": f"held-{start + i}",
            "threat_class": kind,
            "subject": {"kind": "account", "external_id": f"u-held-{kind}-{start + i}"},
            "reporter": f"u-held-rep-{start + i}",
            "reason": "held",
        }
        for i in range(n)
    ]


def _figure_pages(world):
    out = {}
    for who in ("policy_admin", "moderator", "uncleared_senior"):
        client = ui_client(world.cast[who])
        for url in ("/dashboard/", "/sources/", "/sources/user-reports/", "/sources/held-reports/"):
            response = client.get(url)
            out[(who, url)] = (response.status_code, _PAGE_CSRF.sub(r"\1-", response.content.decode()))
    return out


def test_restricted_activity_changes_no_count_or_rate_on_the_dashboard_or_the_source_pages(uncleared, frozen):
    """Held signals and the sources' rates count only the classes the reader may see (issue 19 item 6)."""

    world = uncleared
    SourceFactory(slug="held-reports", kind="user_report")
    source_quarantine(source_slug="held-reports", actor=world.cast["policy_admin"])
    signals_ingest(items=_held_signals(2, "spam", 0), actor=world.cast["platform"])
    sources_check_health(now=frozen)
    before = _figure_pages(world)
    assert [key for key, (status, _) in before.items() if status != 200] == []
    _restricted_activity(world)  # seven csam and cib signals from user-reports
    signals_ingest(items=_held_signals(3, "csam", 10) + _held_signals(2, "cib", 20), actor=world.cast["platform"])
    sources_check_health(now=frozen)  # the beat job refreshes the rates
    after = _figure_pages(world)
    assert [key for key in before if after[key] != before[key]] == []
    # Not blind: the cleared see the restricted activity in the same figures.
    figures = {s.slug: s for s in sources_overview(user=world.cast["senior"])}
    assert figures["held-reports"].held == 2 + 5
    unrestricted = {s.slug: s for s in sources_overview(user=None)}
    assert figures["user-reports"].current_rate == unrestricted["user-reports"].current_rate + 7
    assert ">7<" in ui_client(world.cast["senior"]).get("/sources/held-reports/").content.decode()


def test_restricted_activity_on_a_campaign_subject_or_reporter_changes_nothing_in_the_admin(mixed, frozen):
    """The admin as an uncleared policy admin, over the mixed world: csam accounts join a spam campaign, a csam
    signal from the campaign's reporter lands on a member (new attributes, a larger reach) and is decided."""
    world = mixed
    client = ui_client(world.cast["policy_admin"])
    highest = _casework_admins()
    urls = _admin_urls(client, highest)
    before = {url: _admin_normalised(client.get(url)) for url in urls}
    _mixed_restricted_activity(world, frozen, carrying=True)
    margin = {m: top + ID_MARGIN.get(m._meta.model_name, 10) for m, top in highest.items()}
    assert [m.__name__ for m, top in _casework_admins().items() if top > margin[m]] == []
    after = {url: _admin_normalised(client.get(url)) for url in urls}
    assert [url for url in urls if after[url] != before[url]] == []


# --- threshold changes: a blast radius counts its class's signals -------------------------------------------------

THRESHOLD_CHANGES = "/api/v1/threshold-changes/"


def _threshold_proposal(kind):
    return {"source": "user-reports", "threat_class": kind, "auto_action_at": None, "review_at": 0.0, "reason": "tune"}


def _threshold_reads(admin):
    api, ui = api_client(admin), ui_client(admin)
    out = {}
    for url in (THRESHOLD_CHANGES, f"{THRESHOLD_CHANGES}?threat_class=csam", "/api/v1/thresholds/"):
        response = api.get(url)
        out[url] = (response.status_code, json.dumps(_normalised(response.json()), sort_keys=True))
    page = ui.get("/thresholds/")
    out["/thresholds/"] = (page.status_code, _CSRF.sub(r"\1-\"", page.content.decode()))
    for url in (
        "/admin/policies/thresholdchange/",
        "/admin/policies/thresholdchange/?_facets=1",
        "/admin/policies/thresholdchange/add/",
    ):
        out[url] = _admin_normalised(ui.get(url))
    for kind in ("csam", "cib"):  # proposing one: refused, nothing written, whatever the class's signals
        response = api.post(THRESHOLD_CHANGES, _threshold_proposal(kind), format="json")
        out[f"propose {kind}"] = (response.status_code, response.json())
    return out


def test_a_restricted_classs_threshold_changes_are_governed_only_by_admins_cleared_for_them(uncleared):
    """A threshold is per (source, class) and its change's blast radius counts the class's signals: a restricted
    class's changes are proposed, read and decided only by policy admins cleared for it."""
    world = uncleared
    admin = world.cast["policy_admin"]
    existing = ThresholdChange.objects.count()
    before = _threshold_reads(admin)
    assert before["propose csam"][0] == 403 and 'value="csam"' not in before["/admin/policies/thresholdchange/add/"][1]
    _restricted_activity(world)  # csam and cib signals from user-reports
    proposer = _cleared_policy_admin()
    approver = user_upsert(username="r-padmin-cleared-2", role_names=["policy_admin", "senior"], clearances=["csam"])
    proposed = api_client(proposer).post(THRESHOLD_CHANGES, _threshold_proposal("csam"), format="json")
    assert proposed.status_code == 201
    after = _threshold_reads(admin)
    assert [url for url in before if after[url] != before[url]] == []
    assert ThresholdChange.objects.count() == existing + 1  # the uncleared admin's attempts wrote nothing

    # The hidden change answers exactly like a missing one, wherever it is named.
    change = proposed.json()["id"]
    api, ui = api_client(admin), ui_client(admin)
    different = []
    for method, template in [
        (api.get, THRESHOLD_CHANGES + "{}/"),
        *((api.post, THRESHOLD_CHANGES + "{}/" + verb + "/") for verb in ("approve", "reject", "rollback")),
    ]:
        hidden, missing = method(template.format(change)), method(template.format(MISSING))
        if (hidden.status_code, hidden.json()) != (missing.status_code, missing.json()):
            different.append(f"{template.format(change)}: {hidden.status_code} {hidden.json()}")
    for method, template in [
        (ui.get, "/threshold-changes/{}/"),
        (ui.post, "/threshold-changes/{}/approve/"),
        (ui.post, "/threshold-changes/{}/reject/"),
        (ui.get, "/admin/policies/thresholdchange/{}/change/"),
    ]:
        hidden, missing = method(template.format(change)), method(template.format(MISSING))
        if hidden.status_code != missing.status_code:
            different.append(f"{template.format(change)}: {hidden.status_code} vs {missing.status_code}")
    assert different == []
    assert ThresholdChange.objects.get(pk=change).status == "proposed"

    # The cleared read it, its blast radius counting the csam signals, and decide it.
    seen = api_client(approver).get(f"{THRESHOLD_CHANGES}{change}/").json()
    csam_reports = Signal.objects.filter(source__slug="user-reports", threat_class__slug="csam").count()
    assert seen["blast_radius"]["signals"] == csam_reports >= 2
    assert 'value="csam"' in ui_client(approver).get("/admin/policies/thresholdchange/add/").content.decode()
    approved = api_client(approver).post(f"{THRESHOLD_CHANGES}{change}/approve/")
    assert (approved.status_code, approved.json()["status"]) == (200, "applied")
