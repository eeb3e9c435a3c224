"""Admin message templates render within bounds: nested loops and widening filters cannot run for seconds
or write megabytes, on pages or in webhook delivery; the admin refuses such a template with a clear error."""

import logging

import pytest

from appeals.selectors import decision_notice, enforcement_notices
from policies.models import MessageTemplate
from policies.notices import MAX_OUTPUT, SAMPLE_CONTEXT, notice_render, template_check
from tests.appeals.conftest import decided

pytestmark = pytest.mark.django_db

NESTED = "{% for a in appeal.rationale %}{% for b in appeal.rationale %}{{ a }}{{ b }}{% endfor %}{% endfor %}"
NESTED_SILENT = (
    "{% for a in appeal.rationale %}{% for b in appeal.rationale %}{% for c in appeal.rationale %}"
    "{% endfor %}{% endfor %}{% endfor %}"
)
DOUBLING = "".join(f"{{% with v{i + 1}=v{i}|add:v{i} %}}" for i in range(40)).replace("v0", "appeal.rationale")
DOUBLING += "{{ v40 }}" + "{% endwith %}" * 40

LONG_CONTEXT = {**SAMPLE_CONTEXT, "appeal": {**SAMPLE_CONTEXT["appeal"], "rationale": "x" * 4000}}


def render_with(body, context=LONG_CONTEXT):
    MessageTemplate.objects.filter(kind="appeal_outcome", language="en", action="").update(body=body)
    return notice_render(kind="appeal_outcome", language="en", context=context)


@pytest.mark.parametrize(
    "body, limit",
    [
        (NESTED, "writes more than 20,000 characters"),
        (NESTED_SILENT, "takes longer than 0.25 s"),  # writes nothing, loops 64 billion times
        (DOUBLING, "writes more than 20,000 characters"),
        ("{{ appeal.rationale|ljust:1000000000 }}", "writes more than 20,000 characters"),
        ("{{ appeal.rationale|make_list|join:appeal.rationale }}", "writes more than 20,000 characters"),
        ('{{ appeal.id|stringformat:"0999999999d" }}', "writes more than 20,000 characters"),
    ],
)
def test_a_template_past_the_limits_falls_back_to_the_shipped_text_and_says_why(caplog, body, limit):
    with caplog.at_level(logging.ERROR, logger="policies.notices"):
        notice = render_with(body)

    assert notice["body"].startswith("We reviewed your appeal against our decision")
    assert len(notice["body"]) < MAX_OUTPUT
    assert "message template appeal_outcome/en/* failed to render" in caplog.text
    assert f"RenderLimitExceeded: it {limit}" in caplog.text


def test_lorem_is_not_in_the_sandbox(caplog):
    with caplog.at_level(logging.ERROR, logger="policies.notices"):
        notice = render_with("{% lorem 100000000 w %}")
    assert notice["body"].startswith("We reviewed your appeal") and "Invalid block tag" in caplog.text


def test_loops_and_padding_within_the_limits_render():
    body = (
        "{% for way in statement.redress %}- {{ way.kind|ljust:25 }}{{ way.description }}\n{% endfor %}"
        "{{ appeal.rationale|truncatewords:5 }}"
    )

    notice = render_with(body, context=SAMPLE_CONTEXT)

    assert notice["body"] == (
        "- out_of_court_settlement  a certified out-of-court dispute settlement body\n"
        "- judicial_redress         the competent courts\n"
        "The account sent the same …"
    )


def test_webhook_notices_stay_bounded(caplog):
    MessageTemplate.objects.filter(kind="decision_notice", language="en", action="").update(
        body="{% for a in decision.rule_title %}{% for b in decision.rule_title %}{% for c in decision.rule_title %}"
        "{% for d in decision.rule_title %}{{ a }}{{ b }}{{ c }}{{ d }}{% endfor %}{% endfor %}{% endfor %}{% endfor %}"
    )
    decision = decided(action="remove")

    notice = decision_notice(decision)

    assert notice["body"].startswith("We reviewed your account") and len(notice["body"]) < MAX_OUTPUT


def test_template_check_names_the_field_and_the_limit():
    assert template_check(subject="Hello {{ decision.id }}", body="Body") == {}
    errors = template_check(subject="{% for a in appeal.rationale %}", body=NESTED)
    assert set(errors) == {"subject", "body"}
    assert errors["subject"].startswith("Not a valid template:")
    assert "writes more than 20,000 characters with sample data" in errors["body"]


def test_the_admin_refuses_a_runaway_template_with_the_input_kept(client, policy_admin):
    template = MessageTemplate.objects.get(kind="appeal_outcome", language="en", action="")
    before = template.body
    client.force_login(policy_admin)
    url = f"/admin/policies/messagetemplate/{template.pk}/change/"
    runaway = NESTED + " sincerely"

    page = client.post(
        url, {"kind": "appeal_outcome", "language": "en", "action": "", "subject": template.subject, "body": runaway}
    )

    assert page.status_code == 200
    html = page.content.decode()
    assert "This template is refused because it writes more than 20,000 characters with sample data" in html
    assert "sincerely" in html  # the input is kept in the form
    template.refresh_from_db()
    assert template.body == before

    fine = client.post(
        url, {"kind": "appeal_outcome", "language": "en", "action": "", "subject": template.subject, "body": "Ok."}
    )
    assert fine.status_code == 302
    template.refresh_from_db()
    assert template.body == "Ok."


def test_enforcement_notices_use_the_bounded_renderer(caplog):
    decision = decided(action="remove")
    MessageTemplate.objects.filter(kind="decision_notice", language="en", action="").update(
        body="{{ decision.policy|ljust:50000000 }}"
    )

    class Row:  # the outbox row's fields enforcement_notices reads
        kind = "enforce"

    Row.decision = decision
    [notice] = [n["notice"] for n in enforcement_notices([Row()])]

    assert notice["body"].startswith("We reviewed your account")


def test_a_template_rendered_again_has_its_limits_anew_and_an_edit_shows_at_once(caplog):
    # Compiled templates are kept by their text: each render still gets its own output and time budget,
    # and an edited template is another text.
    context = {**SAMPLE_CONTEXT, "appeal": {**SAMPLE_CONTEXT["appeal"], "rationale": "y" * (MAX_OUTPUT * 3 // 4)}}
    with caplog.at_level(logging.ERROR, logger="policies.notices"):
        first = render_with("{{ appeal.rationale }}", context=context)
        again = render_with("{{ appeal.rationale }}", context=context)
        edited = render_with("Seen: {{ appeal.id }}", context=context)
    assert first["body"] == again["body"] == "y" * (MAX_OUTPUT * 3 // 4)
    assert edited["body"] == "Seen: 1"
    assert caplog.text == ""
