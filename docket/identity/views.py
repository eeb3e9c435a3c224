"""Sign-in pages: password, then the second factor (or its enrolment) before any session exists.

A password that needs a second factor signs nobody in: the session only remembers, for a few
minutes, whose password was right. The user is signed in (``session_begin``) once the code is.
"""

import time
from base64 import b32encode

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

from docket.errors import DocketError
from docket.security import ThrottledAuthenticationForm

from . import oidc, services

PENDING = "docket_pending_sign_in"
MAX_CODE_FAILURES = 5


class LoginView(auth_views.LoginView):
    """Password sign-in (unless switched off), beside the single sign-on button when configured."""

    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True
    template_name = "registration/login.html"

    def get_context_data(self, **kwargs):
        return {
            **super().get_context_data(**kwargs),
            "password_login": settings.DOCKET_PASSWORD_LOGIN,
            "oidc_enabled": oidc.enabled(),
        }

    def post(self, request, *args, **kwargs):
        if not settings.DOCKET_PASSWORD_LOGIN:
            services.sign_in_failed(
                username=request.POST.get("username", ""),
                method="password",
                reason="password_login_off",
                request=request,
            )
            return render(request, "identity/refused.html", {"reason": "password_login_off"}, status=403)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        codes = {e.code for e in form.non_field_errors().as_data()}
        throttle = codes & {"throttled", "throttle_unavailable"}  # refused before any password check
        services.sign_in_failed(
            username=form.data.get("username", ""),
            method="password",
            reason=throttle.pop() if throttle else "bad_credentials",
            request=self.request,
        )
        return super().form_invalid(form)

    def form_valid(self, form):
        user = form.get_user()
        if not services.second_factor_required(user):
            services.session_begin(self.request, user=user, method="password", backend=user.backend)
            return HttpResponseRedirect(self.get_success_url())
        self.request.session[PENDING] = {
            "user": user.pk,
            "backend": user.backend,
            "at": time.time(),
            "next": self.get_success_url(),
            "failures": 0,
        }
        if services.second_factor_enrolled(user):
            return redirect("identity:login-second-factor")
        return redirect("identity:login-enrol")


class AdminLoginView(LoginView):
    """The admin's sign-in: the same page and rules; a signed-in user without admin rights sees it too
    (sending them on would loop between the admin and this page)."""

    redirect_authenticated_user = False

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "admin_refused": self.request.user.is_authenticated}


def _pending_user(request):
    """The user whose password was right a moment ago, or ``None`` (expired, or none)."""
    pending = request.session.get(PENDING)
    if not pending or time.time() - pending["at"] > services.PENDING_SECONDS:
        request.session.pop(PENDING, None)
        return None, None
    user = get_user_model().objects.filter(pk=pending["user"], is_active=True).first()
    return user, pending


def _start_again(request):
    request.session.pop(PENDING, None)
    messages.error(request, "Your sign-in expired. Enter your username and password again.")
    return redirect("identity:login")


def _next(request, pending):
    url = pending.get("next") or reverse(settings.LOGIN_REDIRECT_URL)
    if not url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}):
        url = reverse(settings.LOGIN_REDIRECT_URL)
    return url


def _finish(request, user, pending, second_factor):
    request.session.pop(PENDING, None)
    services.session_begin(
        request, user=user, method="password", backend=pending["backend"], second_factor=second_factor
    )


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def second_factor(request):
    """The code from the authenticator app, or a recovery code."""
    user, pending = _pending_user(request)
    if user is None:
        return _start_again(request)
    if not services.second_factor_enrolled(user):
        return redirect("identity:login-enrol")
    error = None
    if request.method == "POST":
        try:
            kind = services.second_factor_verify(user=user, code=request.POST.get("code", ""), request=request)
        except DocketError as e:
            pending["failures"] += 1
            request.session[PENDING] = pending
            services.sign_in_failed(
                username=user.get_username(), method="password", reason="bad_second_factor", request=request
            )
            if pending["failures"] >= MAX_CODE_FAILURES:
                return _start_again(request)
            error = e.detail
        else:
            url = _next(request, pending)
            _finish(request, user, pending, kind)
            if kind == "recovery":
                messages.warning(
                    request,
                    "You signed in with a recovery code; it will not work again. "
                    "Ask a policy admin to reset your second factor if your authenticator is lost.",
                )
            return HttpResponseRedirect(url)
    return render(
        request,
        "identity/second_factor.html",
        {"username": user.get_username(), "error": error},
        status=400 if error else 200,
    )


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def enrol(request):
    """First sign-in (or after a reset): set up the authenticator, then see the recovery codes once."""
    user, pending = _pending_user(request)
    if user is None:
        return _start_again(request)
    if services.second_factor_enrolled(user):
        return redirect("identity:login-second-factor")
    device = services.second_factor_enrol_begin(user=user)
    error = None
    if request.method == "POST":
        try:
            codes = services.second_factor_enrol_confirm(user=user, code=request.POST.get("code", ""), request=request)
        except DocketError as e:
            error = e.detail
        else:
            url = _next(request, pending)
            _finish(request, user, pending, "totp")
            return render(request, "identity/recovery_codes.html", {"codes": codes, "next": url})
    secret = b32encode(device.bin_key).decode()
    qr = segno.make(device.config_url, error="m").svg_inline(scale=4, title="Authenticator set-up code")
    return render(
        request,
        "identity/enrol.html",
        {"username": user.get_username(), "secret": secret, "qr": qr, "error": error},
        status=400 if error else 200,
    )
