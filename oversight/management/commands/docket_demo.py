"""``manage.py docket_demo``: users for every role, the sources, and a realistic incident in every queue.

Idempotent: users are updated, not duplicated; the incident uses fixed external
ids, so intake stores nothing new on a second run; escalations happen once.
The generated password is kept in the data folder so later runs can print it.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.test import override_settings

from appeals.services import appeal_file
from casework.campaigns import campaigns_detect
from casework.hygiene import sources_check_health, sources_overview
from casework.management.commands.simulate import scenario_run, sources_ensure
from casework.models import Case
from casework.priority import cases_reprioritise_all
from docket.errors import DocketError
from policies.models import VIOLATIONS, ThresholdChange
from policies.services import threshold_change_propose
from reviews.accounts import user_upsert
from reviews.models import Decision
from reviews.services import active_version_for, case_escalate, decision_make, queue_claim

USERS = [
    # username, roles, clearances
    ("mod", ["moderator"], None),
    ("mod2", ["moderator"], None),
    ("senior", ["senior", "moderator"], ["csam", "cib"]),
    ("appeals", ["appeals"], None),
    ("padmin", ["policy_admin"], None),
    ("padmin2", ["policy_admin"], None),
    ("platform", ["platform"], None),
]
# The broken classifier first: once the health check marks it suspect it holds everything it sends,
# the spam campaign's detections included, until an admin confirms or quarantines it.
INCIDENT = [("broken-classifier", 60), ("spam-campaign", 40), ("brigade", 30), ("ato-wave", 25), ("mixed", 60)]
RUN = "demo"


def _password_file():
    return settings.DOCKET_DATA_DIR / "demo-password"


def _stored_password():
    path = _password_file()
    return path.read_text().strip() if path.exists() else None


def _new_password():
    password = secrets.token_urlsafe(12)
    path = _password_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return password


class Command(BaseCommand):
    help = "Seed a demo: users for every role (password printed), sources, and an incident in every queue."

    def add_arguments(self, parser):
        parser.add_argument("--password", help="password for every demo user (default: generated once)")

    def handle(self, *args, password=None, **opts):
        User = get_user_model()
        existing = set(User.objects.filter(username__in=[u for u, _, _ in USERS]).values_list("username", flat=True))
        shown = password
        if password is None and len(existing) < len(USERS):
            password = _stored_password() or _new_password()
            shown = password
        shown = shown or _stored_password() or "(unchanged)"
        try:
            for username, role_names, clearances in USERS:
                user_upsert(
                    username=username,
                    role_names=role_names,
                    clearances=clearances,
                    password=password if (opts.get("password") or username not in existing) else None,
                )
        except DocketError as e:
            raise CommandError(e.detail) from e
        sources_ensure()

        for name, count in INCIDENT:
            tally = scenario_run(name, count=count, run=f"{RUN}-{name}", seed=len(name))
            self.stdout.write(f"{name}: {tally['new']} new signal(s) in {tally['cases']} case(s)")
        self._escalate()
        work = self._workflows()
        if work:
            self.stdout.write(work)
        cases_reprioritise_all()
        # What beat would find within minutes, found now: the demo opens on
        # campaigns and source health, not on an empty campaigns page.
        found = campaigns_detect()
        sources_check_health()
        self.stdout.write(f"campaigns: {found['created']} detected")
        for source in sources_overview(user=None):  # no reader: held signals of unrestricted classes
            if source.status != "healthy":
                self.stdout.write(f"source {source.slug}: {source.status}, holding {source.held} signal(s)")

        per_queue = Case.objects.values_list("queue__slug").order_by("queue__slug")
        counts = {}
        for (slug,) in per_queue:
            counts[slug] = counts.get(slug, 0) + 1
        self.stdout.write("cases by queue: " + ", ".join(f"{q} {n}" for q, n in counts.items()))
        self.stdout.write("")
        self.stdout.write(f"Demo logins (password: {shown}):")
        for username, role_names, clearances in USERS:
            extra = ""
            if clearances:
                extra = f", clearances {','.join(clearances)} (sets up a second factor at first sign-in)"
            self.stdout.write(f"  {username:<9} {'+'.join(role_names)}{extra}")

    def _workflows(self):
        """Work waiting for every role on first sign-in, made once through the services.

        ``mod2`` decides a few cases (each sampled for QA, so the other
        moderators find second reviews), the platform appeals two of those
        decisions (appeals staff find them), and ``padmin2`` proposes a
        threshold change (``padmin`` finds it waiting for a second admin).
        Returns a one-line tally, or ``""`` when it was done before.
        """
        User = get_user_model()
        mod2, platform, padmin2 = (User.objects.get(username=u) for u in ("mod2", "platform", "padmin2"))
        if Decision.objects.filter(reviewer__user=mod2).exists():
            return ""
        decisions = []
        # These demo decisions are all sampled for QA.
        with override_settings(DOCKET={**settings.DOCKET, "QA_SAMPLE_RATE": 1.0}):
            for queue_slug in ("spam", "harassment", "spam", "harassment"):
                assignment = queue_claim(reviewer=mod2, queue_slug=queue_slug)
                if assignment is None:
                    continue
                version = active_version_for(assignment.case.threat_class)
                action = next(a for a in version.ladder if a in VIOLATIONS and a not in ("suspend", "legal_report"))
                decisions.append(
                    decision_make(
                        case_id=assignment.case_id,
                        reviewer=mod2,
                        action=action,
                        rule=version.rules[0]["code"],
                        rationale="Demo: matches the rule on first read.",
                    )
                )
        appeals = 0
        for decision in decisions[:2]:
            appeal_file(
                decision_id=decision.pk,
                appellant=decision.case.subject.external_id,
                statement="I did not do this; my account was shared with a friend that week.",
                actor=platform,
            )
            appeals += 1
        proposed = 0
        if not ThresholdChange.objects.filter(status="proposed").exists():
            threshold_change_propose(
                source_slug="spam-classifier",
                threat_class_slug="spam",
                auto_action_at=0.97,
                review_at=0.6,
                reason="Demo: classifier v7 is better calibrated; automate only the surest removals.",
                actor=padmin2,
            )
            proposed = 1
        return (
            f"workflows: {len(decisions)} decision(s) by mod2 sampled for QA, {appeals} appeal(s) filed, "
            f"{proposed} threshold change proposed"
        )

    def _escalate(self):
        """A senior sends a few cases to the escalations and legal queues, once."""
        if Case.objects.filter(queue__slug__in=["escalations", "legal"]).exists():
            return
        senior = get_user_model().objects.get(username="senior")
        picks = [
            ("harassment", "escalations", "Creator with 250k followers; possible brigade, needs a senior look."),
            ("ato", "escalations", "Wave from four IPs; check for a credential-stuffing list."),
            ("csam", "legal", "Hash match; legal report and preservation needed."),
        ]
        for threat, queue, reason in picks:
            case = Case.objects.active().filter(threat_class__slug=threat, status="open").order_by("-reach").first()
            if case is not None:
                case_escalate(case_id=case.pk, actor=senior, queue_slug=queue, reason=reason)
