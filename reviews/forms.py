"""Forms of the moderator UI: they check types and sizes only; the services decide."""

from django import forms

from policies.models import Action


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
