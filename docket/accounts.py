"""API tokens of users: what the core needs of accounts (roles and reviewer profiles: ``reviews.accounts``)."""

from docket.identity.services import token_issue


def token_for(user):
    """The user's API token key (created if absent)."""
    return token_issue(user=user).key
