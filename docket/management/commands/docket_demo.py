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

from casework.hygiene import sources_check_health, sources_overview
from casework.management.commands.simulate import scenario_run, sources_ensure
from casework.models import Case
from casework.priority import cases_reprioritise_all
from docket.accounts import user_upsert
from docket.errors import DocketError

USERS = [
    # username, roles, clearances
    ("mod", ["moderator"], None),
    ("mod2", ["moderator"], None),
    ("senior", ["senior", "moderator"], ["csam", "cib"]),
    ("appeals", ["appeals"], None),
    ("padmin", ["policy_admin"], None),
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
        cases_reprioritise_all()
        # What beat would find within minutes, found now: the demo opens on
        # campaigns and source health, not on an empty campaigns page.
        from casework.campaigns import campaigns_detect

        found = campaigns_detect()
        sources_check_health()
        self.stdout.write(f"campaigns: {found['created']} detected")
        for source in sources_overview():
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
            extra = f", clearances {','.join(clearances)}" if clearances else ""
            self.stdout.write(f"  {username:<9} {'+'.join(role_names)}{extra}")

    def _escalate(self):
        """A senior sends a few cases to the escalations and legal queues, once."""
        if Case.objects.filter(queue__slug__in=["escalations", "legal"]).exists():
            return
        try:
            from reviews.services import case_escalate
        except ImportError:  # reviews not there yet: the class queues still have their cases
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
