import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from docket.errors import DocketError
from policies.admin import RestrictedReadOnlyAdmin
from policies.models import ThreatClass

from .models import (
    AccessChange,
    Assignment,
    Decision,
    Enforcement,
    Notice,
    QualityReview,
    Reviewer,
    StatementSubmission,
    Strike,
)
from .services.access import (
    access_change_approve,
    access_change_propose_class_flags,
    access_change_propose_clearances,
    access_change_reject,
)
from .statements import statement_submission_retry


@admin.register(Reviewer)
class ReviewerAdmin(admin.ModelAdmin):
    """Reviewer profiles; clearances are shown, never edited here: they change through an access change."""

    list_display = ["user", "max_active", "graphic_budget", "on_shift", "clearances"]
    list_filter = ["on_shift"]
    filter_horizontal = ["queues"]
    search_fields = ["user__username"]
    readonly_fields = ["clearances", "access_change"]

    @admin.display(description="Change clearances")
    def access_change(self, obj):
        if obj is None or obj.pk is None:
            return "Save the profile first; clearances are then proposed and approved by two policy admins."
        return format_html(
            '<a href="{}?reviewer={}">Propose a change</a> (applied when another policy admin approves it; '
            "nobody changes their own)",
            reverse("admin:reviews_accesschange_add"),
            obj.pk,
        )


@admin.register(Assignment)
class AssignmentAdmin(RestrictedReadOnlyAdmin):
    list_display = ["id", "case_id", "reviewer", "state", "claimed_at", "lease_expires_at", "ended_at"]
    list_filter = ["state"]


@admin.register(Decision)
class DecisionAdmin(RestrictedReadOnlyAdmin):
    list_display = [
        "id",
        "case_id",
        "action",
        "rule",
        "policy_version",
        "reviewer",
        "automated",
        "overturned",
        "created_at",
    ]
    list_filter = ["action", "automated", "overturned"]


@admin.register(Enforcement)
class EnforcementAdmin(RestrictedReadOnlyAdmin):
    list_display = ["public_id", "decision_id", "kind", "action", "status", "attempts", "next_attempt_at"]
    list_filter = ["status", "kind"]


@admin.register(Strike)
class StrikeAdmin(RestrictedReadOnlyAdmin):
    list_display = ["id", "account", "decision_id", "weight", "created_at", "expires_at", "removed_at"]


@admin.register(QualityReview)
class QualityReviewAdmin(RestrictedReadOnlyAdmin):
    list_display = ["id", "decision_id", "reviewer", "status", "agrees", "completed_at"]


@admin.register(StatementSubmission)
class StatementSubmissionAdmin(RestrictedReadOnlyAdmin):
    """Statements of reasons and their submission to the EU Transparency Database; rejections with their errors."""

    list_display = ["puid", "decision_id", "status", "attempts", "error_summary", "submitted_at", "next_attempt_at"]
    list_filter = ["status"]
    search_fields = ["puid"]
    readonly_fields = [
        "decision",
        "puid",
        "status",
        "attempts",
        "errors_table",
        "last_error",
        "tdb_uuid",
        "created_at",
        "submitted_at",
        "next_attempt_at",
        "statement",
    ]
    fields = readonly_fields
    actions = ["submit_again"]

    @admin.display(description="Errors")
    def error_summary(self, obj):
        return "; ".join(f"{field}: {' '.join(map(str, msgs))}" for field, msgs in (obj.errors or {}).items())[:200]

    @admin.display(description="Errors, by field")
    def errors_table(self, obj):
        if not obj.errors:
            return "—"
        rows = "".join(
            format_html("<tr><th>{}</th><td>{}</td></tr>", field, " ".join(map(str, msgs)))
            for field, msgs in obj.errors.items()
        )
        return format_html("<table>{}</table>", format_html(rows))

    @admin.display(description="Statement as made")
    def statement(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.decision.statement, indent=2, ensure_ascii=False))

    @admin.action(description="Submit the selected rejected statements again")
    def submit_again(self, request, queryset):
        rows = list(queryset.filter(status=StatementSubmission.Status.REJECTED).values_list("pk", flat=True))
        for pk in rows:
            statement_submission_retry(submission_id=pk)
        messages.info(request, f"{len(rows)} statement(s) queued for submission again.")


@admin.register(Notice)
class NoticeAdmin(RestrictedReadOnlyAdmin):
    list_display = ["public_id", "kind", "case_id", "decision_id", "status", "attempts", "created_at", "delivered_at"]
    list_filter = ["kind", "status"]


# --- access changes: clearances and restricted classes, two policy admins ---------------------------------


class _ProposalForm(forms.Form):
    """A proposal form whose save calls the service; a refusal becomes form errors with the input kept."""

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)

    def save(self, *, actor, request):
        try:
            return self.propose(actor=actor, request=request)
        except DocketError as e:
            for field, problems in (e.errors or {None: [e.detail]}).items():
                for problem in problems:
                    self.add_error(field if field in self.fields else None, problem)
            if e.errors and not (e.errors.keys() & self.fields.keys()):
                self.add_error(None, e.detail)
            return None


