"""Second-factor helpers for tests that sign in with a password (as a person would, code and all)."""

import re
import time
from base64 import b32decode

from django.contrib.auth import get_user_model
from django_otp.oath import hotp
from django_otp.plugins.otp_totp.models import TOTPDevice


def code_for_key(bin_key, last_t=-1, drift=0, step=30):
    """The authenticator's current code for this key, or the next step's if the current one was used."""
    t = max(int(time.time()) // step + drift, last_t + 1)
    return f"{hotp(bin_key, t):06d}"


def code_for_secret(secret):
    """From the base32 key the enrolment page shows (what a person types into their app)."""
    return code_for_key(b32decode(secret))


def code_for(username):
    """The next valid code of the user's confirmed authenticator."""
    device = TOTPDevice.objects.get(user__username=username, confirmed=True)
    return code_for_key(device.bin_key, device.last_t, device.drift)


def client_sign_in(client, username, password, next_url=None):
    """Signs ``client`` in through the pages: password, then enrolment or the code when asked.

    Returns the recovery codes if this sign-in enrolled the user, else ``None``.
    """
    data = {"username": username, "password": password}
    if next_url:
        data["next"] = next_url
    response = client.post("/login/", data)
    assert response.status_code == 302, response.content[:500]
    if response["Location"] == "/login/enrol/":
        page = client.get("/login/enrol/").content.decode()
        secret = re.search(r'data-testid="totp-secret">([A-Z2-7=]+)<', page).group(1)
        done = client.post("/login/enrol/", {"code": code_for_secret(secret)})
        assert done.status_code == 200 and done.context["codes"], done.content[:500]
        return done.context["codes"]
    if response["Location"] == "/login/second-factor/":
        done = client.post("/login/second-factor/", {"code": code_for(username)})
        assert done.status_code == 302, done.content[:500]
    assert get_user_model().objects.get(username=username).pk == int(client.session["_auth_user_id"])
    return None
