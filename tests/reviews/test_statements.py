"""Statements of reasons that are true and fixed: made with the decision, served as made, for good."""

import json
from datetime import date, timedelta

import pytest
from django.utils import timezone

from casework.models import Campaign, Case
from casework.retention import cases_purge_personal_data
from docket.errors import DocketError
from policies.models import LADDER, MessageTemplate, Policy, PolicyVersion, SignalSource, ThreatClass
from policies.services import policy_version_activate, policy_version_draft_from
from reviews.accounts import user_upsert
from reviews.models import Decision
from reviews.services import (
    campaign_decide,
    decision_automated,
    decision_make,
    decision_overturn,
    decisions_automated,
    decisions_bulk,
    queue_claim,
)
from reviews.sor import installation_prefix, sor_validate, statement_of_reasons, statement_terms
from reviews.webhooks import enforcement_payload
from tests.factories import (
    CaseFactory,
    ReporterFactory,
    SignalFactory,
    SubjectFactory,
    active_version,
    classified_and_reported,
)

pytestmark = pytest.mark.django_db

SECRET = "Internal note: the reporter u-7 is the ex-partner of the account holder"


def senior():
    return user_upsert(username="st-senior", role_names=["senior", "moderator"], clearances=["csam", "cib"])


def first_rule(kind):
    return active_version(kind).rule_codes()[0]


def decide(kind="spam", action="remove", *, rule=None, case=None, **kwargs):
    case = case or CaseFactory(kind=kind)
    return decision_make(
        case_id=case.pk,
        reviewer=senior(),
        action=action,
        rule=first_rule(kind) if rule is None and action != "no_violation" else (rule or ""),
        on_behalf_of_senior=True,
        **kwargs,
    )


def served(client, decision):
    answer = client.get(f"/api/v1/decisions/{decision.pk}/statement-of-reasons/")
    assert answer.status_code == 200, answer.content
    return answer.json()


def test_the_statement_is_served_unchanged_after_edits_and_the_retention_purge(api_for, settings):
    client = api_for(senior())
    decision = decide("harassment", "remove", rationale=SECRET)
    before = served(client, decision)
    assert before == Decision.objects.get(pk=decision.pk).statement
    assert before["category"] == "STATEMENT_CATEGORY_CYBER_VIOLENCE"
    assert before["incompatible_content_explanation"] == active_version("harassment").rules[0]["description"]

    # The class's DSA category and keywords, the policy's rule text, the message templates: all edited.
    ThreatClass.objects.filter(slug="harassment").update(
        dsa_category="STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH", dsa_keywords=["KEYWORD_HATE_SPEECH"], name="Abuse"
    )
    # A published version is immutable: the policy text changes by a new version, activated.
    admin = user_upsert(username="st-padmin", role_names=["policy_admin"])
    draft = policy_version_draft_from(version=PolicyVersion.objects.get(pk=decision.policy_version_id), actor=admin)
    draft.rules = [{**r, "title": "Renamed", "description": "A new text."} for r in draft.rules]
    draft.text = "Entirely new policy text."
    draft.save()
    policy_version_activate(version=draft, actor=admin)
    Policy.objects.filter(pk=draft.policy_id).update(name="Renamed policy")
    MessageTemplate.objects.update(subject="Changed", body="Changed")
    settings.DOCKET_DSA_TERRITORIAL_SCOPE = ["DE"]
    assert served(client, decision) == before

    # The retention purge: the case closes and its personal data goes; the statement stays.
    past = timezone.now() - timedelta(days=settings.DOCKET["RETENTION_DAYS"] + 1)
    Case.objects.filter(pk=decision.case_id).update(status="closed", closed_at=past)
    assert cases_purge_personal_data() == 1
    assert Decision.objects.get(pk=decision.pk).rationale == ""
    assert served(client, decision) == before


