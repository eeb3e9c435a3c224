"""The class ids a subject keeps (``casework.subject_classes``) stay those of its cases and signals, whoever
writes them, and the visibility read from them is the rule's: checked against the rule written over the
case and signal tables themselves. The same for what each attribute row keeps of its subject and of the
facets that carried its value."""

import importlib
import random
import threading
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from casework.models import Case, Signal, Subject, SubjectAttribute, SubjectFacet
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
from tests.support import run_threads, second_connection

holder_fill = importlib.import_module("casework.migrations.0025_subjectattribute_holder_classes").fill

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


def carried(facet, kind, value):
    """PostgreSQL's ``facet.attributes -> kind ? value``."""
    held = facet.attributes.get(kind) if isinstance(facet.attributes, dict) else None
    return value in held if isinstance(held, list | dict) else held == value


def holder_figures(row):
    """What an attribute row should keep, read from its subject and facets afresh."""
    subject = Subject.objects.get(pk=row.subject_id)
    facets = list(SubjectFacet.objects.filter(subject_id=row.subject_id))
    seen = sorted(f.threat_class_id for f in facets if carried(f, row.kind, row.value)) if facets else None
    return subject.case_class_ids, subject.class_ids, seen


def kept(row):
    row = SubjectAttribute.objects.get(pk=row.pk)
    return row.subject_case_class_ids, row.subject_class_ids, row.seen_class_ids


def assert_in_step(*users):
    for subject in Subject.objects.all():
        assert stored(subject) == recounted(subject), subject
    for row in SubjectAttribute.objects.all():
        assert kept(row) == holder_figures(row), row
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
        case = CaseFactory(kind=kind, subject=SubjectFactory(attributes={"ip": ["203.0.113.80"]}))  # its facet too
        SignalFactory(subject=case.subject, threat_class=case.threat_class, case=case, disposition="queued")
        Case.objects.filter(pk=case.pk).update(status="closed", decided_at=old, closed_at=old)
        SubjectAttribute.objects.create(subject=case.subject, kind="ip", value="203.0.113.80", seen_at=old)
        purged.append(case.subject)
    rows = {row.pk: kept(row) for row in SubjectAttribute.objects.all()}
    by_value = {
        u.username: subject_search(user=u, query=SearchQuery.parse(q="203.0.113.80")) for u in (moderator, senior)
    }
    before = {s.pk: stored(s) for s in purged}
    seen = {u.username: set(Subject.objects.visible_to(u).values_list("pk", flat=True)) for u in (moderator, senior)}

    assert cases_purge_personal_data() == 2

    assert {s.pk: stored(s) for s in purged} == before
    assert {row.pk: kept(row) for row in SubjectAttribute.objects.all()} == rows
    assert {
        u.username: subject_search(user=u, query=SearchQuery.parse(q="203.0.113.80")) for u in (moderator, senior)
    } == by_value
    assert (by_value["mod"].count, by_value["senior"].count) == (1, 2)  # the cib subject is the senior's alone
    assert {
        u.username: set(Subject.objects.visible_to(u).values_list("pk", flat=True)) for u in (moderator, senior)
    } == (seen)
    assert_in_step(moderator, senior)


