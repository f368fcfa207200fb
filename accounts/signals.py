"""Login and logout keep LoginSession rows in step with Django sessions (wired in apps.py)."""

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver

from accounts import services


def client_ip(request) -> str | None:
    """The browser's address as daphne reports it. Behind Caddy too: daphne runs with
    --proxy-headers (Dockerfile, deploy/entrypoint.sh) and takes it from X-Forwarded-For, which
    Caddy sets itself; a daphne without that flag behind a proxy would report the proxy's."""
    return request.META.get("REMOTE_ADDR") or None


@receiver(user_logged_in, dispatch_uid="accounts.login_session_on_login")
def record_login_session(sender, request, user, **kwargs):
    session = getattr(request, "session", None)
    if session is None or not session.session_key:
        return
    services.login_session_record(
        user=user,
        session_key=session.session_key,
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        ip=client_ip(request),
    )


@receiver(user_logged_out, dispatch_uid="accounts.login_session_on_logout")
def forget_login_session(sender, request, user, **kwargs):
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        services.login_session_forget(session_key=session.session_key)
