"""The hook registry: a lower layer calls what a higher layer registered, and a missing provider fails loudly."""

import pytest

from appeals.selectors import enforcement_notices
from appeals.services import appeals_purge_personal_data
from casework import retention
from casework import selectors as casework_selectors
from casework.intake import automated_decisions
from docket.hooks import Contributions, Hook, HookMissing
from docket.identity import services as identity_services
from policies import services as policies_services
from reviews import identity as reviews_identity
from reviews import retention as reviews_retention
from reviews import selectors as reviews_selectors
from reviews.services import decisions_automated, relabel_sample_start
from reviews.webhooks import payload_notices


def test_a_hook_calls_its_registered_provider_and_a_new_registration_replaces_it():
    hook = Hook("tests.greeting")
    hook.register(lambda name: f"hello {name}")
    assert hook("reviewer") == "hello reviewer"
    hook.register(lambda name: f"bye {name}")
    assert hook("reviewer") == "bye reviewer"


def test_a_hook_with_no_provider_refuses_instead_of_skipping_the_effect():
    hook = Hook("tests.nobody")
    with pytest.raises(HookMissing, match="tests.nobody"):
        hook()


def first(**kwargs):
    return "first"


def second(**kwargs):
    return "second"


def test_contributions_run_in_registration_order_and_a_function_registered_twice_counts_once():
    purgers = Contributions("tests.purgers")
    purgers.register(first)
    purgers.register(second)
    purgers.register(first)  # ready() run again (a test re-running app set-up) adds nothing
    assert [f() for f in purgers] == ["first", "second"]
    assert len(purgers) == 2


def test_the_upper_layers_register_their_providers_at_start_up():
    """Each cross-layer effect is wired when Django is ready (docs/architecture.md lists them)."""

    assert payload_notices.provider is enforcement_notices
    assert list(casework_selectors.case_display_prefetches) == [reviews_selectors.case_display_prefetches]
    assert casework_selectors.strike_actions.provider is reviews_selectors.strike_actions
    assert list(retention.personal_data_purgers) == [
        reviews_retention.decisions_purge_personal_data,
        appeals_purge_personal_data,
    ]
    assert list(retention.export_contributions) == [reviews_retention.case_export_items]
    assert casework_selectors.blind_decisions.provider is reviews_selectors.decisions_blind_to
    assert automated_decisions.provider is decisions_automated
    assert identity_services.user_clearances.provider is reviews_identity.clearances_of
    assert identity_services.grants_apply.provider is reviews_identity.grants_apply
    assert list(policies_services.version_activated) == [relabel_sample_start]
    assert policies_services.signals_since.provider is casework_selectors.signals_since
