"""Forms of the appeals UI: they check types and sizes only; appeals.services decides."""

from django import forms

from appeals.models import Appeal
from policies.models import Action


class ResolveForm(forms.Form):
    """One resolution. The new action is offered from the ladder; the service still checks it."""

    outcome = forms.ChoiceField(choices=Appeal.Outcome.choices, widget=forms.RadioSelect)
    action = forms.ChoiceField(choices=[("", "—")] + Action.choices, required=False, label="New action")
    rule = forms.CharField(max_length=80, required=False)
    duration_days = forms.IntegerField(min_value=1, max_value=3650, required=False, label="Duration (days)")
    rationale = forms.CharField(max_length=20000, widget=forms.Textarea(attrs={"rows": 4}), label="Reasons")
