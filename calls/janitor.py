"""Per-process housekeeping: heartbeats, presence sweeps, call sweeps and one-shot timers.

Each worker process runs one janitor task. It refreshes the presence of the connections this
process holds (so a dead process's users expire), announces users whose last connection expired,
and ends calls that nobody is tending (ring timeouts and lost connections whose own timers died
with their worker). Every step is idempotent, so all workers may run it at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings

from accounts.services import login_sessions_prune
from calls import events, presence, protocol, selectors, services

logger = logging.getLogger(__name__)

# Login-session rows whose Django session expired are pruned this often by each worker (they
# are also pruned by `clearsessions`); one indexed DELETE, so hourly costs nothing.
LOGIN_SESSION_PRUNE_INTERVAL_S = 3600.0

# channel name -> user id, for the connections this process holds.
_local_connections: dict[str, int] = {}
# One-shot timers and janitor tasks are referenced here so they are not garbage collected.
_tasks: set[asyncio.Task] = set()
_janitors: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task]" = weakref.WeakKeyDictionary()


def register(channel: str, user_id: int) -> None:
    _local_connections[channel] = user_id


def unregister(channel: str) -> None:
    _local_connections.pop(channel, None)


def local_connections() -> list[tuple[int, str]]:
    return [(uid, ch) for ch, uid in _local_connections.items()]


def schedule(delay_s: float, action: Callable[[], Awaitable[object]], *, what: str) -> asyncio.Task:
    """Run `action` once after `delay_s`, surviving the consumer that asked for it."""

    async def later():
        await asyncio.sleep(delay_s)
        try:
            await action()
        except Exception:
            logger.exception("timer failed: %s", what)

    task = asyncio.get_running_loop().create_task(later(), name=what)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task


async def announce(user_ids, event: str) -> None:
    """Tell everyone that these users came online or went offline."""
    if not user_ids:
        return
    users = await database_sync_to_async(selectors.users_by_ids)(user_ids)
    statuses = await sync_to_async(presence.get_presence().statuses)([u.pk for u in users])
    for user in users:
        payload = protocol.user_payload(user, status=statuses.get(user.pk, presence.AVAILABLE))
        await events.send_to_everyone("presence.update", user=payload, event=event)


def _sweep_calls() -> int:
    cfg = settings.PEERLINE
    backend = presence.get_presence()
    return services.call_sweep(
        ring_timeout_s=cfg["RING_TIMEOUT_S"],
        grace_s=cfg["DISCONNECT_GRACE_S"],
        dead_connections=backend.dead_connections,
    )


_last_prune_at = float("-inf")


async def run_once() -> None:
    global _last_prune_at
    backend = presence.get_presence()
    back = await sync_to_async(backend.heartbeat)(local_connections())
    gone = await sync_to_async(backend.sweep)()
    await announce(back, "online")
    await announce(gone, "offline")
    ended = await database_sync_to_async(_sweep_calls)()
    if gone or ended:
        logger.info("janitor: %d user(s) expired, %d call(s) ended", len(gone), ended)
    if time.monotonic() - _last_prune_at >= LOGIN_SESSION_PRUNE_INTERVAL_S:
        _last_prune_at = time.monotonic()
        await database_sync_to_async(login_sessions_prune)()


async def run_forever() -> None:
    interval = presence.heartbeat_interval_s()
    while True:
        try:
            await run_once()
        except asyncio.CancelledError:
            raise
        except Exception:  # Redis or the database away for a moment: try again next round
            logger.exception("janitor round failed")
        await asyncio.sleep(interval)


def ensure_started() -> None:
    if not settings.PEERLINE.get("JANITOR", True):
        return
    loop = asyncio.get_running_loop()
    task = _janitors.get(loop)
    if task is None or task.done():
        _janitors[loop] = loop.create_task(run_forever(), name="peerline-janitor")


class JanitorStarter:
    """ASGI wrapper that starts this process's janitor with the first request of any kind
    (daphne has no startup hook for it), so a restarted worker sweeps what its predecessor left."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            ensure_started()
        return await self.app(scope, receive, send)
