"""The class ids a subject keeps (``casework.subject_classes``) stay those of its cases and signals, whoever
writes them, and the visibility read from them is the rule's: checked against the rule written over the
case and signal tables themselves."""

import random
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from casework.models import Case, Signal, Subject
from casework.retention import cases_purge_personal_data
from casework.subject_classes import subject_classes_rebuild
from docket import queueing
from docket.errors import DocketError
from docket.visibility import clearances_of
from investigations.selectors import SearchQuery, subject_history, subject_search
from policies.models import ThreatClass, visible_classes_q
from reviews.services import access_change_approve, access_change_propose_class_flags
from tests.factories import CaseFactory, SignalFactory, SourceFactory, SubjectFactory, threat_class
from tests.investigations.conftest import ingest
from tests.support import run_threads

pytestmark = pytest.mark.django_db

CLASSES = ["spam", "harassment", "payment_fraud", "ato", "csam", "cib"]


def ids(*slugs):
    return sorted(threat_class(s).pk for s in slugs)


def stored(subject):
    subject = Subject.objects.get(pk=subject.pk)
    return subject.case_class_ids, subject.class_ids


def recounted(subject):
    """What the tables say, read afresh."""
    cases = sorted(set(Case.objects.filter(subject=subject).values_list("threat_class_id", flat=True)))
    signals = set(Signal.objects.filter(subject=subject).values_list("threat_class_id", flat=True))
    return cases, sorted(set(cases) | signals)


def visible_by_the_tables(user):
    """The rule over the case and signal tables (what ``SubjectQuerySet.visible_to`` reads from the row)."""
    visible = visible_classes_q(clearances_of(user), prefix="threat_class__")
    cases = Case.objects.filter(subject_id=OuterRef("pk"))
    signals = Signal.objects.filter(subject_id=OuterRef("pk"))
    nothing_hidden = ~Q(Exists(cases.exclude(visible))) & ~Q(Exists(signals.exclude(visible)))
    return set(Subject.objects.filter(Q(Exists(cases.filter(visible))) | nothing_hidden).values_list("pk", flat=True))


def assert_in_step(*users):
    for subject in Subject.objects.all():
        assert stored(subject) == recounted(subject), subject
    for user in users:
        assert set(Subject.objects.visible_to(user).values_list("pk", flat=True)) == visible_by_the_tables(user)
        hidden = set(Subject.objects.hidden_from(user).values_list("pk", flat=True))
        assert hidden == set(Subject.objects.values_list("pk", flat=True)) - visible_by_the_tables(user)


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr(queueing, "_publish", lambda task, args, what: None)


@pytest.fixture(autouse=True)
def held_source(db):
    """A quarantined classifier: its signals are stored and held, with no case."""
    return SourceFactory(slug="sc-held", kind="classifier", status="quarantined")


def test_intake_records_the_classes_of_cases_and_of_signals_without_a_case(platform, moderator, senior):
    case = ingest(platform, subject="account:sc-1")
    subject = case.subject
    assert stored(subject) == (ids("spam"), ids("spam"))
    # A held signal is stored without a case: a class of the subject, not of its cases.
    assert ingest(platform, subject="account:sc-1", threat_class="csam", source="sc-held") is None
    assert stored(subject) == (ids("spam"), ids("spam", "csam"))
    hidden = ingest(platform, subject="account:sc-2", threat_class="csam", source="sc-held")
    assert hidden is None
    only_csam = Subject.objects.get(external_id="sc-2")
    assert stored(only_csam) == ([], ids("csam"))

    assert set(Subject.objects.visible_to(moderator).values_list("external_id", flat=True)) == {"sc-1"}
    assert set(Subject.objects.visible_to(senior).values_list("external_id", flat=True)) == {"sc-1", "sc-2"}
    assert_in_step(moderator, senior)


def test_deleted_and_moved_cases_and_signals_are_recounted(moderator, senior):
    subject, other = SubjectFactory(), SubjectFactory()
    case = CaseFactory(subject=subject, kind="spam")
    csam = SignalFactory(subject=subject, threat_class=threat_class("csam"))
    assert stored(subject) == (ids("spam"), ids("spam", "csam"))

    Signal.objects.filter(pk=csam.pk).update(subject=other)  # a signal moved to another subject
    assert stored(subject) == (ids("spam"), ids("spam"))
    assert stored(other) == ([], ids("csam"))
    Case.objects.filter(pk=case.pk).update(threat_class=threat_class("cib"))  # a case moved to another class
    assert stored(subject) == (ids("cib"), ids("cib"))
    assert_in_step(moderator, senior)

    Signal.objects.filter(pk=csam.pk).delete()
    Case.objects.filter(pk=case.pk).delete()
    assert stored(subject) == ([], [])
    assert stored(other) == ([], [])
    assert_in_step(moderator, senior)


def test_ordinary_writes_of_a_subject_row_leave_its_class_ids_alone():
    subject = SubjectFactory()
    stale = Subject.objects.get(pk=subject.pk)  # read before the case exists
    CaseFactory(subject=subject, kind="harassment")
    stale.reach = 7
    stale.save()  # writes every column, the empty ids read earlier among them
    assert stored(subject) == (ids("harassment"), ids("harassment"))
    Subject.objects.filter(pk=subject.pk).update(case_class_ids=[], class_ids=[])
    assert stored(subject) == (ids("harassment"), ids("harassment"))
    made_up = Subject.objects.create(kind="account", external_id="sc-made-up", case_class_ids=[1], class_ids=[1])
    assert stored(made_up) == ([], [])


