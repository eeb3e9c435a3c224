"""Campaign detection (shared attribute values -> connected components) and campaign decisions."""

import threading
from contextlib import contextmanager
from datetime import timedelta
from itertools import count

import pytest
from django.db import connection, connections
from django.utils import timezone

from casework import campaigns
from casework.campaigns import campaigns_detect, components
from casework.models import Campaign, Case, CaseEvent, Subject, SubjectAttribute
from docket.errors import DocketError
from policies.models import ThreatClass
from reviews.models import Assignment, Decision, Enforcement
from reviews.services import campaign_decide, campaign_dismiss, case_assign, queue_claim
from tests.factories import CaseFactory
from tests.support import second_connection

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
_ids = count()


def accounts(n, *, prefix="acct", kind="account", owner=None):
    return Subject.objects.bulk_create(
        [Subject(kind=kind, external_id=f"{prefix}-{next(_ids)}", owner=owner, reach=5) for _ in range(n)]
    )


def attach(subjects, kind, value=None, *, seen_at=None, by="spam"):
    """Give each subject the attribute, as a signal of class ``by`` brought it: one shared ``value``, or a value
    of its own when ``value`` is None."""
    seen_at = seen_at or NOW - timedelta(hours=1)
    seen_by = {str(ThreatClass.objects.get(slug=by).pk): int(seen_at.timestamp())}
    SubjectAttribute.objects.bulk_create(
        [
            SubjectAttribute(
                subject=s, kind=kind, value=value or f"{kind}-own-{s.pk}", seen_at=seen_at, seen_by=seen_by
            )
            for s in subjects
        ]
    )


def ring(n, *, device="d-ring", domain="spam.example", kind="spam", cases=True):
    """``n`` accounts sharing a device and a link domain, each with an open case."""
    members = accounts(n, prefix="ring")
    attach(members, "device", device)
    attach(members, "link_domain", domain)
    if cases:
        for s in members:
            CaseFactory(subject=s, kind=kind)
    return members


def bystanders(n):
    """``n`` unrelated accounts, each with values of its own and an open case."""
    members = accounts(n, prefix="solo")
    for kind in ("device", "ip", "link_domain"):
        attach(members, kind)
    for s in members:
        CaseFactory(subject=s, kind="spam")
    return members


def campaign_of(subjects):
    return set(Subject.objects.filter(pk__in=[s.pk for s in subjects]).values_list("campaign_id", flat=True))


def test_union_find_components_keep_only_large_ones():
    groups = [("ip", "a", [1, 2]), ("ip", "b", [2, 3]), ("device", "c", [3, 4, 5]), ("device", "d", [8, 9])]

    assert components(groups, min_size=5) == [([1, 2, 3, 4, 5], [("ip", "a", 2), ("ip", "b", 2), ("device", "c", 3)])]
    assert components(groups, min_size=6) == []


def test_forty_accounts_sharing_device_and_domain_become_one_campaign():
    members = ring(40)
    others = bystanders(40)

    result = campaigns_detect(now=NOW)

    campaign = Campaign.objects.get()
    assert result == {"components": 1, "created": 1, "merged": 0, "subjects_joined": 40, "cases_joined": 40}
    assert campaign.size == 40
    assert campaign.status == "open"
    assert campaign.threat_class.slug == "spam"
    assert campaign.detected_at == NOW
    assert sorted(campaign.links, key=lambda link: link["kind"]) == [
        {"kind": "device", "value": "d-ring"},
        {"kind": "link_domain", "value": "spam.example"},
    ]
    assert campaign_of(members) == {campaign.pk}
    assert campaign_of(others) == {None}
    assert set(Case.objects.filter(subject__in=members).values_list("campaign_id", flat=True)) == {campaign.pk}
    assert set(Case.objects.filter(subject__in=others).values_list("campaign_id", flat=True)) == {None}
    events = CaseEvent.objects.filter(kind="campaign_joined")
    assert events.count() == 40
    assert {e.detail["campaign"] for e in events} == {campaign.pk}
    assert {e.actor_label for e in events} == {"system"}


