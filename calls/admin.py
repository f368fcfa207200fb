from django.contrib import admin

from .models import Call


@admin.register(Call)
class CallAdmin(admin.ModelAdmin):
    list_display = ("call_id", "caller", "callee", "media", "status", "created_at", "answered_at", "ended_at", "end_reason")
    list_filter = ("status", "end_reason", "media")
    date_hierarchy = "created_at"
    search_fields = ("caller__username", "callee__username")
