from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A Peerline account. Custom from the first migration so fields can be added later."""

    display_name = models.CharField(
        max_length=80, blank=True, help_text="Shown to other people instead of the username."
    )

    relay_only = models.BooleanField(
        default=False,
        help_text="Send call media only through the relay server, so the other side never learns "
        "your IP address. Calls may take a little longer to connect.",
    )

    missed_calls_seen_at = models.DateTimeField(
        null=True, blank=True, editable=False,
        help_text="When the user last opened their call history; missed calls after it show a badge.",
    )

    @property
    def shown_name(self) -> str:
        return self.display_name or self.username

    def __str__(self) -> str:
        return self.username


class LoginSession(models.Model):
    """One logged-in browser session, so operators can see and revoke where someone is logged in.

    Written only by accounts.services: created at login, touched by LastSeenMiddleware at most
    once a minute, removed at logout or revocation, and pruned by `clearsessions` once its
    session has expired (accounts.sessions). The Django session it names is the truth; this row
    is the operator's view of it.
    """

    session_key = models.CharField(max_length=40, unique=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="login_sessions")
    browser = models.CharField(max_length=40, blank=True)
    os = models.CharField("operating system", max_length=40, blank=True)
    ip = models.GenericIPAddressField(
        "IP address", null=True, blank=True, help_text="Recorded only when PEERLINE_RECORD_IP is true."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-last_seen"]
        verbose_name = "login session"

    def __str__(self) -> str:
        return f"{self.user} on {self.device}"

    @property
    def device(self) -> str:
        return f"{self.browser or 'Unknown browser'} on {self.os or 'unknown system'}"
