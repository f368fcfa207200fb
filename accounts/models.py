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

    @property
    def shown_name(self) -> str:
        return self.display_name or self.username

    def __str__(self) -> str:
        return self.username
