"""Statements of reasons: valid for every action x class, and a validator that knows the schema's rules."""

import copy
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from policies.defaults import THREAT_CLASSES
from policies.models import LADDER, SignalSource
from reviews.models import Decision
from reviews.sor import sor_validate, sor_validate_many, statement_of_reasons
from tests.factories import CaseFactory, SignalFactory, SubjectFactory, active_version

CLASSES = [tc["slug"] for tc in THREAT_CLASSES]


def make_decision(kind, action, *, reviewer=None, automated=False, subject=None, sources=(), duration_days=None):
    case = CaseFactory(
        kind=kind, status="decided", decided_at=timezone.now(), **({"subject": subject} if subject else {})
    )
    for source in sources:
        SignalFactory(
            source=source,
            subject=case.subject,
            threat_class=case.threat_class,
            case=case,
            disposition="queued",
            score=0.9 if source.kind != "user_report" else None,
        )
    version = active_version(kind)
    return Decision.objects.create(
        case=case,
        reviewer=None if automated else reviewer,
        automated=automated,
        action=action,
        rule="" if automated or action == "no_violation" else version.rule_codes()[0],
        policy_version=version,
        rationale="",
        duration_days=duration_days if duration_days is not None else (7 if action == "suspend" else None),
        created_at=timezone.now(),
    )


@pytest.fixture
def reviewer(make_user):
    return make_user("sor-mod", "moderator").reviewer


@pytest.mark.django_db
@pytest.mark.parametrize("kind", CLASSES)
@pytest.mark.parametrize("action", LADDER)
def test_every_action_of_every_class_gives_a_valid_statement(kind, action, reviewer):
    human = statement_of_reasons(make_decision(kind, action, reviewer=reviewer))
    if action == "no_violation":
        # Nothing was restricted: no statement (and none inventing a restriction).
        assert human is None
        return
    assert sor_validate(human) == []
    content = SubjectFactory(kind="content", attributes={"content_type": ["image", "text", "bogus"]})
    machine = statement_of_reasons(
        make_decision(
            kind,
            action,
            automated=True,
            subject=content,
            sources=[SignalSource.objects.create(slug=f"clf-{kind}-{action}", kind="classifier")],
        )
    )
    assert sor_validate(machine) == []
    assert machine["content_type"] == ["CONTENT_TYPE_IMAGE", "CONTENT_TYPE_TEXT"]


@pytest.mark.django_db
def test_actions_map_to_the_restriction_fields(reviewer):
    def fields(action):
        s = statement_of_reasons(make_decision("spam", action, reviewer=reviewer))
        keys = ("decision_visibility", "decision_monetary", "decision_provision", "decision_account")
        return {k: s[k] for k in keys if k in s}

    assert fields("label") == {"decision_visibility": ["DECISION_VISIBILITY_CONTENT_LABELLED"]}
    assert fields("reduce") == {"decision_visibility": ["DECISION_VISIBILITY_CONTENT_DEMOTED"]}
    assert fields("remove") == {"decision_visibility": ["DECISION_VISIBILITY_CONTENT_REMOVED"]}
    assert fields("restrict") == {"decision_provision": "DECISION_PROVISION_PARTIAL_SUSPENSION"}
    assert fields("suspend") == {
        "decision_provision": "DECISION_PROVISION_TOTAL_SUSPENSION",
        "decision_account": "DECISION_ACCOUNT_SUSPENDED",
    }
    assert fields("ban") == {
        "decision_provision": "DECISION_PROVISION_TOTAL_TERMINATION",
        "decision_account": "DECISION_ACCOUNT_TERMINATED",
    }


@pytest.mark.django_db
def test_suspension_end_dates_and_dates_format(reviewer):
    decision = make_decision("ato", "suspend", reviewer=reviewer, duration_days=30)
    s = statement_of_reasons(decision)
    end = (decision.created_at.date() + timedelta(days=30)).isoformat()
    assert (s["end_date_account_restriction"], s["end_date_service_restriction"]) == (end, end)
    assert s["application_date"] == decision.created_at.date().isoformat()
    assert s["content_date"] == decision.case.first_signal_at.date().isoformat()


