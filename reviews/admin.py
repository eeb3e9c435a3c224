import json

from django.contrib import admin, messages
from django.utils.html import format_html

from docket.admin import ReadOnlyAdmin
from docket.identity.services import account_grants_changed, grants_of

from .models import (
    Assignment,
    Decision,
    Enforcement,
    Notice,
    QualityReview,
    Queue,
    Reviewer,
    StatementSubmission,
    Strike,
)
from .statements import statement_submission_retry


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "required_clearance", "sla_seconds", "position"]
    filter_horizontal = ["threat_classes"]


@admin.register(Reviewer)
class ReviewerAdmin(admin.ModelAdmin):
    list_display = ["user", "max_active", "graphic_budget", "on_shift", "clearances"]
    list_filter = ["on_shift"]
    filter_horizontal = ["queues"]
    search_fields = ["user__username"]

    def save_model(self, request, obj, form, change):
        # A change of clearances is audited and signs the reviewer out everywhere.
        before = grants_of(obj.user)
        super().save_model(request, obj, form, change)
        account_grants_changed(
            user=obj.user, before=before, after=grants_of(obj.user), by=request.user, via="admin", request=request
        )


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ["id", "case_id", "reviewer", "state", "claimed_at", "lease_expires_at", "ended_at"]
    list_filter = ["state"]


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
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
class EnforcementAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "decision_id", "kind", "action", "status", "attempts", "next_attempt_at"]
    list_filter = ["status", "kind"]


@admin.register(Strike)
class StrikeAdmin(ReadOnlyAdmin):
    list_display = ["id", "account", "decision_id", "weight", "created_at", "expires_at", "removed_at"]


@admin.register(QualityReview)
class QualityReviewAdmin(ReadOnlyAdmin):
    list_display = ["id", "decision_id", "reviewer", "status", "agrees", "completed_at"]


@admin.register(StatementSubmission)
class StatementSubmissionAdmin(ReadOnlyAdmin):
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
class NoticeAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "kind", "case_id", "decision_id", "status", "attempts", "created_at", "delivered_at"]
    list_filter = ["kind", "status"]
