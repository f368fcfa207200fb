"""Operators' view of calls: history (read-only), calls live now, ending calls, people online.

History is a record, so nothing here edits or deletes a Call row; the one change an operator can
make is ending live calls, which goes through services.call_end_by_admin like any other hang-up
(both browsers are told, the row is closed).
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode

from calls import display, presence, selectors, services
from calls.models import Call


class LiveNowFilter(admin.SimpleListFilter):
    title = "live now"
    parameter_name = "live"

    def lookups(self, request, model_admin):
        return [("yes", "Live now (ringing or active)"), ("no", "Ended")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(status__in=Call.LIVE_STATUSES)
        if self.value() == "no":
            return queryset.exclude(status__in=Call.LIVE_STATUSES)
        return queryset


@admin.register(Call)
class CallAdmin(admin.ModelAdmin):
    list_display = (
        "short_id", "caller", "callee", "media", "status", "created_at", "answered_at", "ended_at",
        "duration", "end_reason", "ice_paths",
    )
    list_display_links = ("short_id",)
    list_filter = (LiveNowFilter, "status", "end_reason", "media")
    list_select_related = ("caller", "callee")
    date_hierarchy = "created_at"
    search_fields = ("caller__username", "callee__username", "caller__display_name", "callee__display_name")
    actions = ["end_selected_calls"]
    fieldsets = (
        (None, {"fields": ("call_id", "caller", "callee", "media", "status")}),
        ("Timing", {"fields": ("created_at", "answered_at", "ended_at", "duration", "end_reason", "ended_by")}),
        ("Connection", {"fields": ("caller_connection", "callee_connection", "caller_channel", "callee_channel",
                                   "caller_detached_at", "callee_detached_at")}),
    )
    readonly_fields = (
        "call_id", "caller", "callee", "media", "status", "created_at", "answered_at", "ended_at", "duration",
        "end_reason", "ended_by", "caller_connection", "callee_connection", "caller_channel", "callee_channel",
        "caller_detached_at", "callee_detached_at",
    )

    # --- history is read-only --------------------------------------------------------------------

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_end_permission(self, request):
        """Ending calls is the one change operators make: it needs the model's change permission."""
        return request.user.has_perm("calls.change_call")

    # --- columns ---------------------------------------------------------------------------------

    @admin.display(description="call", ordering="call_id")
    def short_id(self, call):
        return str(call.call_id)[:8]

    @admin.display(description="duration")
    def duration(self, call):
        return display.format_duration(call.duration_s) or "–"

    @admin.display(description="ICE path (caller / callee)")
    def ice_paths(self, call):
        return display.ice_paths(call) or "–"

    @admin.display(description="caller's connection")
    def caller_connection(self, call):
        return display.format_report(call.caller_report)

    @admin.display(description="callee's connection")
    def callee_connection(self, call):
        return display.format_report(call.callee_report)

    # --- ending live calls -----------------------------------------------------------------------

    @admin.action(description="End selected calls", permissions=["end"])
    def end_selected_calls(self, request, queryset):
        ended = 0
        for call_id in queryset.filter(status__in=Call.LIVE_STATUSES).values_list("call_id", flat=True):
            ended += services.call_end_by_admin(call_id=call_id, admin=request.user)
        skipped = queryset.count() - ended
        self.message_user(request, f"Ended {ended} call{'' if ended == 1 else 's'}.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request, f"{skipped} selected call{' was' if skipped == 1 else 's were'} not live.", messages.WARNING
            )

    # --- people online -----------------------------------------------------------------------------

    def get_urls(self):
        online = self.admin_site.admin_view(self.people_online_view)
        return [path("online/", online, name="calls_call_online"), *super().get_urls()]

    def people_online_view(self, request):
        """Who is connected right now, from the presence backend (every worker's connections).

        "In a call" is the presence status the workers set (busy from answer to hang-up), not a
        guess from Call rows: a row can stay live after its sockets are gone until a sweep ends
        it. The database's live call, when there is one, is only the link beside it."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        people = selectors.people_online()
        changelist = reverse("admin:calls_call_changelist")
        rows = [
            {
                "person": person,
                "in_call": person.status == presence.BUSY,
                "calls_url": f"{changelist}?{urlencode({'q': person.user.username, 'live': 'yes'})}",
                "call_url": reverse("admin:calls_call_change", args=[person.live_call.pk]) if person.live_call else "",
            }
            for person in people
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "People online",
            "opts": self.model._meta,
            "rows": rows,
            "connections_total": sum(p.connections for p in people),
        }
        return TemplateResponse(request, "admin/calls/online.html", context)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "people_online_url": reverse("admin:calls_call_online")}
        return super().changelist_view(request, extra_context=extra_context)
