from contextlib import contextmanager

import pytest

from policies.models import Threshold, ThresholdChange
from policies.services import threshold_change_approve, threshold_change_propose
from tests.factories import SourceFactory


@pytest.fixture
def second_admin(make_user):
    return make_user("padmin2", "policy_admin")


@pytest.fixture
def sources(db):
    """One scored source per kind the tests use."""
    return {
        "spam": SourceFactory(slug="spam-clf", kind="classifier"),
        "harassment": SourceFactory(slug="harassment-clf", kind="classifier"),
        "ato": SourceFactory(slug="login-risk", kind="rule"),
        "csam": SourceFactory(slug="photo-hash", kind="hash_match", trust=1.0),
    }


@pytest.fixture
def cleared_admins(make_user):
    """Two policy admins cleared for every restricted class (clearances sit on a reviewer profile: seniors too)."""
    return [make_user(f"padmin-cleared-{n}", "policy_admin,senior", clearances=["csam", "cib"]) for n in (1, 2)]


@pytest.fixture
def set_threshold(cleared_admins):
    """Move a threshold the only way there is: a proposal approved by a second admin."""
    proposer, approver = cleared_admins

    def apply(source_slug, threat_class_slug, *, auto_action_at, review_at):
        change = threshold_change_propose(
            source_slug=source_slug,
            threat_class_slug=threat_class_slug,
            auto_action_at=auto_action_at,
            review_at=review_at,
            reason="test setup",
            actor=proposer,
        )
        return threshold_change_approve(change_id=change.pk, actor=approver)

    return apply


def governance_state():
    """Everything threshold governance writes, to assert a refusal changed nothing."""
    return (
        sorted(Threshold.objects.values_list("source_id", "threat_class_id", "auto_action_at", "review_at")),
        sorted(ThresholdChange.objects.values_list("id", "status", "approved_by_id", "decided_at")),
    )


@pytest.fixture
def unchanged():
    @contextmanager
    def check():
        before = governance_state()
        yield
        assert governance_state() == before

    return check


@pytest.fixture
def no_holdout(settings):
    settings.DOCKET = {**settings.DOCKET, "HOLDOUT_RATE": 0.0}