def test_a_class_restricted_by_an_access_change_hides_the_subjects_it_alone_concerns(platform, make_user):
    """The stored ids are class ids: restricting a class (two policy admins) hides its subjects at once, and
    releasing it shows them again, with nothing recomputed."""
    ada, bob = make_user("sc-ada", "policy_admin"), make_user("sc-bob", "policy_admin")
    mod = make_user("sc-mod", "moderator", queues=["harassment", "spam"])
    shared = {"ip": ["203.0.113.90"]}
    ingest(platform, subject="account:sc-harassed", threat_class="harassment", attributes=shared)
    ingest(platform, subject="account:sc-mixed", threat_class="harassment", attributes=shared)
    ingest(platform, subject="account:sc-mixed", threat_class="spam", attributes=shared)

    def found():
        pages = [subject_search(user=mod, query=SearchQuery.parse(q=q)) for q in ("sc-", "203.0.113.90")]
        by_id, by_value = [(page.count, [r["external_id"] for r in page.results]) for page in pages]
        assert by_value == by_id  # the holders of the value, read from the attribute rows, agree
        return by_id

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
    rows_before = {row.pk: kept(row) for row in SubjectAttribute.objects.all()}

    flag(True)
    mod = type(mod).objects.get(pk=mod.pk)  # a new request: clearances read afresh
    assert found() == (1, ["sc-mixed"])
    assert (page_exists("sc-harassed"), page_exists("sc-mixed")) == (False, True)
    assert {s.pk: stored(s) for s in Subject.objects.all()} == stored_before
    assert {row.pk: kept(row) for row in SubjectAttribute.objects.all()} == rows_before
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


# --- what the attribute rows keep -------------------------------------------------------------------


def test_intake_gives_each_value_its_subjects_classes_and_the_classes_that_carried_it(platform, moderator, senior):
    ingest(platform, subject="account:hc-1", attributes={"ip": ["203.0.113.1"], "device": ["hc-dev"]})
    ip = SubjectAttribute.objects.get(kind="ip", value="203.0.113.1")
    assert kept(ip) == (ids("spam"), ids("spam"), ids("spam"))
    # A held csam signal: the subject gains a class, the address a second carrier, and a payment only csam carried.
    ingest(
        platform,
        subject="account:hc-1",
        threat_class="csam",
        source="sc-held",
        attributes={"ip": ["203.0.113.1"], "payment": ["hc-pay"]},
    )
    device, payment = SubjectAttribute.objects.get(kind="device"), SubjectAttribute.objects.get(kind="payment")
    assert kept(ip) == (ids("spam"), ids("spam", "csam"), ids("spam", "csam"))
    assert kept(device) == (ids("spam"), ids("spam", "csam"), ids("spam"))
    assert kept(payment) == (ids("spam"), ids("spam", "csam"), ids("csam"))
    ingest(platform, subject="account:hc-1", threat_class="harassment")  # a case of a new class, no value
    assert kept(payment) == (ids("spam", "harassment"), ids("spam", "harassment", "csam"), ids("csam"))
    assert_in_step(moderator, senior)

    def found(user, q):
        return [r["external_id"] for r in subject_search(user=user, query=SearchQuery.parse(q=q)).results]

    assert (found(moderator, "203.0.113.1"), found(moderator, "hc-pay")) == (["hc-1"], [])
    assert (found(senior, "203.0.113.1"), found(senior, "hc-pay")) == (["hc-1"], ["hc-1"])


def test_moved_and_deleted_cases_signals_facets_and_values_keep_the_rows_in_step(moderator, senior):
    subject, other = SubjectFactory(), SubjectFactory()
    row = SubjectAttribute.objects.create(subject=subject, kind="ip", value="203.0.113.2", seen_at=timezone.now())
    assert kept(row) == ([], [], None)  # no case, no signal, no facet: shown with its subject
    case = CaseFactory(subject=subject, kind="spam")  # and spam's facet, which carries no value
    assert kept(row) == (ids("spam"), ids("spam"), [])
    csam = SubjectFacet.objects.create(
        subject=subject, threat_class=threat_class("csam"), attributes={"ip": [row.value]}
    )
    assert kept(row) == (ids("spam"), ids("spam"), ids("csam"))
    spam = SubjectFacet.objects.get(subject=subject, threat_class=threat_class("spam"))
    SubjectFacet.objects.filter(pk=spam.pk).update(attributes={"ip": [row.value], "device": ["d"]})
    assert kept(row) == (ids("spam"), ids("spam"), ids("spam", "csam"))
    SubjectFacet.objects.filter(pk=spam.pk).update(reach=10)  # the values unchanged: nothing to redo
    assert_in_step(moderator, senior)

    SubjectFacet.objects.filter(pk=csam.pk).delete()
    assert kept(row) == (ids("spam"), ids("spam"), ids("spam"))
    SubjectFacet.objects.filter(pk=spam.pk).update(subject=other)  # a facet moved to another subject
    assert kept(row) == (ids("spam"), ids("spam"), None)
    Case.objects.filter(pk=case.pk).update(threat_class=threat_class("cib"))
    assert kept(row) == (ids("cib"), ids("cib"), None)
    assert_in_step(moderator, senior)

    SubjectAttribute.objects.filter(pk=row.pk).update(subject=other)  # the value moved to another subject
    assert kept(row) == ([], [], ids("spam"))  # whose facet (spam's, moved there) carries it
    SubjectAttribute.objects.filter(pk=row.pk).update(kind="device", value="e")
    assert kept(row) == ([], [], [])
    Case.objects.filter(pk=case.pk).update(subject=other)
    assert kept(row) == (ids("cib"), ids("cib"), [])
    Case.objects.filter(pk=case.pk).delete()
    assert kept(row) == ([], [], [])
    assert_in_step(moderator, senior)


