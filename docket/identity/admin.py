"""Staff accounts in the admin: roles, second factor, API token (expiry, last use); a policy admin resets
a lost second factor here."""

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef
from django_otp.plugins.otp_totp.models import TOTPDevice

from docket import roles
from docket.admin import ReadOnlyAdmin

from . import services
from .models import StaffAccount


@admin.register(StaffAccount)
class StaffAccountAdmin(ReadOnlyAdmin):
    list_display = [
        "username",
        "role_names",
        "second_factor",
        "token_created",
        "token_expires",
        "token_last_used",
        "last_login",
        "is_active",
    ]
    list_filter = ["groups", "is_active"]
    search_fields = ["username"]
    fields = ["username", "is_active", "last_login", "date_joined"]
    actions = ["reset_second_factor"]

    def get_queryset(self, request):
        enrolled = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
        return (
            super()
            .get_queryset(request)
            .select_related("api_token")
            .prefetch_related("groups")
            .annotate(second_factor_enrolled=Exists(enrolled))
        )

    @admin.display(description="roles")
    def role_names(self, obj):
        return ", ".join(sorted(g.name for g in obj.groups.all())) or "—"

    @admin.display(description="second factor", boolean=True)
    def second_factor(self, obj):
        return obj.second_factor_enrolled

    def _token(self, obj):
        return getattr(obj, "api_token", None)

    @admin.display(description="token created")
    def token_created(self, obj):
        token = self._token(obj)
        return token.created_at if token else None

    @admin.display(description="token expires")
    def token_expires(self, obj):
        token = self._token(obj)
        return token.expires_at if token else None

    @admin.display(description="token last used")
    def token_last_used(self, obj):
        token = self._token(obj)
        return token.last_used_at if token else None

    def has_reset_permission(self, request):
        return request.user.is_superuser or roles.has(request.user, roles.POLICY_ADMIN)

    @admin.action(description="Reset the second factor (they set up a new one at next sign-in)", permissions=["reset"])
    def reset_second_factor(self, request, queryset):
        for user in queryset:
            services.second_factor_reset(user=user, by=request.user, request=request)
        self.message_user(request, f"Second factor reset for {len(queryset)} account(s).", messages.SUCCESS)
