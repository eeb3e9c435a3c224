from django.contrib import admin

from docket.admin import ReadOnlyAdmin
from docket.identity.services import account_grants_changed, grants_of

from .models import Assignment, Decision, Enforcement, QualityReview, Queue, Reviewer, Strike


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
        account_grants_changed(user=obj.user, before=before, after=grants_of(obj.user), by=request.user,
                               via="admin", request=request)


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