def test_ordinary_writes_of_an_attribute_row_leave_its_kept_classes_alone():
    subject = SubjectFactory()
    row = SubjectAttribute.objects.create(
        subject=subject,
        kind="ip",
        value="203.0.113.3",
        seen_at=timezone.now(),
        subject_case_class_ids=[1],  # made up: the triggers' figures replace them
        subject_class_ids=[1],
        seen_class_ids=[1],
    )
    assert kept(row) == ([], [], None)
    stale = SubjectAttribute.objects.get(pk=row.pk)  # read before the case exists
    CaseFactory(subject=subject, kind="harassment")
    stale.seen_at = timezone.now()
    stale.save()  # writes every column, the figures read earlier among them
    assert kept(row) == (ids("harassment"), ids("harassment"), [])
    SubjectAttribute.objects.filter(pk=row.pk).update(
        subject_case_class_ids=[], subject_class_ids=[], seen_class_ids=None
    )
    assert kept(row) == (ids("harassment"), ids("harassment"), [])


def test_rebuild_restores_the_rows_after_a_load_that_bypassed_the_triggers(moderator):
    subject = SubjectFactory()
    CaseFactory(subject=subject, kind="cib")
    row = SubjectAttribute.objects.create(subject=subject, kind="ip", value="203.0.113.4", seen_at=timezone.now())
    with connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")  # no trigger fires
        cur.execute("UPDATE casework_subjectattribute SET subject_case_class_ids = '{}', seen_class_ids = NULL")
        cur.execute("SET LOCAL session_replication_role = DEFAULT")
    assert kept(row) == ([], ids("cib"), None)
    assert subject_classes_rebuild() == 1
    assert kept(row) == (ids("cib"), ids("cib"), [])  # cib's facet (the case's) does not carry it
    assert_in_step(moderator)


def test_the_migration_fills_the_rows_older_than_the_triggers(platform, moderator, senior):
    """Rows written before the triggers existed carry nothing: the migration's batches fill them, and so
    does any write of one before the batches reach it."""
    ingest(platform, subject="account:hc-old-1", attributes={"ip": ["203.0.113.5"], "device": ["hc-dev-5"]})
    ingest(platform, subject="account:hc-old-2", threat_class="csam", attributes={"ip": ["203.0.113.5"]})
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred check pending, as ALTER TABLE needs
        cur.execute(
            "ALTER TABLE casework_subjectattribute DROP CONSTRAINT subjectattribute_holder_classes_kept"
        )  # as before the migration (the test's transaction restores it)
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute(
            "UPDATE casework_subjectattribute"
            " SET subject_case_class_ids = NULL, subject_class_ids = NULL, seen_class_ids = NULL"
        )
        cur.execute("SET LOCAL session_replication_role = DEFAULT")
    written = SubjectAttribute.objects.get(kind="device")
    SubjectAttribute.objects.filter(pk=written.pk).update(seen_at=timezone.now())  # intake's later write
    assert kept(written) == (ids("spam"), ids("spam"), ids("spam"))
    assert SubjectAttribute.objects.filter(subject_class_ids__isnull=True).count() == 2

    holder_fill(None, SimpleNamespace(connection=connection))

    assert not SubjectAttribute.objects.filter(subject_class_ids__isnull=True).exists()
    assert_in_step(moderator, senior)


