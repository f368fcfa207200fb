"""Read-only queries about calls and people."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone

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


# --- call history for users, and what operators see ------------------------------------------------

HISTORY_KINDS = ("all", "incoming", "outgoing", "missed")


def call_history_of_kind(*, user, kind: str) -> QuerySet[Call]:
    """The user's ended calls: all, incoming (to them), outgoing (from them), or missed (to them,
    never answered or declined: nobody answered, they were offline or busy, the caller gave up)."""
    calls = call_history(user=user)
    if kind == "incoming":
        return calls.filter(callee=user)
    if kind == "outgoing":
        return calls.filter(caller=user)
    if kind == "missed":
        return calls.filter(callee=user, status=Call.Status.MISSED)
    return calls


def missed_calls_unseen_count(*, user) -> int:
    """Missed calls that ended after the user last opened their history (one COUNT query)."""
    missed = Call.objects.filter(callee=user, status=Call.Status.MISSED)
    if user.missed_calls_seen_at is not None:
        missed = missed.filter(ended_at__gt=user.missed_calls_seen_at)
    return missed.count()


@dataclass(frozen=True)
class OnlinePerson:
    user: object
    connections: int
    online_since: datetime
    status: str  # presence status: available / busy (in an answered call)
    live_call: Call | None  # the ringing or active call, from the database, for a link


def people_online() -> list[OnlinePerson]:
    """Everyone with a live connection right now, as the presence backend (not the database)
    knows it: how many connections, the oldest one's start, and whether they are in a call."""
    from calls import presence

    backend = presence.get_presence()
    user_ids = sorted(backend.online_user_ids())
    if not user_ids:
        return []
    connections = {uid: backend.connections(uid) for uid in user_ids}
    statuses = backend.statuses(user_ids)
    users = get_user_model().objects.in_bulk(user_ids)
    live_calls = {}
    for call in calls_live().filter(Q(caller_id__in=user_ids) | Q(callee_id__in=user_ids)):
        live_calls.setdefault(call.caller_id, call)
        live_calls.setdefault(call.callee_id, call)
    people = [
        OnlinePerson(
            user=users[uid],
            connections=len(connections[uid]),
            online_since=datetime.fromtimestamp(min(c.since for c in connections[uid]), tz=dt_timezone.utc),
            status=statuses.get(uid, presence.AVAILABLE),
            live_call=live_calls.get(uid),
        )
        for uid in user_ids
        if uid in users and connections[uid]
    ]
    return sorted(people, key=lambda p: p.user.username)
