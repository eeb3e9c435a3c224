"""A local stand-in of the EU Transparency Database's multi-statement API, for end-to-end tests.

It answers like ``POST /api/v1/statements`` does (``StatementMultipleAPIController``
and ``GroupedSubmissionsService`` in the public digital-services-act/transparency-database
repository): a bearer token or 401; 1 to 100 statements or 422; each statement
checked against the multi endpoint's rules, written out here as its own table
(independent of Docket's validator, which it is there to check), errors keyed
``statement_<index>`` and nothing stored if any fails; puids already stored for
the platform refused with ``errors.existing_puids``; else 201 with the stored
statements. It can also play down (503) or rate-limited (429 with Retry-After).
"""

import json
import re
import threading
import time
import uuid
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from policies.dsa import (
    ALL_LANGUAGES,
    AUTOMATED_DECISIONS,
    CONTENT_TYPES,
    DECISION_ACCOUNTS,
    DECISION_GROUNDS,
    DECISION_MONETARIES,
    DECISION_PROVISIONS,
    DECISION_VISIBILITIES,
    EUROPEAN_COUNTRY_CODES,
    KEYWORDS,
    SOURCE_TYPES,
    STATEMENT_CATEGORIES,
)

PUID = re.compile(r"[a-zA-Z0-9\-_]+")  # regex:/^[a-zA-Z0-9-_]+$/D, used with fullmatch
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _absent(value):
    return value is None or value == "" or value == []


def _date_ok(value, low, high):
    if not isinstance(value, str) or not DATE.fullmatch(value):
        return False
    try:
        d = date.fromisoformat(value)
    except ValueError:
        return False
    return (low is None or d >= low) and d <= high


def check(statement):
    """``{field: [messages]}`` for one statement under the multi endpoint's rules (empty: valid)."""
    s = statement if isinstance(statement, dict) else {}
    errors = {}

    def err(field, message):
        errors.setdefault(field, []).append(message)

    def enum(field, allowed, *, null_literal=False, array=False):
        value = s.get(field)
        if value is None:
            return
        items = value if array else [value]
        if array and not isinstance(value, list):
            err(field, f"The {field} must be an array.")
            return
        for item in items:
            if item not in allowed and not (null_literal and item == "null"):
                err(field, f"The selected {field} is invalid.")

    def max_len(field, n):
        if isinstance(s.get(field), str) and len(s[field]) > n:
            err(field, f"The {field} field must not be greater than {n} characters.")

    restrictions = ("decision_visibility", "decision_monetary", "decision_provision", "decision_account")
    for field in restrictions:
        if _absent(s.get(field)) and all(_absent(s.get(f)) for f in restrictions if f != field):
            err(field, f"The {field} field is required when none of the others are present.")
    enum("decision_visibility", DECISION_VISIBILITIES, null_literal=True, array=True)
    if "DECISION_VISIBILITY_OTHER" in (s.get("decision_visibility") or []):
        if _absent(s.get("decision_visibility_other")):
            err("decision_visibility_other", "The decision visibility other field is required.")
        max_len("decision_visibility_other", 500)
    enum("decision_monetary", DECISION_MONETARIES, null_literal=True)
    if s.get("decision_monetary") == "DECISION_MONETARY_OTHER" and _absent(s.get("decision_monetary_other")):
        err("decision_monetary_other", "The decision monetary other field is required.")
    enum("decision_provision", DECISION_PROVISIONS, null_literal=True)
    enum("decision_account", DECISION_ACCOUNTS, null_literal=True)
    enum("account_type", {"ACCOUNT_TYPE_BUSINESS", "ACCOUNT_TYPE_PRIVATE"}, null_literal=True)
    enum("category_specification", KEYWORDS, null_literal=True, array=True)
    max_len("category_specification_other", 500)

    if _absent(s.get("decision_ground")):
        err("decision_ground", "The decision ground field is required.")
    enum("decision_ground", DECISION_GROUNDS)
    ground = s.get("decision_ground")
    for field, trigger, n in (
        ("illegal_content_legal_ground", "DECISION_GROUND_ILLEGAL_CONTENT", 500),
        ("illegal_content_explanation", "DECISION_GROUND_ILLEGAL_CONTENT", 2000),
        ("incompatible_content_ground", "DECISION_GROUND_INCOMPATIBLE_CONTENT", 500),
        ("incompatible_content_explanation", "DECISION_GROUND_INCOMPATIBLE_CONTENT", 2000),
    ):
        if ground == trigger:
            if _absent(s.get(field)):
                err(field, f"The {field} field is required.")
            max_len(field, n)
    if ground == "DECISION_GROUND_INCOMPATIBLE_CONTENT":
        enum("incompatible_content_illegal", {"Yes", "No"})

    if _absent(s.get("content_type")):
        err("content_type", "The content type field is required.")
    enum("content_type", CONTENT_TYPES, array=True)
    if "CONTENT_TYPE_OTHER" in (s.get("content_type") or []) and _absent(s.get("content_type_other")):
        err("content_type_other", "The content type other field is required.")
    if _absent(s.get("category")):
        err("category", "The category field is required.")
    enum("category", STATEMENT_CATEGORIES)
    enum("category_addition", STATEMENT_CATEGORIES, array=True)
    enum("territorial_scope", EUROPEAN_COUNTRY_CODES, array=True)
    enum("content_language", ALL_LANGUAGES)

    top = date(2038, 1, 1)
    for field, low, required in (
        ("content_date", date(2000, 1, 1), True),
        ("application_date", date(2020, 1, 1), True),
        ("end_date_account_restriction", None, False),
        ("end_date_monetary_restriction", None, False),
        ("end_date_service_restriction", None, False),
        ("end_date_visibility_restriction", None, False),
    ):
        if _absent(s.get(field)):
            if required:
                err(field, f"The {field} field is required.")
        elif not _date_ok(s[field], low, top):
            err(field, f"The {field} is not a valid date in range.")

    if _absent(s.get("decision_facts")):
        err("decision_facts", "The decision facts field is required.")
    max_len("decision_facts", 5000)
    if _absent(s.get("source_type")):
        err("source_type", "The source type field is required.")
    enum("source_type", SOURCE_TYPES)
    max_len("source_identity", 500)
    for field, allowed in (("automated_detection", {"Yes", "No"}), ("automated_decision", AUTOMATED_DECISIONS)):
        if _absent(s.get(field)):
            err(field, f"The {field} field is required.")
        enum(field, allowed)
    puid = s.get("puid")
    if _absent(puid):
        err("puid", "The puid field is required.")
    elif not isinstance(puid, str) or len(puid) > 500 or not PUID.fullmatch(puid):
        err("puid", "The puid format is invalid.")
    return errors


