"""Keeps LoginSession.last_seen roughly current without a database write per request."""

from django.core.cache import cache

from accounts import services
from accounts.signals import client_ip

_CACHE_KEY = "peerline:login-session-touched:{}"


class LoginSessionMiddleware:
    """After AuthenticationMiddleware: once a minute per session (per cache; the conditional
    UPDATE in the service keeps it to once a minute across workers), touch the session's row."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        session_key = request.session.session_key if hasattr(request, "session") else None
        if user is not None and user.is_authenticated and session_key:
            if cache.add(_CACHE_KEY.format(session_key), True, timeout=services.LAST_SEEN_RESOLUTION_S):
                services.login_session_touch(
                    user=user,
                    session_key=session_key,
                    user_agent=request.META.get("HTTP_USER_AGENT", ""),
                    ip=client_ip(request),
                )
        return self.get_response(request)
