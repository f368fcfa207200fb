from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.sessions.models import Session
from django.db.models import Exists, OuterRef
from django.db.models.functions import Now

from accounts import services

from .models import LoginSession, User


def _with_session_alive(queryset):
    """Annotate whether the Django session behind each row still exists and has not expired (a
    row can outlive its session: expiry, or a session engine that cleared it)."""
    alive = Session.objects.filter(session_key=OuterRef("session_key"), expire_date__gt=Now())
    return queryset.annotate(session_alive=Exists(alive))


def _report_revoked(modeladmin, request, count: int) -> None:
    modeladmin.message_user(
        request,
        f"Revoked {count} login session{'' if count == 1 else 's'}: logged out, and their open connections closed.",
        messages.SUCCESS,
    )


class SessionAliveFilter(admin.SimpleListFilter):
    title = "session"
    parameter_name = "alive"

    def lookups(self, request, model_admin):
        return [("yes", "Still valid"), ("no", "Expired")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(session_alive=self.value() == "yes")
        return queryset


class LoginSessionReadOnly:
    """Rows are written by logins and requests only; operators read them and revoke them."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LoginSession)
class LoginSessionAdmin(LoginSessionReadOnly, admin.ModelAdmin):
    list_display = ("user", "device", "ip", "created_at", "last_seen", "is_valid")
    list_filter = (SessionAliveFilter, "browser", "os")
    list_select_related = ("user",)
    search_fields = ("user__username", "user__display_name", "ip")
    date_hierarchy = "last_seen"
    fields = ("user", "browser", "os", "ip", "created_at", "last_seen")
    readonly_fields = fields
    actions = ["revoke"]

    def get_queryset(self, request):
        return _with_session_alive(super().get_queryset(request))

    @admin.display(description="device")
    def device(self, session):
        return session.device

    @admin.display(description="valid", boolean=True, ordering="session_alive")
    def is_valid(self, session):
        return session.session_alive

    def has_revoke_permission(self, request):
        return request.user.has_perm("accounts.delete_loginsession")

    @admin.action(description="Revoke (log out and close its connections)", permissions=["revoke"])
    def revoke(self, request, queryset):
        _report_revoked(self, request, services.login_sessions_revoke(sessions=list(queryset)))


class LoginSessionInline(LoginSessionReadOnly, admin.TabularInline):
    model = LoginSession
    verbose_name_plural = "active login sessions"
    fields = ("browser", "os", "ip", "created_at", "last_seen")
    readonly_fields = fields
    extra = 0
    show_change_link = False

    def get_queryset(self, request):
        return _with_session_alive(super().get_queryset(request)).filter(session_alive=True)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = BaseUserAdmin.fieldsets + (("Peerline", {"fields": ("display_name", "relay_only")}),)
    list_display = ("username", "display_name", "email", "is_staff", "last_login")
    search_fields = ("username", "display_name", "email")
    inlines = [LoginSessionInline]
    actions = ["revoke_all_sessions"]

    def has_revoke_permission(self, request):
        return request.user.has_perm("accounts.delete_loginsession")

    @admin.action(description="Revoke all sessions (log out everywhere)", permissions=["revoke"])
    def revoke_all_sessions(self, request, queryset):
        count = sum(services.login_sessions_revoke_all(user=user) for user in queryset)
        _report_revoked(self, request, count)
