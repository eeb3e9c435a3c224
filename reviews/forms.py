"""Forms of the moderator UI: they check types and sizes only; the services decide."""

from urllib.parse import urlencode

from django import forms

from casework.models import Case
from policies.models import Action

from .selectors import QUEUE_MAX_PAGE


class DecisionForm(forms.Form):
    """One decision. Any ladder step is accepted here: the service refuses one off the policy's ladder."""

    action = forms.ChoiceField(choices=Action.choices)
    rule = forms.CharField(max_length=80, required=False)
    rationale = forms.CharField(max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 3}))
    public_explanation = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    duration_days = forms.IntegerField(min_value=1, max_value=3650, required=False, label="Duration (days)")


class BulkDecisionForm(DecisionForm):
    """One decision applied to each selected case; ``cases`` are limited to those the user may see."""

    cases = forms.ModelMultipleChoiceField(queryset=None, error_messages={"required": "Select at least one case."})

    def __init__(self, *args, cases, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cases"].queryset = cases


class EscalateForm(forms.Form):
    queue = forms.SlugField(max_length=40)
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class NoteForm(forms.Form):
    text = forms.CharField(max_length=4000, label="Internal note", widget=forms.Textarea(attrs={"rows": 2}))


class AssignForm(forms.Form):
    reviewer = forms.CharField(max_length=150, label="Reviewer username")


def form_errors(form):
    """The form's errors as one readable sentence for a message."""
    parts = []
    for name, errors in form.errors.items():
        field = form.fields.get(name)
        label = (field.label or name.replace("_", " ").capitalize()) if field else ""
        text = " ".join(str(e) for e in errors)
        parts.append(f"{label}: {text}" if label else text)
    return " ".join(parts)


class SecondReviewForm(forms.Form):
    """A blind second look (QA or relabel): the action and rule this reviewer would choose.

    The choices are the version's ladder and rules; the service still checks them.
    """

    action = forms.ChoiceField(choices=())
    rule = forms.ChoiceField(choices=(), required=False)

    def __init__(self, *args, version, **kwargs):
        super().__init__(*args, **kwargs)
        labels = dict(Action.choices)
        self.fields["action"].choices = [("", "Choose an action")] + [(a, labels.get(a, a)) for a in version.ladder]
        self.fields["rule"].choices = [("", "No rule (no violation)")] + [
            (r["code"], f"{r['code']} · {r['title']}") for r in version.rules
        ]


class QueueFilterForm(forms.Form):
    """The queue page's filters, sort and page (GET). ``classes`` (a list) and ``campaigns`` are what the user may see,
    so a restricted class or campaign is refused like one that does not exist."""

    threat_class = forms.ChoiceField(
        choices=(),
        required=False,
        label="Class",
        error_messages={"invalid_choice": "No such class in this queue."},
    )
    status = forms.ChoiceField(
        choices=[("", "Any status")] + [(s, label) for s, label in Case.Status.choices if s in Case.ACTIVE_STATUSES],
        required=False,
        error_messages={"invalid_choice": "Choose open, in review or escalated."},
    )
    campaign = forms.ModelChoiceField(
        queryset=None,
        required=False,
        widget=forms.NumberInput(attrs={"min": 1, "placeholder": "id"}),
        error_messages={"invalid_choice": "No such campaign.", "invalid_pk_value": "A campaign is a number."},
    )
    sla = forms.ChoiceField(
        choices=[("", "Any"), ("past", "Past SLA"), ("soon", "Due within 1 h"), ("ok", "Due later")],
        required=False,
        label="SLA",
        error_messages={"invalid_choice": "Choose past SLA, due within 1 h or due later."},
    )
    sort = forms.ChoiceField(
        choices=[("rank", "Rank (claim order)"), ("oldest", "Oldest first"), ("sla", "SLA due soonest")],
        required=False,
        label="Sort",
        error_messages={"invalid_choice": "Sort by rank, oldest first or SLA due soonest."},
    )
    page = forms.IntegerField(
        min_value=1,
        max_value=QUEUE_MAX_PAGE,
        required=False,
        widget=forms.HiddenInput,
        error_messages={
            "invalid": "A page is a number.",
            "max_value": f"Pages go up to {QUEUE_MAX_PAGE}: narrow the filters or change the sort to reach further.",
        },
    )

    def __init__(self, *args, classes, campaigns, **kwargs):
        super().__init__(*args, **kwargs)
        # A list read once (the choices and the check), by name; the selector takes the class itself.
        self._classes = {tc.slug: tc for tc in classes}
        self.fields["threat_class"].choices = [("", "Any class")] + [(tc.slug, tc.name) for tc in classes]
        self.fields["campaign"].queryset = campaigns

    def clean_threat_class(self):
        slug = self.cleaned_data["threat_class"]
        return self._classes[slug] if slug else None

    def clean_sort(self):
        return self.cleaned_data["sort"] or "rank"

    def clean_page(self):
        return self.cleaned_data["page"] or 1

    def is_filtered(self) -> bool:
        """Something narrows the queue (a sort alone does not)."""
        return any(self.cleaned_data[name] for name in ("threat_class", "status", "campaign", "sla"))

    def link_query(self) -> str:
        """The valid form's filters and sort as the query string of the page's links (without the page);
        from the cleaned values, never the raw query."""
        data = self.cleaned_data
        values = {
            "threat_class": data["threat_class"].slug if data["threat_class"] else "",
            "status": data["status"],
            "campaign": data["campaign"].pk if data["campaign"] else "",
            "sla": data["sla"],
            "sort": "" if data["sort"] == "rank" else data["sort"],
        }
        return urlencode({name: value for name, value in values.items() if value})

    def listing_arguments(self) -> dict:
        """The valid form as the keyword arguments of ``reviews.selectors.queue_listing``."""
        data = self.cleaned_data
        return {
            "threat_class": data["threat_class"],
            "status": data["status"] or None,
            "campaign": data["campaign"],
            "sla": data["sla"] or None,
            "sort": data["sort"],
            "page": data["page"],
        }