def test_retention_purge_keeps_the_class_ids_and_what_each_reader_sees(moderator, senior):
    old = timezone.now() - timedelta(days=800)
    purged = []
    for kind in ("spam", "cib"):  # (csam is on legal hold: never purged)
        case = CaseFactory(kind=kind)
        SignalFactory(subject=case.subject, threat_class=case.threat_class, case=case, disposition="queued")
        Case.objects.filter(pk=case.pk).update(status="closed", decided_at=old, closed_at=old)
        purged.append(case.subject)
    before = {s.pk: stored(s) for s in purged}
    seen = {u.username: set(Subject.objects.visible_to(u).values_list("pk", flat=True)) for u in (moderator, senior)}

    assert cases_purge_personal_data() == 2

    assert {s.pk: stored(s) for s in purged} == before
    assert {
        u.username: set(Subject.objects.visible_to(u).values_list("pk", flat=True)) for u in (moderator, senior)
    } == (seen)
    assert_in_step(moderator, senior)


def test_a_class_restricted_by_an_access_change_hides_the_subjects_it_alone_concerns(platform, make_user):
    """The stored ids are class ids: restricting a class (two policy admins) hides its subjects at once, and
    releasing it shows them again, with nothing recomputed."""
    ada, bob = make_user("sc-ada", "policy_admin"), make_user("sc-bob", "policy_admin")
    mod = make_user("sc-mod", "moderator", queues=["harassment", "spam"])
    ingest(platform, subject="account:sc-harassed", threat_class="harassment")
    ingest(platform, subject="account:sc-mixed", threat_class="harassment")
    ingest(platform, subject="account:sc-mixed", threat_class="spam")

    def found():
        page = subject_search(user=mod, query=SearchQuery.parse(q="sc-"))
        return page.count, [r["external_id"] for r in page.results]

    def page_exists(external_id):
        try:
            subject_history(user=mod, kind="account", external_id=external_id)
        except DocketError as e:
            assert e.status == 404
            return False
        return True

    def flag(restricted):
        harassment = ThreatClass.objects.get(slug="harassment")
        change = access_change_propose_class_flags(
            threat_class_id=harassment.pk,
            restricted=restricted,
            legal_escalation=harassment.legal_escalation,
            reason="investigation",
            actor=ada,
        )
        access_change_approve(change_id=change.pk, actor=bob)

    assert found() == (2, ["sc-harassed", "sc-mixed"])
    stored_before = {s.pk: stored(s) for s in Subject.objects.all()}

    flag(True)
    mod = type(mod).objects.get(pk=mod.pk)  # a new request: clearances read afresh
    assert found() == (1, ["sc-mixed"])
    assert (page_exists("sc-harassed"), page_exists("sc-mixed")) == (False, True)
    assert {s.pk: stored(s) for s in Subject.objects.all()} == stored_before
    assert_in_step(mod)

    flag(False)
    mod = type(mod).objects.get(pk=mod.pk)
    assert found() == (2, ["sc-harassed", "sc-mixed"])
    assert page_exists("sc-harassed")


def test_the_stored_ids_equal_a_full_recount_after_many_writes(moderator, senior):
    rng = random.Random(15)
    subjects = [SubjectFactory() for _ in range(12)]
    cases, signals = [], []
    for _ in range(40):
        subject, kind = rng.choice(subjects), rng.choice(CLASSES)
        if rng.random() < 0.4 and not Case.objects.filter(subject=subject, threat_class__slug=kind).exists():
            cases.append(CaseFactory(subject=subject, kind=kind))
        else:
            signals.append(SignalFactory(subject=subject, threat_class=threat_class(kind)))
    for row in rng.sample(signals, len(signals) // 3):
        Signal.objects.filter(pk=row.pk).delete()
    for row in rng.sample(cases, len(cases) // 3):
        Signal.objects.filter(case=row).update(case=None)
        Case.objects.filter(pk=row.pk).delete()
    assert_in_step(moderator, senior)
    assert subject_classes_rebuild() == 0  # nothing to correct


def test_rebuild_restores_ids_after_a_load_that_bypassed_the_triggers(moderator):
    subject = SubjectFactory()
    CaseFactory(subject=subject, kind="cib")
    with connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")  # no trigger fires, the guard included
        cur.execute("UPDATE casework_subject SET case_class_ids = '{}', class_ids = '{}'")
        cur.execute("SET LOCAL session_replication_role = DEFAULT")
    assert stored(subject) == ([], [])
    assert subject_classes_rebuild() == 1
    assert stored(subject) == (ids("cib"), ids("cib"))
    assert_in_step(moderator)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_intake_of_new_classes_for_one_subject_keeps_every_class(platform, moderator, senior):
    """Eight requests, each bringing the same subject a class of its own (cases and bare signals), at once."""
    plan = [("spam", "user-reports"), ("harassment", "user-reports"), ("payment_fraud", "user-reports")]
    plan += [("ato", "sc-held"), ("csam", "sc-held"), ("cib", "user-reports")]
    plan += [("spam", "sc-held"), ("ato", "user-reports")]
    run_threads(
        len(plan), lambda i: ingest(platform, subject="account:sc-busy", threat_class=plan[i][0], source=plan[i][1])
    )
    subject = Subject.objects.get(external_id="sc-busy")
    assert stored(subject)[1] == ids(*CLASSES)
    assert_in_step(moderator, senior)
