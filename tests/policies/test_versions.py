"""Policy versions are immutable once active: the database refuses, the admin drafts, diffs and confirms."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from docket.errors import DocketError
from policies.models import PolicyVersion, ThreatClass
from policies.services import policy_version_activate, policy_version_draft_from
from tests.factories import active_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, policy_admin):
    client.force_login(policy_admin)
    return client


def _raw(sql, params):
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, params)


def content(version_id):
    return PolicyVersion.objects.filter(pk=version_id).values("text", "rules", "ladder", "strike_weight").get()


def _retired(policy_admin):
    """spam v1 retired by activating a copy of it; returns (retired v1, active v2)."""
    v1 = active_version("spam")
    v2 = policy_version_draft_from(version=v1, actor=policy_admin)
    policy_version_activate(version=v2, actor=policy_admin)
    v1.refresh_from_db()
    v2.refresh_from_db()
    return v1, v2


# --- the database --------------------------------------------------------------------------------

CONTENT_UPDATES = [
    "UPDATE policies_policyversion SET text = 'rewritten' WHERE id = %s",
    """UPDATE policies_policyversion SET rules = '[{"code": "X", "title": "new"}]'::jsonb WHERE id = %s""",
    "UPDATE policies_policyversion SET ladder = ARRAY['ban'] WHERE id = %s",
    "UPDATE policies_policyversion SET strike_weight = strike_weight + 1 WHERE id = %s",
    "DELETE FROM policies_policyversion WHERE id = %s",
]


@pytest.mark.parametrize("sql", CONTENT_UPDATES)
def test_raw_sql_cannot_rewrite_an_active_version(sql):
    version = active_version("harassment")
    before = content(version.pk)
    with pytest.raises(IntegrityError, match="immutable|cannot be deleted"):
        _raw(sql, [version.pk])
    assert content(version.pk) == before


@pytest.mark.parametrize("sql", CONTENT_UPDATES)
def test_raw_sql_cannot_rewrite_a_retired_version(sql, policy_admin):
    retired, _ = _retired(policy_admin)
    before = content(retired.pk)
    with pytest.raises(IntegrityError):
        _raw(sql, [retired.pk])
    assert content(retired.pk) == before


def test_retired_version_cannot_be_reactivated_or_go_back_to_draft(policy_admin):
    retired, active = _retired(policy_admin)
    with pytest.raises(IntegrityError, match="reactivated"):
        _raw("UPDATE policies_policyversion SET status = 'active', retired_at = NULL WHERE id = %s", [retired.pk])
    with pytest.raises(IntegrityError, match="back to draft"):
        _raw("UPDATE policies_policyversion SET status = 'draft' WHERE id = %s", [active.pk])
    assert PolicyVersion.objects.get(pk=retired.pk).status == "retired"
    assert PolicyVersion.objects.get(pk=active.pk).status == "active"


def test_orm_save_of_an_active_version_is_refused():
    version = active_version("spam")
    version.text = "quietly edited"
    with pytest.raises(IntegrityError), transaction.atomic():
        version.save()
    assert PolicyVersion.objects.get(pk=version.pk).text != "quietly edited"


def test_a_draft_stays_editable_and_deletable(policy_admin):
    draft = policy_version_draft_from(version=active_version("spam"), actor=policy_admin)
    _raw("UPDATE policies_policyversion SET text = 'new words', strike_weight = 2 WHERE id = %s", [draft.pk])
    assert content(draft.pk)["text"] == "new words"
    _raw("DELETE FROM policies_policyversion WHERE id = %s", [draft.pk])
    assert not PolicyVersion.objects.filter(pk=draft.pk).exists()


def test_activation_and_retirement_still_move_the_status(policy_admin):
    retired, active = _retired(policy_admin)
    assert (retired.status, active.status) == ("retired", "active")
    assert retired.retired_at is not None


# --- drafting from a version ---------------------------------------------------------------------


def test_draft_from_copies_content_with_the_next_number(policy_admin):
    v1 = active_version("spam")
    draft = policy_version_draft_from(version=v1, actor=policy_admin)
    assert (draft.status, draft.number, draft.policy_id) == ("draft", v1.number + 1, v1.policy_id)
    assert (draft.text, draft.rules, draft.ladder, draft.strike_weight) == (
        v1.text,
        v1.rules,
        v1.ladder,
        v1.strike_weight,
    )
    assert policy_version_draft_from(version=v1, actor=policy_admin).number == v1.number + 2


def test_draft_from_refuses_a_moderator(moderator):
    before = PolicyVersion.objects.count()
    with pytest.raises(DocketError) as exc:
        policy_version_draft_from(version=active_version("spam"), actor=moderator)
    assert exc.value.code == "forbidden"
    assert PolicyVersion.objects.count() == before


# --- the admin -----------------------------------------------------------------------------------


def change_url(version):
    return reverse("admin:policies_policyversion_change", args=[version.pk])


def test_admin_shows_an_active_version_read_only_and_refuses_a_post(admin_client):
    version = active_version("spam")
    before = content(version.pk)
    page = admin_client.get(change_url(version)).content.decode()
    assert 'name="text"' not in page and 'name="rules-count"' not in page
    assert "its text, rules, ladder and strike weight never change" in page
    assert "New draft from this version" in page
    assert version.rules[0]["title"] in page  # rules shown as a table, not JSON
    response = admin_client.post(change_url(version), {"text": "rewritten", "ladder": ["ban"], "strike_weight": 9})
    assert response.status_code == 403
    assert content(version.pk) == before


def test_admin_refuses_to_delete_a_published_version(admin_client):
    version = active_version("spam")
    response = admin_client.post(reverse("admin:policies_policyversion_delete", args=[version.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert PolicyVersion.objects.filter(pk=version.pk).exists()


def test_admin_new_draft_button_makes_an_editable_copy(admin_client):
    version = active_version("spam")
    response = admin_client.post(reverse("admin:policies_policyversion_new_draft", args=[version.pk]))
    draft = PolicyVersion.objects.get(policy=version.policy, status="draft")
    assert response.status_code == 302 and response.url == change_url(draft)
    page = admin_client.get(change_url(draft)).content.decode()
    assert 'name="rules-0-code"' in page and f'value="{version.rules[0]["code"]}"' in page
    assert 'type="checkbox" name="ladder" value="remove"' in page


def draft_post(draft, **overrides):
    data = {
        "policy": draft.policy_id,
        "number": draft.number,
        "text": draft.text,
        "strike_weight": draft.strike_weight,
        "ladder": ["ban", "no_violation", "remove"],  # posted out of order: stored in ladder order
        "rules-count": "3",
        "rules-0-code": "SP-1",
        "rules-0-title": "Bulk unsolicited messages",
        "rules-0-description": "Sending the same message to many people who did not ask for it.",
        "rules-1-code": "SP-9",
        "rules-1-title": "Fake engagement",
        "rules-1-description": "Buying or selling likes and followers.",
        "rules-2-code": "",
        "rules-2-title": "",
        "rules-2-description": "",
        "_save": "Save",
    }
    data.update(overrides)
    return data


def test_admin_edits_a_draft_with_rule_rows_and_ladder_choices(admin_client, policy_admin):
    draft = policy_version_draft_from(version=active_version("spam"), actor=policy_admin)
    response = admin_client.post(change_url(draft), draft_post(draft))
    assert response.status_code == 302, response.context["adminform"].form.errors
    draft.refresh_from_db()
    assert draft.ladder == ["no_violation", "remove", "ban"]
    assert [r["code"] for r in draft.rules] == ["SP-1", "SP-9"]
    assert draft.rules[1] == {
        "code": "SP-9",
        "title": "Fake engagement",
        "description": "Buying or selling likes and followers.",
    }


def test_admin_refuses_duplicate_rule_codes_and_keeps_the_input(admin_client, policy_admin):
    draft = policy_version_draft_from(version=active_version("spam"), actor=policy_admin)
    before = content(draft.pk)
    response = admin_client.post(
        change_url(draft), draft_post(draft, **{"rules-1-code": "SP-1", "text": "my new words"})
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "is used twice" in page
    assert "my new words" in page and 'value="Fake engagement"' in page
    assert content(draft.pk) == before


def test_diff_page_lists_rules_ladder_and_text_changes(admin_client, policy_admin):
    active = active_version("spam")
    draft = policy_version_draft_from(version=active, actor=policy_admin)
    admin_client.post(change_url(draft), draft_post(draft, text=active.text + "\nA new sentence."))
    page = admin_client.get(reverse("admin:policies_policyversion_diff", args=[draft.pk])).content.decode()
    assert "SP-9" in page and "added" in page
    removed = [r for r in active.rules if r["code"] not in ("SP-1",)]
    assert all(r["code"] in page for r in removed)
    assert "A new sentence." in page
    assert "No longer allowed" in page or "Allowed now" in page


def test_activation_asks_for_confirmation_showing_the_changes(admin_client, policy_admin):
    active = active_version("spam")
    draft = policy_version_draft_from(version=active, actor=policy_admin)
    admin_client.post(change_url(draft), draft_post(draft))
    url = reverse("admin:policies_policyversion_activate", args=[draft.pk])

    page = admin_client.get(url).content.decode()
    assert "Yes, activate" in page and "SP-9" in page and str(active) in page
    admin_client.post(url, {})  # no confirmation: nothing happens
    assert PolicyVersion.objects.get(pk=draft.pk).status == "draft"

    response = admin_client.post(url, {"confirm": "yes"})
    assert response.status_code == 302
    assert PolicyVersion.objects.get(pk=draft.pk).status == "active"
    assert PolicyVersion.objects.get(pk=active.pk).status == "retired"


def test_threat_classes_admin_lists_names(admin_client):
    page = admin_client.get("/admin/policies/threatclass/").content.decode()
    assert ThreatClass.objects.get(slug="payment_fraud").name in page
    assert "Threat classes" in page and "Threat classs" not in page
    assert "72 h" in page or "3 days" in page
