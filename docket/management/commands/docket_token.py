from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from docket.errors import DocketError
from docket.identity.services import token_issue


class Command(BaseCommand):
    help = "Print a user's API token (created if absent); --rotate replaces it, --expires-days sets its expiry."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--expires-days",
            type=int,
            metavar="N",
            help="The token expires N days from now (0: now, which revokes it).",
        )
        parser.add_argument("--rotate", action="store_true", help="Replace the token: the old one stops working now.")

    def handle(self, *args, **opts):
        try:
            user = get_user_model().objects.get(username=opts["username"])
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user named {opts['username']!r}.") from None
        try:
            token = token_issue(user=user, expires_days=opts["expires_days"], rotate=opts["rotate"])
        except DocketError as e:
            raise CommandError(e.detail) from None
        if token.expires_at is not None:
            state = "expired" if token.is_expired() else "expires"
            self.stderr.write(f"{user.username}: token {state} at {token.expires_at.isoformat()}")
        self.stdout.write(token.key)
