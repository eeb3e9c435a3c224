"""Subject search and history endpoints: parse, call a selector, log the read, answer."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from docket import roles
from docket.api import ErrorSerializer, role_permission
from docket.errors import DocketError, not_found
from investigations import selectors
from investigations.services import subject_history_read

from .serializers import SubjectHistorySerializer, SubjectSearchPageSerializer, SubjectSearchQuerySerializer

Staff = role_permission(*roles.STAFF)
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def _positive(request, name, default, maximum=None):
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1 or (maximum is not None and value > maximum):
        bound = f" and at most {maximum}" if maximum else ""
        raise DocketError("invalid", "The request is invalid.", errors={name: [f"A whole number from 1{bound}."]})
    return value


class SubjectSearch(APIView):
    """Subjects by external id (exact or prefix), attribute value, reporter id or case id."""

    permission_classes = [Staff]

    @extend_schema(
        operation_id="subjects_search",
        summary="Search subjects",
        parameters=[
            SubjectSearchQuerySerializer,
            OpenApiParameter("page", int, description="A page number (from 1)."),
            OpenApiParameter("page_size", int, description=f"Results per page, at most {MAX_PAGE_SIZE}."),
        ],
        responses={200: SubjectSearchPageSerializer, 400: ErrorSerializer, 404: ErrorSerializer},
    )
    def get(self, request):
        query = selectors.SearchQuery.parse(
            q=request.query_params.get("q"),
            kind=request.query_params.get("kind"),
            attribute=request.query_params.get("attribute"),
        )
        page_size = _positive(request, "page_size", PAGE_SIZE, MAX_PAGE_SIZE)
        number = _positive(request, "page", 1)
        page = selectors.subject_search(
            user=request.user, query=query, offset=(number - 1) * page_size, limit=page_size
        )
        if number > 1 and not page.results:
            raise not_found("No such page.")
        url = request.build_absolute_uri()
        has_next = number * page_size < page.count
        previous = None
        if number > 1:
            previous = remove_query_param(url, "page") if number == 2 else replace_query_param(url, "page", number - 1)
        body = {
            "count": page.count,
            "count_is_estimate": page.count_is_estimate,
            "next": replace_query_param(url, "page", number + 1) if has_next else None,
            "previous": previous,
            "results": page.results,
        }
        return Response(SubjectSearchPageSerializer(body).data)


class SubjectDetail(APIView):
    """A subject's whole history; every read is written to the access log."""

    permission_classes = [Staff]

    @extend_schema(
        operation_id="subjects_history",
        summary="One subject's history",
        parameters=[
            OpenApiParameter("hops", int, enum=[1, 2], description="2: also the subjects linked to linked ones."),
        ],
        responses={
            200: SubjectHistorySerializer,
            400: ErrorSerializer,
            404: OpenApiResponse(ErrorSerializer, description="No such subject, or nothing of it visible to you."),
        },
    )
    def get(self, request, kind, external_id):
        hops = _positive(request, "hops", 1, 2)
        history = subject_history_read(user=request.user, kind=kind, external_id=external_id, hops=hops, via="api")
        return Response(SubjectHistorySerializer(history).data)
