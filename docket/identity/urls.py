from django.contrib.auth import views as auth_views
from django.urls import path

from . import oidc, views

app_name = "identity"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("login/second-factor/", views.second_factor, name="login-second-factor"),
    path("login/enrol/", views.enrol, name="login-enrol"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("oidc/authenticate/", oidc.OIDCStartView.as_view(), name="oidc-start"),
    path("oidc/callback/", oidc.OIDCCallbackView.as_view(), name="oidc-callback"),
    # The admin signs in through the same pages (same second-factor rule), not its own form.
    path("admin/login/", views.AdminLoginView.as_view(), name="admin-login"),
]
