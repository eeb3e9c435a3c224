"""Password sign-in and the second factor: nothing is reachable before it, codes, recovery codes, resets."""

import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from docket.errors import DocketError
from docket.identity.services import audit_list, second_factor_reset
from tests.factories import CaseFactory
from tests.twofactor import client_sign_in, code_for, code_for_secret

pytestmark = pytest.mark.django_db

# Every page a signed-in staff user could reach, and the API through the session.
PAGES = ["/", "/dashboard/", "/escalations/", "/queues/spam/", "/queues/csam/", "/appeals/", "/admin/"]


@pytest.fixture
def cleared(make_user):
    return make_user("cleo", "moderator", clearances=["csam"], password="cleo-password-1")


def actions(account):
    return list(audit_list().filter(object_id=account).order_by("id").values_list("action", flat=True))


def test_a_cleared_users_password_reaches_no_page_before_the_second_factor(cleared):
    case = CaseFactory(kind="csam")
    client = Client()
    response = client.post("/login/", {"username": "cleo", "password": "cleo-password-1"})
    assert response.status_code == 302 and response["Location"] == "/login/enrol/"
    assert SESSION_KEY not in client.session  # nobody is signed in yet
    for url in [*PAGES, f"/cases/{case.pk}/"]:
        page = client.get(url)
        assert page.status_code == 302 and "login/" in page["Location"], url
    api = client.get("/api/v1/cases/")
    assert api.status_code in (401, 403) and api.json()["code"] in ("not_authenticated", "forbidden")
    assert client.post(f"/cases/{case.pk}/notes/", {"text": "x"})["Location"].startswith("/login/")
    assert "sign_in" not in actions("cleo")


