"""The threat classes, policies and ladders Docket ships with.

Used by the data migration; policy admins change them in the admin afterwards.
"""

HOUR = 3600

THREAT_CLASSES = [
    {
        "slug": "csam",
        "name": "Child sexual abuse material",
        "severity": 5,
        "harm_weight": 10.0,
        "sla_seconds": 1 * HOUR,
        "automation": "none",
        "auto_action": "",
        "restricted": True,
        "legal_escalation": True,
        "graphic": True,
        "dsa_category": "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
        "dsa_keywords": ["KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL"],
        "dsa_illegal": True,
        "legal_ground": "Directive 2011/93/EU on combating the sexual abuse and sexual exploitation of children",
    },
    {
        "slug": "ato",
        "name": "Account takeover",
        "severity": 4,
        "harm_weight": 6.0,
        "sla_seconds": 1 * HOUR,
        "automation": "reversible",
        "auto_action": "lock",
        "restricted": False,
        "legal_escalation": False,
        "graphic": False,
        "dsa_category": "STATEMENT_CATEGORY_SCAMS_AND_FRAUD",
        "dsa_keywords": ["KEYWORD_IMPERSONATION_ACCOUNT_HIJACKING"],
        "dsa_illegal": False,
        "legal_ground": "",
    },
    {
        "slug": "payment_fraud",
        "name": "Payment fraud",
        "severity": 4,
        "harm_weight": 5.0,
        "sla_seconds": 4 * HOUR,
        "automation": "reversible",
        "auto_action": "restrict",
        "restricted": False,
        "legal_escalation": False,
        "graphic": False,
        "dsa_category": "STATEMENT_CATEGORY_SCAMS_AND_FRAUD",
        "dsa_keywords": [],
        "dsa_illegal": False,
        "legal_ground": "",
    },
    {
        "slug": "harassment",
        "name": "Harassment",
        "severity": 3,
        "harm_weight": 4.0,
        "sla_seconds": 24 * HOUR,
        "automation": "none",
        "auto_action": "",
        "restricted": False,
        "legal_escalation": False,
        "graphic": False,
        "dsa_category": "STATEMENT_CATEGORY_CYBER_VIOLENCE",
        "dsa_keywords": ["KEYWORD_CYBER_HARASSMENT"],
        "dsa_illegal": False,
        "legal_ground": "",
    },
    {
        "slug": "cib",
        "name": "Coordinated inauthentic behaviour",
        "severity": 3,
        "harm_weight": 4.0,
        "sla_seconds": 72 * HOUR,
        "automation": "none",
        "auto_action": "",
        "restricted": True,
        "legal_escalation": False,
        "graphic": False,
        "dsa_category": "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
        "dsa_keywords": ["KEYWORD_INAUTHENTIC_ACCOUNTS", "KEYWORD_COORDINATED_HARM"],
        "dsa_illegal": False,
        "legal_ground": "",
    },
    {
        "slug": "spam",
        "name": "Spam",
        "severity": 2,
        "harm_weight": 1.0,
        "sla_seconds": 72 * HOUR,
        "automation": "any",
        "auto_action": "remove",
        "restricted": False,
        "legal_escalation": False,
        "graphic": False,
        "dsa_category": "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
        "dsa_keywords": [],
        "dsa_illegal": False,
        "legal_ground": "",
    },
]


def _rules(prefix, items):
    return [{"code": f"{prefix}-{i}", "title": t, "description": d} for i, (t, d) in enumerate(items, 1)]


