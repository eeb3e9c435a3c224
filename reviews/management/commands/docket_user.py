from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from docket.errors import DocketError
from docket.identity.services import token_issue
from reviews.accounts import user_upsert


def _csv(value):
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


class Command(BaseCommand):
    help = "Create or update a user with roles (and a reviewer profile); prints the API token last."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, help="Comma-separated: moderator,senior,appeals,...")
        parser.add_argument("--queues", help="Comma-separated queue slugs the reviewer works.")
        parser.add_argument("--clearances", help="Comma-separated threat class slugs, e.g. csam,cib.")
        parser.add_argument("--max-active", type=int)
        parser.add_argument("--graphic-budget", type=int)
        parser.add_argument("--password")
        parser.add_argument(
            "--expires-days",
            "--token-expires-days",
            dest="expires_days",
            type=int,
            metavar="N",
            help="The API token expires N days from now (e.g. a service account's; 0: now).",
        )

    def handle(self, *args, **opts):
        try:
            with transaction.atomic():
                user = user_upsert(
                    username=opts["username"],
                    role_names=_csv(opts["role"]),
                    password=opts["password"],
                    queues=_csv(opts["queues"]),
                    clearances=_csv(opts["clearances"]),
                    max_active=opts["max_active"],
                    graphic_budget=opts["graphic_budget"],
                )
                token = token_issue(user=user, expires_days=opts["expires_days"])
        except DocketError as e:
            raise CommandError(e.detail) from None
        self.stdout.write(f"{user.username}: {', '.join(sorted(user._docket_roles))}")
        if token.expires_at is not None:
            self.stdout.write(f"token expires at {token.expires_at.isoformat()}")
        self.stdout.write(token.key)
