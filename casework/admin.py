from django.contrib import admin, messages
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from docket import roles
from docket.errors import DocketError
from policies.admin import RestrictedReadOnlyAdmin

from .models import (
    Campaign,
    Case,
    CaseEvent,
    Queue,
    Reporter,
    Signal,
    SourceIncident,
    Subject,
)
from .retention import case_legal_hold_release, case_legal_hold_set
from .selectors import subject_facts


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "required_clearance", "sla_seconds", "position"]
    filter_horizontal = ["threat_classes"]


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
    """Subjects with the reach and attribute values the signals of the classes the reader may see told
    (``casework.selectors.subject_facts``, as on the subject pages), not the figures merged over every class."""

    list_display = ["id", "kind", "external_id", "shown_reach", "campaign"]
    fields = ["kind", "external_id", "shown_owner", "shown_reach", "shown_attributes", "campaign"]
    readonly_fields = ["shown_owner", "shown_reach", "shown_attributes"]
    search_fields = ["external_id"]
    show_full_result_count = False
    # The campaign may be of another class than what is visible, and joined by what another class's signals carried.
    all_classes_fields = ("campaign",)

    @staticmethod
    def _tell(request, subjects):
        """Set on each subject what ``request.user`` may be told of it (``_facts``) and whether its owner is named."""
        subjects = list(subjects)
        facts = subject_facts(user=request.user, subjects=subjects)
        owners = {s.owner_id for s in subjects if s.owner_id is not None}
        named = set(Subject.objects.visible_to(request.user).filter(pk__in=owners).values_list("pk", flat=True))
        for subject in subjects:
            subject._facts = facts[subject.pk]
            subject._owner_named = subject.owner_id in named

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        self._tell(request, changelist.result_list)  # evaluates the page once; the template reuses its rows
        return changelist

    def get_object(self, request, object_id, from_field=None):
        subject = super().get_object(request, object_id, from_field)
        if subject is not None:
            self._tell(request, [subject])
        return subject

    @staticmethod
    def _facts_of(subject):
        # Told to nobody but through _tell; a row reached another way shows what the unrestricted classes told.
        return getattr(subject, "_facts", None) or subject_facts(user=None, subjects=[subject])[subject.pk]

    @admin.display(description="Reach")
    def shown_reach(self, subject):
        return self._facts_of(subject)["reach"]

    @admin.display(description="Attributes")
    def shown_attributes(self, subject):
        attributes = self._facts_of(subject)["attributes"]
        if not attributes:
            return "-"
        return format_html_join(
            mark_safe("<br>"), "{}: {}", ((kind, ", ".join(values)) for kind, values in attributes.items())
        )

    @admin.display(description="Owner")
    def shown_owner(self, subject):
        # A content item's owner account is named only to a reader for whom that account exists.
        return str(subject.owner) if subject.owner_id is not None and getattr(subject, "_owner_named", False) else "-"


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
    """Reporters with their record over the classes the admin may see (not the counters over every class)."""

    list_display = ["external_id", "first_seen_at", "seen_decided", "seen_upheld"]
    fields = ["external_id", "first_seen_at", "seen_decided", "seen_upheld"]
    readonly_fields = ["seen_decided", "seen_upheld"]
    search_fields = ["external_id"]
    # Their first report of any class: it may be one of a class hidden from the admin.
    all_classes_fields = ("first_seen_at",)

    def get_queryset(self, request):
        return super().get_queryset(request).with_visible_record(request.user)

    @admin.display(description="Reports decided", ordering="seen_decided")
    def seen_decided(self, reporter):
        return reporter.seen_decided

    @admin.display(description="Reports upheld", ordering="seen_upheld")
    def seen_upheld(self, reporter):
        return reporter.seen_upheld
