from django.contrib import admin

from policies.admin import RestrictedReadOnlyAdmin

from .models import Appeal


@admin.register(Appeal)
class AppealAdmin(RestrictedReadOnlyAdmin):
    list_display = ["id", "decision_id", "appellant", "status", "outcome", "deadline", "resolved_at"]
    list_filter = ["status", "outcome"]
