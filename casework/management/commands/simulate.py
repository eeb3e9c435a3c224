"""``manage.py simulate SCENARIO [--count N]``: a synthetic incident through the intake path the API uses.

Scenarios (what T&S sees in a real escalation):

- ``spam-campaign``: N accounts created in a wave, sharing a device and a link
  domain, flagged by the spam classifier and by a few user reports;
- ``broken-classifier``: the spam classifier, after a quiet week (backfilled
  when it has no history), suddenly emits N junk scores on unrelated accounts;
  its first minutes reach the queue, then the health check the beat runs every
  few minutes finds the uncorroborated score shift, marks the classifier
  suspect, and the rest of the burst is held for an admin;
- ``brigade``: N reporters first seen a day ago report one victim account for
  harassment within minutes;
- ``ato-wave``: the ATO rules flag N accounts logging in from a handful of IPs
  (credential stuffing);
- ``mixed``: all of the above at smaller counts, over ordinary background reports
  in every class (including CSAM hash matches and CIB reports).
"""

from __future__ import annotations

import random
import secrets
from collections import Counter
from datetime import datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from casework.hygiene import HealthRules, sources_check_health
from casework.intake import signals_ingest
from policies.models import SignalSource

SOURCES = {
    "user-reports": ("User reports", "user_report", 0.6),
    "spam-classifier": ("Spam classifier", "classifier", 0.8),
    "ato-rules": ("Account-takeover rules", "rule", 0.9),
    "csam-hashes": ("CSAM hash matches", "hash_match", 1.0),
    "trusted-flagger": ("Trusted flagger programme", "trusted_flagger", 1.0),
}
BATCH = 1000
ACTOR = "simulate"


def sources_ensure() -> None:
    """Register the sources the scenarios use (idempotent; existing ones are left as they are)."""
    for slug, (name, kind, trust) in SOURCES.items():
        SignalSource.objects.get_or_create(slug=slug, defaults={"name": name, "kind": kind, "trust": trust})


def _account(external_id, *, reach, **attributes):
    subject = {"kind": "account", "external_id": external_id, "reach": reach}
    if attributes:
        subject["attributes"] = {k: v if isinstance(v, list) else [v] for k, v in attributes.items()}
    return subject


def _at(when: datetime) -> str:
    return when.isoformat()


def spam_campaign(run, count, now, rng):
    items = []
    for i in range(count):
        account = _account(
            f"u-{run}-spam-{i}",
            reach=rng.randint(20, 400),
            device=f"dev-{run}-farm",
            link_domain=f"cheap-followers-{run}.example",
            ip=f"198.51.100.{rng.randint(1, 254)}",
        )
        at = now - timedelta(minutes=rng.randint(0, 50))
        items.append(
            {
                "source": "spam-classifier",
                "external_id": f"{run}-spam-clf-{i}",
                "threat_class": "spam",
                "subject": account,
                "score": round(rng.uniform(0.72, 0.97), 3),
                "reason": "promotional link in bio, templated DMs",
                "occurred_at": _at(at),
            }
        )
        if i % 4 == 0:
            items.append(
                {
                    "source": "user-reports",
                    "external_id": f"{run}-spam-rep-{i}",
                    "threat_class": "spam",
                    "subject": account,
                    "reporter": f"r-{run}-{rng.randint(0, count)}",
                    "reason": "keeps DMing me a followers link",
                    "occurred_at": _at(at + timedelta(minutes=2)),
                }
            )
    return items


