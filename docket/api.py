"""Shared API pieces: the error envelope, pagination, role permissions and model representations."""

import copy
import json
import time

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator as DjangoPaginator
from django.db import DatabaseError, InterfaceError, OperationalError, connection, connections, transaction
from django.http import Http404
from django.utils.functional import cached_property
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from docket import roles
from docket.errors import DocketError
from docket.visibility import restrict

_DRF_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
    exceptions.ParseError: "parse_error",
}
# Refusals whose own code is the contract's (e.g. an expired token: 401 ``token_expired``).
_OWN_CODES = {"token_expired"}


class FieldsBuiltOnce:
    """A ``ModelSerializer`` mixin: the fields are introspected from the model once per class, then copied.

    DRF builds a model serializer's fields from the model's meta on every instance: for a claim's answer
    (the case, its subject, its events and decisions) and a decision's, about a tenth of the request's
    Python. Each instance still gets its own copies, as DRF copies declared fields; only the
    introspection, the same each time for a class whose ``Meta`` does not change, is done once.
    """

    def get_fields(self):
        cls = type(self)
        built = cls.__dict__.get("_fields_built")
        if built is None:
            built = super().get_fields()
            cls._fields_built = built
        return copy.deepcopy(built)


def _flatten(detail):
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_flatten(v) for v in detail]
    return str(detail)


