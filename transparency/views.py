"""The transparency report page for policy admins: a period picker, the figures, bar charts, the CSV."""

from datetime import date

from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from docket import roles
from docket.errors import DocketError

from .report import period_parse, transparency_report


def _default_period(today):
    """The last full half-year (the Regulation's reporting period for the largest platforms), else this one."""
    if today.month > 6:
        return date(today.year, 1, 1), date(today.year, 6, 30)
    return date(today.year - 1, 7, 1), date(today.year - 1, 12, 31)


def _label(key):
    for prefix in (
        "STATEMENT_CATEGORY_",
        "DECISION_VISIBILITY_",
        "DECISION_ACCOUNT_",
        "DECISION_PROVISION_",
        "DECISION_MONETARY_",
        "DECISION_GROUND_",
        "SOURCE_TYPE_",
        "SOURCE_",
    ):
        key = key.removeprefix(prefix)
    return key.replace("_", " ").capitalize()


def _bars(counts):
    """Rows for a bar chart: label, count, width in percent of the largest; zeros left out."""
    rows = [(k, v) for k, v in counts.items() if v]
    top = max((v for _, v in rows), default=0)
    return [
        {"key": k, "label": _label(k), "count": v, "width": round(100 * v / top, 1) if top else 0}
        for k, v in sorted(rows, key=lambda kv: (-kv[1], kv[0]))
    ]


def _duration(seconds):
    if seconds is None:
        return "—"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


@require_GET
@roles.role_required(roles.POLICY_ADMIN)
def transparency_report_page(request):
    start, end = _default_period(timezone.now().date())
    raw_from = request.GET.get("from") or start.isoformat()
    raw_to = request.GET.get("to") or end.isoformat()
    context = {"from": raw_from, "to": raw_to, "errors": None, "report": None}
    try:
        period = period_parse(raw_from, raw_to)
    except DocketError as e:
        context["errors"] = e.errors
        return render(request, "transparency/report.html", context, status=400)
    report = transparency_report(period)
    actions, notices, complaints = report["actions"], report["notices"], report["complaints"]
    context.update(
        report=report,
        notices_by_category=_bars(notices["by_category"]),
        notices_by_source=_bars(notices["by_source_type"]),
        actions_by_restriction=_bars(actions["by_restriction"]),
        actions_by_category=_bars(actions["by_category"]),
        actions_by_source=_bars(actions["by_source_type"]),
        complaints_by_outcome=_bars(complaints["by_outcome"]),
        median_action=_duration(report["median_time_to_action_s"]),
        median_resolve=_duration(complaints["median_time_to_resolve_s"]),
        automated_pct=None if actions["automated"]["share"] is None else round(100 * actions["automated"]["share"], 1),
    )
    return render(request, "transparency/report.html", context)
