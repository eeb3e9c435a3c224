from django.contrib import admin

from docket.admin import ReadOnlyAdmin

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


@admin.register(SignalSource)
class SignalSourceAdmin(admin.ModelAdmin):
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


@admin.register(Case)
class CaseAdmin(ReadOnlyAdmin):
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


@admin.register(Signal)
class SignalAdmin(ReadOnlyAdmin):
    list_display = ["id", "source", "external_id", "threat_class", "score", "disposition", "occurred_at"]
    list_filter = ["disposition", "source", "threat_class"]
    list_select_related = ["source", "threat_class"]
    show_full_result_count = False


@admin.register(CaseEvent)
class CaseEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "case_id", "kind", "actor_label", "at"]
    list_filter = ["kind"]
    show_full_result_count = False


@admin.register(Subject)
class SubjectAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "external_id", "reach", "campaign"]
    search_fields = ["external_id"]
    show_full_result_count = False


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdmin):
    list_display = ["id", "threat_class", "size", "status", "detected_at"]


@admin.register(SourceIncident)
class SourceIncidentAdmin(ReadOnlyAdmin):
    list_display = ["id", "source", "kind", "status", "opened_at"]


@admin.register(Reporter)
class ReporterAdmin(ReadOnlyAdmin):
    list_display = ["external_id", "first_seen_at", "reports_decided", "reports_upheld"]
    search_fields = ["external_id"]