def exception_handler(exc, context):
    """Every 4xx answers ``{"code", "detail"}``; validation adds ``errors``."""
    if isinstance(exc, DocketError):
        return Response(exc.as_dict(), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return Response(
            {"code": "invalid", "detail": "The request is invalid.", "errors": _flatten(errors)},
            status=status.HTTP_400_BAD_REQUEST,
        )
    # Imported here: DRF's views module reads the classes this module defines
    # (parser, pagination) from settings when it is first imported.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        if isinstance(exc, DatabaseError):
            # A lost connection or a refused statement: nothing half-written
            # (the request ran in a transaction), and a clean answer.
            return Response(
                {"code": "unavailable", "detail": "The database is unavailable; nothing was changed."},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        return None
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    if getattr(getattr(exc, "detail", None), "code", None) in _OWN_CODES:
        code = exc.detail.code
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    response.data = {"code": code, "detail": str(detail)}
    return response


# How many fresh connections the answer to a committed write gets before it gives up.
ANSWER_ATTEMPTS = 10


def answer_after_commit(build, *, committed: str):
    """Build the answer to a write that has already committed, on a fresh connection if need be.

    The write's transaction is over before its answer is read, so the rows it locked
    are free at once. A lost connection while reading is retried on a new one (each
    attempt in its own transaction); it must not become the generic "nothing was
    changed" 503, because something was. If the database stays unreachable through
    every attempt (about 1.5 s), the 503 says what was committed (``committed``).
    """
    if connection.in_atomic_block:  # called inside a caller's transaction: nothing to retry on
        return build()
    for attempt in range(ANSWER_ATTEMPTS):
        try:
            with transaction.atomic():
                return build()
        except (OperationalError, InterfaceError):
            connection.close()
            if attempt == ANSWER_ATTEMPTS - 1:
                raise DocketError(
                    "unavailable", f"{committed} was made, but the database is unavailable to show it.", status=503
                ) from None
            time.sleep(min(0.05 * (attempt + 1), 0.2))
    return None  # not reached


# A list's count is exact up to this many rows; above it, the planner's estimate (API.md "Lists").
EXACT_COUNT_LIMIT = 10_000


def _planner_rows(queryset) -> int:
    """PostgreSQL's estimate of the rows ``queryset`` returns (EXPLAIN, nothing executed)."""
    sql, params = queryset.order_by().query.sql_with_params()
    with connections[queryset.db].cursor() as cur:
        cur.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cur.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def count_bounded(queryset, *, ordered=False) -> tuple[int, bool]:
    """``(count, is_estimate)``: exact up to ``EXACT_COUNT_LIMIT``, past it the planner's estimate.

    An exact count of a million-row list reads every row; this reads at most
    ``EXACT_COUNT_LIMIT + 1``, so it costs the same at any size (the API's lists
    and the moderator's filtered queue page count this way). ``ordered`` keeps the queryset's order in
    the bounded read, so that PostgreSQL walks the index of that order for at most the limit's rows.
    """
    capped = (queryset if ordered else queryset.order_by())[: EXACT_COUNT_LIMIT + 1].count()
    if capped <= EXACT_COUNT_LIMIT:
        return capped, False
    return max(_planner_rows(queryset), EXACT_COUNT_LIMIT + 1), True


class EstimatingPaginator(DjangoPaginator):
    """Counts with ``count_bounded``; ``count_is_estimate`` says which was answered."""

    count_is_estimate = False

    @cached_property
    def count(self):
        queryset = self.object_list
        if not hasattr(queryset, "query"):
            return len(queryset)
        count, self.count_is_estimate = count_bounded(queryset)
        return count


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500
    django_paginator_class = EstimatingPaginator

    def get_paginated_response(self, data):
        return Response(
            {
                "count": self.page.paginator.count,
                "count_is_estimate": self.page.paginator.count_is_estimate,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        answer = super().get_paginated_response_schema(schema)
        answer["properties"]["count_is_estimate"] = {
            "type": "boolean",
            "description": f"true when count is an estimate (lists of more than {EXACT_COUNT_LIMIT:,} items)",
        }
        answer["required"] = sorted({*answer.get("required", []), "count", "count_is_estimate", "results"})
        return answer


class HasRole(permissions.BasePermission):
    """Allow users in any of ``view.roles`` (Django groups)."""

    message = "Your role does not allow this."

    def has_permission(self, request, view):
        allowed = getattr(view, "roles", None)
        if not request.user or not request.user.is_authenticated:
            return False
        if allowed is None:
            return True
        return roles.has_any(request.user, allowed)


def role_permission(*names):
    """A permission class admitting users in any of the named roles."""

    class _RolePermission(HasRole):
        def has_permission(self, request, view):
            return request.user and request.user.is_authenticated and roles.has_any(request.user, names)

    _RolePermission.__name__ = "Role_" + "_".join(names)
    return _RolePermission


class ErrorSerializer(serializers.Serializer):
    """The error envelope every 4xx answers (documentation: views name it in their schema responses)."""

    code = serializers.CharField()
    detail = serializers.CharField()
    errors = serializers.DictField(required=False, help_text="Validation errors by field, or by index for lists.")


class SafeJSONParser(JSONParser):
    """JSON parsing where absurd nesting is a 400 ``parse_error``, not a ``RecursionError`` (a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None


# Which refusals an operation can answer, by what it takes: every operation needs a login and a role;
# input (a body or query parameters) can be invalid; ids in the path or a page number can miss; a POST
# can conflict with the current state or exceed the body limit (docket.middleware).
_ENVELOPE_DESCRIPTIONS = {
    "400": "Invalid input (`invalid`, with `errors`) or a refused request (its code).",
    "401": "No valid credentials (`not_authenticated`, `authentication_failed`, `token_expired`).",
    "403": "Not your role (`forbidden`), or a refusal such as `not_assignee`.",
    "404": "No such object, not visible to you, or no such page (`not_found`).",
    "409": "The object's state does not allow this now (its code).",
    "413": "The body exceeds the size limit (`payload_too_large`).",
}


def document_error_envelope(result, generator, request, public):
    """drf-spectacular postprocessing hook: every API operation documents the error envelope it can answer.

    Statuses a view already documents keep their own description; the body is always ``ErrorSerializer``.
    """
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(
        "Error",
        {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "detail": {"type": "string"},
                "errors": {"type": "object", "additionalProperties": {}},
            },
            "required": ["code", "detail"],
        },
    )
    envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            params = operation.get("parameters", [])
            codes = ["401", "403"]
            if "requestBody" in operation or any(p.get("in") == "query" for p in params):
                codes.append("400")
            if any(p.get("in") == "path" or p.get("name") == "page" for p in params):
                codes.append("404")
            if method == "post":
                codes += ["400", "409", "413"]
            responses = operation["responses"]
            for code in codes:
                documented = responses.setdefault(code, {"description": _ENVELOPE_DESCRIPTIONS[code]})
                documented["content"] = envelope
    return result


class RestrictedMixin:
    """The API's one visibility gate (NetBox's ``restrict``): a view's rows are its ``queryset`` narrowed to what
    the requesting user may see (the model's ``visible_to``); a hidden object is a 404 like a missing one.

    Views set ``queryset`` (or override ``base_queryset``) and read through ``get_queryset`` or ``visible_object``.
    """

    queryset = None

    def base_queryset(self):
        return self.queryset.all()

    def get_queryset(self):
        return restrict(self.base_queryset(), self.request.user)

    def visible_object(self, **lookup):
        found = self.get_queryset().filter(**lookup).first()
        if found is None:
            raise DocketError("not_found", f"No such {self.queryset.model._meta.verbose_name}.", status=404)
        return found
