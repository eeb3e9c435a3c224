from django.contrib import admin, messages

from docket.errors import DocketError

from .models import MessageTemplate, Policy, PolicyVersion, ThreatClass, Threshold, ThresholdChange


@admin.register(ThreatClass)
class ThreatClassAdmin(admin.ModelAdmin):
    list_display = [
        "slug",
        "name",
        "severity",
        "harm_weight",
        "sla_seconds",
        "automation",
        "auto_action",
        "restricted",
        "legal_escalation",
        "graphic",
    ]
    list_filter = ["automation", "restricted", "legal_escalation", "graphic"]


class PolicyVersionInline(admin.TabularInline):
    model = PolicyVersion
    fields = ["number", "status", "effective_at", "ladder"]
    readonly_fields = ["status", "effective_at"]
    extra = 0
    show_change_link = True


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "threat_class"]
    inlines = [PolicyVersionInline]


@admin.action(description="Activate the selected version (retires the current one)")
def activate_versions(modeladmin, request, queryset):
    from policies.services import policy_version_activate

    for version in queryset:
        try:
            policy_version_activate(version=version, actor=request.user)
        except DocketError as e:
            modeladmin.message_user(request, f"{version}: {e.detail}", messages.ERROR)
        else:
            modeladmin.message_user(request, f"{version} is now active.", messages.SUCCESS)


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    list_display = ["policy", "number", "status", "effective_at", "retired_at"]
    list_filter = ["status", "policy"]
    readonly_fields = ["status", "effective_at", "retired_at", "activated_by", "created_at"]
    actions = [activate_versions]


@admin.register(Threshold)
class ThresholdAdmin(admin.ModelAdmin):
    """Read-only: thresholds move only through an approved threshold change."""

    list_display = ["source", "threat_class", "auto_action_at", "review_at", "updated_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ThresholdChange)
class ThresholdChangeAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "source",
        "threat_class",
        "auto_action_at",
        "review_at",
        "status",
        "proposed_by",
        "approved_by",
        "created_at",
    ]
    list_filter = ["status"]
    readonly_fields = [
        "old_auto_action_at",
        "old_review_at",
        "blast_radius",
        "status",
        "proposed_by",
        "approved_by",
        "created_at",
        "decided_at",
    ]


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ["kind", "language", "action", "subject", "updated_at"]
    list_filter = ["kind", "language"]
