"""The source pages: a source's health, its open incident, and an admin's confirm / quarantine / resolve."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from casework.hygiene import source_confirm, source_incident_resolve, source_overview, source_quarantine
from docket import roles
from docket.errors import DocketError
from policies.models import SignalSource

from .common import refused, staff_required

# --- sources: health, the open incident, an admin's confirm / quarantine ----------------------------------


@require_GET
@staff_required
def source_detail(request, slug):
    try:
        source = source_overview(user=request.user, slug=slug)
    except DocketError as e:
        raise Http404(e.detail) from None
    return render(
        request,
        "reviews/source.html",
        {"source": source, "can_decide": roles.has(request.user, roles.POLICY_ADMIN)},
    )


def _source_name(slug):
    return SignalSource.objects.filter(slug=slug).values_list("name", flat=True).first() or slug


def _source_action(request, slug, act):
    """Run one admin action on the source; a refusal or a missing role is a message on the source page."""
    if not roles.has(request.user, roles.POLICY_ADMIN):
        messages.error(request, "Only a policy admin confirms or quarantines a source.")
    else:
        try:
            messages.success(request, act())
        except DocketError as e:
            refused(request, e)
    return redirect("reviews:source", slug=slug)


@require_POST
@staff_required
def source_confirm_view(request, slug):
    def act():
        released = source_confirm(source_slug=slug, actor=request.user)["released"]
        return (
            f"Confirmed: {_source_name(slug)} is healthy; "
            f"{released} held signal{'s' if released != 1 else ''} entered the queue."
        )

    return _source_action(request, slug, act)


@require_POST
@staff_required
def source_incident_resolve_view(request, slug):
    def act():
        source_incident_resolve(source_slug=slug, actor=request.user)
        return f"Resolved: the incident of {_source_name(slug)} is closed; the source keeps its status."

    return _source_action(request, slug, act)


@require_POST
@staff_required
def source_quarantine_view(request, slug):
    def act():
        source_quarantine(source_slug=slug, actor=request.user)
        return f"Quarantined: the signals of {_source_name(slug)} stay held, stored and out of the queue."

    return _source_action(request, slug, act)
