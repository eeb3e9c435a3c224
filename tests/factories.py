"""factory_boy factories for the domain, built on the shipped defaults."""

from datetime import timedelta

import factory
from django.utils import timezone

from casework.models import Case, Queue, Reporter, Signal, Subject, SubjectFacet
from casework.priority import BREACH_OFFSET, RESTRICTED_OFFSET, TIER_BREACHED, TIER_RESTRICTED
from policies.models import PolicyVersion, SignalSource, ThreatClass
from reviews.services import decision_automated, decision_overturn


def threat_class(slug):
    return ThreatClass.objects.get(slug=slug)


def queue(slug):
    return Queue.objects.get(slug=slug)


def active_version(slug):
    return PolicyVersion.objects.get(policy__threat_class__slug=slug, status="active")


class SubjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subject

    kind = "account"
    external_id = factory.Sequence(lambda n: f"u-{n}")
    reach = 100


class SourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SignalSource
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"classifier-{n}")
    kind = "classifier"
    trust = 0.9


class ReporterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reporter

    external_id = factory.Sequence(lambda n: f"reporter-{n}")
    first_seen_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=365))


class CaseFactory(factory.django.DjangoModelFactory):
    """An open case of a shipped class: ``CaseFactory(kind="harassment")``."""

    class Meta:
        model = Case
        skip_postgeneration_save = True  # the facet hook writes its own row; the case needs no second save

    class Params:
        kind = "spam"

    subject = factory.SubFactory(SubjectFactory)
    threat_class = factory.LazyAttribute(lambda o: threat_class(o.kind))
    queue = factory.LazyAttribute(lambda o: queue(o.kind))
    status = "open"
    severity = factory.LazyAttribute(lambda o: o.threat_class.severity)
    harm_weight = factory.LazyAttribute(lambda o: o.threat_class.harm_weight)
    reach = factory.LazyAttribute(lambda o: o.subject.reach)
    signal_count = 1
    reporter_count = 1
    first_signal_at = factory.LazyFunction(timezone.now)
    last_signal_at = factory.LazyAttribute(lambda o: o.first_signal_at)
    created_at = factory.LazyAttribute(lambda o: o.first_signal_at)
    sla_due_at = factory.LazyAttribute(lambda o: o.first_signal_at + timedelta(seconds=o.threat_class.sla_seconds))
    priority = 1.0
    # The queue orders by (rank_tier, rank) (casework.priority); a factory case ranks as the priority it is
    # given would: past RESTRICTED_OFFSET in the restricted tier, past BREACH_OFFSET in the breached one.
    rank_tier = factory.LazyAttribute(
        lambda o: (
            (TIER_RESTRICTED if o.priority >= RESTRICTED_OFFSET else 0)
            + (TIER_BREACHED if o.priority % RESTRICTED_OFFSET >= BREACH_OFFSET else 0)
        )
    )
    rank = factory.LazyAttribute(lambda o: o.priority)

    @factory.post_generation
    def facet(case, create, extracted, **kwargs):
        """What intake records beside a case's first signal: its class's facet of the subject (reach, attributes)."""
        if create:
            subject = case.subject
            SubjectFacet.objects.get_or_create(
                subject=subject,
                threat_class=case.threat_class,
                defaults={"reach": subject.reach, "attributes": subject.attributes or {}},
            )


class SignalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Signal

    source = factory.LazyFunction(lambda: SignalSource.objects.get(slug="user-reports"))
    external_id = factory.Sequence(lambda n: f"s-{n}")
    subject = factory.SubFactory(SubjectFactory)
    threat_class = factory.LazyFunction(lambda: threat_class("spam"))
    occurred_at = factory.LazyFunction(timezone.now)
    received_at = factory.LazyAttribute(lambda o: o.occurred_at)
    disposition = "below_threshold"


def classified_and_reported(case, classifier):
    """Two queued signals on ``case``: one from ``classifier``, one user report by a new reporter (what a
    statement of reasons and the decision path read of a case's sources)."""
    reports = SignalSource.objects.get(slug="user-reports")
    for source, reporter in ((classifier, None), (reports, ReporterFactory())):
        SignalFactory(
            case=case,
            subject=case.subject,
            threat_class=case.threat_class,
            source=source,
            reporter=reporter,
            disposition="queued",
        )
    return case


def reported_by(case, *reporters):
    """A queued report on ``case`` from each reporter."""
    for reporter in reporters:
        SignalFactory(
            subject=case.subject, threat_class=case.threat_class, reporter=reporter, case=case, disposition="queued"
        )
    return case


def reporters_with_records(*, overturned_by):
    """Two reporters, ``(alice, bob)``, whose reports were decided through the pipeline on three classes, two of
    those decisions then overturned by ``overturned_by``: alice's record is 2 of 2 upheld on spam and 1 of 1 on
    csam, bob's 1 of 1 on spam and 0 of 1 on harassment."""
    alice, bob = ReporterFactory(), ReporterFactory()
    decided = {}
    for kind, action, reporters in (
        ("spam", "remove", (alice, bob)),
        ("spam", "no_violation", (alice,)),
        ("csam", "remove", (alice,)),
        ("harassment", "remove", (bob,)),
    ):
        case = reported_by(CaseFactory(kind=kind), *reporters)
        decided[(kind, action)] = decision_automated(case=case, action=action)
    decision_overturn(decision=decided[("harassment", "remove")], actor=overturned_by, reason="appeal upheld")
    decision_overturn(decision=decided[("spam", "no_violation")], actor=overturned_by, reason="it was spam")
    return alice, bob
