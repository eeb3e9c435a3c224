from django.contrib import admin

from docket.admin import ReadOnlyAdmin

from .models import Appeal


@admin.register(Appeal)
class AppealAdmin(ReadOnlyAdmin):
    list_display = ["id", "decision_id", "appellant", "status", "outcome", "deadline", "resolved_at"]
    list_filter = ["status", "outcome"]
