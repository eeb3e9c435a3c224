"""Many notices rendered together say exactly what each would say rendered alone, and a template that
only prints the values that differ is rendered once for the whole batch."""

import copy

import pytest

from policies import notices
from policies.models import MessageTemplate
from policies.notices import DEFAULTS, MAX_OUTPUT, SAMPLE_CONTEXT, notice_render, notices_render


def context(external_id, *, decision_id=1, **decision):
    out = copy.deepcopy(SAMPLE_CONTEXT)
    out["decision"].update(id=decision_id, subject={"kind": "account", "external_id": external_id}, **decision)
    return out


# Notices that differ in what they print as it is, in what they never print, in what they test, and in
# values that tidying changes (spaces, newlines).
CONTEXTS = [
    context("u-1", decision_id=1),
    context("u-2", decision_id=2),
    context("  spaced\n\n\n\nout  ", decision_id=3),
    context("u-4", decision_id=4, automated=True),
    context("u-5", decision_id=5, duration_days=None),
]

TEMPLATES = [
    DEFAULTS[("decision_notice", "en")]["body"],
    DEFAULTS[("decision_notice", "de")]["body"],
    "Hello {{ decision.subject.external_id }} and again {{decision.subject.external_id}}.",
    "{{ decision.subject.external_id|upper }}",
    '{% if decision.subject.external_id == "u-2" %}two{% else %}other{% endif %}',
    "{% filter upper %}{{ decision.subject.external_id }}{% endfilter %}",
    "{{ decision.subject }}",
    "{% with s=decision.subject %}{{ s.external_id }}{% endwith %}",
    "{% for c in decision.subject.external_id %}[{{ c }}]{% endfor %}",
    "{{ decision.subject.external_id.0 }}",
    "{% for decision in statement.redress %}{{ decision.subject.external_id }}{% endfor %}",
    '{% cycle "a" "b" %}{{ decision.subject.external_id }}',
    "{{ decision.id }}: {{ decision.subject.external_id }}",
    "{% if decision.automated %}auto {% endif %}{{ decision.duration_days }} {{ decision.subject.external_id }}",
    "{% for k in decision.subject.external_id %}",  # broken: falls back to the English default, logged
]


def template(body, subject="About {{ decision.subject.external_id }}"):
    return MessageTemplate(kind="decision_notice", language="en", action="", subject=subject, body=body)


@pytest.mark.parametrize("body", TEMPLATES)
def test_a_batch_says_what_each_notice_says_alone(body):
    templates = [template(body)]
    requests = [("en", "remove", c) for c in CONTEXTS]
    alone = [
        notice_render(kind="decision_notice", language=lang, action=a, context=c, templates=templates)
        for lang, a, c in requests
    ]
    assert notices_render(kind="decision_notice", requests=requests, templates=templates) == alone


def test_a_value_over_the_output_budget_falls_back_for_that_notice_only():
    templates = [template("{{ decision.subject.external_id }} {{ decision.subject.external_id }}", subject="S")]
    long = "x" * (MAX_OUTPUT // 2 + 1)  # printed twice: over the budget; once (the English default): within it
    requests = [("en", "remove", context("u-1")), ("en", "remove", context(long))]
    rendered = notices_render(kind="decision_notice", requests=requests, templates=templates)
    assert rendered[0]["body"] == "u-1 u-1"
    assert rendered[1] == notice_render(
        kind="decision_notice", language="en", action="remove", context=requests[1][2], templates=templates
    )
    assert rendered[1]["body"].startswith(f"We reviewed your account {long}")  # the English default


def test_languages_and_actions_pick_their_own_templates_in_a_batch():
    templates = [
        template("english {{ decision.subject.external_id }}"),
        MessageTemplate(kind="decision_notice", language="de", action="", subject="S", body="deutsch"),
        MessageTemplate(kind="decision_notice", language="en", action="ban", subject="S", body="banned"),
    ]
    requests = [("en", "remove", context("u-1")), ("de", "remove", context("u-2")), ("en", "ban", context("u-3"))]
    assert [r["body"] for r in notices_render(kind="decision_notice", requests=requests, templates=templates)] == [
        "english u-1",
        "deutsch",
        "banned",
    ]


def test_a_template_printing_only_what_differs_is_rendered_once_for_the_batch(monkeypatch):
    renders = []
    real = notices._render

    def counted(source, ctx):
        renders.append(source)
        return real(source, ctx)

    monkeypatch.setattr(notices, "_render", counted)
    requests = [("en", "remove", context(f"u-{i}", decision_id=i)) for i in range(50)]
    rendered = notices_render(kind="decision_notice", requests=requests, templates=[])
    assert len(renders) == 2  # the subject and the body, once each
    assert rendered[7]["subject"] == "Our decision about your account u-7"
    assert "We reviewed your account u-7 under" in rendered[7]["body"]

    renders.clear()
    filtered = [template("{{ decision.subject.external_id|upper }}")]
    notices_render(kind="decision_notice", requests=requests, templates=filtered)
    assert len(renders) == 2 * 50  # a filtered value: each notice rendered on its own