@pytest.mark.django_db
def test_ground_category_and_keywords_come_from_the_threat_class(make_user):
    cleared = make_user("cs", "moderator", clearances=["csam"]).reviewer
    illegal = statement_of_reasons(make_decision("csam", "remove", reviewer=cleared))
    assert illegal["decision_ground"] == "DECISION_GROUND_ILLEGAL_CONTENT"
    assert illegal["illegal_content_legal_ground"].startswith("Directive 2011/93/EU")
    assert "incompatible_content_ground" not in illegal
    assert illegal["category"] == "STATEMENT_CATEGORY_PROTECTION_OF_MINORS"
    assert illegal["category_specification"] == ["KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL"]

    terms = statement_of_reasons(make_decision("harassment", "remove", reviewer=cleared))
    assert terms["decision_ground"] == "DECISION_GROUND_INCOMPATIBLE_CONTENT"
    assert "HB-1" in terms["incompatible_content_ground"]
    assert terms["incompatible_content_illegal"] == "No"
    assert "illegal_content_legal_ground" not in terms
    assert terms["category"] == "STATEMENT_CATEGORY_CYBER_VIOLENCE"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kinds", "source_type", "detection"),
    [
        ((), "SOURCE_VOLUNTARY", "No"),
        (("classifier",), "SOURCE_VOLUNTARY", "Yes"),
        (("hash_match",), "SOURCE_VOLUNTARY", "Yes"),
        # A user report about the terms is a notice, but not an Art. 16 notice of illegal content.
        (("user_report",), "SOURCE_TYPE_OTHER_NOTIFICATION", "No"),
        (("user_report", "classifier"), "SOURCE_TYPE_OTHER_NOTIFICATION", "Yes"),
        (("art16_report",), "SOURCE_ARTICLE_16", "No"),
        (("art16_report", "user_report", "classifier"), "SOURCE_ARTICLE_16", "Yes"),
        (("trusted_flagger", "art16_report"), "SOURCE_TRUSTED_FLAGGER", "No"),
        (("legal_request",), "SOURCE_TYPE_OTHER_NOTIFICATION", "No"),
    ],
)
def test_source_type_and_automated_flags_follow_the_signals(kinds, source_type, detection, reviewer):
    def source(k):
        if k == "user_report":
            return SignalSource.objects.get(slug="user-reports")
        if k == "art16_report":
            return SignalSource.objects.create(slug="illegal-content-notices", kind="user_report", dsa_article_16=True)
        return SignalSource.objects.create(slug=f"src-{k}", name=f"Source {k}", kind=k)

    sources = [source(k) for k in kinds]
    human = statement_of_reasons(make_decision("spam", "remove", reviewer=reviewer, sources=sources))
    assert (human["source_type"], human["automated_detection"], human["automated_decision"]) == (
        source_type,
        detection,
        "AUTOMATED_DECISION_NOT_AUTOMATED",
    )
    if source_type == "SOURCE_VOLUNTARY":
        assert "source_identity" not in human
    if source_type == "SOURCE_TRUSTED_FLAGGER":
        assert human["source_identity"] == "Source trusted_flagger"
    machine = statement_of_reasons(make_decision("spam", "remove", automated=True, sources=sources))
    assert machine["automated_decision"] == "AUTOMATED_DECISION_FULLY"


@pytest.mark.django_db
def test_puid_is_stable_and_matches_the_pattern(reviewer):
    decision = make_decision("spam", "remove", reviewer=reviewer)
    puid = statement_of_reasons(decision)["puid"]
    # The installation's random prefix keeps puids unique across installations sharing one account.
    assert re.fullmatch(rf"docket-[0-9a-f]{{12}}-decision-{decision.pk}", puid)
    assert statement_of_reasons(decision) == statement_of_reasons(decision)


@pytest.mark.django_db
def test_the_puid_prefix_can_be_configured(reviewer, settings):
    settings.DOCKET_DSA_PUID_PREFIX = "acme-eu"
    decision = make_decision("spam", "remove", reviewer=reviewer)
    assert statement_of_reasons(decision)["puid"] == f"acme-eu-decision-{decision.pk}"


