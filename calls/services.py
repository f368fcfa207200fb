"""Call lifecycle: the only code that changes Call rows.

Each function checks, changes the database inside a transaction, and queues the pushes that
follow (sent after commit through calls.events). Changes that end a call are conditional UPDATEs
on the status they start from, so two workers that race to end the same call (a hang-up and a
ring timeout, two sweeps) agree: exactly one wins and only the winner notifies anyone. The other
changes (accept, detach, resume) run under the call row's lock (SELECT ... FOR UPDATE on
PostgreSQL; SQLite serialises writers), which orders them against each other and against the
ending ones.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from calls import events, presence, protocol
from calls.exceptions import CallError
from calls.models import Call

logger = logging.getLogger(__name__)

S = Call.Status
R = Call.EndReason


# --- helpers ------------------------------------------------------------------------------------

def _user_status_payload(user, status: str) -> dict:
    return protocol.user_payload(user, status=status)


def _set_status_on_commit(user, status: str) -> None:
    """Busy/available is shown to everyone, once the change is committed. In the background: the
    answering socket waits for call_accept to return before it can pass on its `accepted`, and
    nobody's call depends on when the roster shows the busy dot. Background writes may land out
    of order, so each carries the time of its change (taken here, under the call row's lock) and
    a stale one is neither recorded nor announced."""
    backend = presence.get_presence()
    payload = _user_status_payload(user, status)
    at = time.time()

    async def publish():
        if await sync_to_async(backend.set_status, thread_sensitive=False)(user.pk, status, at=at):
            await events.send_to_everyone("presence.update", user=payload, event=status)

    events.in_background_on_commit(publish)


def _lock_call(call_id: uuid.UUID) -> Call:
    call = Call.objects.select_for_update().select_related("caller", "callee").filter(pk=call_id).first()
    if call is None:
        raise CallError(protocol.UNKNOWN_CALL, "There is no such call.")
    return call


def _require_participant(call: Call, user) -> None:
    if user.pk not in (call.caller_id, call.callee_id):
        raise CallError(protocol.NOT_ALLOWED, "You are not part of this call.")


def _lock_ringing_call_of_callee(*, user, call_id: uuid.UUID, action: str) -> Call:
    """Only the person called answers or declines, and only while it rings."""
    call = _lock_call(call_id)
    _require_participant(call, user)
    if user.pk != call.callee_id:
        raise CallError(protocol.NOT_ALLOWED, "Only the person called can answer or decline; the caller hangs up.")
    if call.status != S.RINGING:
        raise CallError(protocol.BAD_STATE, f"This call is {call.status}; it cannot be {action}.")
    return call


def _ended(call: Call, reason: str, *, to_caller: bool = True, to_callee: bool = True) -> None:
    """Tell both sides a call is over: the caller's connection, and the callee's connection in an
    answered call or every ringing connection of the callee."""
    payload = {"call_id": str(call.call_id), "reason": reason}
    if to_caller and call.caller_channel:
        events.send_on_commit(event_type="calls.ended", channel=call.caller_channel, **payload)
    if to_callee:
        if call.answered_at is None:
            # direct=False: only the callee's connections that are ringing for it pass it on.
            events.send_on_commit(event_type="calls.ended", user_id=call.callee_id, direct=False, **payload)
        elif call.callee_channel:
            events.send_on_commit(event_type="calls.ended", channel=call.callee_channel, **payload)


def _finish(call: Call, *, reason: str, ended_by=None, now: datetime | None = None) -> bool:
    """Move a live call to its terminal status. False when someone else already ended it."""
    now = now or timezone.now()
    status = S.COMPLETED if call.answered_at else (S.DECLINED if reason == R.DECLINED else S.MISSED)
    changed = Call.objects.filter(pk=call.pk, status=call.status).update(
        status=status, ended_at=now, end_reason=reason, ended_by=ended_by
    )
    if not changed:
        return False
    was_active = call.status == S.ACTIVE
    call.status, call.ended_at, call.end_reason, call.ended_by = status, now, reason, ended_by
    if was_active:
        _set_status_on_commit(call.caller, presence.AVAILABLE)
        _set_status_on_commit(call.callee, presence.AVAILABLE)
    logger.info("call %s ended: %s (%s)", call.call_id, status, reason)
    return True


# --- the lifecycle --------------------------------------------------------------------------------

def call_invite(
    *, caller, call_id: uuid.UUID, callee_username: str, media: tuple[str, ...], caller_channel: str,
    is_online,
) -> Call:
    """Start a call. Ends at once (as `offline` or `busy`) when the callee cannot ring."""
    if callee_username == caller.username:
        raise CallError(protocol.NOT_ALLOWED, "You cannot call yourself.")
    User = get_user_model()
    callee = User.objects.filter(username=callee_username, is_active=True).first()
    if callee is None:
        raise CallError(protocol.UNKNOWN_USER, f"There is no user called {callee_username!r}.")
    with transaction.atomic():
        # Lock both people, always in the same order, so two invites crossing each other cannot
        # both find the other free (one call per user holds across workers).
        list(User.objects.select_for_update().filter(pk__in=[caller.pk, callee.pk]).order_by("pk"))
        if Call.objects.filter(pk=call_id).exists():
            raise CallError(protocol.BAD_STATE, "This call_id was used before; pick a fresh one.")
        if _live_call_exists(caller):
            raise CallError(protocol.BAD_STATE, "You are already in a call.")
        call = Call(
            call_id=call_id, caller=caller, callee=callee, media=",".join(media), caller_channel=caller_channel
        )
        callee_online = is_online(callee.pk)
        if not callee_online or _live_call_exists(callee):
            reason = R.OFFLINE if not callee_online else R.BUSY
            call.status, call.end_reason, call.ended_at = S.MISSED, reason, timezone.now()
            _insert_new(call)
            _ended(call, reason, to_callee=False)
            logger.info("call %s from %s to %s: %s", call_id, caller, callee, reason)
            return call
        _insert_new(call)
        events.send_on_commit(
            event_type="calls.invite",
            user_id=callee.pk,
            call_id=str(call_id),
            caller_channel=caller_channel,
            media=list(media),
            **{"from": _user_status_payload(caller, presence.AVAILABLE)},
        )
    logger.info("call %s from %s to %s: ringing", call_id, caller, callee)
    return call


def _insert_new(call: Call) -> None:
    """Two callers who pick the same call_id lock different people, so both may pass the
    exists() check above; the primary key decides, and the loser hears `bad_state`."""
    try:
        with transaction.atomic():
            call.save(force_insert=True)
    except IntegrityError:
        raise CallError(protocol.BAD_STATE, "This call_id was used before; pick a fresh one.") from None


def _live_call_exists(user) -> bool:
    return Call.objects.filter(Q(caller=user) | Q(callee=user), status__in=Call.LIVE_STATUSES).exists()


@transaction.atomic
def call_accept(*, user, call_id: uuid.UUID, channel: str) -> Call:
    """The callee answers on one connection; the caller and that connection are told, and the
    callee's other connections stop ringing."""
    call = _lock_ringing_call_of_callee(user=user, call_id=call_id, action="accepted")
    now = timezone.now()
    Call.objects.filter(pk=call.pk).update(status=S.ACTIVE, answered_at=now, callee_channel=channel)
    call.status, call.answered_at, call.callee_channel = S.ACTIVE, now, channel
    common = {"call_id": str(call_id), "media": call.media_list}
    # The answering tab hears first: the caller's connection forwards its held offer as soon as
    # it hears, and that offer must queue behind this `accepted` on the answering channel.
    events.send_on_commit(
        event_type="calls.accepted", channel=channel, polite=True,
        peer_channel=call.caller_channel, peer=call.caller.username, **common,
    )
    events.send_on_commit(
        event_type="calls.accepted", channel=call.caller_channel, polite=False,
        peer_channel=channel, peer=call.callee.username, **common,
    )
    events.send_on_commit(
        event_type="calls.answered_elsewhere", user_id=call.callee_id, except_channel=channel, **common
    )
    _set_status_on_commit(call.caller, presence.BUSY)
    _set_status_on_commit(call.callee, presence.BUSY)
    logger.info("call %s accepted by %s", call_id, user)
    return call


@transaction.atomic
def call_decline(*, user, call_id: uuid.UUID) -> Call:
    call = _lock_ringing_call_of_callee(user=user, call_id=call_id, action="declined")
    _finish(call, reason=R.DECLINED, ended_by=user)
    _ended(call, R.DECLINED)
    return call


@transaction.atomic
def call_hangup(*, user, call_id: uuid.UUID) -> Call:
    """Hang up an answered call, or cancel (caller) / decline (callee) one that still rings."""
    call = _lock_call(call_id)
    _require_participant(call, user)
    if not call.is_live:
        raise CallError(protocol.BAD_STATE, f"This call has already ended ({call.end_reason}).")
    if call.status == S.RINGING:
        reason = R.CANCELLED if user.pk == call.caller_id else R.DECLINED
    else:
        reason = R.HANGUP
    _finish(call, reason=reason, ended_by=user)
    _ended(call, reason)
    return call


@transaction.atomic
def call_expire_ringing(*, call_id: uuid.UUID, ring_timeout_s: float, now: datetime | None = None) -> bool:
    """Ring timeout: a call nobody answered in time becomes a missed call."""
    now = now or timezone.now()
    call = Call.objects.select_for_update().select_related("caller", "callee").filter(pk=call_id).first()
    if call is None or call.status != S.RINGING:
        return False
    if call.created_at > now - timedelta(seconds=ring_timeout_s):
        return False
    if _finish(call, reason=R.MISSED, now=now):
        _ended(call, R.MISSED)
        return True
    return False


def _side(call: Call, user_id: int) -> str:
    return "caller" if user_id == call.caller_id else "callee"


def _peer_channel(call: Call, user_id: int) -> str:
    return call.callee_channel if user_id == call.caller_id else call.caller_channel


@transaction.atomic
def call_detach(*, user, call_id: uuid.UUID, channel: str) -> bool:
    """A participant's connection went away; the call waits a grace period for it to resume."""
    call = Call.objects.select_for_update().filter(pk=call_id).first()
    if call is None or not call.is_live:
        return False
    side = _side(call, user.pk)
    if getattr(call, f"{side}_channel") != channel:
        return False  # another of the user's connections holds the call now
    Call.objects.filter(pk=call.pk).update(**{f"{side}_channel": "", f"{side}_detached_at": timezone.now()})
    peer = _peer_channel(call, user.pk)
    if call.status == S.ACTIVE and peer:
        events.send_on_commit(event_type="calls.peer_moved", channel=peer, call_id=str(call_id), peer_channel="")
    logger.info("call %s: %s connection lost, waiting for it to come back", call_id, side)
    return True


@transaction.atomic
def call_resume(*, user, call_id: uuid.UUID, channel: str) -> tuple[Call, str]:
    """A participant's new connection takes over its side of a live call (after a reconnect).

    Returns the call and the peer's current channel ("" while the peer is away too). A callee
    whose phone still rings has nothing to take over: every one of their connections rings, and
    the consumer makes this one ring too. A connection that still held the side (a socket the
    browser gave up on, not yet closed) is told the call went elsewhere, so it never relays
    another signal for it."""
    call = _lock_call(call_id)
    _require_participant(call, user)
    if not call.is_live:
        raise CallError(protocol.BAD_STATE, f"This call has already ended ({call.end_reason}).")
    if call.status == S.RINGING and user.pk == call.callee_id:
        return call, call.caller_channel
    side = _side(call, user.pk)
    previous = getattr(call, f"{side}_channel")
    Call.objects.filter(pk=call.pk).update(**{f"{side}_channel": channel, f"{side}_detached_at": None})
    setattr(call, f"{side}_channel", channel)
    if previous and previous != channel:
        events.send_on_commit(event_type="calls.taken_over", channel=previous, call_id=str(call_id))
    peer = _peer_channel(call, user.pk)
    if call.status == S.ACTIVE:
        if peer:
            events.send_on_commit(event_type="calls.peer_moved", channel=peer, call_id=str(call_id), peer_channel=channel)
        # Closing the last tab cleared the busy mark (offline people have no status).
        _set_status_on_commit(user, presence.BUSY)
    logger.info("call %s: %s resumed on a new connection", call_id, side)
    return call, peer


@transaction.atomic
def call_end_if_detached(*, call_id: uuid.UUID, grace_s: float, now: datetime | None = None) -> bool:
    """End a call whose participant stayed away longer than the grace period."""
    now = now or timezone.now()
    call = Call.objects.select_for_update().select_related("caller", "callee").filter(pk=call_id).first()
    if call is None or not call.is_live:
        return False
    cutoff = now - timedelta(seconds=grace_s)
    gone = [d for d in (call.caller_detached_at, call.callee_detached_at) if d is not None and d <= cutoff]
    if not gone:
        return False
    return _end_disconnected(call, now=now)


def _end_disconnected(call: Call, *, now: datetime) -> bool:
    if not _finish(call, reason=R.DISCONNECTED, now=now):
        return False
    _ended(call, R.DISCONNECTED)
    return True


@transaction.atomic
def call_end_by_admin(*, call_id: uuid.UUID, admin) -> bool:
    call = Call.objects.select_for_update().select_related("caller", "callee").filter(pk=call_id).first()
    if call is None or not call.is_live:
        return False
    if _finish(call, reason=R.ENDED_BY_ADMIN, ended_by=admin):
        _ended(call, R.ENDED_BY_ADMIN)
        return True
    return False


def call_sweep(*, ring_timeout_s: float, grace_s: float, dead_connections, now: datetime | None = None) -> int:
    """Bring every live call that nobody is tending to its end state. Runs on every worker every
    heartbeat, so it only reads: indexed queries pick the calls that need a change, and one
    batched presence lookup, `dead_connections([(user_id, channel), ...]) -> {channel, ...}`,
    finds sockets whose worker died or restarted without running `disconnect` (daphne does not run
    it on shutdown). Those sides are detached and end after the grace period like any dropped
    socket. Every change is conditional, so workers sweeping at once agree."""
    now = now or timezone.now()
    ended = 0
    unanswered = Call.objects.filter(status=S.RINGING, created_at__lte=now - timedelta(seconds=ring_timeout_s))
    for call_id in unanswered.values_list("pk", flat=True):
        ended += call_expire_ringing(call_id=call_id, ring_timeout_s=ring_timeout_s, now=now)
    cutoff = now - timedelta(seconds=grace_s)
    away = Call.objects.filter(Q(caller_detached_at__lte=cutoff) | Q(callee_detached_at__lte=cutoff), status__in=Call.LIVE_STATUSES)
    for call_id in away.values_list("pk", flat=True):
        ended += call_end_if_detached(call_id=call_id, grace_s=grace_s, now=now)
    sides = _live_sides()
    if sides:
        dead = dead_connections([(user_id, channel) for _, _, user_id, channel in sides])
        for call_id, side, _, channel in sides:
            if channel in dead:
                _detach_dead_side(call_id=call_id, side=side, channel=channel, now=now)
    return ended


def _live_sides() -> list[tuple[uuid.UUID, str, int, str]]:
    """(call_id, side, user_id, channel) for every socket taking part in a live call. An empty
    channel is a side already detached: the grace period decides those."""
    sides = []
    rows = Call.objects.filter(status__in=Call.LIVE_STATUSES).values_list(
        "pk", "status", "caller_id", "caller_channel", "callee_id", "callee_channel"
    )
    for call_id, status, caller_id, caller_channel, callee_id, callee_channel in rows:
        if caller_channel:
            sides.append((call_id, "caller", caller_id, caller_channel))
        if status == S.ACTIVE and callee_channel:
            sides.append((call_id, "callee", callee_id, callee_channel))
    return sides


@transaction.atomic
def _detach_dead_side(*, call_id: uuid.UUID, side: str, channel: str, now: datetime) -> None:
    """Treat a dead socket like a dropped one: the call waits the grace period for a `resume`
    (the browser reconnects to a restarted worker within seconds) instead of ending at once."""
    changed = Call.objects.filter(pk=call_id, status__in=Call.LIVE_STATUSES, **{f"{side}_channel": channel}).update(
        **{f"{side}_channel": "", f"{side}_detached_at": now}
    )
    if changed:
        call = Call.objects.get(pk=call_id)
        peer = call.callee_channel if side == "caller" else call.caller_channel
        if call.status == S.ACTIVE and peer:
            events.send_on_commit(event_type="calls.peer_moved", channel=peer, call_id=str(call_id), peer_channel="")
        logger.info("call %s: %s socket is gone with its worker, waiting for it to come back", call_id, side)


@transaction.atomic
def call_record_report(*, user, call_id: uuid.UUID, summary: dict) -> None:
    """Keep what a participant's browser measured about the connection (for operators)."""
    call = _lock_call(call_id)
    _require_participant(call, user)
    if call.answered_at is None:
        raise CallError(protocol.BAD_STATE, "Only answered calls have connection statistics.")
    field = f"{_side(call, user.pk)}_report"
    Call.objects.filter(pk=call.pk).update(**{field: summary})


def history_mark_seen(*, user) -> datetime | None:
    """The user opened their call history: missed calls until now are seen (the badge clears).

    Returns when they had last looked before, so the page can mark what is new."""
    previous = user.missed_calls_seen_at
    now = timezone.now()
    get_user_model().objects.filter(pk=user.pk).update(missed_calls_seen_at=now)
    user.missed_calls_seen_at = now
    return previous
