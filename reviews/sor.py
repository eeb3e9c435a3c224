"""Statements of reasons (DSA Art. 17) in the EU Transparency Database's submission schema.

``statement_of_reasons(decision)`` builds one statement with the database's
exact field names and enum keys; ``sor_validate(statement)`` checks a
statement against the rules of its submission validator (required and
conditional fields, enums, lengths, dates, the puid pattern), so what Docket
emits is known to pass before it is sent.
"""

import re
from datetime import date, timedelta
from urllib.parse import urlparse

# --- the schema's enums (keys, not labels) ---------------------------------------

DECISION_VISIBILITIES = frozenset(
    {
        "DECISION_VISIBILITY_CONTENT_REMOVED",
        "DECISION_VISIBILITY_CONTENT_DISABLED",
        "DECISION_VISIBILITY_CONTENT_DEMOTED",
        "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
        "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED",
        "DECISION_VISIBILITY_CONTENT_LABELLED",
        "DECISION_VISIBILITY_OTHER",
    }
)
DECISION_MONETARIES = frozenset(
    {"DECISION_MONETARY_SUSPENSION", "DECISION_MONETARY_TERMINATION", "DECISION_MONETARY_OTHER"}
)
DECISION_PROVISIONS = frozenset(
    {
        "DECISION_PROVISION_PARTIAL_SUSPENSION",
        "DECISION_PROVISION_TOTAL_SUSPENSION",
        "DECISION_PROVISION_PARTIAL_TERMINATION",
        "DECISION_PROVISION_TOTAL_TERMINATION",
    }
)
DECISION_ACCOUNTS = frozenset({"DECISION_ACCOUNT_SUSPENDED", "DECISION_ACCOUNT_TERMINATED"})
ACCOUNT_TYPES = frozenset({"ACCOUNT_TYPE_BUSINESS", "ACCOUNT_TYPE_PRIVATE"})
DECISION_GROUNDS = frozenset({"DECISION_GROUND_ILLEGAL_CONTENT", "DECISION_GROUND_INCOMPATIBLE_CONTENT"})
YES_NO = frozenset({"Yes", "No"})
CONTENT_TYPES = frozenset(
    {
        "CONTENT_TYPE_APP",
        "CONTENT_TYPE_AUDIO",
        "CONTENT_TYPE_IMAGE",
        "CONTENT_TYPE_PRODUCT",
        "CONTENT_TYPE_SYNTHETIC_MEDIA",
        "CONTENT_TYPE_TEXT",
        "CONTENT_TYPE_VIDEO",
        "CONTENT_TYPE_OTHER",
    }
)
STATEMENT_CATEGORIES = frozenset(
    "STATEMENT_CATEGORY_" + c
    for c in (
        "ANIMAL_WELFARE",
        "CONSUMER_INFORMATION",
        "CYBER_VIOLENCE",
        "CYBER_VIOLENCE_AGAINST_WOMEN",
        "DATA_PROTECTION_AND_PRIVACY_VIOLATIONS",
        "ILLEGAL_OR_HARMFUL_SPEECH",
        "INTELLECTUAL_PROPERTY_INFRINGEMENTS",
        "NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
        "NOT_SPECIFIED_NOTICE",
        "OTHER_VIOLATION_TC",
        "PROTECTION_OF_MINORS",
        "RISK_FOR_PUBLIC_SECURITY",
        "SCAMS_AND_FRAUD",
        "SELF_HARM",
        "UNSAFE_AND_PROHIBITED_PRODUCTS",
        "VIOLENCE",
    )
)
SOURCE_TYPES = frozenset(
    {"SOURCE_ARTICLE_16", "SOURCE_TRUSTED_FLAGGER", "SOURCE_TYPE_OTHER_NOTIFICATION", "SOURCE_VOLUNTARY"}
)
AUTOMATED_DECISIONS = frozenset(
    {"AUTOMATED_DECISION_FULLY", "AUTOMATED_DECISION_PARTIALLY", "AUTOMATED_DECISION_NOT_AUTOMATED"}
)
KEYWORDS = frozenset(
    "KEYWORD_" + k
    for k in """
    ADULT_SEXUAL_MATERIAL AGE_SPECIFIC_RESTRICTIONS AGE_SPECIFIC_RESTRICTIONS_MINORS ANIMAL_HARM
    BIOMETRIC_DATA_BREACH BULLYING_AGAINST_GIRLS CHILD_SEXUAL_ABUSE_MATERIAL CHILD_SEXUAL_ABUSE_MATERIAL_DEEPFAKE
    CONTENT_PROMOTING_EATING_DISORDERS COORDINATED_HARM COPYRIGHT_INFRINGEMENT CYBER_BULLYING_INTIMIDATION
    CYBER_HARASSMENT CYBER_HARASSMENT_AGAINST_WOMEN CYBER_INCITEMENT CYBER_STALKING CYBER_STALKING_AGAINST_WOMEN
    DATA_FALSIFICATION DEFAMATION DESIGN_INFRINGEMENT DISCRIMINATION FEMALE_GENDERED_DISINFORMATION
    GEOGRAPHIC_INDICATIONS_INFRINGEMENT GEOGRAPHICAL_REQUIREMENTS GOODS_SERVICES_NOT_PERMITTED
    GROOMING_SEXUAL_ENTICEMENT_MINORS HATE_SPEECH HIDDEN_ADVERTISEMENT HUMAN_EXPLOITATION HUMAN_TRAFFICKING
    ILLEGAL_ORGANIZATIONS IMPERSONATION_ACCOUNT_HIJACKING INAUTHENTIC_ACCOUNTS INAUTHENTIC_LISTINGS
    INAUTHENTIC_USER_REVIEWS INCITEMENT_AGAINST_WOMEN INCITEMENT_VIOLENCE_HATRED INSUFFICIENT_INFORMATION_ON_TRADERS
    LANGUAGE_REQUIREMENTS MISINFORMATION_DISINFORMATION MISLEADING_INFO_CONSUMER_RIGHTS
    MISLEADING_INFO_GOODS_SERVICES MISSING_PROCESSING_GROUND NON_CONSENSUAL_IMAGE_SHARING
    NON_CONSENSUAL_IMAGE_SHARING_AGAINST_WOMEN NON_CONSENSUAL_MATERIAL_DEEPFAKE
    NON_CONSENSUAL_MATERIAL_DEEPFAKE_AGAINST_WOMEN NONCOMPLIANCE_PRICING NUDITY PATENT_INFRINGEMENT PHISHING
    PROHIBITED_PRODUCTS PYRAMID_SCHEMES RIGHT_TO_BE_FORGOTTEN RISK_ENVIRONMENTAL_DAMAGE RISK_PUBLIC_HEALTH
    SELF_MUTILATION STALKING SUICIDE TERRORIST_CONTENT TRADE_SECRET_INFRINGEMENT TRADEMARK_INFRINGEMENT
    TRAFFICKING_WOMEN_GIRLS UNLAWFUL_SALE_ANIMALS UNSAFE_CHALLENGES UNSAFE_PRODUCTS VIOLATION_EU_LAW
    VIOLATION_NATIONAL_LAW OTHER
    """.split()
)
EUROPEAN_COUNTRY_CODES = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IS IT LI LT LU LV MT NL NO PL PT RO SE SI SK".split()
)
ALL_LANGUAGES = frozenset(
    """
    AB AA AF AK SQ AM AR AN HY AS AV AE AY AZ BM BA EU BE BN BH BI BS BR BG MY CA KM CH CE NY ZH CU CV KW CO CR HR
    CS DA DV NL DZ EN EO ET EE FO FJ FI FR FF GD GL LG KA DE KI EL KL GN GU HT HA HE HZ HI HO HU IS IO IG ID IA IE
    IU IK GA IT JA JV KN KR KS KK RW KV KG KO KJ KU KY LO LA LV LB LI LN LT LU MK MG MS ML MT GV MI MR MH RO MN NA
    NV ND NG NE SE NO NB NN II OC OJ OR OM OS PI PA PS FA PL PT QU RM RN RU SM SG SA SC SR SN SD SI SK SL SO ST NR
    ES SU SW SS SV TL TY TG TA TT TE TH BO TI TO TS TN TR TK TW UG UK UR UZ VE VI VO WA CY FY WO XH YI YO ZA ZU
    """.split()
)

