import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from docket.models import ApiToken as Token

pytestmark = pytest.mark.django_db


def test_docket_user_creates_roles_profile_and_prints_token(capsys):
    call_command(
        "docket_user",
        "alice",
        "--role",
        "moderator,appeals",
        "--queues",
        "spam,harassment",
        "--clearances",
        "csam",
        "--max-active",
        "5",
        "--graphic-budget",
        "10",
        "--password",
        "pw",
    )
    out = capsys.readouterr().out.strip().splitlines()
    user = get_user_model().objects.get(username="alice")
    assert out[-1] == Token.objects.get(user=user).key
    assert set(user.groups.values_list("name", flat=True)) == {"moderator", "appeals"}
    assert user.reviewer.clearances == ["csam"]
    assert user.reviewer.max_active == 5 and user.reviewer.graphic_budget == 10
    assert set(user.reviewer.queues.values_list("slug", flat=True)) == {"spam", "harassment"}
    assert user.check_password("pw")


def test_docket_user_updates_roles(capsys):
    call_command("docket_user", "bob", "--role", "moderator")
    call_command("docket_user", "bob", "--role", "policy_admin")
    user = get_user_model().objects.get(username="bob")
    assert list(user.groups.values_list("name", flat=True)) == ["policy_admin"]
    assert user.is_staff


@pytest.mark.parametrize(
    "args",
    [
        ["--role", "wizard"],
        ["--role", "moderator", "--queues", "nope"],
        ["--role", "moderator", "--clearances", "nope"],
    ],
)
def test_docket_user_refuses_bad_input_and_writes_nothing(args):
    with pytest.raises(CommandError):
        call_command("docket_user", "carol", *args)
    assert not get_user_model().objects.filter(username="carol").exists()


def test_docket_token(capsys):
    call_command("docket_user", "dave", "--role", "platform")
    capsys.readouterr()
    call_command("docket_token", "dave")
    assert capsys.readouterr().out.strip() == Token.objects.get(user__username="dave").key
    with pytest.raises(CommandError):
        call_command("docket_token", "nobody")


def test_policy_admin_group_has_admin_permissions():
    perms = set(Group.objects.get(name="policy_admin").permissions.values_list("codename", flat=True))
    assert {"change_threatclass", "add_policyversion", "change_reviewer", "view_case"} <= perms
    assert "change_case" not in perms
