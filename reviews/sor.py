"""Statements of reasons (DSA Art. 17) in the EU Transparency Database's submission schema.

``statement_of_reasons(decision)`` builds one statement with the database's
exact field names and enum keys; ``sor_validate(statement)`` checks a
statement against the rules of its submission validator (required and
conditional fields, enums, lengths, dates, the puid pattern), so what Docket
emits is known to pass before it is sent.
"""

import json
import re
import uuid
from datetime import date, timedelta
from functools import cache
from urllib.parse import urlparse

from django.conf import settings

from docket.errors import DocketError
from policies.dsa import (  # noqa: F401  (re-exported: the schema's enums)
    ACCOUNT_TYPES,
    ALL_LANGUAGES,
    AUTOMATED_DECISIONS,
    CONTENT_TYPES,
    DECISION_ACCOUNTS,
    DECISION_GROUNDS,
    DECISION_MONETARIES,
    DECISION_PROVISIONS,
    DECISION_VISIBILITIES,
    EUROPEAN_COUNTRY_CODES,
    KEYWORDS,
    SOURCE_TYPES,
    STATEMENT_CATEGORIES,
    YES_NO,
)

from .models import Installation

# PCRE's ``$`` under the /D modifier: the very end. Python's ``$`` would also match before a
# trailing newline, so ``\Z``; and ``[0-9]``, not ``\d``, which also matches non-ASCII digits.
PUID_RE = re.compile(r"^[a-zA-Z0-9\-_]+\Z")
EAN_RE = re.compile(r"^[0-9]{13}\Z")
DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
MIN_CONTENT_DATE, MIN_APPLICATION_DATE, MAX_DATE = date(2000, 1, 1), date(2020, 1, 1), date(2038, 1, 1)

# --- building a statement ------------------------------------------------------------