def test_no_violation_has_no_statement_even_for_csam(api_for):
    decision = decide("csam", "no_violation")
    assert decision.statement is None
    answer = api_for(senior()).get(f"/api/v1/decisions/{decision.pk}/statement-of-reasons/")
    assert (answer.status_code, answer.json()["code"]) == (404, "no_statement")


def test_the_public_explanation_is_told_and_the_rationale_never(api_for):
    told = decide("spam", "remove", rationale=SECRET, public_explanation="Bulk commercial messages are not allowed.")
    assert told.statement["incompatible_content_explanation"] == "Bulk commercial messages are not allowed."
    default = decide("spam", "remove", rationale=SECRET)
    assert default.statement["incompatible_content_explanation"] == active_version("spam").rules[0]["description"]
    for decision in (told, default):
        assert "ex-partner" not in str(decision.statement)
    detail = api_for(senior()).get(f"/api/v1/decisions/{told.pk}/").json()
    assert detail["public_explanation"] == "Bulk commercial messages are not allowed."


@pytest.mark.parametrize("kind", ["csam", "ato", "payment_fraud", "harassment", "cib", "spam"])
def test_every_action_of_every_class_is_valid_with_and_without_a_duration(kind):
    tc = ThreatClass.objects.get(slug=kind)
    version = active_version(kind)
    for action in LADDER:
        if action == "no_violation":
            continue
        case = CaseFactory(kind=kind)
        decision = Decision.objects.create(
            case=case,
            reviewer=senior().reviewer,
            action=action,
            rule=version.rule_codes()[0],
            policy_version=version,
            duration_days=None if action in ("ban",) else 30,
            created_at=timezone.now(),
        )
        statement = statement_of_reasons(decision)
        assert sor_validate(statement) == [], (kind, action)
        if action != "ban":
            end = (decision.created_at.date() + timedelta(days=30)).isoformat()
            fields = {f for f in statement if f.startswith("end_date_")}
            assert fields, (kind, action)
            assert {statement[f] for f in fields} == {end}
        assert statement["decision_ground"] == (
            "DECISION_GROUND_ILLEGAL_CONTENT" if tc.dsa_illegal else "DECISION_GROUND_INCOMPATIBLE_CONTENT"
        )


@pytest.mark.parametrize(
    ("action", "fields"),
    [
        ("label", {"end_date_visibility_restriction"}),
        ("reduce", {"end_date_visibility_restriction"}),
        ("remove", {"end_date_visibility_restriction"}),
        ("lock", {"end_date_account_restriction"}),
        ("restrict", {"end_date_service_restriction"}),
        ("suspend", {"end_date_account_restriction", "end_date_service_restriction"}),
        ("legal_report", {"end_date_visibility_restriction"}),
    ],
)
def test_each_duration_ends_the_restriction_it_sets(action, fields):
    version = active_version("spam")
    decision = Decision.objects.create(
        case=CaseFactory(kind="spam"),
        reviewer=senior().reviewer,
        action=action,
        rule="SP-1",
        policy_version=version,
        duration_days=10,
        created_at=timezone.now(),
    )
    statement = statement_of_reasons(decision)
    end = (decision.created_at.date() + timedelta(days=10)).isoformat()
    assert {f: v for f, v in statement.items() if f.startswith("end_date_")} == dict.fromkeys(fields, end)


def test_end_dates_through_the_api_for_a_restriction_other_than_suspend(api_for):
    decision = decide("spam", "restrict", duration_days=14)
    end = (decision.created_at.date() + timedelta(days=14)).isoformat()
    assert decision.statement["end_date_service_restriction"] == end
    assert "end_date_account_restriction" not in decision.statement


def test_a_termination_takes_no_duration_and_nothing_is_recorded():
    case = CaseFactory(kind="spam")
    with pytest.raises(DocketError) as refused:
        decide("spam", "ban", case=case, duration_days=30)
    assert refused.value.code == "invalid"
    assert "duration_days" in refused.value.errors
    assert not Decision.objects.filter(case=case).exists()
    case.refresh_from_db()
    assert case.status == "open"