def test_a_value_shared_by_too_many_subjects_links_nothing(settings):
    settings.DOCKET = {**settings.DOCKET, "CAMPAIGN_MAX_VALUE_SHARE": 200}
    crowd = accounts(500, prefix="cdn")
    attach(crowd, "ip", "203.0.113.1")  # a CDN address: 500 subjects behind it
    members = ring(40)
    attach(members, "ip", "203.0.113.1")

    campaigns_detect(now=NOW)

    campaign = Campaign.objects.get()
    assert campaign.size == 40
    assert campaign_of(crowd) == {None}
    assert {"kind": "ip", "value": "203.0.113.1"} not in campaign.links


def test_second_run_with_nothing_new_changes_nothing():
    ring(10)
    campaigns_detect(now=NOW)
    before = list(Campaign.objects.values())

    result = campaigns_detect(now=NOW + timedelta(minutes=10))

    assert result["created"] == result["subjects_joined"] == result["cases_joined"] == 0
    assert [{**c, "updated_at": None} for c in Campaign.objects.values()] == [{**c, "updated_at": None} for c in before]
    assert CaseEvent.objects.filter(kind="campaign_joined").count() == 10


def test_campaign_grows_with_new_linked_accounts_and_new_cases():
    ring(10)
    campaigns_detect(now=NOW)
    campaign = Campaign.objects.get()
    late = ring(3)  # same device and domain
    member = Subject.objects.filter(campaign=campaign).first()
    Case.objects.filter(subject=member).update(status="decided", decided_at=NOW)
    new_case = CaseFactory(subject=member, kind="harassment")

    result = campaigns_detect(now=NOW + timedelta(minutes=10))

    campaign.refresh_from_db()
    assert result["created"] == 0 and result["subjects_joined"] == 3 and result["cases_joined"] == 4
    assert campaign.size == 13
    assert campaign_of(late) == {campaign.pk}
    assert Case.objects.get(pk=new_case.pk).campaign_id == campaign.pk


def test_new_case_of_a_member_whose_links_aged_out_still_joins():
    members = ring(5)
    campaigns_detect(now=NOW)
    campaign = Campaign.objects.get()
    SubjectAttribute.objects.update(seen_at=NOW - timedelta(days=30))  # no component any more
    Case.objects.filter(subject=members[0]).update(status="decided", decided_at=NOW)
    late = CaseFactory(subject=members[0], kind="spam")

    result = campaigns_detect(now=NOW + timedelta(minutes=10))

    assert result["components"] == 0 and result["cases_joined"] == 1
    assert Case.objects.get(pk=late.pk).campaign_id == campaign.pk


def test_too_small_component_is_no_campaign(settings):
    settings.DOCKET = {**settings.DOCKET, "CAMPAIGN_MIN_SIZE": 5}
    ring(4)

    assert campaigns_detect(now=NOW)["components"] == 0
    assert Campaign.objects.count() == 0


def test_links_seen_before_the_window_do_not_count(settings):
    settings.DOCKET = {**settings.DOCKET, "CAMPAIGN_WINDOW_DAYS": 14}
    members = accounts(10, prefix="old")
    attach(members, "device", "d-old", seen_at=NOW - timedelta(days=15))

    campaigns_detect(now=NOW)

    assert Campaign.objects.count() == 0


def test_a_bridge_merges_two_campaigns_into_the_older():
    first = ring(6, device="d-1", domain="one.example")
    second = ring(6, device="d-2", domain="two.example")
    campaigns_detect(now=NOW)
    older, newer = Campaign.objects.order_by("pk")
    bridge = accounts(1, prefix="bridge")
    attach(bridge, "device", "d-1")
    attach(bridge, "link_domain", "two.example")

    result = campaigns_detect(now=NOW + timedelta(minutes=10))

    assert result["merged"] == 1
    assert list(Campaign.objects.values_list("pk", flat=True)) == [older.pk]
    older.refresh_from_db()
    assert older.size == 13
    assert campaign_of(first + second + bridge) == {older.pk}
    assert set(Case.objects.filter(subject__in=second).values_list("campaign_id", flat=True)) == {older.pk}
    moved = CaseEvent.objects.filter(kind="campaign_joined", detail__merged_from=newer.pk)
    assert moved.count() == 6
    assert {"kind": "device", "value": "d-2"} in older.links


