from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from docket.admin import ReadOnlyAdmin
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
class ThresholdAdmin(ReadOnlyAdmin):
    """Read-only: thresholds move only through an approved threshold change."""

    list_display = ["source", "threat_class", "auto_action_at", "review_at", "updated_at"]


class ThresholdChangeProposalForm(forms.Form):
    """Propose a threshold change in the admin; saving calls the same service as the API."""

    source = forms.ModelChoiceField(queryset=None, to_field_name="slug")
    threat_class = forms.ModelChoiceField(queryset=ThreatClass.objects.order_by("slug"), to_field_name="slug")
    auto_action_at = forms.FloatField(
        required=False, help_text="Score at which automation acts (within the class's tolerance); blank: never."
    )
    review_at = forms.FloatField(help_text="Score at which a signal enters human review.")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)

    def __init__(self, *args, **kwargs):
        from casework.models import SignalSource

        super().__init__(*args, **kwargs)
        self.fields["source"].queryset = SignalSource.objects.order_by("slug")

    def save(self, *, actor):
        """The proposal, or the service's refusal as form errors (``None``)."""
        from policies.services import threshold_change_propose

        data = self.cleaned_data
        try:
            return threshold_change_propose(
                source_slug=data["source"].slug,
                threat_class_slug=data["threat_class"].slug,
                auto_action_at=data["auto_action_at"],
                review_at=data["review_at"],
                reason=data["reason"],
                actor=actor,
            )
        except DocketError as e:
            for field, problems in (e.errors or {None: [e.detail]}).items():
                for problem in problems:
                    self.add_error(field if field in self.fields else None, problem)
            return None


def _each_change(modeladmin, request, queryset, service, done):
    for change in queryset.order_by("pk"):
        try:
            result = service(change_id=change.pk, actor=request.user)
        except DocketError as e:
            modeladmin.message_user(request, f"{change}: {e.detail}", messages.ERROR)
        else:
            modeladmin.message_user(request, done(change, result), messages.SUCCESS)


@admin.action(description="Approve the selected changes (applies them; not your own proposals)")
def approve_changes(modeladmin, request, queryset):
    from policies.services import threshold_change_approve

    _each_change(
        modeladmin, request, queryset, threshold_change_approve, lambda c, r: f"Threshold change {c.pk} applied."
    )


@admin.action(description="Reject the selected proposals")
def reject_changes(modeladmin, request, queryset):
    from policies.services import threshold_change_reject

    _each_change(
        modeladmin, request, queryset, threshold_change_reject, lambda c, r: f"Threshold change {c.pk} rejected."
    )


@admin.action(description="Propose rolling back the selected applied changes")
def rollback_changes(modeladmin, request, queryset):
    from policies.services import threshold_change_rollback_proposal

    _each_change(
        modeladmin,
        request,
        queryset,
        threshold_change_rollback_proposal,
        lambda c, r: f"Rollback of change {c.pk} proposed as change {r.pk}; another admin approves it.",
    )


@admin.register(ThresholdChange)
class ThresholdChangeAdmin(admin.ModelAdmin):
    """Proposals are made with a form that calls the service; approval is an action that calls the service."""

    list_display = [
        "id",
        "source",
        "threat_class",
        "old_auto_action_at",
        "auto_action_at",
        "old_review_at",
        "review_at",
        "status",
        "proposed_by",
        "approved_by",
        "created_at",
    ]
    list_filter = ["status", "threat_class"]
    readonly_fields = [
        "source",
        "threat_class",
        "old_auto_action_at",
        "old_review_at",
        "auto_action_at",
        "review_at",
        "reason",
        "blast_radius",
        "status",
        "proposed_by",
        "approved_by",
        "created_at",
        "decided_at",
    ]
    actions = [approve_changes, reject_changes, rollback_changes]

    def has_change_permission(self, request, obj=None):
        return False  # a change is never edited: approve, reject or propose another

    def has_delete_permission(self, request, obj=None):
        return False

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ThresholdChangeProposalForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            change = form.save(actor=request.user)
            if change is not None:
                self.log_addition(request, change, [{"added": {}}])
                radius = change.blast_radius
                self.message_user(
                    request,
                    f"Threshold change {change.pk} proposed: over the last {radius['window_days']} days, "
                    f"{radius['newly_auto_actioned']} newly auto-actioned, {radius['newly_queued']} newly queued, "
                    f"{radius['newly_dropped']} newly dropped of {radius['signals']} signals. "
                    "Another policy admin must approve it.",
                    messages.SUCCESS,
                )
                return redirect(reverse("admin:policies_thresholdchange_change", args=[change.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "Propose a threshold change",
            "opts": self.model._meta,
            "form": form,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/policies/thresholdchange/propose.html", context)


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ["kind", "language", "action", "subject", "updated_at"]
    list_filter = ["kind", "language"]
