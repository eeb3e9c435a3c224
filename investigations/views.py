"""Investigation pages: search results, the subject page and the media reveal event."""

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from casework.models import Case
from docket import roles
from docket.audit import access_log_add
from docket.errors import DocketError
from docket.visibility import visible_or_404

from . import selectors
from .services import subject_history_read

staff_required = roles.role_required(*roles.STAFF)
PAGE_SIZE = 50
CHART_HEIGHT = 60


@require_GET
@staff_required
def search(request):
    """Results of the header's search box; the query is kept in the box, a bad one is a message."""
    raw = request.GET.get("q", "")
    context = {"q": raw, "search_q": raw, "results": None}
    try:
        number = max(int(request.GET.get("page") or 1), 1)
    except ValueError:
        number = 1
    if raw.strip() or request.GET.get("attribute"):
        try:
            query = selectors.SearchQuery.parse(
                q=raw, kind=request.GET.get("kind"), attribute=request.GET.get("attribute")
            )
            page = selectors.subject_search(
                user=request.user, query=query, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE
            )
        except DocketError as error:
            messages.error(request, _error_text(error))
        else:
            context.update(
                results=page.results,
                count=page.count,
                estimate=page.count_is_estimate,
                page=number,
                previous_page=number - 1 if number > 1 else None,
                next_page=number + 1 if number * PAGE_SIZE < page.count else None,
            )
    return render(request, "investigations/search.html", context)


def _error_text(error):
    if not error.errors:
        return error.detail
    return " ".join(f"{field}: {' '.join(map(str, texts))}" for field, texts in error.errors.items())


@require_GET
@staff_required
def subject_page(request, kind, external_id):
    hops = 2 if request.GET.get("hops") == "2" else 1
    try:
        history = subject_history_read(user=request.user, kind=kind, external_id=external_id, hops=hops, via="ui")
    except DocketError as error:
        if error.status == 404:
            raise Http404(error.detail) from None
        raise
    peak = max((d["count"] for d in history.signals_per_day), default=0) or 1
    chart = []
    for i, day in enumerate(history.signals_per_day):
        height = max(round(CHART_HEIGHT * day["count"] / peak), 1)  # empty days show as a baseline
        chart.append({**day, "x": i * 10, "height": height, "y": CHART_HEIGHT - height})
    return render(
        request,
        "investigations/subject.html",
        {
            "history": history,
            "subject": history.subject,
            "owner": history.owner,
            "hops": hops,
            "chart": chart,
            "chart_height": CHART_HEIGHT,
            "chart_total": sum(d["count"] for d in history.signals_per_day),
            "is_appeals": roles.has(request.user, roles.APPEALS),
        },
    )


@require_POST
@staff_required
def media_reveal(request, case_id):
    """The UI revealed a case's blurred media: one access-log row (204). A hidden case is a 404."""
    case = visible_or_404(Case.objects.select_related("threat_class"), request.user, pk=case_id)
    access_log_add(
        user=request.user,
        action="reveal",
        object_type="case",
        object_id=case.pk,
        threat_class=case.threat_class.slug,
        detail={"via": "ui", "page": request.POST.get("page", "")[:40], "items": request.POST.get("items", "")[:10]},
    )
    return HttpResponse(status=204)
