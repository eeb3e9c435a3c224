"""What the user is told: admins' templates per language and action, English fallback, a sandbox."""

import logging
from datetime import UTC, datetime

import pytest

from appeals.selectors import appeal_outcome_notice, decision_notice
from appeals.services import appeal_claim, appeal_resolve
from policies.models import MessageTemplate
from policies.notices import DEFAULTS, language_chain, notice_render
from tests.appeals.conftest import appeal_on, decided

pytestmark = pytest.mark.django_db


def resolved_appeal(decider, staff, *, language="en", outcome="upheld"):
    appeal = appeal_on(decided(reviewer=decider.reviewer, action="remove"))
    appeal.language = language
    appeal.save(update_fields=["language"])
    appeal_claim(reviewer=staff.reviewer)
    appeal_resolve(appeal_id=appeal.pk, reviewer=staff.reviewer, outcome=outcome, rationale="Clearly spam.")
    appeal.refresh_from_db()
    return appeal


def test_the_shipped_templates_are_installed_in_english_and_german():
    shipped = set(MessageTemplate.objects.filter(action="").values_list("kind", "language"))
    assert shipped == {
        ("decision_notice", "en"),
        ("decision_notice", "de"),
        ("appeal_outcome", "en"),
        ("appeal_outcome", "de"),
        ("report_outcome", "en"),
        ("report_outcome", "de"),
        ("report_received", "en"),
        ("report_received", "de"),
    }


def test_decision_notice_in_english_tells_how_to_appeal():
    # decided() without a reviewer is an automated decision: the notice says so (DSA Art. 17(3)(c)).
    decision = decided(action="remove", at=datetime(2026, 3, 1, 12, tzinfo=UTC))

    notice = decision_notice(decision)

    external_id = decision.case.subject.external_id
    assert notice == {
        "language": "en",
        "subject": f"Our decision about your account {external_id}",
        "body": (
            f'We reviewed your account {external_id} under our "Spam" policy (version 1).\n\n'
            "Decision: Remove.\n"
            "Rule: SP-1 (Commercial spam).\n"
            "This decision was taken by automated means.\n\n"
            "You can appeal this decision until 2026-08-28."
        ),
    }


@pytest.mark.parametrize(
    "language, expected",
    [("de", "de"), ("de-AT", "de"), ("DE_ch", "de"), ("fr", "en"), ("", "en"), ("en-GB", "en")],
)
def test_appeal_outcome_is_in_the_appellants_language_with_english_fallback(decider, appeals_staff, language, expected):
    appeal = resolved_appeal(decider, appeals_staff, language=language)

    notice = appeal_outcome_notice(appeal)

    assert notice["language"] == expected
    subject = {"en": "The outcome of your appeal", "de": "Das Ergebnis Ihrer Beschwerde"}[expected]
    assert notice["subject"] == subject
    assert ("Ergebnis: Die Entscheidung bleibt bestehen." if expected == "de" else "Outcome: the decision stands.") in (
        notice["body"]
    )


def test_language_chain():
    assert language_chain("pt-BR") == ["pt-br", "pt", "en"]
    assert language_chain(None) == ["en"]


def test_an_action_specific_template_wins_over_the_any_action_one():
    MessageTemplate.objects.create(
        kind="decision_notice",
        language="en",
        action="remove",
        subject="Removed: {{ decision.subject.external_id }}",
        body="We removed it under rule {{ decision.rule }}.",
    )
    removal = decided(action="remove")
    label = decided(action="label")

    assert decision_notice(removal)["subject"] == f"Removed: {removal.case.subject.external_id}"
    assert decision_notice(removal)["body"] == "We removed it under rule SP-1."
    assert decision_notice(label)["subject"].startswith("Our decision about your account")


def test_an_edited_template_is_used_and_the_subject_is_one_line():
    MessageTemplate.objects.filter(kind="decision_notice", language="en", action="").update(
        subject="Hello\n  {{ decision.subject.kind }}\n", body="Action: {{ decision.action_label }}"
    )

    notice = decision_notice(decided(action="reduce"))

    assert (notice["subject"], notice["body"]) == ("Hello account", "Action: Reduce reach")


@pytest.mark.parametrize(
    "body",
    [
        "{% if decision.action %}unclosed",
        "{{ decision.id|divisibleby:0 }}",
        "{% debug %}",
        "{% load static %}{% static 'x' %}",
        "{% include 'base.html' %}",
        "{% url 'admin:index' %}",
    ],
)
def test_a_broken_or_escaping_template_falls_back_to_english_and_is_logged(caplog, body):
    MessageTemplate.objects.filter(kind="decision_notice", language="de", action="").update(body=body)
    decision = decided(action="remove")

    with caplog.at_level(logging.ERROR, logger="policies.notices"):
        notice = decision_notice(decision, language="de")

    assert notice["language"] == "en"
    assert notice["subject"] == f"Our decision about your account {decision.case.subject.external_id}"
    assert notice["body"].startswith("We reviewed your account")
    assert "message template decision_notice/de/* failed to render" in caplog.text


def test_templates_see_only_the_given_plain_data():
    MessageTemplate.objects.filter(kind="decision_notice", language="en", action="").update(
        subject="x", body="[{{ settings.SECRET_KEY }}{{ request.user }}{{ decision.subject.external_id }}]"
    )

    bare = notice_render(kind="decision_notice", language="en", context={"decision": {"action": "remove"}})

    assert bare == {"language": "en", "subject": "x", "body": "[]"}


def test_missing_rows_fall_back_to_the_built_in_english_text():
    MessageTemplate.objects.all().delete()

    notice = notice_render(kind="appeal_outcome", language="de", context={"appeal": {"outcome": "upheld"}})

    assert notice["language"] == "en"
    assert notice["subject"] == DEFAULTS[("appeal_outcome", "en")]["subject"]
    assert "Outcome: the decision stands." in notice["body"]