# --- the validator itself -------------------------------------------------------------

VALID = {
    "decision_visibility": ["DECISION_VISIBILITY_CONTENT_REMOVED"],
    "decision_ground": "DECISION_GROUND_INCOMPATIBLE_CONTENT",
    "incompatible_content_ground": "Terms 4.2",
    "incompatible_content_explanation": "Spam.",
    "content_type": ["CONTENT_TYPE_TEXT"],
    "category": "STATEMENT_CATEGORY_SCAMS_AND_FRAUD",
    "content_date": "2026-01-31",
    "application_date": "2026-02-01",
    "decision_facts": "Removed.",
    "source_type": "SOURCE_VOLUNTARY",
    "automated_detection": "No",
    "automated_decision": "AUTOMATED_DECISION_NOT_AUTOMATED",
    "puid": "docket-decision-1",
}


def with_(**changes):
    s = copy.deepcopy(VALID)
    for k, v in changes.items():
        if v is ...:
            s.pop(k, None)
        else:
            s[k] = v
    return s


def test_a_minimal_valid_statement_passes():
    assert sor_validate(VALID) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"decision_visibility": ...}, "decision_visibility"),  # none of the four restrictions
        ({"decision_visibility": None, "decision_account": None}, "decision_visibility"),
        ({"decision_visibility": ["DECISION_VISIBILITY_NOPE"]}, "decision_visibility"),
        ({"decision_visibility": ["DECISION_VISIBILITY_OTHER"]}, "decision_visibility_other"),
        (
            {"decision_visibility": ["DECISION_VISIBILITY_OTHER"], "decision_visibility_other": "x" * 501},
            "decision_visibility_other",
        ),
        ({"decision_monetary": "DECISION_MONETARY_OTHER"}, "decision_monetary_other"),
        ({"decision_provision": "DECISION_PROVISION_SOME"}, "decision_provision"),
        ({"decision_account": "DECISION_ACCOUNT_BANNED"}, "decision_account"),
        ({"account_type": "ACCOUNT_TYPE_ROBOT"}, "account_type"),
        ({"decision_ground": ...}, "decision_ground"),
        ({"decision_ground": "DECISION_GROUND_VIBES"}, "decision_ground"),
        ({"decision_ground_reference_url": "not a url"}, "decision_ground_reference_url"),
        ({"incompatible_content_ground": ...}, "incompatible_content_ground"),
        ({"incompatible_content_explanation": "x" * 2001}, "incompatible_content_explanation"),
        ({"incompatible_content_illegal": "Maybe"}, "incompatible_content_illegal"),
        ({"decision_ground": "DECISION_GROUND_ILLEGAL_CONTENT"}, "illegal_content_legal_ground"),
        ({"content_type": ...}, "content_type"),
        ({"content_type": []}, "content_type"),
        ({"content_type": ["CONTENT_TYPE_HOLOGRAM"]}, "content_type"),
        ({"content_type": ["CONTENT_TYPE_OTHER"]}, "content_type_other"),
        ({"category": ...}, "category"),
        ({"category": "STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT"}, "category"),  # removed in 2025
        ({"category_addition": ["STATEMENT_CATEGORY_NOPE"]}, "category_addition"),
        ({"category_specification": ["KEYWORD_DANGEROUS_TOYS"]}, "category_specification"),  # unmapped constant
        ({"category_specification_other": "x" * 501}, "category_specification_other"),
        ({"territorial_scope": ["EL"]}, "territorial_scope"),  # Greece is GR
        ({"territorial_scope": "DE"}, "territorial_scope"),
        ({"content_language": "en"}, "content_language"),  # upper case only
        ({"content_date": ...}, "content_date"),
        ({"content_date": "2026-1-31"}, "content_date"),  # leading zeros required
        ({"content_date": "1999-12-31"}, "content_date"),
        ({"content_date": "2026-02-30"}, "content_date"),
        ({"application_date": "2019-12-31"}, "application_date"),
        ({"application_date": "2038-01-02"}, "application_date"),
        ({"end_date_account_restriction": "2038-01-02"}, "end_date_account_restriction"),
        ({"end_date_visibility_restriction": "31/01/2026"}, "end_date_visibility_restriction"),
        ({"decision_facts": ...}, "decision_facts"),
        ({"decision_facts": "x" * 5001}, "decision_facts"),
        ({"source_type": "SOURCE_RUMOUR"}, "source_type"),
        ({"source_type": "SOURCE_ARTICLE_16", "source_identity": "x" * 501}, "source_identity"),
        # The multi endpoint validates it before nulling it for SOURCE_VOLUNTARY.
        ({"source_identity": "x" * 600}, "source_identity"),
        # ``in:`` without ``null``: the string "null" is not a language.
        ({"content_language": "null"}, "content_language"),
        ({"territorial_scope": ["null"]}, "territorial_scope"),
        ({"content_type": ["null"]}, "content_type"),
        # PCRE's $ with /D is the very end: a trailing newline is refused.
        ({"puid": "docket-decision-1\n"}, "puid"),
        ({"content_date": "2026-01-31\n"}, "content_date"),
        ({"content_date": "２０２６-01-31"}, "content_date"),  # [0-9], not any Unicode digit
        ({"automated_detection": "Yes please"}, "automated_detection"),
        ({"automated_detection": ...}, "automated_detection"),
        ({"automated_decision": "Yes"}, "automated_decision"),  # the docs' example is wrong
        ({"puid": ...}, "puid"),
        ({"puid": "has space"}, "puid"),
        ({"puid": "x" * 501}, "puid"),
        ({"content_id": {"ISBN": "1"}}, "content_id"),
        ({"content_id": {"EAN-13": "123"}}, "content_id"),
        ({"content_id_ean": "12345678901234"}, "content_id_ean"),
    ],
)
def test_the_validator_reports_each_broken_rule(changes, field):
    errors = sor_validate(with_(**changes))
    assert field in {e.split(":")[0] for e in errors}, errors


