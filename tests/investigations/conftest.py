"""A small investigation world built through intake: accounts and content with shared attributes."""

from types import SimpleNamespace

import pytest

from casework.intake import signals_ingest
from casework.models import Case
from reviews.accounts import user_upsert
from tests.factories import SourceFactory

_counter = iter(range(1, 1_000_000))


def ingest(platform, *, subject, threat_class="spam", reporter="u-rep-1", source="user-reports", **subject_fields):
    """One signal through intake; returns its case (or None)."""
    kind, external_id = subject.split(":", 1)
    item = {
        "source": source,
        "external_id": f"inv-{next(_counter)}",
        "threat_class": threat_class,
        "subject": {"kind": kind, "external_id": external_id, **subject_fields},
        "reason": "investigation world",
    }
    if source == "user-reports":
        item["reporter"] = reporter
    else:
        item["score"] = 0.1
    result = signals_ingest(items=item, actor=platform)
    assert result.status in (200, 201), result.body
    case_id = result.body["case"]
    return Case.objects.get(pk=case_id) if case_id else None


@pytest.fixture
def inv(db, platform, make_user, settings):
    """Accounts linked through a device and a payment, an over-shared IP, content with its owner."""
    settings.DOCKET = {**settings.DOCKET, "CAMPAIGN_MAX_VALUE_SHARE": 3}
    w = SimpleNamespace(platform=platform)
    w.moderator = make_user("inv-mod", "moderator", queues=["spam", "harassment"])
    w.senior = make_user("inv-senior", "senior,moderator", clearances=["csam", "cib"])
    w.decider = user_upsert(username="inv-decider", role_names=["moderator"], clearances=["csam", "cib"], max_active=9)
    cdn = "198.51.100.1"  # shared by five accounts: more than the max share of 3
    w.alice = ingest(
        platform,
        subject="account:alice-1",
        reach=500,
        attributes={"ip": ["203.0.113.7", cdn], "device": ["dev-a"], "email_hash": ["eh-1"]},
        reporter="rep-alpha",
    )
    w.bob = ingest(
        platform, subject="account:bob-1", attributes={"device": ["dev-a"], "payment": ["pay-9"], "ip": [cdn]}
    )
    w.carol = ingest(platform, subject="account:carol-1", attributes={"payment": ["pay-9"], "ip": [cdn]})
    for n in range(2):
        ingest(platform, subject=f"account:crowd-{n}", attributes={"ip": [cdn]})
    w.post = ingest(
        platform,
        subject="content:post-77",
        owner="alice-1",
        attributes={"link_domain": ["spam.example"]},
        reporter="rep-beta",
    )
    # Only restricted: a csam case (its subject shares alice's device).
    w.hidden = ingest(platform, subject="account:hidden-1", threat_class="csam", attributes={"device": ["dev-a"]})
    # Mixed: a spam case and a csam case on one account.
    w.mixed_spam = ingest(platform, subject="account:mixed-1", attributes={"ip": ["192.0.2.55"]})
    w.mixed_csam = ingest(platform, subject="account:mixed-1", threat_class="csam")
    SourceFactory(slug="inv-clf", kind="classifier")
    return w
