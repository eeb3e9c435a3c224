"""``simulate`` and ``docket_demo`` push realistic incidents through intake."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from casework.management.commands.simulate import scenario_run
from casework.models import Case, Queue, Reporter, Signal, SubjectAttribute
from policies.models import SignalSource

pytestmark = pytest.mark.django_db


def test_unknown_scenario_is_a_one_line_error():
    with pytest.raises(CommandError) as exc:
        call_command("simulate", "meteor-strike")
    assert str(exc.value) == (
        "Unknown scenario 'meteor-strike'; choose from spam-campaign, broken-classifier, brigade, ato-wave, mixed."
    )
    assert Signal.objects.count() == 0


def test_spam_campaign_accounts_share_a_device_and_a_link_domain(capsys):
    call_command("simulate", "spam-campaign", "--count", "12")

    out = capsys.readouterr().out.strip()
    assert out.startswith("spam-campaign: 15 signals (15 new; queued 15) into 12 case(s)")
    devices = SubjectAttribute.objects.filter(kind="device").values_list("value", flat=True)
    domains = SubjectAttribute.objects.filter(kind="link_domain").values_list("value", flat=True)
    assert len(devices) == 12 and len(set(devices)) == 1
    assert len(domains) == 12 and len(set(domains)) == 1
    assert set(Case.objects.values_list("threat_class__slug", flat=True)) == {"spam"}


def test_broken_classifier_bursts_after_a_quiet_week():
    tally = scenario_run("broken-classifier", count=50, seed=1)

    source = SignalSource.objects.get(slug="spam-classifier")
    assert source.kind == "classifier"
    assert tally["new"] == 7 * 24 + 50
    burst = Signal.objects.filter(source=source, external_id__contains="-clf-burst-")
    assert burst.count() == 50
    assert min(burst.values_list("score", flat=True)) >= 0.9
    # a second burst finds the history and does not backfill again
    assert scenario_run("broken-classifier", count=10, seed=2)["new"] == 10


def test_brigade_of_day_old_reporters_is_flagged():
    scenario_run("brigade", count=30, seed=1)

    victim = Case.objects.get(threat_class__slug="harassment")
    assert (victim.reporter_count, victim.brigading) == (30, True)
    assert Reporter.objects.count() == 30


def test_ato_wave_comes_from_the_rules_source():
    tally = scenario_run("ato-wave", count=8, seed=1)
    assert tally["queued"] == 8
    assert set(Signal.objects.values_list("source__slug", "source__kind").distinct()) == {("ato-rules", "rule")}
    assert SubjectAttribute.objects.filter(kind="ip").values("value").distinct().count() <= 4


def test_mixed_reaches_every_class_queue():
    scenario_run("mixed", count=60, seed=1)
    classes = {"spam", "harassment", "payment_fraud", "cib", "csam", "ato"}
    assert set(Case.objects.values_list("queue__slug", flat=True).distinct()) == classes


def test_the_same_run_twice_stores_nothing_new():
    first = scenario_run("ato-wave", count=5, run="fixed", seed=3)
    again = scenario_run("ato-wave", count=5, run="fixed", seed=3)
    assert (first["new"], again["new"]) == (5, 0)


def test_docket_demo_seeds_users_sources_and_every_queue(capsys):
    call_command("docket_demo", "--password", "demo-pass-123")

    out = capsys.readouterr().out
    User = get_user_model()
    for username in ("mod", "mod2", "senior", "appeals", "padmin", "platform"):
        assert User.objects.get(username=username).check_password("demo-pass-123")
        assert username in out
    assert get_user_model().objects.get(username="senior").reviewer.clearances == ["cib", "csam"]
    assert set(SignalSource.objects.values_list("slug", flat=True)) >= {
        "user-reports", "spam-classifier", "ato-rules", "csam-hashes", "trusted-flagger",
    }  # fmt: skip
    assert SignalSource.objects.get(slug="csam-hashes").kind == "hash_match"
    with_cases = set(Case.objects.values_list("queue__slug", flat=True).distinct())
    assert with_cases == set(Queue.objects.values_list("slug", flat=True))
    assert Case.objects.filter(priority=0).count() == 0

    before = (Signal.objects.count(), Case.objects.count())
    call_command("docket_demo")
    assert (Signal.objects.count(), Case.objects.count()) == before
    assert User.objects.get(username="mod").check_password("demo-pass-123")


def test_broken_classifier_is_caught_and_its_burst_held():
    tally = scenario_run("broken-classifier", count=60, seed=1)

    source = SignalSource.objects.get(slug="spam-classifier")
    burst = Signal.objects.filter(source=source, external_id__contains="-clf-burst-")
    assert source.status == "suspect"
    assert source.score_summary["suspected"]["anomaly"] == "score_shift"
    # the first minutes reached the queue before the health check ran; the rest waits for an admin
    assert (tally["held"], burst.filter(disposition="held").count()) == (40, 40)
    assert burst.filter(disposition="queued").count() == 20


def test_docket_demo_leaves_the_broken_classifier_suspect_with_its_signals_held(capsys):
    call_command("docket_demo", "--password", "demo-pass-123")

    out = capsys.readouterr().out
    source = SignalSource.objects.get(slug="spam-classifier")
    held = Signal.objects.filter(source=source, disposition="held").count()
    assert source.status == "suspect"
    assert held >= 40
    assert not source.incidents.filter(status="open").exists()
    assert f"source spam-classifier: suspect, holding {held} signal(s)" in out
    # the other sources are healthy: the classifier's spike is not excused by the demo's user reports
    assert set(SignalSource.objects.exclude(pk=source.pk).values_list("status", flat=True)) == {"healthy"}
