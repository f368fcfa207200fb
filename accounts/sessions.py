"""Peerline's session engine: Django's database sessions, whose LoginSession rows go with them.

A LoginSession row outlives its Django session when the session expires: nothing logs out, so
no signal removes the row. Django's own clean-up, `manage.py clearsessions` (run it daily; see
docs/deployment.md), calls SessionStore.clear_expired(), so that is where the rows are pruned
too, with no second command for operators to remember.
"""

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore


class SessionStore(DatabaseSessionStore):
    @classmethod
    def clear_expired(cls):
        super().clear_expired()
        from accounts import services

        services.login_sessions_prune()