def _holder_trigger_calls():
    """Calls of the attribute-row trigger's function in this transaction (``track_functions`` on)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT COALESCE(sum(calls), 0)::int FROM pg_stat_xact_user_functions"
            " WHERE funcname = 'casework_subjectattribute_holder'"
        )
        return cur.fetchone()[0]


def test_intake_of_a_value_its_subject_holds_spares_the_row_trigger_and_keeps_the_row_in_step(
    platform, moderator, senior
):
    """A value brought again within the hour by a class that brought it is not proposed to the table, so the
    row trigger (a lock of the subject, a read of its facets) does not run for it; a new value beside it,
    and a held value a new class brings, are written as before."""
    with connection.cursor() as cur:
        cur.execute("SET LOCAL track_functions = 'pl'")
    ingest(platform, subject="account:hc-held", attributes={"ip": ["203.0.113.4"], "device": ["hc-dev-a"]})
    ip = SubjectAttribute.objects.get(kind="ip", value="203.0.113.4")
    first = _holder_trigger_calls()
    assert first == 2

    ingest(platform, subject="account:hc-held", attributes={"ip": ["203.0.113.4"], "device": ["hc-dev-a"]})
    assert _holder_trigger_calls() == first
    ingest(platform, subject="account:hc-held", attributes={"ip": ["203.0.113.4"], "device": ["hc-dev-b"]})
    assert _holder_trigger_calls() == first + 1
    assert kept(ip) == (ids("spam"), ids("spam"), ids("spam"))

    # A held csam signal brings the address again: the row learns the class (seen_by), and keeps its figures.
    ingest(
        platform, subject="account:hc-held", threat_class="csam", source="sc-held", attributes={"ip": ["203.0.113.4"]}
    )
    ip.refresh_from_db()
    assert sorted(ip.seen_by) == sorted(str(i) for i in ids("spam", "csam"))
    assert kept(ip) == (ids("spam"), ids("spam", "csam"), ids("spam", "csam"))
    assert SubjectAttribute.objects.filter(subject__external_id="hc-held").count() == 3
    assert_in_step(moderator, senior)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_intake_of_values_and_classes_for_one_subject_keeps_every_row_in_step(platform, moderator, senior):
    """Eight requests at once on one account, each with a class (cases and held signals) and values of its own
    and one value they all share."""
    plan = [("spam", "user-reports"), ("harassment", "user-reports"), ("payment_fraud", "user-reports")]
    plan += [("ato", "sc-held"), ("csam", "sc-held"), ("cib", "user-reports")]
    plan += [("spam", "sc-held"), ("ato", "user-reports")]
    run_threads(
        len(plan),
        lambda i: ingest(
            platform,
            subject="account:hc-busy",
            threat_class=plan[i][0],
            source=plan[i][1],
            attributes={"ip": ["203.0.113.6"], "device": [f"hc-dev-{i}"]},
        ),
    )
    ip = SubjectAttribute.objects.get(kind="ip", value="203.0.113.6")
    assert kept(ip)[1:] == (ids(*CLASSES), ids(*CLASSES))
    assert SubjectAttribute.objects.filter(kind="device").count() == len(plan)
    assert_in_step(moderator, senior)


def _blocked_on_a_lock(pid):
    """Wait (at most 30 s) for backend ``pid`` to wait on a lock; whether it does."""
    with second_connection(autocommit=True) as probe:
        for _ in range(300):
            waiting = probe.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
            if waiting and waiting[0] == "Lock":
                return True
            time.sleep(0.1)
    return False


def _while_another_transaction_writes(first_sql, params, then):
    """``first_sql`` in a transaction of a second connection, left open while ``then()`` runs on Django's
    connection in a thread; committed once that thread waits on a lock (or has finished).
    Returns whether the thread had to wait."""
    done, pid, errors = threading.Event(), [], []

    def work():
        try:
            pid.append(connection.cursor().connection.info.backend_pid)
            then()
        except Exception as e:  # surfaced below
            errors.append(e)
        finally:
            done.set()
            connection.close()

    with second_connection() as other:
        other.execute(first_sql, params)
        thread = threading.Thread(target=work)
        thread.start()
        while not pid and not done.is_set():
            time.sleep(0.01)
        waited = bool(pid) and not done.is_set() and _blocked_on_a_lock(pid[0])
        other.commit()
    thread.join()
    assert errors == []
    return waited


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_value_written_while_its_subject_gains_a_class_or_a_facet_reads_what_that_writer_committed(moderator, senior):
    subject = SubjectFactory()
    CaseFactory(subject=subject, kind="spam")
    cib, csam = threat_class("cib"), threat_class("csam")

    # Another transaction gives the subject a class (a signal): the new value waits for it, then reads it.
    waited = _while_another_transaction_writes(
        "INSERT INTO casework_signal (source_id, external_id, subject_id, threat_class_id, reason, occurred_at,"
        " received_at, disposition, holdout)"
        " SELECT id, 'hc-race-1', %s, %s, '', now(), now(), 'held', false FROM policies_signalsource"
        " WHERE slug = 'user-reports'",
        [subject.pk, cib.pk],
        lambda: SubjectAttribute.objects.create(
            subject=subject, kind="ip", value="203.0.113.7", seen_at=timezone.now()
        ),
    )
    assert waited
    ip = SubjectAttribute.objects.get(value="203.0.113.7")
    assert kept(ip) == (ids("spam"), ids("spam", "cib"), [])

    # Another transaction writes the subject's first facet, carrying the value about to be written.
    waited = _while_another_transaction_writes(
        "INSERT INTO casework_subjectfacet (subject_id, threat_class_id, reach, attributes)"
        ' VALUES (%s, %s, 0, \'{"device": ["hc-dev-race"]}\')',
        [subject.pk, csam.pk],
        lambda: SubjectAttribute.objects.create(
            subject=subject, kind="device", value="hc-dev-race", seen_at=timezone.now()
        ),
    )
    assert waited
    device = SubjectAttribute.objects.get(value="hc-dev-race")
    assert kept(device) == (ids("spam"), ids("spam", "cib"), ids("csam"))
    assert kept(ip) == (ids("spam"), ids("spam", "cib"), [])  # the facet does not carry the address
    assert_in_step(moderator, senior)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_class_or_facet_given_while_a_value_is_being_written_reaches_that_value(moderator, senior):
    subject = SubjectFactory()
    CaseFactory(subject=subject, kind="spam")
    insert_value = (
        "INSERT INTO casework_subjectattribute (subject_id, kind, value, seen_at, seen_by)"
        " VALUES (%s, 'ip', '203.0.113.8', now(), '{}')"
    )

    # The value is written first, not yet committed: a case of a new class waits for it, then passes it its classes.
    waited = _while_another_transaction_writes(
        insert_value, [subject.pk], lambda: CaseFactory(subject=subject, kind="harassment")
    )
    assert waited
    ip = SubjectAttribute.objects.get(value="203.0.113.8")
    assert kept(ip) == (ids("spam", "harassment"), ids("spam", "harassment"), [])

    # And a facet carrying a value written meanwhile.
    waited = _while_another_transaction_writes(
        insert_value.replace("203.0.113.8", "203.0.113.9"),
        [subject.pk],
        lambda: SubjectFacet.objects.create(
            subject=subject, threat_class=threat_class("ato"), attributes={"ip": ["203.0.113.9"]}
        ),
    )
    assert waited
    assert kept(SubjectAttribute.objects.get(value="203.0.113.9"))[2] == ids("ato")
    assert kept(ip)[2] == []
    assert_in_step(moderator, senior)
