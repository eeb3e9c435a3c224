from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from docket.accounts import token_for


class Command(BaseCommand):
    help = "Print a user's API token (created if absent)."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, **opts):
        try:
            user = get_user_model().objects.get(username=opts["username"])
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user named {opts['username']!r}.") from None
        self.stdout.write(token_for(user))
