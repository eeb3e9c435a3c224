"""Case reads: who may see which case or campaign, and what the API and the UI show of it.

``Case.objects.visible_to(user)`` and ``Campaign.objects.visible_to(user)`` apply
the one visibility rule (``policies.models.visible_classes_q``): restricted threat
classes stay hidden from users without the matching clearance; every case read
(lists, detail, timeline, claims, campaigns) starts from them.

The querysets (``visible_to`` and the rest) stand in ``casework.models``, beside the models they read.

What the upper layers add to a case's display (its active assignment and its
decisions) and the account's active strikes behind ``recommended_actions`` come
through hooks (``docket.hooks``) that ``reviews`` fills when ready:
``case_display_prefetches``, ``strike_actions`` and ``blind_decisions``.
"""

from __future__ import annotations

from functools import cache

from django.db import connection, models
from django.db.models import BooleanField, Count, ExpressionWrapper, Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone

from docket.errors import not_found
from docket.hooks import Hook
from docket.rows import loaded_side_by_side, returning
from docket.visibility import clearances_of
from policies.models import ThreatClass, class_visible, ladder_rank, visible_classes_q
from policies.selectors import active_versions_by_class

from .models import (  # noqa: F401  (case_display_prefetches: reviews registers its provider through this module)
    Case,
    Queue,
    Reporter,
    Signal,
    Subject,
    SubjectAttribute,
    SubjectFacet,
    case_display_prefetches,
)

# ``(user) -> a queryset of the decisions hidden from user by a blind second review (QA, relabel) that is
# theirs to do, or None`` (reviews owns both).
blind_decisions = Hook("casework.blind_decisions")
# ``(accounts, *, now, user) -> {account id: action of its most recent active strike ``user`` may know of}``
# (reviews owns strikes).
strike_actions = Hook("casework.strike_actions")


def campaign_links_visible(user, campaigns) -> list:
    """Set ``visible_links`` on each campaign: its stored links as far as members ``user`` may see tell them.

    A link is a value the members share. For a user some classes are hidden from, a link that
    member subjects hidden from them carry is kept only while at least two members they may see
    share it too (a value only restricted members carry, or one visible member and hidden ones,
    is left out), and the links are ordered by how many members the user may see share each
    (then kind and value), not by counts that include hidden members. For a user who sees every
    class they are the stored links. One query (none for such a user). Returns ``campaigns`` as a list.
    """

    campaigns = list(campaigns)
    for campaign in campaigns:
        campaign.visible_links = list(campaign.links or [])
    ids = [c.pk for c in campaigns]
    if not ids or not ThreatClass.objects.hidden_from(user).exists():
        return campaigns
    links = [link for c in campaigns for link in c.visible_links]
    members = Subject.objects.filter(campaign_id__in=ids)
    rows = (
        SubjectAttribute.objects.filter(
            subject__in=members,
            kind__in={link.get("kind") for link in links},
            value__in={link.get("value") for link in links},
        )
        .values_list("subject__campaign_id", "kind", "value")
        .annotate(
            hidden=Count("subject_id", filter=Q(subject__in=members.hidden_from(user)), distinct=True),
            seen=Count("subject_id", filter=Q(subject__in=members.visible_to(user)), distinct=True),
        )
    )
    carriers = {(campaign_id, kind, value): (hidden, seen) for campaign_id, kind, value, hidden, seen in rows}
    for campaign in campaigns:
        shown = []
        for link in campaign.visible_links:
            hidden, seen = carriers.get((campaign.pk, link.get("kind"), link.get("value")), (0, 0))
            if hidden == 0 or seen >= 2:
                shown.append((-seen, str(link.get("kind")), str(link.get("value")), link))
        campaign.visible_links = [link for *_key, link in sorted(shown, key=lambda row: row[:3])]
    return campaigns