@pytest.mark.parametrize(
    "changes",
    [
        # exclude_unless: sent while its trigger is absent, silently dropped, not an error.
        {"illegal_content_legal_ground": "x" * 600},
        {"decision_visibility": ["null", "DECISION_VISIBILITY_CONTENT_REMOVED"]},  # in:null,...
        {"account_type": "null"},
        {"decision_visibility": None, "decision_account": "DECISION_ACCOUNT_SUSPENDED"},
        {
            "decision_monetary": "null",
            "decision_provision": "DECISION_PROVISION_TOTAL_SUSPENSION",
            "decision_visibility": ...,
        },
        {"territorial_scope": None, "content_language": None, "end_date_account_restriction": None},
        {"territorial_scope": ["GR", "IS", "LI", "NO"], "content_language": "EN"},
        {"category_specification": ["KEYWORD_OTHER"], "category_specification_other": "x"},
        {"content_id": {"EAN-13": "1234567890123"}, "content_id_ean": "1234567890123"},
        {"decision_ground_reference_url": "https://example.com/terms#4.2"},
    ],
)
def test_the_validator_accepts_what_the_schema_accepts(changes):
    assert sor_validate(with_(**changes)) == []


def test_the_validator_refuses_non_objects():
    assert sor_validate(["not", "a", "statement"]) == ["statement: must be an object"]


def test_validating_many_statements_says_what_validating_each_says():
    statements = [
        with_(puid="docket-1"),
        with_(puid="docket-2"),
        with_(puid="bad puid"),
        with_(puid="bad puid 2"),
        with_(puid="x" * 501),
        with_(puid=""),
        with_(puid=7),
        with_(puid="docket-3", decision_facts=""),
        with_(puid="docket-4", decision_facts=""),
        with_(puid="docket-5", category="NOT_A_CATEGORY"),
        with_(puid="docket-6", territorial_scope=["DE", "US"]),
        with_(puid="docket-7", application_date="2026-02-30", content_date=None),
        "not an object",
        {},
    ]
    assert sor_validate_many(statements) == [sor_validate(s) for s in statements]
