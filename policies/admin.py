import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.filters import RelatedFieldListFilter
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from docket.admin import ReadOnlyAdmin
from docket.conf import setting
from docket.errors import DocketError
from docket.visibility import restrict

from . import dsa
from .models import (
    Action,
    MessageTemplate,
    Policy,
    PolicyVersion,
    SignalSource,
    ThreatClass,
    Threshold,
    ThresholdChange,
    ladder_rank,
)
from .notices import template_check
from .selectors import policy_version_active, policy_version_diff
from .services import (
    policy_rules_validate,
    policy_version_activate,
    policy_version_draft_from,
    threshold_change_approve,
    threshold_change_propose,
    threshold_change_reject,
    threshold_change_rollback_proposal,
)

ACTION_LABELS = dict(Action.choices)


# --- visibility: the one rule in the admin ---------------------------------------------------------------------


def _restrictable(model) -> bool:
    return hasattr(model._default_manager.get_queryset(), "visible_to")


class VisibleRelatedFieldListFilter(RelatedFieldListFilter):
    """A filter by a related object that offers only the objects the user may see (no hidden class, no queue
    that needs a clearance the user lacks); choosing a hidden one by its id filters to nothing, like a missing id."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        related = field.remote_field.model
        visible = related._default_manager.visible_to(request.user).values("pk")
        return field.get_choices(include_blank=False, ordering=ordering, limit_choices_to=Q(pk__in=visible))


def sees_every_class(user) -> bool:
    """Whether no threat class is hidden from ``user`` (then figures summed over all classes are theirs to see)."""
    return not ThreatClass.objects.hidden_from(user).exists()


class RestrictedAdminMixin:
    """The visibility rule in the admin, for every model admin and inline that shows casework data.

    Rows are the model's ``visible_to(user)`` (the rule of ``policies.models.visible_classes_q``),
    so changelists, their counts and facets, search, date drill-downs, change, history and delete
    views, actions, raw-id popups and autocomplete (which read the target admin's queryset) and
    inlines all leave out what the user may not see: a hidden object's page answers exactly like a
    missing one's. Filters by a related object list only visible objects, and form fields offer
    only visible ones. ``all_classes_fields`` are figures summed over every threat class (a
    reporter's record, a subject's merged attributes): shown only to users from whom no class is
    hidden. Superusers follow the same rule (docs/architecture.md).
    """

    all_classes_fields: tuple[str, ...] = ()

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        # Sources are of no class (their figures are ``all_classes_fields``); every model of a class restricts.
        return restrict(queryset, request.user) if _restrictable(self.model) else queryset

    def _hidden_fields(self, request):
        if not self.all_classes_fields:
            return set()
        cached = getattr(request, "_docket_sees_every_class", None)
        if cached is None:
            cached = request._docket_sees_every_class = sees_every_class(request.user)
        return set() if cached else set(self.all_classes_fields)

    def _without_hidden(self, request, names):
        hidden = self._hidden_fields(request)
        return [n for n in names if n not in hidden] if hidden else names

    def get_list_display(self, request):
        return self._without_hidden(request, super().get_list_display(request))

    def get_fields(self, request, obj=None):
        return self._without_hidden(request, super().get_fields(request, obj))

    def get_readonly_fields(self, request, obj=None):
        return self._without_hidden(request, super().get_readonly_fields(request, obj))

    def get_search_fields(self, request):
        return self._without_hidden(request, super().get_search_fields(request))

    def get_list_filter(self, request):
        filters = []
        for spec in super().get_list_filter(request):
            if isinstance(spec, str) and "__" not in spec:
                field = self.model._meta.get_field(spec)
                if field.is_relation and _restrictable(field.remote_field.model):
                    spec = (spec, VisibleRelatedFieldListFilter)
            filters.append(spec)
        return filters

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "queryset" not in kwargs and _restrictable(db_field.remote_field.model):
            kwargs["queryset"] = db_field.remote_field.model._default_manager.visible_to(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "queryset" not in kwargs and _restrictable(db_field.remote_field.model):
            kwargs["queryset"] = db_field.remote_field.model._default_manager.visible_to(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class RestrictedReadOnlyAdmin(RestrictedAdminMixin, ReadOnlyAdmin):
    """Evidence and audit records of casework, read-only and under the visibility rule."""


class ThreatClassForm(forms.ModelForm):
    """DSA fields as choices from the Transparency Database's own enums: nothing it would refuse."""

    dsa_category = forms.ChoiceField(choices=dsa.category_choices(), label="DSA category")
    dsa_keywords = forms.MultipleChoiceField(
        choices=dsa.keyword_choices(), required=False, label="DSA keywords (category specification)"
    )
    dsa_territorial_scope = forms.MultipleChoiceField(
        choices=[(c, c) for c in sorted(dsa.EUROPEAN_COUNTRY_CODES)],
        required=False,
        label="DSA territorial scope",
        help_text="Where decisions on this class apply by default; none selected: DOCKET_DSA_TERRITORIAL_SCOPE.",
    )

    class Meta:
        model = ThreatClass
        fields = [
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
            "dsa_category",
            "dsa_keywords",
            "dsa_illegal",
            "legal_ground",
            "dsa_territorial_scope",
        ]

    def clean(self):
        data = super().clean()
        if data.get("dsa_illegal") and not (data.get("legal_ground") or "").strip():
            self.add_error("legal_ground", "A class whose decisions rest on illegality needs the law it applies.")
        return data


@admin.register(ThreatClass)
class ThreatClassAdmin(admin.ModelAdmin):
    """Threat classes by their names, with the SLA in hours and the automation tolerance in words."""

    form = ThreatClassForm
    list_display = [
        "name",
        "severity",
        "harm_weight",
        "sla",
        "automation",
        "auto_action",
        "restricted",
        "legal_escalation",
        "graphic",
    ]
    list_display_links = ["name"]
    list_filter = ["automation", "restricted", "legal_escalation", "graphic"]
    search_fields = ["name", "slug"]
    # Nobody lifts a restriction alone: on an existing class these change only through an access
    # change a second policy admin approves (the database refuses any other update).
    ACCESS_FIELDS = ["restricted", "legal_escalation"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return super().get_readonly_fields(request, obj)
        fixed = [*self.ACCESS_FIELDS, "access_change"]
        if obj.restricted:
            fixed.insert(0, "slug")  # clearances name a restricted class by its slug
        return [*super().get_readonly_fields(request, obj), *fixed]

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if obj is not None and "access_change" not in fields:
            fields.insert(fields.index("legal_escalation") + 1, "access_change")
        return fields

    @admin.display(description="Change restricted or legal escalation")
    def access_change(self, obj):
        return format_html(
            '<a href="{}?threat_class={}">Propose a change</a> (applied when another policy admin approves it)',
            reverse("admin:reviews_accesschange_add"),
            obj.pk,
        )

    @admin.display(description="SLA to first action", ordering="sla_seconds")
    def sla(self, obj):
        hours = obj.sla_seconds / 3600
        return f"{hours:g} h" if hours < 48 else f"{hours / 24:g} days"


class RulesWidget(forms.Widget):
    """The rules a version lets reviewers cite, as rows of code, title and description (not raw JSON).

    A few blank rows are offered for new rules; a row left entirely blank is dropped.
    """

    template_name = "admin/policies/widgets/rules.html"
    blank_rows = 3

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        rules = value if isinstance(value, list) else _rules_from_json(value)
        rows = [{k: r.get(k, "") for k in ("code", "title", "description")} for r in rules if isinstance(r, dict)]
        rows += [{"code": "", "title": "", "description": ""}] * self.blank_rows
        context["widget"]["rows"] = [{"index": i, **row} for i, row in enumerate(rows)]
        context["widget"]["count"] = len(rows)
        return context

    def value_from_datadict(self, data, files, name):
        try:
            count = min(int(data.get(f"{name}-count", 0)), 500)
        except (TypeError, ValueError):
            count = 0
        rules = []
        for i in range(count):
            row = {k: (data.get(f"{name}-{i}-{k}") or "").strip() for k in ("code", "title", "description")}
            if any(row.values()):
                rules.append(row)
        return rules

    def value_omitted_from_data(self, data, files, name):
        return f"{name}-count" not in data


def _rules_from_json(value):
    try:
        rules = json.loads(value) if isinstance(value, str) and value else []
    except ValueError:
        return []
    return rules if isinstance(rules, list) else []


class RulesField(forms.Field):
    widget = RulesWidget

    def to_python(self, value):
        if isinstance(value, str):
            value = _rules_from_json(value)
        return [
            {k: str(r.get(k) or "").strip() for k in ("code", "title", "description")}
            for r in value or []
            if isinstance(r, dict)
        ]

    def validate(self, value):
        super().validate(value)
        problems = policy_rules_validate(value)
        if problems:
            raise forms.ValidationError(problems)

    def has_changed(self, initial, data):
        return self.to_python(initial) != self.to_python(data)


class LadderField(forms.MultipleChoiceField):
    """The allowed actions, offered in ladder order (mildest first) and stored in that order."""

    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs):
        kwargs.pop("base_field", None)
        kwargs.pop("max_length", None)
        super().__init__(choices=Action.choices, **kwargs)

    def clean(self, value):
        return sorted(super().clean(value), key=ladder_rank)


class PolicyVersionForm(forms.ModelForm):
    rules = RulesField(
        required=False,
        help_text="The violations reviewers cite: a short code (what decisions record), a title and a "
        "description (what the user is told by default). Clear a row to remove that rule.",
    )
    ladder = LadderField(help_text="The actions a decision under this version may take, mildest first.")

    class Meta:
        model = PolicyVersion
        fields = ["policy", "number", "text", "rules", "ladder", "strike_weight"]

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is not None:
            status = PolicyVersion.objects.filter(pk=self.instance.pk).values_list("status", flat=True).first()
            if status not in (None, PolicyVersion.Status.DRAFT):
                raise forms.ValidationError(
                    f"This version became {status} while you edited it; its content is fixed now. "
                    "Make a new draft from it instead."
                )
        return cleaned


class PolicyVersionInline(admin.TabularInline):
    """Versions listed on their policy, read-only: a draft is edited on its own page, a published one never."""

    model = PolicyVersion
    fields = ["number", "status", "effective_at", "ladder_steps"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    @admin.display(description="ladder")
    def ladder_steps(self, obj):
        return _ladder_text(obj.ladder)


def _ladder_text(ladder):
    return " → ".join(ACTION_LABELS.get(a, a) for a in ladder or [])


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "threat_class"]
    inlines = [PolicyVersionInline]


@admin.action(description="Activate the selected version (shows what changes first)")
def activate_versions(modeladmin, request, queryset):
    """One version at a time, through the confirmation page that shows its changes."""
    ids = list(queryset.values_list("pk", flat=True)[:2])
    if len(ids) != 1:
        modeladmin.message_user(request, "Select exactly one version to activate.", messages.ERROR)
        return None
    return redirect(reverse("admin:policies_policyversion_activate", args=[ids[0]]))


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    """Drafts are edited here; active and retired versions are shown, never changed (the database agrees).

    A change to a published version starts as "new draft from this version";
    activation goes through a confirmation page listing what changes against
    the active version.
    """

    form = PolicyVersionForm
    list_display = ["policy", "number", "status", "effective_at", "retired_at"]
    list_filter = ["status", "policy"]
    readonly_fields = [
        "status",
        "effective_at",
        "retired_at",
        "activated_by",
        "created_at",
        "rules_table",
        "ladder_steps",
    ]
    actions = [activate_versions]
    change_form_template = "admin/policies/policyversion/change_form.html"

    def get_fields(self, request, obj=None):
        meta = ["status", "effective_at", "retired_at", "activated_by", "created_at"]
        if obj is not None and obj.status != PolicyVersion.Status.DRAFT:
            return ["policy", "number", "text", "rules_table", "ladder_steps", "strike_weight", *meta]
        return ["policy", "number", "text", "rules", "ladder", "strike_weight", *meta]

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.status != PolicyVersion.Status.DRAFT:
            return False  # published: view only; "new draft from this version" makes an editable copy
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.status != PolicyVersion.Status.DRAFT:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # it would try published versions too; delete drafts one by one
        return actions

    @admin.display(description="rules")
    def rules_table(self, obj):
        if not obj.rules:
            return "—"
        return format_html(
            '<table class="policy-rules"><thead><tr><th>code</th><th>title</th><th>description</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            format_html_join(
                "",
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                ((r.get("code", ""), r.get("title", ""), r.get("description", "")) for r in obj.rules),
            ),
        )

    @admin.display(description="ladder")
    def ladder_steps(self, obj):
        return _ladder_text(obj.ladder)

    def get_urls(self):
        own = [
            path(
                "<int:version_id>/new-draft/",
                self.admin_site.admin_view(self.new_draft_view),
                name="policies_policyversion_new_draft",
            ),
            path(
                "<int:version_id>/diff/",
                self.admin_site.admin_view(self.diff_view),
                name="policies_policyversion_diff",
            ),
            path(
                "<int:version_id>/activate/",
                self.admin_site.admin_view(self.activate_view),
                name="policies_policyversion_activate",
            ),
        ]
        return own + super().get_urls()

    def _version(self, request, version_id):
        version = PolicyVersion.objects.select_related("policy__threat_class").filter(pk=version_id).first()
        if version is None or not self.has_view_permission(request, version):
            raise Http404("No such policy version.")
        return version

    def _context(self, request, version, title, **extra):
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "original": version,
            "version": version,
            **extra,
        }

    def new_draft_view(self, request, version_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        version = self._version(request, version_id)
        if not self.has_add_permission(request):
            raise PermissionDenied
        try:
            draft = policy_version_draft_from(version=version, actor=request.user)
        except DocketError as e:
            self.message_user(request, e.detail, messages.ERROR)
            return redirect(reverse("admin:policies_policyversion_change", args=[version.pk]))
        self.log_addition(request, draft, [{"added": {}}])
        self.message_user(
            request,
            f"Draft {draft} created from {version}. Edit it, compare it with the active version, then activate it.",
            messages.SUCCESS,
        )
        return redirect(reverse("admin:policies_policyversion_change", args=[draft.pk]))

    def diff_view(self, request, version_id):
        version = self._version(request, version_id)
        active = policy_version_active(version.policy_id)
        return TemplateResponse(
            request,
            "admin/policies/policyversion/diff.html",
            self._context(
                request,
                version,
                f"{version} compared with the active version",
                diff=policy_version_diff(version, active if active and active.pk != version.pk else None),
                is_active=active is not None and active.pk == version.pk,
            ),
        )

    def activate_view(self, request, version_id):
        """Shows what activating changes; activates only on the confirming POST."""
        version = self._version(request, version_id)
        if not self.has_change_permission(request, version):
            if version.status != PolicyVersion.Status.DRAFT:
                self.message_user(
                    request, f"{version} is {version.status}; only a draft can be activated.", messages.ERROR
                )
                return redirect(reverse("admin:policies_policyversion_change", args=[version.pk]))
            raise PermissionDenied
        active = policy_version_active(version.policy_id)
        if request.method == "POST" and request.POST.get("confirm") == "yes":
            try:
                policy_version_activate(version=version, actor=request.user)
            except DocketError as e:
                self.message_user(request, f"{version}: {e.detail}", messages.ERROR)
            else:
                self.log_change(request, version, f"Activated (retired {active})" if active else "Activated")
                self.message_user(request, f"{version} is now active.", messages.SUCCESS)
                return redirect(reverse("admin:policies_policyversion_change", args=[version.pk]))
        return TemplateResponse(
            request,
            "admin/policies/policyversion/activate.html",
            self._context(
                request,
                version,
                f"Activate {version}?",
                active=active,
                diff=policy_version_diff(version, active),
                relabel_size=setting("RELABEL_SAMPLE_SIZE"),
            ),
        )


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


@admin.register(Threshold)
class ThresholdAdmin(ReadOnlyAdmin):
    """Read-only: thresholds move only through an approved threshold change."""

    list_display = ["source", "threat_class", "auto_action_at", "review_at", "updated_at"]


class ThresholdChangeProposalForm(forms.Form):
    """Propose a threshold change in the admin; saving calls the same service as the API."""

    source = forms.ModelChoiceField(queryset=SignalSource.objects.order_by("slug"), to_field_name="slug")
    threat_class = forms.ModelChoiceField(queryset=ThreatClass.objects.order_by("slug"), to_field_name="slug")
    auto_action_at = forms.FloatField(
        required=False, help_text="Score at which automation acts (within the class's tolerance); blank: never."
    )
    review_at = forms.FloatField(help_text="Score at which a signal enters human review.")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        # A class's blast radius counts its signals: only the classes the admin may see are offered.
        self.fields["threat_class"].queryset = ThreatClass.objects.visible_to(user).order_by("slug")

    def save(self, *, actor):
        """The proposal, or the service's refusal as form errors (``None``)."""
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
    _each_change(
        modeladmin, request, queryset, threshold_change_approve, lambda c, r: f"Threshold change {c.pk} applied."
    )


@admin.action(description="Reject the selected proposals")
def reject_changes(modeladmin, request, queryset):
    _each_change(
        modeladmin, request, queryset, threshold_change_reject, lambda c, r: f"Threshold change {c.pk} rejected."
    )


@admin.action(description="Propose rolling back the selected applied changes")
def rollback_changes(modeladmin, request, queryset):
    _each_change(
        modeladmin,
        request,
        queryset,
        threshold_change_rollback_proposal,
        lambda c, r: f"Rollback of change {c.pk} proposed as change {r.pk}; another admin approves it.",
    )


@admin.register(ThresholdChange)
class ThresholdChangeAdmin(RestrictedAdminMixin, admin.ModelAdmin):
    """Proposals are made with a form that calls the service; approval is an action that calls the service.

    A change of a restricted class (its blast radius counts that class's signals) is listed, shown and
    acted on only for policy admins cleared for it."""

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
        form = ThresholdChangeProposalForm(request.POST or None, user=request.user)
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


class MessageTemplateForm(forms.ModelForm):
    """Refuses, per field and with the input kept, a template that would not render within the limits."""

    class Meta:
        model = MessageTemplate
        fields = ["kind", "language", "action", "subject", "body"]

    def clean(self):
        cleaned = super().clean()
        for field, message in template_check(subject=cleaned.get("subject", ""), body=cleaned.get("body", "")).items():
            self.add_error(field, message)
        return cleaned


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    form = MessageTemplateForm
    list_display = ["kind", "language", "action", "subject", "updated_at"]
    list_filter = ["kind", "language"]