def test_an_end_past_what_the_database_accepts_is_refused_not_moved():
    spam = ThreatClass.objects.get(slug="spam")
    with pytest.raises(DocketError) as refused:
        statement_terms(threat_class=spam, action="suspend", duration_days=400, decided_on=date(2037, 6, 1))
    assert "2038-01-01" in refused.value.errors["duration_days"][0]
    assert (
        statement_terms(threat_class=spam, action="suspend", duration_days=214, decided_on=date(2037, 6, 1))["end_date"]
        == "2038-01-01"
    )


def test_the_ground_is_chosen_per_decision_where_the_class_allows():
    illegal = decide(
        "harassment", "remove", decision_ground="illegal_content", legal_ground="§ 185 StGB (insult), Germany"
    )
    assert illegal.statement["decision_ground"] == "DECISION_GROUND_ILLEGAL_CONTENT"
    assert illegal.statement["illegal_content_legal_ground"] == "§ 185 StGB (insult), Germany"
    assert "incompatible_content_ground" not in illegal.statement
    assert sor_validate(illegal.statement) == []
    with pytest.raises(DocketError) as no_law:
        decide("harassment", "remove", decision_ground="illegal_content")
    assert "legal_ground" in no_law.value.errors
    # CSAM is illegal whatever a reviewer picks.
    with pytest.raises(DocketError) as fixed:
        decide("csam", "remove", decision_ground="incompatible_content")
    assert "decision_ground" in fixed.value.errors
    csam = decide("csam", "remove")
    assert csam.statement["illegal_content_legal_ground"].startswith("Directive 2011/93/EU")


def test_territorial_scope_defaults_from_the_class_then_the_settings_and_is_chosen_per_decision(settings):
    settings.DOCKET_DSA_TERRITORIAL_SCOPE = ["FR", "DE", "AT"]
    assert decide("spam").statement["territorial_scope"] == ["AT", "DE", "FR"]
    chosen = decide("spam", territorial_scope=["de", "NO"])
    assert chosen.statement["territorial_scope"] == ["DE", "NO"]
    with pytest.raises(DocketError) as unknown:
        decide("spam", territorial_scope=["EL"])  # Greece is GR
    assert "territorial_scope" in unknown.value.errors
    ThreatClass.objects.filter(slug="spam").update(dsa_territorial_scope=["DE", "AT"])
    assert decide("spam").statement["territorial_scope"] == ["AT", "DE"]
    with pytest.raises(DocketError) as outside:
        decide("spam", territorial_scope=["FR"])
    assert "territorial_scope" in outside.value.errors


def test_the_decision_api_takes_the_dsa_choices_and_refuses_bad_ones(api_for, moderator):
    client = api_for(moderator)
    CaseFactory(kind="spam")
    assignment = queue_claim(reviewer=moderator, queue_slug="spam")
    bad = client.post(
        f"/api/v1/cases/{assignment.case_id}/decision/",
        {"action": "remove", "rule": "SP-1", "territorial_scope": ["XX"]},
        format="json",
    )
    assert bad.status_code == 400
    assert (bad.json()["code"], list(bad.json()["errors"])) == ("invalid", ["territorial_scope"])
    assert not Decision.objects.filter(case_id=assignment.case_id).exists()
    good = client.post(
        f"/api/v1/cases/{assignment.case_id}/decision/",
        {
            "action": "remove",
            "rule": "SP-1",
            "rationale": SECRET,
            "public_explanation": "Spam links.",
            "territorial_scope": ["IE"],
        },
        format="json",
    )
    assert good.status_code == 201, good.content
    statement = served(client, Decision.objects.get(pk=good.json()["id"]))
    assert (statement["territorial_scope"], statement["incompatible_content_explanation"]) == (["IE"], "Spam links.")
    assert statement["automated_decision"] == "AUTOMATED_DECISION_NOT_AUTOMATED"