def subject_facts(*, user, subjects) -> dict[int, dict]:
    """Per subject id, what the signals of classes ``user`` may see said of it: ``{"reach", "attributes"}``.

    The largest reach and the attribute values (``{kind: [values]}``, sorted) of the subject's
    facets (``SubjectFacet``) of visible classes: a value or a reach only a restricted class's
    signals carried is not told to someone without its clearance. A subject with no facet at all
    (only ever named as a content's owner, or older than facets) shows its own figures. One query.
    """
    subjects = list(subjects)
    visible = ExpressionWrapper(
        visible_classes_q(clearances_of(user), prefix="threat_class__"), output_field=BooleanField()
    )
    rows = (
        SubjectFacet.objects.filter(subject_id__in=[s.pk for s in subjects])
        .annotate(seen=visible)
        .values_list("subject_id", "reach", "attributes", "seen")
    )
    faceted, reach, attributes = set(), {}, {}
    for subject_id, facet_reach, facet_attributes, seen in rows:
        faceted.add(subject_id)
        if not seen:
            continue
        reach[subject_id] = max(reach.get(subject_id, 0), facet_reach)
        merged = attributes.setdefault(subject_id, {})
        for kind, values in (facet_attributes if isinstance(facet_attributes, dict) else {}).items():
            merged.setdefault(kind, set()).update(values if isinstance(values, list) else [values])
    out = {}
    for subject in subjects:
        if subject.pk in faceted:
            merged = attributes.get(subject.pk, {})
            out[subject.pk] = {
                "reach": reach.get(subject.pk, 0),
                "attributes": {kind: sorted(map(str, values)) for kind, values in sorted(merged.items())},
            }
        else:
            own = subject.attributes if isinstance(subject.attributes, dict) else {}
            out[subject.pk] = {
                "reach": subject.reach,
                "attributes": {
                    kind: sorted(map(str, values if isinstance(values, list) else [values]))
                    for kind, values in sorted(own.items())
                },
            }
    return out


def case_visible(*, user, case_id: int):
    """One case for display, or ``DocketError`` 404 when it does not exist or is hidden from the user."""
    case = Case.objects.visible_to(user).for_display(user=user).filter(pk=case_id).first()
    if case is None:
        raise not_found("No such case.")
    return case


@cache
def _case_page_sql():
    return (
        f"SELECT {returning(Case, 'c')}, {returning(Subject, 's')}, {returning(ThreatClass, 'tc')},"
        f" {returning(Queue, 'q')}, {returning(Subject, 'o')}"
        " FROM casework_case c JOIN casework_subject s ON s.id = c.subject_id"
        " JOIN policies_threatclass tc ON tc.id = c.threat_class_id JOIN casework_queue q ON q.id = c.queue_id"
        " LEFT JOIN casework_subject o ON o.id = s.owner_id WHERE c.id = %s"
    )


def case_in_context(*, user, case_id: int):
    """The case with its subject, the subject's owner, its class and its queue, for the case page; ``None`` when it
    does not exist or its class is hidden from the user (``class_visible``, the one rule, on the class read with
    it). One hand-written statement: the ORM compiling this join cost more than the read, on every case page."""
    with connection.cursor() as cur:
        cur.execute(_case_page_sql(), [case_id])
        row = cur.fetchone()
    if row is None:
        return None
    case, subject, threat_class, queue, owner = loaded_side_by_side(row, Case, Subject, ThreatClass, Queue, Subject)
    if not class_visible(restricted=threat_class.restricted, slug=threat_class.slug, clearances=clearances_of(user)):
        return None
    Subject.owner.field.set_cached_value(subject, owner)
    Case.subject.field.set_cached_value(case, subject)
    Case.threat_class.field.set_cached_value(case, threat_class)
    Case.queue.field.set_cached_value(case, queue)
    return case


def _strike_account_id(case) -> int | None:
    subject = case.subject
    return subject.id if subject.kind == "account" else subject.owner_id