def broken_classifier(run, count, now, rng, *, history=True):
    items = []
    source = SignalSource.objects.filter(slug="spam-classifier").first()
    recent = source.signals.filter(occurred_at__gte=now - timedelta(days=28)).count() if source else 0
    if history and recent < 100:
        # A quiet week first, so the burst stands out against a baseline.
        for h in range(7 * 24, 0, -1):
            items.append(
                {
                    "source": "spam-classifier",
                    "external_id": f"{run}-clf-history-{h}",
                    "threat_class": "spam",
                    "subject": _account(f"u-{run}-clf-hist-{h % 40}", reach=rng.randint(10, 300)),
                    "score": round(rng.betavariate(2, 8), 3),
                    "reason": "routine scan",
                    "occurred_at": _at(now - timedelta(hours=h, minutes=rng.randint(0, 59))),
                }
            )
    for i in range(count):
        items.append(
            {
                "source": "spam-classifier",
                "external_id": f"{run}-clf-burst-{i}",
                "threat_class": "spam",
                "subject": _account(f"u-{run}-clf-victim-{i}", reach=rng.randint(10, 5000)),
                # the junk: a model rollout that scores nearly everything as spam
                "score": round(rng.uniform(0.9, 1.0), 3),
                "reason": "model v7 rollout",
                # over the last ten minutes, oldest first
                "occurred_at": _at(now - timedelta(seconds=600 * (count - i) // count)),
            }
        )
    return items


def broken_classifier_caught(run, count, now, rng):
    """The burst in two phases, as the beat sees it: the first minutes (enough signals for the
    health check to judge) reach the queue, the health check runs, the rest arrives."""
    items = broken_classifier(run, count, now, rng)
    rules = HealthRules.from_settings()
    rest = max(count - max(rules.min_spike, rules.min_scored), 0)
    return [items[: len(items) - rest], items[len(items) - rest :]]


def brigade(run, count, now, rng):
    victim = _account(f"u-{run}-creator", reach=250_000)
    items = []
    for i in range(count):
        reporter = f"r-{run}-brigade-{i}"
        # each brigade account's first activity, a day ago: it makes them one day old
        items.append(
            {
                "source": "user-reports",
                "external_id": f"{run}-brigade-first-{i}",
                "threat_class": "spam",
                "subject": _account(f"u-{run}-decoy", reach=5),
                "reporter": reporter,
                "reason": "spam",
                "occurred_at": _at(now - timedelta(days=1, minutes=10 + i)),
            }
        )
        items.append(
            {
                "source": "user-reports",
                "external_id": f"{run}-brigade-{i}",
                "threat_class": "harassment",
                "subject": victim,
                "reporter": reporter,
                "reason": rng.choice(["harassing me", "hate", "bullying", "report this account"]),
                "occurred_at": _at(now - timedelta(seconds=rng.randint(0, 900))),
            }
        )
    return items


def ato_wave(run, count, now, rng):
    ips = [f"203.0.113.{n}" for n in rng.sample(range(1, 255), 4)]
    return [
        {
            "source": "ato-rules",
            "external_id": f"{run}-ato-{i}",
            "threat_class": "ato",
            "subject": _account(f"u-{run}-ato-{i}", reach=rng.randint(50, 20_000), ip=rng.choice(ips)),
            "score": round(rng.uniform(0.8, 0.99), 3),
            "reason": "new device + password change + email change within 5 minutes",
            "occurred_at": _at(now - timedelta(minutes=rng.randint(0, 30))),
        }
        for i in range(count)
    ]


def background(run, count, now, rng):
    """Ordinary traffic in every class, so every queue has work."""
    items = []
    for i in range(count):
        kind = ["spam", "harassment", "payment_fraud", "cib", "csam", "harassment"][i % 6]
        at = _at(now - timedelta(minutes=rng.randint(0, 240)))
        base = {"external_id": f"{run}-bg-{i}", "threat_class": kind, "occurred_at": at}
        if kind == "csam":
            base |= {
                "source": "csam-hashes",
                "score": 1.0,
                "subject": {
                    "kind": "content",
                    "external_id": f"p-{run}-{i}",
                    "owner": f"u-{run}-bg-owner-{i}",
                    "reach": rng.randint(1, 300),
                },
                "reason": "PhotoDNA match",
            }
        elif kind == "cib" and i % 2:
            base |= {
                "source": "trusted-flagger",
                "subject": _account(f"u-{run}-bg-{i}", reach=rng.randint(100, 50_000), device=f"dev-{run}-cib"),
                "reason": "network of sock puppets amplifying a candidate",
            }
        else:
            base |= {
                "source": "user-reports",
                "subject": _account(f"u-{run}-bg-{i}", reach=rng.randint(10, 30_000)),
                "reporter": f"r-{run}-bg-{rng.randint(0, count)}",
                "reason": {"spam": "spam", "harassment": "abusive replies", "payment_fraud": "never shipped"}.get(
                    kind, "fake accounts"
                ),
            }
        items.append(base)
    return items


def mixed(run, count, now, rng):
    part = max(count // 5, 5)
    return (
        spam_campaign(run, part, now, rng)
        + broken_classifier(run, part, now, rng, history=False)
        + brigade(run, min(part, 30), now, rng)
        + ato_wave(run, part, now, rng)
        + background(run, part * 2, now, rng)
    )


SCENARIOS = {
    "spam-campaign": (spam_campaign, 60),
    "broken-classifier": (broken_classifier_caught, 300),
    "brigade": (brigade, 30),
    "ato-wave": (ato_wave, 40),
    "mixed": (mixed, 200),
}


def scenario_run(name: str, *, count: int | None = None, run: str | None = None, seed: int | None = None) -> Counter:
    """Push scenario ``name`` through ``signals_ingest``; returns dispositions counted.

    A scenario built in phases has the sources' health checked between them.

    ``run`` prefixes every external id: the same run twice stores nothing new
    (intake's idempotency), a new run is a new incident.
    """
    if name not in SCENARIOS:
        raise CommandError(f"Unknown scenario '{name}'; choose from {', '.join(SCENARIOS)}.")
    build, default = SCENARIOS[name]
    count = default if count is None else count
    if count < 1:
        raise CommandError("--count must be at least 1.")
    run = run or f"sim{timezone.now():%m%d%H%M%S}{secrets.token_hex(2)}"
    rng = random.Random(seed if seed is not None else run)
    with transaction.atomic():
        sources_ensure()
    built = build(run, count, timezone.now(), rng)
    phases = built if built and isinstance(built[0], list) else [built]
    tally: Counter = Counter()
    cases = set()
    for phase, items in enumerate(phases):
        if phase:
            sources_check_health()  # what the beat runs every few minutes, between the phases
        for start in range(0, len(items), BATCH):
            result = signals_ingest(items=items[start : start + BATCH], actor=ACTOR)
            tally.update(r["disposition"] for r in result.results)
            tally["new"] += result.created
            cases.update(r["case"] for r in result.results if r["case"])
    tally["cases"] = len(cases)
    return tally


class Command(BaseCommand):
    help = "Push a synthetic incident through intake: " + ", ".join(SCENARIOS) + "."

    def add_arguments(self, parser):
        parser.add_argument("scenario", help=", ".join(SCENARIOS))
        parser.add_argument("--count", type=int, help="size of the incident (scenario default otherwise)")
        parser.add_argument("--seed", type=int, help="random seed (default: from the run id)")

    def handle(self, *args, scenario, count, seed, **opts):
        tally = scenario_run(scenario, count=count, seed=seed)
        stored = sum(tally[d] for d in ("queued", "auto_actioned", "held", "below_threshold"))
        detail = ", ".join(
            f"{d} {tally[d]}" for d in ("queued", "auto_actioned", "held", "below_threshold") if tally[d]
        )
        self.stdout.write(f"{scenario}: {stored} signals ({tally['new']} new; {detail}) into {tally['cases']} case(s)")