class ClearancesProposalForm(_ProposalForm):
    reviewer = forms.ModelChoiceField(queryset=Reviewer.objects.select_related("user").order_by("user__username"))
    clearances = forms.MultipleChoiceField(
        choices=(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Exactly the classes the reviewer will be cleared for (none ticked: no clearance).",
    )
    field_order = ["reviewer", "clearances", "reason"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["clearances"].choices = [
            (tc.slug, f"{tc.name} ({tc.slug}){' — restricted' if tc.restricted else ''}")
            for tc in ThreatClass.objects.order_by("slug")
        ]

    def propose(self, *, actor, request):
        data = self.cleaned_data
        return access_change_propose_clearances(
            reviewer_id=data["reviewer"].pk,
            clearances=data["clearances"],
            reason=data["reason"],
            actor=actor,
            request=request,
        )


class ClassFlagsProposalForm(_ProposalForm):
    threat_class = forms.ModelChoiceField(queryset=ThreatClass.objects.order_by("slug"))
    restricted = forms.BooleanField(required=False, help_text="Reviewers need this class as a clearance.")
    legal_escalation = forms.BooleanField(required=False, help_text="A violation must file a legal report.")
    field_order = ["threat_class", "restricted", "legal_escalation", "reason"]

    def propose(self, *, actor, request):
        data = self.cleaned_data
        return access_change_propose_class_flags(
            threat_class_id=data["threat_class"].pk,
            restricted=data["restricted"],
            legal_escalation=data["legal_escalation"],
            reason=data["reason"],
            actor=actor,
            request=request,
        )


def _each_access_change(modeladmin, request, queryset, service, verb):
    for change in queryset.order_by("pk"):
        try:
            service(change_id=change.pk, actor=request.user, request=request)
        except DocketError as e:
            modeladmin.message_user(request, f"Access change {change.pk}: {e.detail}", messages.ERROR)
        else:
            modeladmin.message_user(request, f"Access change {change.pk} {verb}.", messages.SUCCESS)


@admin.action(description="Approve the selected changes (applies them; not your own proposals or clearances)")
def approve_access_changes(modeladmin, request, queryset):
    _each_access_change(modeladmin, request, queryset, access_change_approve, "applied")


@admin.action(description="Reject the selected proposals")
def reject_access_changes(modeladmin, request, queryset):
    _each_access_change(modeladmin, request, queryset, access_change_reject, "rejected")


class PendingFirst(admin.SimpleListFilter):
    """Opens on the proposals waiting for a second policy admin."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("proposed", "Pending"), ("applied", "Applied"), ("rejected", "Rejected"), ("all", "All")]

    def choices(self, changelist):
        for value, label in self.lookup_choices:
            yield {
                "selected": (self.value() or "proposed") == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        value = self.value() or "proposed"
        return queryset if value == "all" else queryset.filter(status=value)


@admin.register(AccessChange)
class AccessChangeAdmin(admin.ModelAdmin):
    """Clearances and a class's restricted/legal flags: proposed here, approved or rejected by another admin.

    Every step is a service call (``reviews.services.access``) and an audit row; a proposal
    is never edited (approve, reject, or propose another).
    """

    list_display = ["id", "kind", "what", "change_summary", "status", "proposed_by", "decided_by", "created_at"]
    list_filter = [PendingFirst, "kind"]
    readonly_fields = [
        "kind",
        "what",
        "change_summary",
        "reason",
        "status",
        "proposed_by",
        "decided_by",
        "created_at",
        "decided_at",
    ]
    fields = readonly_fields
    actions = [approve_access_changes, reject_access_changes]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account", "threat_class", "proposed_by", "decided_by")

    @admin.display(description="what changes")
    def what(self, obj):
        return obj.subject_label

    @admin.display(description="before → after")
    def change_summary(self, obj):
        return obj.change_summary

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        source = request.POST if request.method == "POST" else request.GET
        flags = "threat_class" in source or source.get("kind") == "class_flags"
        form_class = ClassFlagsProposalForm if flags else ClearancesProposalForm
        if request.method == "POST":
            form = form_class(request.POST)
            if form.is_valid():
                change = form.save(actor=request.user, request=request)
                if change is not None:
                    self.log_addition(request, change, [{"added": {}}])
                    self.message_user(
                        request,
                        f"Access change {change.pk} proposed ({change.subject_label}: {change.change_summary}). "
                        "Another policy admin must approve it.",
                        messages.SUCCESS,
                    )
                    return redirect(reverse("admin:reviews_accesschange_change", args=[change.pk]))
        else:
            form = form_class(initial=self._initial(request.GET, flags))
        context = {
            **self.admin_site.each_context(request),
            "title": "Propose a change of a class's flags" if flags else "Propose a change of clearances",
            "opts": self.model._meta,
            "form": form,
            "flags": flags,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/reviews/accesschange/propose.html", context)

    def _initial(self, query, flags):
        """The proposal starts from what is in force now."""
        raw = query.get("threat_class" if flags else "reviewer", "")
        if not raw.isdigit():
            return {}
        if flags:
            tc = ThreatClass.objects.filter(pk=raw).first()
            return (
                {"threat_class": tc, "restricted": tc.restricted, "legal_escalation": tc.legal_escalation} if tc else {}
            )
        reviewer = Reviewer.objects.filter(pk=raw).first()
        return {"reviewer": reviewer, "clearances": list(reviewer.clearances)} if reviewer else {}