def recommended_actions(cases, *, user, now=None, versions=None, last_actions=None) -> dict[int, str | None]:
    """Per case id, the ladder step suggested to ``user`` by the account's active strikes.

    The account is the subject, or the owner of a content subject. Active strikes
    are not removed and not expired, and come from decisions on cases of classes
    ``user`` may see: a strike from a restricted class suggests nothing to someone
    not cleared for it (``None`` for ``user`` counts only unrestricted classes). The suggestion is the next step of the
    class's active ladder above the action of the account's most recent active
    strike (the top step when it is already there), or the mildest violation when
    the account has none. ``legal_report`` is never suggested: it is filed
    alongside a violation where the class demands it. Two queries for any number
    of cases (one when ``versions``, the classes' active versions, are given; none
    more when ``last_actions``, per account the action of its most recent active
    strike the user may see, was read by the caller already).
    """
    cases = list(cases)
    if not cases:
        return {}
    now = now or timezone.now()
    accounts = {a for a in (_strike_account_id(c) for c in cases) if a is not None}
    last_action: dict[int, str] = {}
    if accounts:
        last_action = strike_actions(accounts, now=now, user=user) if last_actions is None else last_actions
    if versions is None:
        versions = active_versions_by_class(c.threat_class_id for c in cases)
    ladders = {class_id: version.ladder for class_id, version in versions.items() if version is not None}
    out = {}
    for case in cases:
        steps = [a for a in ladders.get(case.threat_class_id, []) if a not in ("no_violation", "legal_report")]
        if not steps:
            out[case.id] = None
            continue
        steps.sort(key=ladder_rank)
        last = last_action.get(_strike_account_id(case))
        if last is None:
            out[case.id] = steps[0]
            continue
        above = [a for a in steps if ladder_rank(a) > ladder_rank(last)]
        out[case.id] = above[0] if above else steps[-1]
    return out


def recommended_action(case, *, user, now=None, versions=None, last_actions=None) -> str | None:
    return recommended_actions([case], user=user, now=now, versions=versions, last_actions=last_actions).get(case.id)


SIGNALS_SHOWN = 50


def case_signals_shown(case, *, limit: int = SIGNALS_SHOWN) -> tuple[list, int]:
    """The case's latest ``limit`` signals with their source and reporter, newest first, and how many older
    ones are not shown (the case page and the appeal page show the same evidence)."""
    signals = list(case.signals.select_related("source", "reporter").order_by("-occurred_at", "-id")[:limit])
    return signals, max(case.signal_count - len(signals), 0)


def reporter_records(*, user, reporter_ids) -> dict[int, dict]:
    """Per reporter id, their track record as ``user`` may know it: ``{decided, upheld, accuracy}``.

    The record the decision pipeline keeps (``ReporterClassRecord``, what ranking reads), summed over
    the classes the user may see (``Reporter.objects.with_visible_record``, as the admin shows it): a
    decision of a restricted class tells no one without its clearance anything about the reporter.
    Accuracy has the reporters' prior (``Reporter.accuracy_of``). One query.
    """
    ids = sorted({r for r in reporter_ids if r is not None})
    if not ids:
        return {}
    rows = (
        Reporter.objects.filter(pk__in=ids).with_visible_record(user).values_list("pk", "seen_decided", "seen_upheld")
    )
    return {
        pk: {"decided": decided, "upheld": upheld, "accuracy": Reporter.accuracy_of(upheld, decided)}
        for pk, decided, upheld in rows
    }


def case_events(*, case, user=None):
    """The case's timeline, oldest first; with ``user``, without the events of decisions hidden from them
    by a blind second review (``blind_decisions``)."""
    events = case.events.order_by("at", "id")
    blind = blind_decisions(user) if user is not None else None
    if blind is not None:
        # In the same query: the event's decision (as text, absent on most events) is not a hidden one.
        hidden = blind.filter(case_id=case.pk).annotate(ref=Cast("pk", models.CharField())).values("ref")
        events = events.alias(decision_ref=KeyTextTransform("decision", "detail")).filter(
            Q(decision_ref__isnull=True) | ~Q(decision_ref__in=hidden)
        )
    return events


def signals_since(*, source, threat_class, since):
    """The stored signals of a (source, threat class) that occurred after ``since`` (a threshold change's blast
    radius counts them by score; registered for ``policies.services.signals_since``)."""
    return Signal.objects.filter(source=source, threat_class=threat_class, occurred_at__gt=since)
