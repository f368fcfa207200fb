"""Call rows: data only. Every change goes through calls.services."""

import uuid

from django.conf import settings
from django.db import models


class Call(models.Model):
    class Status(models.TextChoices):
        RINGING = "ringing", "Ringing"
        ACTIVE = "active", "Active"
        COMPLETED = "completed", "Completed"  # answered, then ended
        MISSED = "missed", "Missed"  # never answered: no answer, offline, busy, cancelled
        DECLINED = "declined", "Declined"

    class Media(models.TextChoices):
        AUDIO = "audio", "Audio"
        VIDEO = "video", "Video only"
        AUDIO_VIDEO = "audio,video", "Audio and video"

    class EndReason(models.TextChoices):
        DECLINED = "declined", "Declined"
        BUSY = "busy", "Callee busy"
        MISSED = "missed", "No answer"
        OFFLINE = "offline", "Callee offline"
        CANCELLED = "cancelled", "Cancelled by caller"
        HANGUP = "hangup", "Hung up"
        DISCONNECTED = "disconnected", "Connection lost"
        ENDED_BY_ADMIN = "ended_by_admin", "Ended by an administrator"

    LIVE_STATUSES = (Status.RINGING, Status.ACTIVE)

    call_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    caller = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calls_made"
    )
    callee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calls_received"
    )
    media = models.CharField(max_length=16, choices=Media.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RINGING)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=16, choices=EndReason.choices, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who ended the call; empty when the system did (timeout, lost connection).",
    )
    # The one connection on each side that takes part in the call: signals are relayed only
    # between these two channels. Empty while that side's socket is gone (see *_detached_at).
    caller_channel = models.CharField(max_length=200, blank=True)
    callee_channel = models.CharField(max_length=200, blank=True)
    caller_detached_at = models.DateTimeField(null=True, blank=True)
    callee_detached_at = models.DateTimeField(null=True, blank=True)
    # What each browser measured about the connection, sent when the call ended (see
    # protocol.STATS_FIELDS): ICE path, round-trip time, packet loss, bitrate.
    caller_report = models.JSONField(null=True, blank=True)
    callee_report = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.caller} → {self.callee} ({self.status})"

    @property
    def is_live(self) -> bool:
        return self.status in self.LIVE_STATUSES

    @property
    def duration_s(self) -> float | None:
        """Talk time: from answer to end (None for calls that were never answered)."""
        if self.answered_at is None:
            return None
        end = self.ended_at
        if end is None:
            from django.utils import timezone

            end = timezone.now()
        return max(0.0, (end - self.answered_at).total_seconds())

    @property
    def media_list(self) -> list[str]:
        return self.media.split(",")

    def other_party(self, user):
        return self.callee if user.pk == self.caller_id else self.caller