PUID_RE = re.compile(r"^[a-zA-Z0-9-_]+$")
EAN_RE = re.compile(r"^[0-9]{13}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MIN_CONTENT_DATE, MIN_APPLICATION_DATE, MAX_DATE = date(2000, 1, 1), date(2020, 1, 1), date(2038, 1, 1)

# --- building a statement ------------------------------------------------------------

# What each ladder step restricts (Art. 17(1)(a)-(d)); every step names at least one.
ACTION_RESTRICTIONS = {
    "no_violation": {
        "decision_visibility": ["DECISION_VISIBILITY_OTHER"],
        "decision_visibility_other": "No restriction: the report was reviewed and no violation was found.",
    },
    "label": {"decision_visibility": ["DECISION_VISIBILITY_CONTENT_LABELLED"]},
    "reduce": {"decision_visibility": ["DECISION_VISIBILITY_CONTENT_DEMOTED"]},
    "remove": {"decision_visibility": ["DECISION_VISIBILITY_CONTENT_REMOVED"]},
    "lock": {"decision_account": "DECISION_ACCOUNT_SUSPENDED"},
    "restrict": {"decision_provision": "DECISION_PROVISION_PARTIAL_SUSPENSION"},
    "suspend": {
        "decision_account": "DECISION_ACCOUNT_SUSPENDED",
        "decision_provision": "DECISION_PROVISION_TOTAL_SUSPENSION",
    },
    "ban": {
        "decision_account": "DECISION_ACCOUNT_TERMINATED",
        "decision_provision": "DECISION_PROVISION_TOTAL_TERMINATION",
    },
    # Access is disabled and the material preserved for the authorities it is reported to.
    "legal_report": {"decision_visibility": ["DECISION_VISIBILITY_CONTENT_DISABLED"]},
}
ACTION_FACTS = {
    "no_violation": "was reviewed and found not to violate the policy; no action was taken",
    "label": "was labelled",
    "reduce": "had its distribution reduced",
    "remove": "was removed",
    "lock": "was locked until its owner proves control of it",
    "restrict": "had some features restricted",
    "suspend": "was suspended",
    "ban": "was terminated",
    "legal_report": "was disabled and reported to the competent authorities",
}
# Signal source kinds -> how the case came to the platform's attention, strongest first.
SOURCE_PRECEDENCE = [
    ("trusted_flagger", "SOURCE_TRUSTED_FLAGGER"),
    ("user_report", "SOURCE_ARTICLE_16"),
    ("legal_request", "SOURCE_TYPE_OTHER_NOTIFICATION"),
]
AUTOMATED_SOURCE_KINDS = frozenset({"classifier", "rule", "hash_match"})
CONTENT_TYPE_ATTRIBUTES = {
    "app": "CONTENT_TYPE_APP",
    "audio": "CONTENT_TYPE_AUDIO",
    "image": "CONTENT_TYPE_IMAGE",
    "product": "CONTENT_TYPE_PRODUCT",
    "synthetic_media": "CONTENT_TYPE_SYNTHETIC_MEDIA",
    "text": "CONTENT_TYPE_TEXT",
    "video": "CONTENT_TYPE_VIDEO",
}


def _clamp(d, low, high=MAX_DATE):
    return min(max(d, low), high)


def _content_types(subject):
    wanted = subject.attributes.get("content_type") if isinstance(subject.attributes, dict) else None
    if isinstance(wanted, str):
        wanted = [wanted]
    keys = sorted({CONTENT_TYPE_ATTRIBUTES[w] for w in wanted or [] if w in CONTENT_TYPE_ATTRIBUTES})
    if keys:
        return {"content_type": keys}
    label = "User account" if subject.kind == "account" else "User-generated content item"
    return {"content_type": ["CONTENT_TYPE_OTHER"], "content_type_other": label}


def _source_fields(source_kinds, source_names):
    for kind, key in SOURCE_PRECEDENCE:
        if kind in source_kinds:
            fields = {"source_type": key}
            if kind == "trusted_flagger" and source_names.get(kind):
                fields["source_identity"] = source_names[kind][:500]
            return fields
    return {"source_type": "SOURCE_VOLUNTARY"}


def _rule_title(version, code):
    for rule in version.rules:
        if rule.get("code") == code:
            return rule.get("title") or code
    return code


def statement_of_reasons(decision) -> dict:
    """The decision's statement of reasons, valid under ``sor_validate``, for every action and class."""
    case = decision.case
    tc = case.threat_class
    version = decision.policy_version
    subject = case.subject
    sources = {}
    for kind, name, slug in case.signals.values_list("source__kind", "source__name", "source__slug").distinct():
        sources.setdefault(kind, name or slug)

    statement = {}
    statement.update(ACTION_RESTRICTIONS[decision.action])
    application_date = _clamp(decision.created_at.date(), MIN_APPLICATION_DATE)
    if decision.action == "suspend" and decision.duration_days:
        end = _clamp(application_date + timedelta(days=decision.duration_days), MIN_APPLICATION_DATE)
        statement["end_date_account_restriction"] = end.isoformat()
        statement["end_date_service_restriction"] = end.isoformat()

    rule = f"{decision.rule} ({_rule_title(version, decision.rule)})" if decision.rule else "the policy as a whole"
    policy_ref = f"{version.policy.name}, version {version.number}, rule {rule}"
    explanation = decision.rationale.strip() or f"{subject.kind.capitalize()} assessed against {policy_ref}."
    if tc.dsa_illegal and decision.action != "no_violation":
        statement["decision_ground"] = "DECISION_GROUND_ILLEGAL_CONTENT"
        statement["illegal_content_legal_ground"] = (tc.legal_ground or f"Law applicable to {tc.name}")[:500]
        statement["illegal_content_explanation"] = explanation[:2000]
    else:
        statement["decision_ground"] = "DECISION_GROUND_INCOMPATIBLE_CONTENT"
        statement["incompatible_content_ground"] = f"Terms of service: {policy_ref}"[:500]
        statement["incompatible_content_explanation"] = explanation[:2000]
        statement["incompatible_content_illegal"] = "Yes" if tc.dsa_illegal else "No"

    statement.update(_content_types(subject))
    statement["category"] = (
        tc.dsa_category if tc.dsa_category in STATEMENT_CATEGORIES else ("STATEMENT_CATEGORY_OTHER_VIOLATION_TC")
    )
    keywords = sorted({k for k in tc.dsa_keywords or [] if k in KEYWORDS})
    if keywords:
        statement["category_specification"] = keywords
    statement["territorial_scope"] = sorted(EUROPEAN_COUNTRY_CODES)
    statement["content_date"] = _clamp(case.first_signal_at.date(), MIN_CONTENT_DATE).isoformat()
    statement["application_date"] = application_date.isoformat()

    how = "by automated means" if decision.automated else "by a human reviewer"
    statement["decision_facts"] = (
        f"The {subject.kind} {ACTION_FACTS[decision.action]} after review {how} for {tc.name.lower()} "
        f"under {policy_ref}." + (f" Duration: {decision.duration_days} days." if decision.duration_days else "")
    )[:5000]
    statement.update(_source_fields(set(sources), sources))
    statement["automated_detection"] = "Yes" if AUTOMATED_SOURCE_KINDS & set(sources) else "No"
    statement["automated_decision"] = (
        "AUTOMATED_DECISION_FULLY" if decision.automated else "AUTOMATED_DECISION_NOT_AUTOMATED"
    )
    statement["puid"] = f"docket-decision-{decision.pk}"
    return statement


# --- validating a statement (the submission validator's rules) ------------------------------


def _present(statement, field):
    """Laravel's notion: absent, null and empty arrays/strings count as not present."""
    value = statement.get(field)
    return value not in (None, "", [])


def _check_string(errors, statement, field, max_len, *, required=False):
    if not _present(statement, field):
        if required:
            errors.append(f"{field}: required")
        return
    value = statement[field]
    if not isinstance(value, str):
        errors.append(f"{field}: must be a string")
    elif len(value) > max_len:
        errors.append(f"{field}: at most {max_len} characters")


def _check_enum(errors, statement, field, allowed, *, nullable=False):
    value = statement.get(field)
    if value is None:
        return
    if nullable and value == "null":
        return
    if not isinstance(value, str) or value not in allowed:
        errors.append(f"{field}: {value!r} is not allowed")


def _check_enum_array(errors, statement, field, allowed, *, nullable=True, null_literal=False):
    """``array|in:...``; ``null_literal`` for the rules written ``in:null,...``."""
    value = statement.get(field)
    if value is None:
        if field in statement and not nullable:
            errors.append(f"{field}: must be an array")
        return
    if not isinstance(value, list):
        errors.append(f"{field}: must be an array")
        return
    for item in value:
        if item not in allowed and not (null_literal and item == "null"):
            errors.append(f"{field}: {item!r} is not allowed")


def _check_date(errors, statement, field, low, high, *, required=False):
    value = statement.get(field)
    if value is None or value == "":
        if required:
            errors.append(f"{field}: required")
        return
    if not isinstance(value, str) or not DATE_RE.match(value):
        errors.append(f"{field}: must be a date in Y-m-d form")
        return
    try:
        d = date.fromisoformat(value)
    except ValueError:
        errors.append(f"{field}: not a real date")
        return
    if low and d < low:
        errors.append(f"{field}: on or after {low.isoformat()}")
    if d > high:
        errors.append(f"{field}: on or before {high.isoformat()}")


def _is_url(value):
    if not isinstance(value, str) or len(value) > 500 or any(c.isspace() for c in value):
        return False
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def sor_validate(statement) -> list[str]:
    """Every problem the Transparency Database's validator would report, as ``"field: message"``.

    Empty means the statement would be accepted by the single-statement
    endpoint. Fields the validator excludes (``exclude_unless``) are ignored,
    as there, rather than reported.
    """
    if not isinstance(statement, dict):
        return ["statement: must be an object"]
    s = statement
    errors = []
    restrictions = ("decision_visibility", "decision_monetary", "decision_provision", "decision_account")
    if not any(_present(s, f) for f in restrictions):
        errors.append("decision_visibility: at least one of " + ", ".join(restrictions) + " is required")
    _check_enum_array(errors, s, "decision_visibility", DECISION_VISIBILITIES, null_literal=True)
    if isinstance(s.get("decision_visibility"), list) and "DECISION_VISIBILITY_OTHER" in s["decision_visibility"]:
        _check_string(errors, s, "decision_visibility_other", 500, required=True)
    _check_enum(errors, s, "decision_monetary", DECISION_MONETARIES, nullable=True)
    if s.get("decision_monetary") == "DECISION_MONETARY_OTHER":
        _check_string(errors, s, "decision_monetary_other", 500, required=True)
    _check_enum(errors, s, "decision_provision", DECISION_PROVISIONS, nullable=True)
    _check_enum(errors, s, "decision_account", DECISION_ACCOUNTS, nullable=True)
    _check_enum(errors, s, "account_type", ACCOUNT_TYPES, nullable=True)

    if not _present(s, "decision_ground"):
        errors.append("decision_ground: required")
    _check_enum(errors, s, "decision_ground", DECISION_GROUNDS)
    if _present(s, "decision_ground_reference_url") and not _is_url(s["decision_ground_reference_url"]):
        errors.append("decision_ground_reference_url: must be a URL of at most 500 characters")
    if s.get("decision_ground") == "DECISION_GROUND_ILLEGAL_CONTENT":
        _check_string(errors, s, "illegal_content_legal_ground", 500, required=True)
        _check_string(errors, s, "illegal_content_explanation", 2000, required=True)
    if s.get("decision_ground") == "DECISION_GROUND_INCOMPATIBLE_CONTENT":
        _check_string(errors, s, "incompatible_content_ground", 500, required=True)
        _check_string(errors, s, "incompatible_content_explanation", 2000, required=True)
        _check_enum(errors, s, "incompatible_content_illegal", YES_NO)

    if not _present(s, "content_type"):
        errors.append("content_type: required")
    _check_enum_array(errors, s, "content_type", CONTENT_TYPES)
    if isinstance(s.get("content_type"), list) and "CONTENT_TYPE_OTHER" in s["content_type"]:
        _check_string(errors, s, "content_type_other", 500, required=True)

    if not _present(s, "category"):
        errors.append("category: required")
    _check_enum(errors, s, "category", STATEMENT_CATEGORIES)
    _check_enum_array(errors, s, "category_addition", STATEMENT_CATEGORIES, nullable=False)
    _check_enum_array(errors, s, "category_specification", KEYWORDS, null_literal=True)
    _check_string(errors, s, "category_specification_other", 500)
    _check_enum_array(errors, s, "territorial_scope", EUROPEAN_COUNTRY_CODES)
    _check_enum(errors, s, "content_language", ALL_LANGUAGES, nullable=True)

    _check_date(errors, s, "content_date", MIN_CONTENT_DATE, MAX_DATE, required=True)
    _check_date(errors, s, "application_date", MIN_APPLICATION_DATE, MAX_DATE, required=True)
    for field in (
        "end_date_account_restriction",
        "end_date_monetary_restriction",
        "end_date_service_restriction",
        "end_date_visibility_restriction",
    ):
        _check_date(errors, s, field, None, MAX_DATE)

    _check_string(errors, s, "decision_facts", 5000, required=True)
    if not _present(s, "source_type"):
        errors.append("source_type: required")
    _check_enum(errors, s, "source_type", SOURCE_TYPES)
    if s.get("source_type") != "SOURCE_VOLUNTARY":
        _check_string(errors, s, "source_identity", 500)
    if not _present(s, "automated_detection"):
        errors.append("automated_detection: required")
    _check_enum(errors, s, "automated_detection", YES_NO)
    if not _present(s, "automated_decision"):
        errors.append("automated_decision: required")
    _check_enum(errors, s, "automated_decision", AUTOMATED_DECISIONS)

    _check_string(errors, s, "puid", 500, required=True)
    if isinstance(s.get("puid"), str) and s["puid"] and not PUID_RE.match(s["puid"]):
        errors.append("puid: only letters, digits, '-' and '_'")

    content_id = s.get("content_id")
    if content_id is not None:
        if not isinstance(content_id, dict) or set(content_id) - {"EAN-13"}:
            errors.append("content_id: only the key EAN-13 is allowed")
        elif "EAN-13" in content_id and not (
            isinstance(content_id["EAN-13"], str) and EAN_RE.match(content_id["EAN-13"])
        ):
            errors.append("content_id: EAN-13 must be 13 digits")
    ean = s.get("content_id_ean")
    if ean is not None and not (isinstance(ean, str) and EAN_RE.match(ean)):
        errors.append("content_id_ean: must be 13 digits")
    return errors
