"""Case reads: who may see which case or campaign, and what the API and the UI show of it.

``Case.objects.visible_to(user)`` and ``Campaign.objects.visible_to(user)`` apply
the one visibility rule (``policies.models.visible_classes_q``): restricted threat
classes stay hidden from users without the matching clearance; every case read
(lists, detail, timeline, claims, campaigns) starts from them.

Model imports are deferred: ``casework.models`` imports ``CaseQuerySet`` from here.

What the upper layers add to a case's display (its active assignment and its
decisions) and the account's active strikes behind ``recommended_actions`` come
through hooks (``docket.hooks``) that ``reviews`` fills when ready:
``case_display_prefetches``, ``strike_actions`` and ``blind_decisions``.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from docket.errors import not_found
from docket.hooks import Contributions, Hook
from docket.visibility import clearances_of
from policies.models import ThreatClass, ladder_rank, visible_classes_q
from policies.selectors import active_versions_by_class

# Each provider returns, for a reader (``user``, or ``None``), the ``Prefetch``es of what its app shows
# on a case (reviews: the active assignment as ``active_assignments``, the decisions as ``decision_list``).
case_display_prefetches = Contributions("casework.case_display_prefetches")
# ``(user) -> a queryset of the decisions hidden from user by a blind second review (QA, relabel) that is
# theirs to do, or None`` (reviews owns both).
blind_decisions = Hook("casework.blind_decisions")
# ``(accounts, *, now, user) -> {account id: action of its most recent active strike ``user`` may know of}``
# (reviews owns strikes).
strike_actions = Hook("casework.strike_actions")


class CaseQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Cases the user may know exist: unrestricted classes, plus restricted ones they are cleared for."""
        return self.filter(visible_classes_q(clearances_of(user), prefix="threat_class__"))

    def active(self):
        return self.filter(status__in=self.model.ACTIVE_STATUSES)

    def for_display(self, user=None):
        """Everything the case representation reads, in a constant number of queries.

        With ``user``, what is shown is what that reader may see (decisions under a blind second
        review that is theirs to do are left out).
        """
        prefetches = [prefetch for provide in case_display_prefetches for prefetch in provide(user=user)]
        return self.select_related("subject", "subject__owner", "threat_class", "queue").prefetch_related(*prefetches)


def _subject_visible_q(user):
    """A subject exists for ``user`` when it has a case they may see, or nothing of it (no case, no
    signal) belongs to a class they may not see (the rule of ``SubjectQuerySet.visible_to``)."""
    from .models import Case, Signal

    visible = visible_classes_q(clearances_of(user), prefix="threat_class__")
    cases = Case.objects.filter(subject_id=OuterRef("pk"))
    signals = Signal.objects.filter(subject_id=OuterRef("pk"))
    nothing_hidden = ~Q(Exists(cases.exclude(visible))) & ~Q(Exists(signals.exclude(visible)))
    return Q(Exists(cases.filter(visible))) | nothing_hidden


class SubjectQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Subjects the user may know exist: one with a case of a class they may see, or one with no
        case and no signal of a class hidden from them. A subject whose only cases are restricted is absent."""
        return self.filter(_subject_visible_q(user))

    def hidden_from(self, user):
        """The subjects ``visible_to`` leaves out (what a figure over subjects must not count)."""
        return self.exclude(_subject_visible_q(user))


class CampaignQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Campaigns the user may know exist: their threat class is visible to the user.

        Whether any member case is visible does not matter: a campaign of a visible class
        is shown (with the members the user may see), one of a hidden class is absent.
        """
        return self.filter(visible_classes_q(clearances_of(user), prefix="threat_class__"))

    def with_visible_figures(self, user):
        """Each campaign annotated with what ``user`` may be told of its members.

        ``visible_size``: the stored size less the member subjects hidden from the user (a
        subject whose only cases are of a restricted class they are not cleared for);
        ``visible_open``: the active member cases the user may see. Links are narrowed by
        ``campaign_links_visible``. For a user who sees every class they are the stored figures.
        """
        from .models import Case, Subject

        hidden = (
            Subject.objects.hidden_from(user)
            .filter(campaign_id=OuterRef("pk"))
            .order_by()
            .values("campaign_id")
            .annotate(n=Count("id"))
            .values("n")
        )
        open_members = (
            Case.objects.visible_to(user)
            .active()
            .filter(campaign_id=OuterRef("pk"))
            .order_by()
            .values("campaign_id")
            .annotate(n=Count("id"))
            .values("n")
        )
        zero = Value(0, output_field=IntegerField())
        return self.annotate(
            visible_size=models.F("size") - Coalesce(Subquery(hidden, output_field=IntegerField()), zero),
            visible_open=Coalesce(Subquery(open_members, output_field=IntegerField()), zero),
        )