def test_decided_campaign_keeps_its_members_and_returning_accounts_form_a_new_one():
    veterans = ring(6)
    campaigns_detect(now=NOW)
    decided = Campaign.objects.get()
    Campaign.objects.filter(pk=decided.pk).update(status="decided")
    assert campaigns_detect(now=NOW + timedelta(minutes=10))["created"] == 0  # nothing new, nothing re-detected
    returning = ring(2)  # ban evasion: new accounts on the same device

    campaigns_detect(now=NOW + timedelta(minutes=20))

    fresh = Campaign.objects.exclude(pk=decided.pk).get()
    assert campaign_of(veterans) == {decided.pk}
    assert campaign_of(returning) == {fresh.pk}
    assert fresh.size == 2 and fresh.status == "open"


def test_content_owned_by_members_joins_and_class_is_the_most_common():
    members = ring(5, cases=False)
    for s in members[:2]:
        CaseFactory(subject=s, kind="harassment")
    posts = [accounts(1, prefix="post", kind="content", owner=s)[0] for s in members]
    for p in posts:
        CaseFactory(subject=p, kind="spam")

    campaigns_detect(now=NOW)

    campaign = Campaign.objects.get()
    assert campaign.threat_class.slug == "spam"  # 5 spam cases on posts, 2 harassment on accounts
    assert campaign.size == 5
    assert Case.objects.filter(campaign=campaign).count() == 7


def test_campaign_without_cases_is_coordinated_inauthentic_behaviour():
    ring(5, cases=False)

    campaigns_detect(now=NOW)

    assert Campaign.objects.get().threat_class.slug == "cib"


# --- deciding a campaign -------------------------------------------------------------------------------------------


def open_campaign(n=5, kind="spam"):
    members = ring(n, kind=kind)
    campaigns_detect(now=NOW)
    return Campaign.objects.get(), members


def test_each_member_case_gets_its_own_decision_statement_and_enforcement(senior):
    campaign, _ = open_campaign(5)

    made = campaign_decide(campaign_id=campaign.pk, actor=senior, action="remove", rule="SP-2", rationale="network")

    assert len(made) == 5
    decisions = Decision.objects.filter(campaign=campaign)
    assert decisions.count() == 5
    assert len({d.case_id for d in decisions}) == 5
    assert {(d.action, d.rule, d.reviewer.user.username, d.automated) for d in decisions} == {
        ("remove", "SP-2", "senior", False)
    }
    assert Enforcement.objects.filter(decision__campaign=campaign, action="remove").count() == 5
    assert set(Case.objects.filter(campaign=campaign).values_list("status", flat=True)) == {"decided"}
    assert Campaign.objects.get(pk=campaign.pk).status == "decided"


def test_a_member_another_reviewer_holds_is_decided_and_the_assignment_ends(senior, moderator):
    campaign, _ = open_campaign(5)
    held = Case.objects.filter(campaign=campaign).order_by("pk").first()
    assignment = case_assign(case_id=held.pk, reviewer_username="mod", by=senior)

    assert len(campaign_decide(campaign_id=campaign.pk, actor=senior, action="remove", rule="SP-1", rationale="")) == 5

    assignment = Assignment.objects.get(pk=assignment.pk)
    assert assignment.state == "completed" and assignment.ended_at is not None
    assert Case.objects.get(pk=held.pk).status == "decided"


def test_a_member_case_the_action_does_not_fit_refuses_the_whole_decision(senior):
    campaign, _ = open_campaign(5)
    CaseFactory(kind="csam", campaign=campaign)  # csam's ladder has no "restrict"
    before = list(Case.objects.order_by("pk").values_list("pk", "status"))

    with pytest.raises(DocketError) as refused:
        campaign_decide(campaign_id=campaign.pk, actor=senior, action="restrict", rule="SP-1", rationale="")

    assert refused.value.code == "action_not_allowed"
    assert Decision.objects.count() == 0
    assert list(Case.objects.order_by("pk").values_list("pk", "status")) == before
    assert Campaign.objects.get(pk=campaign.pk).status == "open"