def test_content_language_comes_from_the_subject():
    case = CaseFactory(kind="spam", subject=SubjectFactory(attributes={"language": ["de-AT"]}))
    assert decide(case=case).statement["content_language"] == "DE"
    unknown = CaseFactory(kind="spam", subject=SubjectFactory(attributes={"language": "klingon"}))
    assert "content_language" not in decide(case=unknown).statement


def test_group_decisions_are_partially_automated_and_automation_fully():
    bulk = decide("spam")  # a senior's bulk decision (on behalf of the queue)
    assert bulk.statement["automated_decision"] == "AUTOMATED_DECISION_PARTIALLY"
    campaign = Campaign.objects.create(threat_class=ThreatClass.objects.get(slug="spam"), detected_at=timezone.now())
    case = CaseFactory(kind="spam")
    grouped = decision_make(
        case_id=case.pk, reviewer=senior(), action="remove", rule="SP-1", campaign=campaign, on_behalf_of_senior=True
    )
    assert grouped.statement["automated_decision"] == "AUTOMATED_DECISION_PARTIALLY"
    machine = decision_automated(case=CaseFactory(kind="spam"), action="remove")
    assert machine.statement["automated_decision"] == "AUTOMATED_DECISION_FULLY"
    assert sor_validate(machine.statement) == []


def test_article_16_only_for_notices_alleging_illegality():
    plain = CaseFactory(kind="harassment")
    SignalFactory(
        case=plain,
        subject=plain.subject,
        threat_class=plain.threat_class,
        disposition="queued",
        reporter=ReporterFactory(),
    )
    assert decide("harassment", case=plain).statement["source_type"] == "SOURCE_TYPE_OTHER_NOTIFICATION"
    notices = SignalSource.objects.create(slug="illegal-notices", kind="user_report", dsa_article_16=True)
    alleged = CaseFactory(kind="harassment")
    SignalFactory(
        case=alleged,
        subject=alleged.subject,
        threat_class=alleged.threat_class,
        disposition="queued",
        source=notices,
        reporter=ReporterFactory(),
    )
    statement = decide("harassment", case=alleged).statement
    assert statement["source_type"] == "SOURCE_ARTICLE_16"
    assert "source_identity" not in statement  # the notifier is a person: not named


def test_a_reversal_carries_its_own_payload_not_the_statement_again():
    decision = decide("spam", "remove")
    decision_overturn(decision=decision, actor=senior(), reason="Mistake")
    reverse = decision.enforcements.get(kind="reverse")
    body = enforcement_payload(reverse)
    assert body["statement_of_reasons"] is None
    assert body["reversal"]["reverses_statement"] == decision.statement["puid"]
    enforce = decision.enforcements.get(kind="enforce")
    assert enforcement_payload(enforce)["statement_of_reasons"] == decision.statement


def test_what_the_user_is_told_is_fixed_with_the_decision():
    decision = decide("spam", "remove", rationale=SECRET, public_explanation="Spam links.")
    MessageTemplate.objects.update(subject="Changed later", body="Changed later")
    enforcement = decision.enforcements.get()
    assert enforcement.payload["statement_of_reasons"] == decision.statement
    assert "Changed later" not in str(enforcement.payload["notice"])
    assert enforcement.payload["notice"]["body"]
    assert "ex-partner" not in str(enforcement.payload)


def test_the_case_page_takes_a_public_explanation_apart_from_the_rationale(client, moderator):
    CaseFactory(kind="spam")
    assignment = queue_claim(reviewer=moderator, queue_slug="spam")
    client.force_login(moderator)
    page = client.get(f"/cases/{assignment.case_id}/").content.decode()
    assert 'name="public_explanation"' in page
    client.post(
        f"/cases/{assignment.case_id}/decision/",
        {
            "action": "reduce",
            "rule": "SP-1",
            "rationale": SECRET,
            "public_explanation": "Repeated links.",
            "duration_days": "5",
        },
    )
    decision = Decision.objects.get(case_id=assignment.case_id)
    assert (decision.rationale, decision.public_explanation) == (SECRET, "Repeated links.")
    assert decision.statement["incompatible_content_explanation"] == "Repeated links."
    assert (
        decision.statement["end_date_visibility_restriction"]
        == (decision.created_at.date() + timedelta(days=5)).isoformat()
    )


