"""Read-only queries about calls and people."""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from calls.models import Call


def call_get(*, call_id: uuid.UUID) -> Call | None:
    return Call.objects.select_related("caller", "callee").filter(pk=call_id).first()


def call_get_live(*, user) -> Call | None:
    """The user's ringing or active call, if any (a user has at most one)."""
    return (
        Call.objects.select_related("caller", "callee")
        .filter(Q(caller=user) | Q(callee=user), status__in=Call.LIVE_STATUSES)
        .order_by("-created_at")
        .first()
    )


def calls_live() -> QuerySet[Call]:
    return Call.objects.select_related("caller", "callee").filter(status__in=Call.LIVE_STATUSES)


def call_history(*, user) -> QuerySet[Call]:
    return (
        Call.objects.select_related("caller", "callee")
        .filter(Q(caller=user) | Q(callee=user))
        .exclude(status__in=Call.LIVE_STATUSES)
        .order_by("-created_at")
    )


def users_by_ids(ids) -> list:
    return list(get_user_model().objects.filter(pk__in=list(ids), is_active=True).order_by("username"))