def test_member_cases_hidden_from_the_senior_are_left_alone(make_user):
    campaign, _ = open_campaign(5)
    hidden = CaseFactory(kind="csam", campaign=campaign)
    plain = make_user("plain-senior", "senior")  # no csam clearance

    assert len(campaign_decide(campaign_id=campaign.pk, actor=plain, action="remove", rule="SP-1", rationale="")) == 5
    assert Case.objects.get(pk=hidden.pk).status == "open"
    # An open member remains (hidden from this senior): the campaign stays open for someone cleared.
    assert Campaign.objects.get(pk=campaign.pk).status == "open"


def test_moderator_cannot_decide_a_campaign(moderator):
    campaign, _ = open_campaign(5)

    with pytest.raises(DocketError) as refused:
        campaign_decide(campaign_id=campaign.pk, actor=moderator, action="remove", rule="SP-1", rationale="")

    assert (refused.value.code, refused.value.status) == ("forbidden", 403)
    assert set(Case.objects.values_list("status", flat=True)) == {"open"}


def test_dismissed_campaign_keeps_its_cases_open(senior):
    campaign, _ = open_campaign(5)

    campaign_dismiss(campaign_id=campaign.pk, actor=senior)

    assert Campaign.objects.get(pk=campaign.pk).status == "dismissed"
    assert set(Case.objects.values_list("status", flat=True)) == {"open"}
    with pytest.raises(DocketError) as refused:
        campaign_decide(campaign_id=campaign.pk, actor=senior, action="remove", rule="SP-1", rationale="")
    assert refused.value.code == "invalid_transition"