POLICIES = {
    "csam": {
        "name": "Child safety",
        "ladder": ["no_violation", "remove", "ban", "legal_report"],
        "strike_weight": 3,
        "text": "We remove child sexual abuse material, ban the accounts that share it and report it to "
        "the competent authorities as the law requires.",
        "rules": _rules(
            "CS",
            [
                ("Child sexual abuse material", "Imagery or video depicting the sexual abuse of a minor."),
                ("Sexualisation of minors", "Content that sexualises a minor, including drawn or generated."),
                ("Grooming", "Contact with a minor aimed at sexual exploitation."),
            ],
        ),
    },
    "ato": {
        "name": "Account security",
        "ladder": ["no_violation", "lock", "restrict", "suspend", "ban"],
        "strike_weight": 1,
        "text": "Accounts showing signs of takeover are locked until the owner proves control.",
        "rules": _rules(
            "AS",
            [
                ("Compromised account", "Login and behaviour show the account is controlled by someone else."),
                ("Credential stuffing", "Automated login attempts with leaked credentials."),
            ],
        ),
    },
    "payment_fraud": {
        "name": "Payments integrity",
        "ladder": ["no_violation", "restrict", "suspend", "ban"],
        "strike_weight": 2,
        "text": "We hold payments and restrict accounts involved in fraudulent transactions.",
        "rules": _rules(
            "PF",
            [
                ("Stolen payment instrument", "Use of a card or account without the holder's consent."),
                ("Chargeback fraud", "Purchases followed by knowingly false disputes."),
                ("Scam seller", "Taking payment for goods or services never delivered."),
            ],
        ),
    },
    "harassment": {
        "name": "Harassment and bullying",
        "ladder": ["no_violation", "label", "reduce", "remove", "restrict", "suspend", "ban"],
        "strike_weight": 1,
        "text": "We do not allow targeting people with abuse, threats or degrading content.",
        "rules": _rules(
            "HB",
            [
                ("Targeted abuse", "Insults or degrading content aimed at an identifiable person."),
                ("Threats", "Statements of intent to harm a person."),
                ("Doxxing", "Sharing private information to expose a person to harm."),
            ],
        ),
    },
    "cib": {
        "name": "Platform manipulation",
        "ladder": ["no_violation", "label", "reduce", "remove", "suspend", "ban"],
        "strike_weight": 2,
        "text": "Networks of accounts that coordinate to mislead people about who they are are removed.",
        "rules": _rules(
            "PM",
            [
                ("Fake accounts", "Accounts misrepresenting identity as part of a network."),
                ("Coordinated amplification", "Accounts acting together to inflate reach artificially."),
            ],
        ),
    },
    "spam": {
        "name": "Spam",
        "ladder": ["no_violation", "label", "reduce", "remove", "restrict", "suspend", "ban"],
        "strike_weight": 1,
        "text": "Unsolicited, repetitive or deceptive commercial content is removed.",
        "rules": _rules(
            "SP",
            [
                ("Commercial spam", "Repetitive unsolicited promotion."),
                ("Fake engagement", "Selling or buying followers, likes or reviews."),
                ("Malicious links", "Links to phishing or malware."),
            ],
        ),
    },
}

# One queue per class, then escalations and legal.
QUEUES = [
    {"slug": "csam", "name": "Child safety", "classes": ["csam"], "required_clearance": "csam", "position": 10},
    {"slug": "ato", "name": "Account takeover", "classes": ["ato"], "required_clearance": "", "position": 20},
    {
        "slug": "payment_fraud",
        "name": "Payment fraud",
        "classes": ["payment_fraud"],
        "required_clearance": "",
        "position": 30,
    },
    {"slug": "harassment", "name": "Harassment", "classes": ["harassment"], "required_clearance": "", "position": 40},
    {
        "slug": "cib",
        "name": "Coordinated inauthentic behaviour",
        "classes": ["cib"],
        "required_clearance": "cib",
        "position": 50,
    },
    {"slug": "spam", "name": "Spam", "classes": ["spam"], "required_clearance": "", "position": 60},
    {"slug": "escalations", "name": "Escalations", "classes": [], "required_clearance": "", "position": 5},
    {"slug": "legal", "name": "Legal", "classes": [], "required_clearance": "", "position": 1},
]
