"""A threat class's DSA fields hold only what the EU Transparency Database accepts: admin and database."""

import pytest
from django.db import IntegrityError, transaction

from policies.dsa import KEYWORDS, STATEMENT_CATEGORIES
from policies.models import ThreatClass

pytestmark = pytest.mark.django_db

CHANGE = "/admin/policies/threatclass/{}/change/"


def form_data(tc, **changes):
    data = {
        "slug": tc.slug,
        "name": tc.name,
        "severity": tc.severity,
        "harm_weight": tc.harm_weight,
        "sla_seconds": tc.sla_seconds,
        "automation": tc.automation,
        "auto_action": tc.auto_action,
        "dsa_category": tc.dsa_category,
        "dsa_keywords": list(tc.dsa_keywords),
        "legal_ground": tc.legal_ground,
        "dsa_territorial_scope": [],
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_the_admin_offers_the_official_enums_and_refuses_anything_else(client, policy_admin):
    tc = ThreatClass.objects.get(slug="harassment")
    client.force_login(policy_admin)
    page = client.get(CHANGE.format(tc.pk)).content.decode()
    assert all(f'value="{c}"' in page for c in STATEMENT_CATEGORIES)
    assert 'value="KEYWORD_DANGEROUS_TOYS"' not in page  # removed from the schema in 2025

    refused = client.post(
        CHANGE.format(tc.pk),
        form_data(
            tc,
            dsa_category="STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT",
            dsa_keywords=["KEYWORD_DANGEROUS_TOYS"],
            dsa_territorial_scope=["EL"],
        ),
    )
    assert refused.status_code == 200
    errors = refused.context["adminform"].form.errors
    assert set(errors) == {"dsa_category", "dsa_keywords", "dsa_territorial_scope"}
    tc.refresh_from_db()
    assert tc.dsa_category == "STATEMENT_CATEGORY_CYBER_VIOLENCE"

    saved = client.post(
        CHANGE.format(tc.pk),
        form_data(
            tc,
            dsa_category="STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
            dsa_keywords=["KEYWORD_HATE_SPEECH", "KEYWORD_CYBER_HARASSMENT"],
            dsa_territorial_scope=["DE", "AT"],
        ),
    )
    assert saved.status_code == 302, saved.context["adminform"].form.errors if saved.context else ""
    tc.refresh_from_db()
    assert (tc.dsa_category, sorted(tc.dsa_keywords), sorted(tc.dsa_territorial_scope)) == (
        "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
        ["KEYWORD_CYBER_HARASSMENT", "KEYWORD_HATE_SPEECH"],
        ["AT", "DE"],
    )


def test_a_class_resting_on_illegality_names_its_law(client, policy_admin):
    tc = ThreatClass.objects.get(slug="spam")
    client.force_login(policy_admin)
    refused = client.post(CHANGE.format(tc.pk), form_data(tc, dsa_illegal="on", legal_ground=""))
    assert "legal_ground" in refused.context["adminform"].form.errors


@pytest.mark.parametrize(
    "change",
    [
        {"dsa_category": "STATEMENT_CATEGORY_SCOPE_OF_PLATFORM_SERVICE"},  # renamed in 2025
        {"dsa_keywords": ["KEYWORD_OTHER", "KEYWORD_DANGEROUS_TOYS"]},
        {"dsa_territorial_scope": ["GR", "UK"]},
    ],
)
def test_the_database_refuses_what_the_schema_refuses(change):
    with pytest.raises(IntegrityError), transaction.atomic():
        ThreatClass.objects.filter(slug="spam").update(**change)
    assert "KEYWORD_OTHER" in KEYWORDS