def campaign_links_visible(user, campaigns) -> list:
    """Set ``visible_links`` on each campaign: its stored links as far as members ``user`` may see tell them.

    A link is a value the members share. For a user some classes are hidden from, a link that
    member subjects hidden from them carry is kept only while at least two members they may see
    share it too (a value only restricted members carry, or one visible member and hidden ones,
    is left out), and the links are ordered by how many members the user may see share each
    (then kind and value), not by counts that include hidden members. For a user who sees every
    class they are the stored links. One query (none for such a user). Returns ``campaigns`` as a list.
    """

    from .models import Subject, SubjectAttribute

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


class ReporterQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Reporters the user may know exist: one of their signals is of a visible class, or none is of a hidden one."""
        from .models import Signal

        visible = visible_classes_q(clearances_of(user), prefix="threat_class__")
        signals = Signal.objects.filter(reporter_id=OuterRef("pk"))
        return self.filter(Q(Exists(signals.filter(visible))) | ~Q(Exists(signals.exclude(visible))))


class SignalQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Signals of the classes the user may see (a held signal has no case: its own class decides)."""
        return self.filter(visible_classes_q(clearances_of(user), prefix="threat_class__"))


class CaseEventQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Timeline rows of the cases the user may see."""
        return self.filter(visible_classes_q(clearances_of(user), prefix="case__threat_class__"))


def case_visible(*, user, case_id: int):
    """One case for display, or ``DocketError`` 404 when it does not exist or is hidden from the user."""
    from .models import Case

    case = Case.objects.visible_to(user).for_display(user=user).filter(pk=case_id).first()
    if case is None:
        raise not_found("No such case.")
    return case


def _strike_account_id(case) -> int | None:
    subject = case.subject
    return subject.id if subject.kind == "account" else subject.owner_id


def recommended_actions(cases, *, user, now=None, versions=None) -> dict[int, str | None]:
    """Per case id, the ladder step suggested to ``user`` by the account's active strikes.

    The account is the subject, or the owner of a content subject. Active strikes
    are not removed and not expired, and come from decisions on cases of classes
    ``user`` may see: a strike from a restricted class suggests nothing to someone
    not cleared for it (``None`` for ``user`` counts only unrestricted classes). The suggestion is the next step of the
    class's active ladder above the action of the account's most recent active
    strike (the top step when it is already there), or the mildest violation when
    the account has none. ``legal_report`` is never suggested: it is filed
    alongside a violation where the class demands it. Two queries for any number
    of cases (one when ``versions``, the classes' active versions, are given).
    """
    cases = list(cases)
    if not cases:
        return {}
    now = now or timezone.now()
    accounts = {a for a in (_strike_account_id(c) for c in cases) if a is not None}
    last_action: dict[int, str] = {}
    if accounts:
        last_action = strike_actions(accounts, now=now, user=user)
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


def recommended_action(case, *, user, now=None) -> str | None:
    return recommended_actions([case], user=user, now=now).get(case.id)


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
