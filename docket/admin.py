"""Shared admin pieces."""

from django.contrib import admin

from .models import AccessLog


class ReadOnlyAdmin(admin.ModelAdmin):
    """Evidence and audit records: visible in the admin, never edited there."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AccessLog)
class AccessLogAdmin(ReadOnlyAdmin):
    """Who viewed, revealed or exported what: read-only, filterable (the table refuses edits anyway)."""

    list_display = ["at", "username", "kind", "action", "object_type", "object_id", "threat_class"]
    list_filter = ["kind", "action", "object_type", "threat_class", ("at", admin.DateFieldListFilter)]
    search_fields = ["username", "object_id"]
    date_hierarchy = "at"
    show_full_result_count = False
