"""What operators ask of a running Peerline: is it healthy, and how busy is it.

Pure collection logic; calls/ops_views.py turns it into /healthz and /metrics.

Health checks are cheap and bounded: a load balancer or orchestrator polls them every few
seconds, so each check has a timeout and reports a short reason instead of hanging or raising.
The channel-layer probe sends to a fresh channel of this process and reads it back; it is not an
event for a browser, which is why it does not go through calls.events.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.db.models import Count

from calls import presence
from calls.models import Call

logger = logging.getLogger(__name__)

DATABASE_TIMEOUT_S = 3.0
CHANNEL_LAYER_TIMEOUT_S = 2.0
PROBE_EVENT_TYPE = "ops.probe"

OK = "ok"
FAILED = "failed"

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


# --- Health ----------------------------------------------------------------------------------------


def _query_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        if cursor.fetchone() != (1,):
            raise RuntimeError("SELECT 1 did not return 1")


async def check_database(*, timeout_s: float | None = None) -> str:
    """OK, or a short reason. A query stuck past the timeout is reported, not awaited (its
    thread cannot be interrupted, but the health answer does not wait for it)."""
    timeout_s = DATABASE_TIMEOUT_S if timeout_s is None else timeout_s
    try:
        await asyncio.wait_for(sync_to_async(_query_database)(), timeout_s)
    except TimeoutError:
        logger.warning("health: database did not answer within %ss", timeout_s)
        return f"{FAILED}: no answer within {timeout_s:g}s"
    except Exception as exc:
        logger.warning("health: database check failed: %s", exc)
        return f"{FAILED}: {type(exc).__name__}"
    return OK


async def _probe_channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    channel = await layer.new_channel("ops.probe.")
    token = uuid.uuid4().hex
    await layer.send(channel, {"type": PROBE_EVENT_TYPE, "token": token})
    message = await layer.receive(channel)
    if message.get("token") != token:
        raise RuntimeError("the probe came back changed")


async def check_channel_layer(*, timeout_s: float | None = None) -> str:
    """OK when a message sent to a fresh channel comes back within the timeout."""
    timeout_s = CHANNEL_LAYER_TIMEOUT_S if timeout_s is None else timeout_s
    try:
        await asyncio.wait_for(_probe_channel_layer(), timeout_s)
    except TimeoutError:
        logger.warning("health: channel layer round trip took over %ss", timeout_s)
        return f"{FAILED}: no round trip within {timeout_s:g}s"
    except Exception as exc:
        logger.warning("health: channel layer check failed: %s", exc)
        return f"{FAILED}: {type(exc).__name__}"
    return OK


async def health() -> dict[str, str]:
    """{"status", "database", "channel_layer"}; status is "ok" only when every part is."""
    database, channel_layer = await asyncio.gather(check_database(), check_channel_layer())
    parts = {"database": database, "channel_layer": channel_layer}
    status = OK if all(value == OK for value in parts.values()) else FAILED
    return {"status": status, **parts}


# --- Metrics ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    name: str
    help: str
    samples: list[tuple[dict[str, str], float]]
    kind: str = "gauge"


def calls_by_status() -> dict[str, int]:
    """Every status, zero included, so a series never disappears from a dashboard."""
    counts = {status: 0 for status in Call.Status.values}
    for row in Call.objects.order_by().values("status").annotate(n=Count("pk")):
        counts[row["status"]] = row["n"]
    return counts


def collect_metrics() -> list[Metric]:
    """The current figures, read from the database and presence (sync: call from a thread)."""
    backend = presence.get_presence()
    online = sorted(backend.online_user_ids())
    open_connections = sum(len(backend.connections(user_id)) for user_id in online)
    busy = sum(1 for status in backend.statuses(online).values() if status == presence.BUSY)
    by_status = calls_by_status()
    return [
        Metric("peerline_users_online", "Users with at least one live connection.", [({}, len(online))]),
        Metric("peerline_users_busy", "Online users who are in a call.", [({}, busy)]),
        Metric("peerline_connections_open", "Live signalling connections, all workers.", [({}, open_connections)]),
        Metric(
            "peerline_calls",
            "Calls in the database by status.",
            [({"status": status}, n) for status, n in sorted(by_status.items())],
        ),
        Metric("peerline_calls_active", "Calls answered and not yet ended.", [({}, by_status[Call.Status.ACTIVE])]),
        Metric("peerline_calls_ringing", "Calls ringing now.", [({}, by_status[Call.Status.RINGING])]),
    ]


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render_prometheus(metrics: list[Metric]) -> str:
    """Prometheus text exposition format 0.0.4."""
    lines: list[str] = []
    for metric in metrics:
        lines.append(f"# HELP {metric.name} {metric.help}")
        lines.append(f"# TYPE {metric.name} {metric.kind}")
        for labels, value in metric.samples:
            label_text = ",".join(f'{key}="{_escape_label(val)}"' for key, val in labels.items())
            series = f"{metric.name}{{{label_text}}}" if label_text else metric.name
            lines.append(f"{series} {_format_value(value)}")
    return "\n".join(lines) + "\n"