class TransparencyDatabase:
    """``with TransparencyDatabase(token) as tdb: tdb.url``; ``tdb.stored`` maps puid -> statement."""

    def __init__(self, token="tdb-token"):
        self.token = token
        self.stored = {}
        self.calls = []  # (monotonic time, status, number of statements)
        self.mode = "up"  # "up" | "down" | "rate_limited"
        self.retry_after = 1
        self.categories_retired = set()  # a schema change: categories the service no longer accepts
        self.lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body, headers = standin.answer(self.path, dict(self.headers), raw)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path, headers, raw):
        with self.lock:
            status, body, extra = self._answer(path, headers, raw)
            count = len(body.get("statements", [])) if isinstance(body, dict) else 0
            self.calls.append((time.monotonic(), status, count))
            return status, body, extra

    def _answer(self, path, headers, raw):
        if path != "/api/v1/statements":
            return 404, {"message": "Not found"}, {}
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"message": "Unauthenticated."}, {}
        if self.mode == "down":
            return 503, {"message": "Service Unavailable"}, {}
        if self.mode == "rate_limited":
            return 429, {"message": "Too Many Attempts."}, {"Retry-After": str(self.retry_after)}
        if "application/json" not in headers.get("Content-Type", "") or "application/json" not in headers.get(
            "Accept", ""
        ):
            return 415, {"message": "JSON only"}, {}
        try:
            payload = json.loads(raw)
        except ValueError:
            return 400, {"message": "Malformed JSON"}, {}
        statements = payload.get("statements") if isinstance(payload, dict) else None
        if not isinstance(statements, list) or not 1 <= len(statements) <= 100:
            msg = "The statements field must have between 1 and 100 items."
            return 422, {"message": msg, "errors": {"statements": [msg]}}, {}
        errors = {}
        for index, statement in enumerate(statements):
            problems = check(statement)
            if isinstance(statement, dict) and statement.get("category") in self.categories_retired:
                problems.setdefault("category", []).append("The selected category is invalid.")
            if problems:
                errors[f"statement_{index}"] = problems
        if errors:
            return 422, {"errors": errors}, {}
        puids = [s["puid"] for s in statements]
        existing = sorted({p for p in puids if p in self.stored} | {p for p in puids if puids.count(p) > 1})
        if existing:
            msg = "The platform identifier(s) are not all unique within this call."
            return 422, {"message": msg, "errors": {"puid": [msg], "existing_puids": existing}}, {}
        out = []
        for statement in statements:
            stored = {**statement, "uuid": str(uuid.uuid4()), "platform_name": "Docket test platform"}
            self.stored[statement["puid"]] = stored
            out.append(stored)
        return 201, {"statements": out}, {}