def run_concurrently(*fns):
    """Run each function in its own thread (its own PostgreSQL connection); returns results or exceptions."""
    barrier = threading.Barrier(len(fns))
    results = [None] * len(fns)

    def run(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        except Exception as e:  # collected for the assertion
            results[i] = e
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_seniors_deciding_at_once_decide_each_case_once(make_user):
    first = make_user("senior-a", "senior")
    second = make_user("senior-b", "senior")
    campaign, _ = open_campaign(5)

    def decide(user):
        return lambda: campaign_decide(campaign_id=campaign.pk, actor=user, action="remove", rule="SP-1", rationale="")

    results = run_concurrently(decide(first), decide(second))

    assert sorted(str(len(r)) if isinstance(r, list) else r.code for r in results) == ["5", "invalid_transition"]
    assert Decision.objects.count() == 5


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_detection_runs_make_one_campaign():
    ring(20)

    results = run_concurrently(lambda: campaigns_detect(now=NOW), lambda: campaigns_detect(now=NOW))

    assert sorted(r["created"] for r in results) == [0, 1]
    assert Campaign.objects.count() == 1
    assert CaseEvent.objects.filter(kind="campaign_joined").count() == 20


def test_the_campaign_decision_api_carries_the_public_explanation_to_every_member(senior, api_for):
    campaign, _ = open_campaign(5)

    response = api_for(senior).post(
        f"/api/v1/campaigns/{campaign.pk}/decision/",
        {
            "action": "remove",
            "rule": "SP-2",
            "rationale": "internal: one network",
            "public_explanation": "Spam network.",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json() == {"decisions": 5}
    assert set(Decision.objects.filter(campaign=campaign).values_list("public_explanation", "rationale")) == {
        ("Spam network.", "internal: one network")
    }


# --- short transactions: detection never waits for anyone, nobody waits for it longer than a batch --------------


@contextmanager
def held_by_another(sql, params):
    """Another connection holds these rows (as a reviewer's claim or decision, or intake's fold, does) until the
    block ends; meanwhile a wait of this connection's on a lock fails instead of hanging."""
    with second_connection() as other:
        other.execute(sql, params)
        with connection.cursor() as cur:
            cur.execute("SET lock_timeout = '2s'")
        try:
            yield
        finally:
            other.rollback()
            with connection.cursor() as cur:
                cur.execute("RESET lock_timeout")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_member_case_another_connection_holds_is_passed_over_and_joins_on_the_next_run():
    members = ring(10)
    held = Case.objects.get(subject=members[4])

    with held_by_another("SELECT id FROM casework_case WHERE id = %s FOR UPDATE", [held.pk]):
        result = campaigns_detect(now=NOW, batch=3)

        campaign = Campaign.objects.get()
        assert (result["created"], result["subjects_joined"], result["cases_joined"]) == (1, 10, 9)
        assert campaign.size == 10
        joined = set(Case.objects.filter(campaign=campaign).values_list("pk", flat=True))
        assert joined == {c.pk for c in Case.objects.filter(subject__in=members)} - {held.pk}

    result = campaigns_detect(now=NOW + timedelta(minutes=10), batch=3)

    assert (result["created"], result["subjects_joined"], result["cases_joined"]) == (0, 0, 1)
    assert Case.objects.get(pk=held.pk).campaign_id == campaign.pk
    assert CaseEvent.objects.filter(kind="campaign_joined").count() == 10


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_member_intake_holds_is_passed_over_and_joins_on_the_next_run():
    members = ring(10)
    folding = members[7]  # intake's upsert of the subject holds its row while it folds a signal in

    with held_by_another("SELECT id FROM casework_subject WHERE id = %s FOR NO KEY UPDATE", [folding.pk]):
        result = campaigns_detect(now=NOW, batch=3)

        campaign = Campaign.objects.get()
        assert (result["subjects_joined"], result["cases_joined"]) == (9, 9)
        assert campaign.size == 9 == Subject.objects.filter(campaign=campaign).count()
        assert campaign_of([folding]) == {None}

    result = campaigns_detect(now=NOW + timedelta(minutes=10), batch=3)

    campaign.refresh_from_db()
    assert (result["created"], result["subjects_joined"], result["cases_joined"]) == (0, 1, 1)
    assert campaign.size == 10
    assert campaign_of(members) == {campaign.pk}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_merge_passes_over_a_held_case_keeps_what_is_left_apart_and_the_next_run_finishes_it():
    rings = [ring(6, device="d-1", domain="one.example"), ring(6, device="d-2", domain="two.example")]
    campaigns_detect(now=NOW)
    older, newer = Campaign.objects.order_by("pk")
    staying, merged = sorted(rings, key=lambda members: campaign_of(members) != {older.pk})
    bridge = accounts(1, prefix="bridge")
    attach(bridge, "device", "d-1")
    attach(bridge, "link_domain", "two.example")
    held = Case.objects.get(subject=merged[2])

    with held_by_another("SELECT id FROM casework_case WHERE id = %s FOR UPDATE", [held.pk]):
        result = campaigns_detect(now=NOW + timedelta(minutes=10), batch=2)

    # The cases nobody held moved to the older campaign; the held one keeps the newer campaign, and its members
    # with it, until the next run: every campaign's size is its members, every case in one campaign.
    assert (result["merged"], result["subjects_joined"], result["cases_joined"]) == (1, 1, 5)
    older.refresh_from_db()
    newer.refresh_from_db()
    assert (older.size, newer.size) == (7, 6)
    assert campaign_of(staying + bridge) == {older.pk} and campaign_of(merged) == {newer.pk}
    assert set(Case.objects.filter(campaign=newer).values_list("pk", flat=True)) == {held.pk}
    assert {"kind": "device", "value": "d-2"} in older.links and {"kind": "device", "value": "d-1"} in older.links

    result = campaigns_detect(now=NOW + timedelta(minutes=20), batch=2)

    assert (result["merged"], result["cases_joined"]) == (1, 1)
    assert list(Campaign.objects.values_list("pk", flat=True)) == [older.pk]
    older.refresh_from_db()
    assert older.size == 13
    assert campaign_of(staying + merged + bridge) == {older.pk}
    assert set(Case.objects.filter(subject__in=merged).values_list("campaign_id", flat=True)) == {older.pk}
    assert CaseEvent.objects.filter(kind="campaign_joined", detail__merged_from=newer.pk).count() == 6


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_member_held_while_its_campaign_is_written_is_not_taken_by_a_restricted_classs_campaign_meanwhile(
    monkeypatch,
):
    members = ring(6)
    held = members[0]
    network = accounts(5, prefix="csam-net")
    for s in network:
        CaseFactory(subject=s, kind="csam")
    attach([held, *network], "media_hash", "h-1", by="csam")  # a value only csam signals brought

    with second_connection() as intake:  # folds a signal into the member while its campaign is written, no longer
        intake.execute("SELECT id FROM casework_subject WHERE id = %s FOR NO KEY UPDATE", [held.pk])
        _between_batches(monkeypatch, lambda work: intake.rollback())
        campaigns_detect(now=NOW)
    monkeypatch.undo()

    spam, csam = (Campaign.objects.get(link_class__isnull=True), Campaign.objects.get(link_class__slug="csam"))
    assert campaign_of(members[1:]) == {spam.pk} and campaign_of(network) == {csam.pk}
    assert campaign_of([held]) == {None}  # left for the next run, which gives it its campaign of unrestricted links

    campaigns_detect(now=NOW + timedelta(minutes=10))

    assert campaign_of(members) == {spam.pk} and campaign_of(network) == {csam.pk}
    spam.refresh_from_db()
    csam.refresh_from_db()
    assert (spam.size, csam.size) == (6, 5)


def _between_batches(monkeypatch, each):
    """Call ``each(work)`` after every committed batch of detection (between two of its transactions)."""
    batch = campaigns._in_transaction

    def watched(work):
        result = batch(work)
        each(work)
        return result

    monkeypatch.setattr(campaigns, "_in_transaction", watched)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_between_batches_readers_see_every_campaign_as_its_members_make_it(monkeypatch):
    members = ring(7, cases=False)
    posts = [accounts(1, prefix="post", kind="content", owner=s)[0] for s in members]
    for post in posts:
        CaseFactory(subject=post, kind="spam")
    CaseFactory(subject=members[0], kind="harassment")
    seen = []

    def read(work):
        with second_connection(autocommit=True) as reader:  # what any page reads after this commit
            seen.append(
                reader.execute(
                    "SELECT k.size, tc.slug, jsonb_array_length(k.links),"
                    " (SELECT count(*) FROM casework_subject s WHERE s.campaign_id = k.id),"
                    " (SELECT count(*) FROM casework_case c WHERE c.campaign_id = k.id)"
                    " FROM casework_campaign k JOIN policies_threatclass tc ON tc.id = k.threat_class_id"
                ).fetchall()
            )

    _between_batches(monkeypatch, read)
    campaigns_detect(now=NOW, batch=3)

    # Written with its first three members, its links and the class of the cases to come; then a batch at a time.
    assert seen == [
        [(3, "spam", 2, 3, 0)],
        [(6, "spam", 2, 6, 0)],
        [(7, "spam", 2, 7, 0)],
        [(7, "spam", 2, 7, 3)],
        [(7, "spam", 2, 7, 6)],
        [(7, "spam", 2, 7, 8)],
        [(7, "spam", 2, 7, 8)],  # settled: nothing left to change
    ]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_claim_made_while_detection_is_mid_run_completes_at_once_with_the_top_case(monkeypatch, moderator):
    members = ring(6, cases=False)
    cases = [CaseFactory(subject=s, kind="spam", priority=10.0 - n) for n, s in enumerate(members)]
    mid_run, go_on, run = threading.Event(), threading.Event(), {}

    def pause(work):
        if work.func.__name__ == "_cases_batch" and not mid_run.is_set():
            mid_run.set()  # a batch of cases has joined, the others have not
            go_on.wait(20)

    _between_batches(monkeypatch, pause)

    def detect():
        try:
            run["result"] = campaigns_detect(now=NOW, batch=2)
        except Exception as e:  # surfaced below
            run["error"] = e
        finally:
            mid_run.set()
            connection.close()

    detection = threading.Thread(target=detect)
    detection.start()
    try:
        assert mid_run.wait(20) and "error" not in run
        with connection.cursor() as cur:  # a wait on a row detection holds fails instead of hanging
            cur.execute("SET lock_timeout = '2s'")
        joined = set(Case.objects.filter(campaign__isnull=False).values_list("pk", flat=True))
        assignment = queue_claim(reviewer=moderator, queue_slug="spam")
    finally:
        go_on.set()
        detection.join(20)
        with connection.cursor() as cur:
            cur.execute("RESET lock_timeout")

    assert joined == {cases[0].pk, cases[1].pk}
    assert assignment is not None and assignment.case_id == cases[0].pk  # the highest-ranked claimable case
    assert "error" not in run and run["result"]["cases_joined"] == 6
    assert set(Case.objects.filter(subject__in=members).values_list("campaign_id", flat=True)) == {
        Campaign.objects.get().pk
    }
    assert Case.objects.get(pk=cases[0].pk).status == "in_review"
