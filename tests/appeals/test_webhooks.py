"""Overturn and modify reach the platform as reversal/enforcement webhooks with the appeal outcome."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from appeals.services import appeal_claim, appeal_file, appeal_resolve
from reviews.models import Enforcement
from reviews.webhooks import enforcement_deliver
from tests.appeals.conftest import decide_for_real

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver(settings):
    """A real HTTP endpoint on 127.0.0.1 recording what the platform would receive."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["X-Docket-Signature"], body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.PLATFORM_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/hooks/docket"
    settings.PLATFORM_WEBHOOK_SECRET = "test-secret"

    def bodies():
        out = []
        for signature, body in received:
            assert signature == "sha256=" + hmac.new(b"test-secret", body, hashlib.sha256).hexdigest()
            out.append(json.loads(body))
        return out

    yield bodies
    server.shutdown()
    server.server_close()


def deliver_all():
    for pk in Enforcement.objects.filter(status="pending").order_by("id").values_list("pk", flat=True):
        assert enforcement_deliver(enforcement_id=pk) == "delivered"


def appeal_resolved(decision, platform, staff, *, language="en", **resolution):
    appeal = appeal_file(decision_id=decision.pk, appellant="u-owner", statement="", actor=platform, language=language)
    assert appeal_claim(reviewer=staff.reviewer).pk == appeal.pk
    appeal_resolve(appeal_id=appeal.pk, reviewer=staff.reviewer, **resolution)
    appeal.refresh_from_db()
    return appeal


def test_overturn_delivers_a_reversal_with_the_outcome_statement(decider, appeals_staff, platform, receiver):
    decision = decide_for_real(decider)
    deliver_all()
    appeal = appeal_resolved(decision, platform, appeals_staff, outcome="overturned", rationale="Own shop links.")

    deliver_all()

    enforce, reverse = receiver()
    rows = {e.kind: e for e in Enforcement.objects.filter(decision=decision)}
    assert (enforce["type"], enforce["id"], enforce["action"]) == ("enforce", str(rows["enforce"].public_id), "remove")
    assert "appeal_outcome" not in enforce
    assert enforce["notice"]["language"] == "en"
    assert enforce["notice"]["subject"] == f"Our decision about your account {decision.case.subject.external_id}"
    assert (reverse["type"], reverse["id"]) == ("reverse", str(rows["reverse"].public_id))
    assert (reverse["decision"], reverse["action"]) == (decision.pk, "remove")
    assert reverse["subject"] == {"kind": "account", "external_id": decision.case.subject.external_id}
    assert reverse["appeal_outcome"]["appeal"] == appeal.pk
    assert reverse["appeal_outcome"]["outcome"] == "overturned"
    assert reverse["appeal_outcome"]["reasons"] == "Own shop links."
    assert [r["kind"] for r in reverse["appeal_outcome"]["redress"]] == ["out_of_court_settlement", "judicial_redress"]
    assert reverse["notice"]["subject"] == "The outcome of your appeal"
    assert "the decision is overturned and its effects are reversed" in reverse["notice"]["body"]
    assert "Reasons: Own shop links." in reverse["notice"]["body"]
    assert "out-of-court dispute settlement body" in reverse["notice"]["body"]


def test_modify_delivers_the_reversal_and_the_new_enforcement(decider, appeals_staff, platform, receiver):
    decision = decide_for_real(decider, action="suspend", duration_days=30)
    deliver_all()
    appeal = appeal_resolved(
        decision, platform, appeals_staff, language="de", outcome="modified", action="label", rationale="Zu hart."
    )

    deliver_all()

    _, reverse, enforce = receiver()
    new = appeal.new_decision
    assert (reverse["type"], reverse["decision"], reverse["action"], reverse["duration_days"]) == (
        "reverse",
        decision.pk,
        "suspend",
        30,
    )
    assert (enforce["type"], enforce["decision"], enforce["action"]) == ("enforce", new.pk, "label")
    assert enforce["id"] == str(Enforcement.objects.get(decision=new).public_id)
    for body in (reverse, enforce):
        assert body["appeal_outcome"]["outcome"] == "modified"
        assert body["appeal_outcome"]["new_action"] == "label"
        assert body["appeal_outcome"]["new_decision"] == new.pk
        assert body["notice"]["language"] == "de"
        assert body["notice"]["subject"] == "Das Ergebnis Ihrer Beschwerde"
        assert "Die Entscheidung wird geändert in: Label." in body["notice"]["body"]
