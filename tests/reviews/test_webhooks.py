"""Enforcement delivery against a real HTTP receiver on 127.0.0.1."""

import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection, transaction
from django.utils import timezone

from reviews import tasks
from reviews.accounts import user_upsert
from reviews.models import Enforcement
from reviews.services import decision_make, decision_overturn
from reviews.sor import sor_validate
from reviews.webhooks import enforcement_deliver, enforcements_deliver_due
from tests.factories import CaseFactory

SECRET = "test-webhook-secret"


class Receiver:
    """A platform stand-in: records every request, answers with scripted statuses."""

    def __init__(self):
        self.requests = []
        self.statuses = []  # popped per request; 200 when empty
        self.delay = 0.0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.requests.append((dict(self.headers), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/docket/enforcement"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self):
        return [json.loads(body) for _, body in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    r = Receiver()
    settings.PLATFORM_WEBHOOK_URL = r.url
    settings.PLATFORM_WEBHOOK_SECRET = SECRET
    settings.DOCKET = {
        **settings.DOCKET,
        "WEBHOOK_BACKOFF_SECONDS": 30,
        "WEBHOOK_MAX_ATTEMPTS": 4,
        "WEBHOOK_TIMEOUT_SECONDS": 0.5,
    }
    yield r
    r.close()


def decide(action="remove", rule="SP-1", kind="spam", **kwargs):
    senior = user_upsert(username="senior-w", role_names=["senior", "moderator"], clearances=["csam"])
    case = CaseFactory(kind=kind)
    return decision_make(case_id=case.pk, reviewer=senior, action=action, rule=rule, on_behalf_of_senior=True, **kwargs)


@pytest.mark.django_db
def test_delivery_is_signed_and_carries_the_documented_body(receiver):
    decision = decide(action="suspend", duration_days=14)
    enforcement = decision.enforcements.get()

    assert enforcement_deliver(enforcement_id=enforcement.pk) == "delivered"

    [(headers, raw)] = receiver.requests
    expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert headers["X-Docket-Signature"] == expected
    assert headers["Content-Type"] == "application/json"
    body = json.loads(raw)
    assert {"id", "type", "decision", "subject", "action", "duration_days", "statement_of_reasons"} <= set(body)
    subject = decision.case.subject
    assert (body["id"], body["type"], body["decision"], body["action"], body["duration_days"]) == (
        str(enforcement.public_id),
        "enforce",
        decision.pk,
        "suspend",
        14,
    )
    assert body["subject"] == {"kind": subject.kind, "external_id": subject.external_id}
    assert sor_validate(body["statement_of_reasons"]) == []
    enforcement.refresh_from_db()
    assert (enforcement.status, enforcement.attempts, enforcement.last_error) == ("delivered", 1, "")
    assert enforcement.delivered_at is not None
    # Delivered rows are never sent again.
    assert enforcement_deliver(enforcement_id=enforcement.pk) == "skipped"
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_non_2xx_is_retried_with_exponential_backoff_and_the_same_id_and_bytes(receiver):
    enforcement = decide().enforcements.get()
    receiver.statuses = [500, 503, 404]
    t0 = timezone.now()

    assert enforcement_deliver(enforcement_id=enforcement.pk, now=t0) == "retry"
    enforcement.refresh_from_db()
    assert (enforcement.attempts, enforcement.next_attempt_at, enforcement.status) == (
        1,
        t0 + timedelta(seconds=30),
        "pending",
    )
    assert enforcement.last_error.startswith("HTTP 500")
    # Not due yet: nothing is sent.
    assert enforcement_deliver(enforcement_id=enforcement.pk, now=t0 + timedelta(seconds=29)) == "skipped"
    t1 = t0 + timedelta(seconds=30)
    assert enforcement_deliver(enforcement_id=enforcement.pk, now=t1) == "retry"
    enforcement.refresh_from_db()
    assert enforcement.next_attempt_at == t1 + timedelta(seconds=60)
    t2 = t1 + timedelta(seconds=60)
    assert enforcement_deliver(enforcement_id=enforcement.pk, now=t2) == "retry"
    enforcement.refresh_from_db()
    assert enforcement.next_attempt_at == t2 + timedelta(seconds=120)
    assert enforcement_deliver(enforcement_id=enforcement.pk, now=t2 + timedelta(seconds=120)) == "delivered"

    raws = [raw for _, raw in receiver.requests]
    assert len(raws) == 4 and len(set(raws)) == 1
    assert {b["id"] for b in receiver.bodies()} == {str(enforcement.public_id)}


@pytest.mark.django_db
def test_a_timeout_is_a_failed_attempt(receiver):
    enforcement = decide().enforcements.get()
    receiver.delay = 1.5
    assert enforcement_deliver(enforcement_id=enforcement.pk) == "retry"
    enforcement.refresh_from_db()
    assert enforcement.attempts == 1
    assert "Timeout" in enforcement.last_error


@pytest.mark.django_db
def test_failed_after_the_last_attempt(receiver):
    enforcement = decide().enforcements.get()
    receiver.statuses = [500] * 10
    now = timezone.now()
    outcomes = []
    for _ in range(5):
        outcomes.append(enforcement_deliver(enforcement_id=enforcement.pk, now=now))
        now += timedelta(days=1)
    assert outcomes == ["retry", "retry", "retry", "failed", "skipped"]
    enforcement.refresh_from_db()
    assert (enforcement.status, enforcement.attempts) == ("failed", 4)
    assert len(receiver.requests) == 4


@pytest.mark.django_db
def test_a_reversal_waits_for_the_enforcement_it_undoes(receiver):
    decision = decide()
    senior = decision.reviewer.user
    decision_overturn(decision=decision, actor=senior, reason="mistake")
    reverse = decision.enforcements.get(kind="reverse")
    enforce = decision.enforcements.get(kind="enforce")

    assert enforcement_deliver(enforcement_id=reverse.pk) == "waiting"
    assert receiver.requests == []
    reverse.refresh_from_db()
    assert reverse.attempts == 0
    assert enforcement_deliver(enforcement_id=enforce.pk) == "delivered"
    assert enforcement_deliver(enforcement_id=reverse.pk, now=reverse.next_attempt_at) == "delivered"
    assert [(b["type"], b["action"]) for b in receiver.bodies()] == [("enforce", "remove"), ("reverse", "remove")]


@pytest.mark.django_db
def test_nothing_is_attempted_without_a_configured_url(receiver, settings):
    enforcement = decide().enforcements.get()
    settings.PLATFORM_WEBHOOK_URL = ""
    assert enforcement_deliver(enforcement_id=enforcement.pk) == "unconfigured"
    assert enforcements_deliver_due() == {}
    enforcement.refresh_from_db()
    assert (enforcement.status, enforcement.attempts) == ("pending", 0)


@pytest.mark.django_db
def test_the_task_and_the_sweep_deliver(receiver):
    first = decide().enforcements.get()
    legal = decide(kind="csam", rule="CS-1").enforcements.order_by("id")
    assert tasks.deliver_enforcements.run([first.pk]) == ["delivered"]
    assert tasks.deliver_due_enforcements.run() == {"delivered": 2}
    assert sorted(b["action"] for b in receiver.bodies()) == ["legal_report", "remove", "remove"]
    assert set(legal.values_list("status", flat=True)) == {"delivered"}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_nothing_is_sent_before_the_decision_commits(receiver, enqueued):
    seen_by_other_worker = []

    def sweep():
        try:
            seen_by_other_worker.append(enforcements_deliver_due())
        finally:
            connection.close()

    with transaction.atomic():
        decision = decide()
        worker = threading.Thread(target=sweep)
        worker.start()
        worker.join()
        assert enqueued == []
    assert seen_by_other_worker == [{}]
    assert receiver.requests == []
    enforcement = decision.enforcements.get()
    assert enqueued == [enforcement.pk]  # enqueued on commit
    assert enforcement_deliver(enforcement_id=enforcement.pk) == "delivered"
    assert len(receiver.requests) == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_sweeps_never_send_one_row_twice(receiver):
    ids = [decide().enforcements.get().public_id for _ in range(12)]
    receiver.delay = 0.05
    barrier = threading.Barrier(4)
    totals = []

    def sweep():
        try:
            barrier.wait()
            totals.append(enforcements_deliver_due())
        finally:
            connection.close()

    workers = [threading.Thread(target=sweep) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()

    sent = [b["id"] for b in receiver.bodies()]
    assert sorted(sent) == sorted(str(i) for i in ids)
    assert sum(t.get("delivered", 0) for t in totals) == 12
    assert Enforcement.objects.filter(status="delivered").count() == 12


# --- the timestamped signature: what the platform checks (README, "Webhooks to the platform") ------------------

REPLAY_WINDOW = 300


def platform_accepts(headers, raw, *, now, secret=SECRET):
    """The platform's check as README documents it: fresh timestamp, then the HMAC over "<t>." + body."""
    fields = dict(part.split("=", 1) for part in headers["X-Docket-Signature-Timestamped"].split(","))
    t = int(fields["t"])
    if abs(now - t) > REPLAY_WINDOW:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["sha256"])


@pytest.mark.django_db
def test_a_delivery_carries_a_timestamped_signature_beside_the_plain_one(receiver):
    enforcement = decide().enforcements.get()
    before = int(time.time())

    assert enforcement_deliver(enforcement_id=enforcement.pk) == "delivered"

    [(headers, raw)] = receiver.requests
    t = int(headers["X-Docket-Signature-Timestamped"].split(",")[0].removeprefix("t="))
    assert before <= t <= int(time.time())
    assert headers["X-Docket-Signature"] == "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert platform_accepts(headers, raw, now=t + 1)
    assert not platform_accepts(headers, raw, now=t + 1, secret="another-secret")


@pytest.mark.django_db
def test_a_captured_delivery_replayed_after_the_window_is_refused(receiver):
    decide().enforcements.get()
    enforcement_deliver(enforcement_id=Enforcement.objects.get().pk)
    [(headers, raw)] = receiver.requests
    t = int(headers["X-Docket-Signature-Timestamped"].split(",")[0].removeprefix("t="))

    assert platform_accepts(headers, raw, now=t + REPLAY_WINDOW)
    assert not platform_accepts(headers, raw, now=t + REPLAY_WINDOW + 1)  # replayed later
    # Restamping the capture to look fresh breaks the signature, which covers the timestamp.
    mac = headers["X-Docket-Signature-Timestamped"].split(",")[1]
    restamped = {**headers, "X-Docket-Signature-Timestamped": f"t={t + 3600},{mac}"}
    assert not platform_accepts(restamped, raw, now=t + 3600)
    # And the body is covered too.
    assert b'"action":"remove"' in raw
    assert not platform_accepts(headers, raw.replace(b'"remove"', b'"ban"'), now=t)


@pytest.mark.django_db
def test_each_attempt_is_stamped_when_it_is_sent(receiver):
    enforcement = decide().enforcements.get()
    receiver.statuses = [503]
    t0 = timezone.now()

    assert enforcement_deliver(enforcement_id=enforcement.pk, now=t0) == "retry"
    time.sleep(1.1)
    assert enforcement_deliver(enforcement_id=enforcement.pk, now=t0 + timedelta(seconds=30)) == "delivered"

    (first, raw1), (second, raw2) = receiver.requests
    stamps = [int(h["X-Docket-Signature-Timestamped"].split(",")[0].removeprefix("t=")) for h in (first, second)]
    assert raw1 == raw2 and stamps[1] > stamps[0]
    assert platform_accepts(second, raw2, now=stamps[1])
