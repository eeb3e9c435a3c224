from django.core.management.base import BaseCommand, CommandError

from docket.accounts import token_for, user_upsert
from docket.errors import DocketError


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

    def handle(self, *args, **opts):
        try:
            user = user_upsert(
                username=opts["username"],
                role_names=_csv(opts["role"]),
                password=opts["password"],
                queues=_csv(opts["queues"]),
                clearances=_csv(opts["clearances"]),
                max_active=opts["max_active"],
                graphic_budget=opts["graphic_budget"],
            )
        except DocketError as e:
            raise CommandError(e.detail) from None
        self.stdout.write(f"{user.username}: {', '.join(sorted(user._docket_roles))}")
        self.stdout.write(token_for(user))