def equivalent_cases(n, *, at, campaign=None):
    """Cases alike in everything a statement reads: class, subject kind and attributes, sources, first signal."""
    classifier, _ = SignalSource.objects.get_or_create(slug="eq-classifier", kind="classifier", name="Spam model")
    cases = []
    for _ in range(n):
        subject = SubjectFactory(attributes={"language": "de-AT", "content_type": ["image", "text"]})
        case = CaseFactory(
            kind="spam", subject=subject, campaign=campaign, first_signal_at=at, signal_count=2, reporter_count=1
        )
        cases.append(classified_and_reported(case, classifier))
    return cases


def without_puid(decision):
    """The stored statement as the bytes it is served as, with the decision's own identifier left out."""
    statement = dict(Decision.objects.get(pk=decision.pk).statement)
    assert statement.pop("puid") == f"{installation_prefix()}-decision-{decision.pk}"
    return json.dumps(statement, sort_keys=True)


def test_a_statement_made_in_a_batch_is_the_one_made_alone():
    """A decision made alone and the same decision made for many cases at once state the same thing."""
    at = timezone.now() - timedelta(hours=3)
    spam = ThreatClass.objects.get(slug="spam")
    choices = {"action": "label", "rule": "SP-1", "duration_days": 30, "public_explanation": "  Spam links.  "}

    [alone_case] = equivalent_cases(1, at=at, campaign=Campaign.objects.create(threat_class=spam, detected_at=at))
    alone = decision_make(
        case_id=alone_case.pk, reviewer=senior(), campaign=alone_case.campaign, on_behalf_of_senior=True, **choices
    )
    campaign = Campaign.objects.create(threat_class=spam, detected_at=at)
    equivalent_cases(3, at=at, campaign=campaign)
    batch = campaign_decide(campaign_id=campaign.pk, actor=senior(), rationale="", **choices)
    assert len(batch) == 3
    assert alone.statement["incompatible_content_explanation"] == "Spam links."
    assert alone.statement["automated_decision"] == "AUTOMATED_DECISION_PARTIALLY"
    assert {without_puid(d) for d in batch} == {without_puid(alone)}
    assert [d.public_explanation for d in batch] == ["Spam links."] * 3 == [alone.public_explanation] * 3

    [machine_case] = equivalent_cases(1, at=at)
    machine = decision_automated(case=machine_case, action="remove")
    wave, refused = decisions_automated(actions={c.pk: "remove" for c in equivalent_cases(3, at=at)})
    assert refused == {} and len(wave) == 3
    assert machine.statement["automated_decision"] == "AUTOMATED_DECISION_FULLY"
    assert {without_puid(d) for d in wave} == {without_puid(machine)}


def test_a_bulk_decision_refuses_a_dsa_choice_case_by_case_before_writing_anything():
    cases = [CaseFactory(kind="spam") for _ in range(2)]
    decisions, refused = decisions_bulk(
        case_ids=[c.pk for c in cases], reviewer=senior(), action="remove", rule="SP-1", territorial_scope=["US"]
    )
    assert decisions == []
    assert {case_id: (e.code, e.errors) for case_id, e in refused.items()} == {
        c.pk: ("invalid", {"territorial_scope": ["Not EEA country codes: US."]}) for c in cases
    }
    assert not Decision.objects.filter(case__in=cases).exists()
    assert set(Case.objects.filter(pk__in=[c.pk for c in cases]).values_list("status", flat=True)) == {"open"}
