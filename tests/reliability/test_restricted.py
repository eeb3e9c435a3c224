"""Restricted threat classes (csam, cib) are invisible to users without the clearance, everywhere.

Two kinds of proof:

* differential: everything an uncleared user can read (lists with every filter, counts, queues,
  metrics, campaigns, QA and relabel work, appeals) is recorded, then restricted activity happens
  (new csam and cib cases through intake, on a subject the user can see, claims, escalations into the
  shared escalations and legal queues, decisions, appeals, a campaign) and everything is read again:
  not one byte may differ. What cannot change cannot tell.
* indistinguishable: asking for a restricted object by id answers exactly what asking for an id that
  does not exist answers, on every detail endpoint and UI page, and no UI page names a restricted
  case, subject or class.

Source health (``/sources/`` and the metrics' ``sources``) is per signal source across classes by
design: it counts signals, not cases, and is refreshed by the beat job, so it is not part of this
contract; held-signal counts on the dashboard likewise.
"""

import json
import re

import pytest

from casework.intake import signals_ingest
from casework.models import Case
from docket.accounts import user_upsert
from reviews.services import case_assign, case_escalate

from .conftest import RESTRICTED, _campaign, api_client, decide, ui_client

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
    from appeals.services import appeal_file

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
        for pk in [new[0].pk, world.camp_cib.pk]:
            for template in ("/cases/{}/", "/campaigns/{}/"):
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
