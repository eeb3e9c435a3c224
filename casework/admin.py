from django.contrib import admin, messages

from docket import roles
from docket.errors import DocketError
from policies.admin import RestrictedAdminMixin, RestrictedReadOnlyAdmin

from .models import (
    Campaign,
    Case,
    CaseEvent,
    Reporter,
    Signal,
    SignalSource,
    SourceIncident,
    Subject,
)
from .retention import case_legal_hold_release, case_legal_hold_set


@admin.register(SignalSource)
class SignalSourceAdmin(RestrictedAdminMixin, admin.ModelAdmin):
    list_display = ["slug", "kind", "trust", "status", "baseline_rate", "current_rate", "health_checked_at"]
    list_filter = ["kind", "status"]
    readonly_fields = [
        "status",
        "baseline_rate",
        "current_rate",
        "score_summary",
        "status_changed_at",
        "health_checked_at",
        "created_at",
    ]
    # Rates and score distributions count every class's signals (the /sources/ pages show each user theirs).
    all_classes_fields = ("baseline_rate", "current_rate", "score_summary")


def _legal_hold_action(service, verb):
    @admin.action(description=f"{verb.capitalize()} legal hold on the selected cases", permissions=["legal_hold"])
    def action(modeladmin, request, queryset):
        done = 0
        for case_id in queryset.values_list("id", flat=True):
            try:
                service(case_id=case_id, actor=request.user, reason=f"{verb} in the admin")
            except DocketError as e:
                modeladmin.message_user(request, f"Case {case_id}: {e.detail}", messages.ERROR)
            else:
                done += 1
        modeladmin.message_user(request, f"{verb.capitalize()} legal hold on {done} case(s).", messages.SUCCESS)

    action.__name__ = f"legal_hold_{verb}"
    return action


@admin.register(Case)
class CaseAdmin(RestrictedReadOnlyAdmin):
    list_display = [
        "id",
        "subject",
        "threat_class",
        "queue",
        "status",
        "priority",
        "signal_count",
        "reporter_count",
        "sla_due_at",
    ]
    list_filter = ["status", "threat_class", "queue"]
    list_select_related = ["subject", "threat_class", "queue"]
    search_fields = ["subject__external_id"]
    show_full_result_count = False
    actions = [_legal_hold_action(case_legal_hold_set, "place"), _legal_hold_action(case_legal_hold_release, "release")]

    def has_legal_hold_permission(self, request):
        return request.user.is_superuser or roles.has(request.user, roles.POLICY_ADMIN)


@admin.register(Signal)
class SignalAdmin(RestrictedReadOnlyAdmin):
    list_display = ["id", "source", "external_id", "threat_class", "score", "disposition", "occurred_at"]
    list_filter = ["disposition", "source", "threat_class"]
    list_select_related = ["source", "threat_class"]
    show_full_result_count = False


@admin.register(CaseEvent)
class CaseEventAdmin(RestrictedReadOnlyAdmin):
    list_display = ["id", "case_id", "kind", "actor_label", "at"]
    list_filter = ["kind"]
    show_full_result_count = False


@admin.register(Subject)
class SubjectAdmin(RestrictedReadOnlyAdmin):
    list_display = ["id", "kind", "external_id", "reach", "campaign"]
    search_fields = ["external_id"]
    show_full_result_count = False
    # Merged from the signals of every class, and the campaign may be of another class than what is visible.
    all_classes_fields = ("attributes", "campaign")


@admin.register(Campaign)
class CampaignAdmin(RestrictedReadOnlyAdmin):
    list_display = ["id", "threat_class", "size", "status", "detected_at"]
    all_classes_fields = ("size", "links")  # over every member, whatever the member's class


@admin.register(SourceIncident)
class SourceIncidentAdmin(RestrictedReadOnlyAdmin):
    list_display = ["id", "source", "kind", "status", "opened_at"]
    all_classes_fields = ("detail",)  # the spike's rates and corroboration over every class


@admin.register(Reporter)
class ReporterAdmin(RestrictedReadOnlyAdmin):
    list_display = ["external_id", "first_seen_at", "reports_decided", "reports_upheld"]
    search_fields = ["external_id"]
    all_classes_fields = ("reports_decided", "reports_upheld")  # the record over every class's decisions