def test_enrolment_then_signed_in_with_recovery_codes_shown_once(cleared, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    client = Client()
    client.post("/login/", {"username": "cleo", "password": "cleo-password-1"})
    page = client.get("/login/enrol/")
    assert page.status_code == 200 and b"<svg" in page.content
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7=]+)<', page.content.decode()).group(1)

    wrong = client.post("/login/enrol/", {"code": "000000"})
    assert wrong.status_code == 400 and b"not valid" in wrong.content
    assert SESSION_KEY not in client.session

    done = client.post("/login/enrol/", {"code": code_for_secret(secret)})
    assert done.status_code == 200
    codes = done.context["codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert client.session[SESSION_KEY] == str(cleared.pk)
    assert client.get("/").status_code == 200
    assert TOTPDevice.objects.get(user=cleared).confirmed
    assert actions("cleo") == ["roles_changed", "second_factor_failed", "second_factor_enrolled", "sign_in"]
    # Shown once: the enrolment page is gone for an enrolled user.
    assert Client().get("/login/enrol/")["Location"] == "/login/"


def test_sign_in_with_the_authenticator_code(cleared, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    client_sign_in(Client(), "cleo", "cleo-password-1")  # enrols
    client = Client()
    response = client.post("/login/", {"username": "cleo", "password": "cleo-password-1", "next": "/dashboard/"})
    assert response["Location"] == "/login/second-factor/"
    assert client.get("/").status_code == 302
    bad = client.post("/login/second-factor/", {"code": "123456"})
    assert bad.status_code == 400 and SESSION_KEY not in client.session
    good = client.post("/login/second-factor/", {"code": code_for("cleo")})
    assert good.status_code == 302 and good["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200
    sign_in = audit_list().filter(object_id="cleo", action="sign_in").latest("id")
    assert sign_in.detail["method"] == "password" and sign_in.detail["second_factor"] == "totp"


def test_a_code_is_not_accepted_twice(cleared, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    client_sign_in(Client(), "cleo", "cleo-password-1")
    code = code_for("cleo")
    first = Client()
    first.post("/login/", {"username": "cleo", "password": "cleo-password-1"})
    assert first.post("/login/second-factor/", {"code": code}).status_code == 302
    replay = Client()
    replay.post("/login/", {"username": "cleo", "password": "cleo-password-1"})
    assert replay.post("/login/second-factor/", {"code": code}).status_code == 400
    assert SESSION_KEY not in replay.session


def test_a_recovery_code_works_once(cleared, settings):
    settings.OTP_STATIC_THROTTLE_FACTOR = 0
    codes = client_sign_in(Client(), "cleo", "cleo-password-1")
    first = Client()
    first.post("/login/", {"username": "cleo", "password": "cleo-password-1"})
    used = first.post("/login/second-factor/", {"code": codes[0].upper()})  # as typed from paper
    assert used.status_code == 302 and first.session[SESSION_KEY] == str(cleared.pk)
    assert StaticToken.objects.filter(device__user=cleared).count() == 9

    again = Client()
    again.post("/login/", {"username": "cleo", "password": "cleo-password-1"})
    refused = again.post("/login/second-factor/", {"code": codes[0]})
    assert refused.status_code == 400 and SESSION_KEY not in again.session
    assert again.post("/login/second-factor/", {"code": codes[1]}).status_code == 302
    detail = [r.detail.get("second_factor") for r in audit_list().filter(object_id="cleo", action="sign_in")]
    assert detail.count("recovery") == 2


def test_five_wrong_codes_send_the_user_back_to_the_password(cleared, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    client_sign_in(Client(), "cleo", "cleo-password-1")
    client = Client()
    client.post("/login/", {"username": "cleo", "password": "cleo-password-1"})
    for _ in range(4):
        assert client.post("/login/second-factor/", {"code": "000000"}).status_code == 400
    assert client.post("/login/second-factor/", {"code": "000000"})["Location"] == "/login/"
    assert client.post("/login/second-factor/", {"code": code_for("cleo")})["Location"] == "/login/"
    assert SESSION_KEY not in client.session
    assert actions("cleo").count("sign_in_failed") == 5


def test_staff_without_clearance_need_no_second_factor_unless_required(make_user, settings):
    make_user("plain", "moderator", password="plain-password-1")
    client = Client()
    assert client.post("/login/", {"username": "plain", "password": "plain-password-1"})["Location"] == "/"
    assert client.get("/").status_code == 200

    settings.DOCKET_REQUIRE_2FA = True
    client = Client()
    assert client.post("/login/", {"username": "plain", "password": "plain-password-1"})["Location"] == "/login/enrol/"
    assert SESSION_KEY not in client.session


def test_the_admin_signs_in_through_the_same_rule(make_user, settings):
    settings.DOCKET_REQUIRE_2FA = True
    make_user("boss", "policy_admin", password="boss-password-1")
    client = Client()
    assert client.get("/admin/")["Location"].startswith("/admin/login/")
    form = client.get("/admin/login/?next=/admin/")
    assert form.status_code == 200 and b"Sign in to Docket" in form.content
    response = client.post("/admin/login/", {"username": "boss", "password": "boss-password-1", "next": "/admin/"})
    assert response["Location"] == "/login/enrol/"
    assert client.get("/admin/").status_code == 302
    client_sign_in(client := Client(), "boss", "boss-password-1", next_url="/admin/")
    assert client.get("/admin/").status_code == 200


def test_a_policy_admin_resets_a_lost_second_factor(cleared, make_user, settings):
    codes = client_sign_in(signed_in := Client(), "cleo", "cleo-password-1")
    assert codes
    admin = make_user("boss", "policy_admin", password="boss-password-1")
    admin_client = Client()
    admin_client.force_login(admin)
    page = admin_client.get("/admin/docket/staffaccount/")
    assert page.status_code == 200 and b"cleo" in page.content
    response = admin_client.post(
        "/admin/docket/staffaccount/", {"action": "reset_second_factor", "_selected_action": [cleared.pk]}
    )
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=cleared).exists()
    assert not StaticToken.objects.filter(device__user=cleared).exists()
    assert signed_in.get("/").status_code == 302  # signed out everywhere
    reset = audit_list().get(action="second_factor_reset", object_id="cleo")
    assert reset.username == "boss" and reset.detail["sessions_ended"] == 1
    client = Client()  # the next sign-in enrols a new authenticator
    assert client.post("/login/", {"username": "cleo", "password": "cleo-password-1"})["Location"] == "/login/enrol/"


def test_only_a_policy_admin_may_reset(cleared, make_user):
    client_sign_in(Client(), "cleo", "cleo-password-1")
    senior = make_user("sen", "senior,moderator")
    with pytest.raises(DocketError) as refused:
        second_factor_reset(user=cleared, by=senior)
    assert refused.value.code == "forbidden"
    assert TOTPDevice.objects.filter(user=cleared, confirmed=True).exists()
    client = Client()
    client.force_login(senior)
    response = client.post(
        "/admin/docket/staffaccount/", {"action": "reset_second_factor", "_selected_action": [cleared.pk]}
    )
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert TOTPDevice.objects.filter(user=cleared, confirmed=True).exists()


def test_a_pending_sign_in_expires(cleared, monkeypatch):
    client = Client()
    client.post("/login/", {"username": "cleo", "password": "cleo-password-1"})
    session = client.session
    pending = session["docket_pending_sign_in"]
    pending["at"] -= 301
    session["docket_pending_sign_in"] = pending
    session.save()
    assert client.get("/login/enrol/")["Location"] == "/login/"


def test_wrong_passwords_are_audited_and_password_sign_in_can_be_switched_off(cleared, settings):
    client = Client()
    wrong = client.post("/login/", {"username": "cleo", "password": "nope"})
    assert wrong.status_code == 200 and SESSION_KEY not in client.session
    failure = audit_list().filter(action="sign_in_failed", object_id="cleo").latest("id")
    assert failure.detail["reason"] == "bad_credentials" and failure.user_id is None

    settings.DOCKET_PASSWORD_LOGIN = False
    page = client.get("/login/")
    assert page.status_code == 200 and b'name="password"' not in page.content
    off = client.post("/login/", {"username": "cleo", "password": "cleo-password-1"})
    assert off.status_code == 403 and b"Password sign-in is off" in off.content
    assert SESSION_KEY not in client.session and "docket_pending_sign_in" not in client.session
