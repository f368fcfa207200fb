"""The one funnel to the channel layer.

Every push to a browser goes through here, and only services, the consumer and the janitor call
it. Event names are built from the fixed list below, never from client input: the layer
dispatches an event to the consumer method its `type` names, so a client-chosen type would let a
client call any handler.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

PRESENCE_GROUP = "presence"

EVENT_TYPES = frozenset(
    {
        "calls.invite",
        "calls.ringing",
        "calls.accepted",
        "calls.ended",
        "calls.answered_elsewhere",
        "calls.signal",
        "calls.media_state",
        "calls.peer_moved",
        "calls.taken_over",
        "presence.update",
        "session.revoked",
    }
)


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def _event(event_type: str, payload: dict) -> dict:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"not a server event type: {event_type!r}")
    return {**payload, "type": event_type}


async def send_to_channel(channel: str, event_type: str, **payload) -> None:
    """To one connection (possibly on another worker)."""
    if not channel:
        return
    await get_channel_layer().send(channel, _event(event_type, payload))


async def send_to_user(user_id: int, event_type: str, **payload) -> None:
    """To every open connection of a user, on every worker."""
    await get_channel_layer().group_send(user_group(user_id), _event(event_type, payload))


async def send_to_everyone(event_type: str, **payload) -> None:
    await get_channel_layer().group_send(PRESENCE_GROUP, _event(event_type, payload))


_background: set[asyncio.Task] = set()


def _start(action) -> None:
    async def run():
        try:
            await action()
        except Exception:
            logger.exception("background push failed")

    task = asyncio.get_running_loop().create_task(run())
    _background.add(task)
    task.add_done_callback(_background.discard)


def in_background_on_commit(action) -> None:
    """From sync code: after commit, start the coroutine function `action` on the server's event
    loop without waiting for it. For pushes whose order does not matter (presence broadcasts):
    the thread, and the socket waiting on it, are not held up by them.

    Sync code that runs under the server (sync_to_async) knows the server's loop through asgiref;
    anywhere else (management commands, the test client) there is no loop to hand the work to,
    and the push simply runs to completion before returning."""

    def push():
        loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(_start, action)
        else:
            try:
                async_to_sync(action)()
            except Exception:
                logger.exception("push failed")

    transaction.on_commit(push)


def send_on_commit(*, event_type: str, channel: str = "", user_id: int | None = None, everyone: bool = False, **payload) -> None:
    """From sync code (services, admin): push once the surrounding transaction has committed.

    Sending after commit means a browser never hears of a change that was rolled back, and never
    races ahead of the row it will ask about.
    """
    event = _event(event_type, payload)
    layer = get_channel_layer()
    if everyone:
        send = partial(layer.group_send, PRESENCE_GROUP, event)
    elif user_id is not None:
        send = partial(layer.group_send, user_group(user_id), event)
    elif channel:
        send = partial(layer.send, channel, event)
    else:
        return

    def push():
        try:
            async_to_sync(send)()
        except Exception:  # a push that fails must not undo a committed change
            logger.exception("could not push %s", event_type)

    transaction.on_commit(push)