# What each ladder step restricts (Art. 17(1)(a)-(d)), and which end date a duration sets.
# ``no_violation`` restricts nothing: it has no statement of reasons.
ACTION_RESTRICTIONS = {
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
_END_DATE_FIELD = {
    "decision_visibility": "end_date_visibility_restriction",
    "decision_account": "end_date_account_restriction",
    "decision_provision": "end_date_service_restriction",
    "decision_monetary": "end_date_monetary_restriction",
}
# A termination has no end: a duration on it would state something false.
PERMANENT_ACTIONS = frozenset({"ban"})
ACTION_FACTS = {
    "label": "was labelled",
    "reduce": "had its distribution reduced",
    "remove": "was removed",
    "lock": "was locked until its owner proves control of it",
    "restrict": "had some features restricted",
    "suspend": "was suspended",
    "ban": "was terminated",
    "legal_report": "was disabled and reported to the competent authorities",
}
ILLEGAL = "DECISION_GROUND_ILLEGAL_CONTENT"
INCOMPATIBLE = "DECISION_GROUND_INCOMPATIBLE_CONTENT"
_GROUND_ALIASES = {
    "illegal": ILLEGAL,
    "illegal_content": ILLEGAL,
    ILLEGAL: ILLEGAL,
    "incompatible": INCOMPATIBLE,
    "incompatible_content": INCOMPATIBLE,
    INCOMPATIBLE: INCOMPATIBLE,
}
AUTOMATED_SOURCE_KINDS = frozenset({"classifier", "rule", "hash_match"})
NOTICE_SOURCE_KINDS = frozenset({"user_report", "legal_request"})
CONTENT_TYPE_ATTRIBUTES = {
    "app": "CONTENT_TYPE_APP",
    "audio": "CONTENT_TYPE_AUDIO",
    "image": "CONTENT_TYPE_IMAGE",
    "product": "CONTENT_TYPE_PRODUCT",
    "synthetic_media": "CONTENT_TYPE_SYNTHETIC_MEDIA",
    "text": "CONTENT_TYPE_TEXT",
    "video": "CONTENT_TYPE_VIDEO",
}


def _invalid(field, message):
    return DocketError("invalid", message, errors={field: [message]})


def default_territorial_scope(threat_class):
    """The class's scope, else ``DOCKET_DSA_TERRITORIAL_SCOPE``, else every EEA country."""
    if threat_class.dsa_territorial_scope:
        return sorted(set(threat_class.dsa_territorial_scope))
    configured = settings.DOCKET_DSA_TERRITORIAL_SCOPE
    return sorted(set(configured or EUROPEAN_COUNTRY_CODES))


def statement_terms(
    *,
    threat_class,
    action,
    duration_days,
    decided_on,
    decision_ground=None,
    legal_ground=None,
    territorial_scope=None,
) -> dict:
    """The per-decision choices of a statement, checked; ``400 invalid`` naming the field otherwise.

    ``decision_ground``: a class marked illegal (``dsa_illegal``) always rests on
    illegality; any other class rests on its terms unless the decision says
    illegal, which then needs a legal reference (the decision's or the class's).
    ``territorial_scope``: EEA ISO codes, within the class's scope when it names
    one. A duration sets the end date of each restriction; a termination takes
    none, and an end past the last date the Transparency Database accepts is
    refused rather than moved.
    """
    terms = {}
    if action not in ACTION_RESTRICTIONS:
        return terms
    ground = INCOMPATIBLE
    if decision_ground not in (None, ""):
        if not isinstance(decision_ground, str) or decision_ground not in _GROUND_ALIASES:
            raise _invalid("decision_ground", "Choose illegal_content or incompatible_content.")
        ground = _GROUND_ALIASES[decision_ground]
    if threat_class.dsa_illegal:
        if ground == INCOMPATIBLE and decision_ground not in (None, ""):
            raise _invalid("decision_ground", f"Decisions on {threat_class.slug} rest on illegality.")
        ground = ILLEGAL
    legal = (legal_ground or "").strip() if isinstance(legal_ground, str) else ""
    if legal_ground is not None and not isinstance(legal_ground, str):
        raise _invalid("legal_ground", "A text.")
    if ground == ILLEGAL:
        legal = legal or threat_class.legal_ground.strip()
        if not legal:
            raise _invalid("legal_ground", "Content found illegal needs the law it breaks.")
        if len(legal) > 500:
            raise _invalid("legal_ground", "At most 500 characters.")
    terms["decision_ground"] = ground
    terms["legal_ground"] = legal if ground == ILLEGAL else ""

    allowed = set(threat_class.dsa_territorial_scope or EUROPEAN_COUNTRY_CODES)
    if territorial_scope in (None, []):
        scope = default_territorial_scope(threat_class)
    else:
        if not isinstance(territorial_scope, list | tuple) or not all(isinstance(c, str) for c in territorial_scope):
            raise _invalid("territorial_scope", "A list of ISO 3166 country codes.")
        codes = {c.strip().upper() for c in territorial_scope}
        unknown = sorted(codes - EUROPEAN_COUNTRY_CODES)
        if unknown:
            raise _invalid("territorial_scope", f"Not EEA country codes: {', '.join(unknown)}.")
        outside = sorted(codes - allowed)
        if outside:
            raise _invalid("territorial_scope", f"Outside the {threat_class.slug} class's scope: {', '.join(outside)}.")
        scope = sorted(codes)
    terms["territorial_scope"] = scope

    if duration_days:
        if action in PERMANENT_ACTIONS:
            raise _invalid("duration_days", f"A {action} is permanent; it takes no duration.")
        end = decided_on + timedelta(days=duration_days)
        if end > MAX_DATE:
            raise _invalid(
                "duration_days",
                f"Ends on {end.isoformat()}, after {MAX_DATE.isoformat()}, the last end date the EU Transparency "
                "Database accepts: choose a shorter duration.",
            )
        terms["end_date"] = end.isoformat()
    return terms


def _content_types(subject):
    wanted = subject.attributes.get("content_type") if isinstance(subject.attributes, dict) else None
    if isinstance(wanted, str):
        wanted = [wanted]
    keys = sorted({CONTENT_TYPE_ATTRIBUTES[w] for w in wanted or [] if w in CONTENT_TYPE_ATTRIBUTES})
    if keys:
        return {"content_type": keys}
    label = "User account" if subject.kind == "account" else "User-generated content item"
    return {"content_type": ["CONTENT_TYPE_OTHER"], "content_type_other": label}


def content_language(subject):
    """The subject's declared language (attribute ``language``) as the ISO 639-1 key, or None."""
    value = (subject.attributes or {}).get("language") if isinstance(subject.attributes, dict) else None
    if isinstance(value, list):
        value = value[0] if value else None
    if not isinstance(value, str):
        return None
    code = value.strip().replace("_", "-").split("-", 1)[0].upper()
    return code if code in ALL_LANGUAGES else None


def _source_fields(sources):
    """How the case came to the platform's attention (``sources``: [(kind, name, art16)]), strongest first.

    A trusted flagger's notice; a notice alleging illegal content (a source
    whose reports are Art. 16 notices); any other notice (a user report about
    the terms, an authority's request); else the platform's own initiative.
    """
    kinds = {kind for kind, _, _ in sources}
    flagger = next((name for kind, name, _ in sources if kind == "trusted_flagger"), None)
    if flagger is not None:
        return {"source_type": "SOURCE_TRUSTED_FLAGGER", "source_identity": flagger[:500]}
    if any(art16 and kind in NOTICE_SOURCE_KINDS for kind, _, art16 in sources):
        return {"source_type": "SOURCE_ARTICLE_16"}
    if kinds & NOTICE_SOURCE_KINDS:
        return {"source_type": "SOURCE_TYPE_OTHER_NOTIFICATION"}
    return {"source_type": "SOURCE_VOLUNTARY"}


PUBLIC_EXPLANATION_MAX = 2000  # the statement's ``*_content_explanation`` limit


def public_explanation_clean(text) -> str:
    """What a decision stores as its public explanation: the text given, trimmed, at most 2,000 characters."""
    return (text or "").strip()[:PUBLIC_EXPLANATION_MAX]


def rule_of(version, code):
    return next((r for r in version.rules if r.get("code") == code), None) or {}


def public_explanation_default(version, code):
    """What the user is told when the reviewer wrote nothing for them: the cited rule's public description."""
    rule = rule_of(version, code)
    text = (rule.get("description") or rule.get("title") or "").strip()
    if text:
        return text
    return f"The {version.policy.name} policy, version {version.number}."


@cache
def _stored_prefix():
    row = Installation.objects.filter(pk=1).first()
    if row is None:  # the migration makes it; a database restored without it gets one now
        row, _ = Installation.objects.get_or_create(pk=1, defaults={"puid_prefix": f"docket-{uuid.uuid4().hex[:12]}"})
    return row.puid_prefix


def installation_prefix():
    """``DOCKET_DSA_PUID_PREFIX`` if set, else this database's random prefix: puids unique across installations."""
    configured = settings.DOCKET_DSA_PUID_PREFIX
    if configured:
        if not PUID_RE.match(configured):
            raise ValueError("DOCKET_DSA_PUID_PREFIX may hold only letters, digits, '-' and '_'.")
        return configured
    return _stored_prefix()


def puid_for(decision_id):
    return f"{installation_prefix()}-decision-{decision_id}"


def statement_of_reasons(
    decision, *, terms=None, sources=None, automated_decision=None, public_explanation=None
) -> dict | None:
    """The decision's statement of reasons as made now; ``None`` for ``no_violation`` (nothing restricted).

    Reads the case, class, policy version and subject as they are, so it is
    called once, when the decision is made (``statements.decisions_publish``); everything
    later serves that stored snapshot. The internal rationale is never read.
    """
    if decision.action not in ACTION_RESTRICTIONS:
        return None
    case = decision.case
    tc = case.threat_class
    version = decision.policy_version
    subject = case.subject
    application_date = decision.created_at.date()
    if terms is None:
        terms = statement_terms(
            threat_class=tc, action=decision.action, duration_days=decision.duration_days, decided_on=application_date
        )
    if sources is None:
        sources = list(
            case.signals.values_list("source__kind", "source__name", "source__dsa_article_16")
            .order_by("source__kind", "source__name")
            .distinct()
        )
    explanation = public_explanation_clean(public_explanation or decision.public_explanation) or (
        public_explanation_clean(public_explanation_default(version, decision.rule))
    )

    statement = {}
    restrictions = ACTION_RESTRICTIONS[decision.action]
    statement.update(restrictions)
    if terms.get("end_date"):
        for field in restrictions:
            statement[_END_DATE_FIELD[field]] = terms["end_date"]

    rule = rule_of(version, decision.rule)
    cited = f"rule {decision.rule} ({rule.get('title') or decision.rule})" if decision.rule else "the policy as a whole"
    policy_ref = f"{version.policy.name}, version {version.number}, {cited}"
    statement["decision_ground"] = terms["decision_ground"]
    if terms["decision_ground"] == ILLEGAL:
        statement["illegal_content_legal_ground"] = terms["legal_ground"][:500]
        statement["illegal_content_explanation"] = explanation
    else:
        statement["incompatible_content_ground"] = f"Terms of service: {policy_ref}"[:500]
        statement["incompatible_content_explanation"] = explanation
        statement["incompatible_content_illegal"] = "No"

    statement.update(_content_types(subject))
    statement["category"] = (
        tc.dsa_category if tc.dsa_category in STATEMENT_CATEGORIES else "STATEMENT_CATEGORY_OTHER_VIOLATION_TC"
    )
    keywords = sorted({k for k in tc.dsa_keywords or [] if k in KEYWORDS})
    if keywords:
        statement["category_specification"] = keywords
    statement["territorial_scope"] = terms["territorial_scope"]
    language = content_language(subject)
    if language:
        statement["content_language"] = language
    statement["content_date"] = case.first_signal_at.date().isoformat()
    statement["application_date"] = application_date.isoformat()

    if automated_decision is None:
        automated_decision = "AUTOMATED_DECISION_FULLY" if decision.automated else "AUTOMATED_DECISION_NOT_AUTOMATED"
    how = {
        "AUTOMATED_DECISION_FULLY": "by automated means",
        "AUTOMATED_DECISION_PARTIALLY": "by a human reviewer deciding a group of cases at once",
        "AUTOMATED_DECISION_NOT_AUTOMATED": "by a human reviewer",
    }[automated_decision]
    until = f" until {terms['end_date']}" if terms.get("end_date") else ""
    statement["decision_facts"] = (
        f"The {subject.kind} {ACTION_FACTS[decision.action]}{until} after review {how} "
        f"for {tc.name.lower()} under {policy_ref}."
        + (f" Duration: {decision.duration_days} days." if decision.duration_days else "")
    )[:5000]
    statement.update(_source_fields(sources))
    statement["automated_detection"] = "Yes" if AUTOMATED_SOURCE_KINDS & {k for k, _, _ in sources} else "No"
    statement["automated_decision"] = automated_decision
    statement["puid"] = puid_for(decision.pk)
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
    # ``in:`` without ``null``: the literal string "null" is not a language (JSON null is: nullable).
    _check_enum(errors, s, "content_language", ALL_LANGUAGES)

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
    # Checked whatever the source type (the multi endpoint validates it, then nulls it for SOURCE_VOLUNTARY).
    _check_string(errors, s, "source_identity", 500)
    if not _present(s, "automated_detection"):
        errors.append("automated_detection: required")
    _check_enum(errors, s, "automated_detection", YES_NO)
    if not _present(s, "automated_decision"):
        errors.append("automated_decision: required")
    _check_enum(errors, s, "automated_decision", AUTOMATED_DECISIONS)

    errors.extend(_puid_problems(s))

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


def _puid_problems(statement) -> list[str]:
    errors = []
    _check_string(errors, statement, "puid", 500, required=True)
    puid = statement.get("puid")
    if isinstance(puid, str) and puid and not PUID_RE.match(puid):
        errors.append("puid: only letters, digits, '-' and '_'")
    return errors


def sor_validate_many(statements) -> list[list[str]]:
    """``sor_validate`` of each statement, in order. A wave's statements differ only in their puid:
    statements alike but for it (and whose puids pass or fail alike) are checked once."""
    out, checked = [], {}
    for statement in statements:
        if not isinstance(statement, dict):
            out.append(sor_validate(statement))
            continue
        rest = {k: v for k, v in statement.items() if k != "puid"}
        key = (json.dumps(rest, sort_keys=True, default=repr), tuple(_puid_problems(statement)))
        if key not in checked:
            checked[key] = sor_validate(statement)
        out.append(list(checked[key]))
    return out
