"""Wait until the database (and Redis, when REDIS_URL is set) accept connections.

deploy/entrypoint.sh runs this before migrating: in `docker compose up` the web container may
start before PostgreSQL and Redis are ready, and on a restart of the whole host they come back in
any order. The wait is bounded: after the budget it exits non-zero with a message naming the
service and the last error, so the container restarts visibly instead of hanging.

Budget and interval come from options or the environment (PEERLINE_WAIT_TIMEOUT_S,
PEERLINE_WAIT_INTERVAL_S). Messages name hosts and ports, never URLs (those carry passwords).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_INTERVAL_S = 1.0
# One attempt may not take longer than this, so a silently dropped packet cannot eat the budget.
ATTEMPT_TIMEOUT_S = 5


def _database_label() -> str:
    s = settings.DATABASES["default"]
    if s["ENGINE"].endswith("sqlite3"):
        return f"the database (SQLite {os.path.basename(str(s['NAME']))})"
    return f"the database at {s.get('HOST') or 'localhost'}:{s.get('PORT') or 'default port'}"


def _redis_label(url: str) -> str:
    parts = urlsplit(url)
    return f"Redis at {parts.hostname or 'localhost'}:{parts.port or 6379}"


def _check_database(attempt_timeout_s: float) -> None:
    connection = connections["default"]
    if connection.vendor == "postgresql":
        options = connection.settings_dict.setdefault("OPTIONS", {})
        options.setdefault("connect_timeout", max(1, int(attempt_timeout_s)))
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()


def _check_redis(url: str, attempt_timeout_s: float) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=attempt_timeout_s, socket_timeout=attempt_timeout_s)
    try:
        client.ping()
    finally:
        client.close()


class Command(BaseCommand):
    help = "Wait (bounded) until the database and Redis (if REDIS_URL is set) accept connections."

    def add_arguments(self, parser):
        parser.add_argument(
            "--timeout", type=float,
            default=float(os.environ.get("PEERLINE_WAIT_TIMEOUT_S") or DEFAULT_TIMEOUT_S),
            help="Give up after this many seconds in all (env PEERLINE_WAIT_TIMEOUT_S, default 60).",
        )
        parser.add_argument(
            "--interval", type=float,
            default=float(os.environ.get("PEERLINE_WAIT_INTERVAL_S") or DEFAULT_INTERVAL_S),
            help="Seconds between attempts (env PEERLINE_WAIT_INTERVAL_S, default 1).",
        )

    def handle(self, *args, timeout: float, interval: float, **options):
        deadline = time.monotonic() + timeout
        checks: list[tuple[str, Callable[[float], None]]] = [(_database_label(), _check_database)]
        if settings.REDIS_URL:
            url = settings.REDIS_URL
            checks.append((_redis_label(url), lambda t: _check_redis(url, t)))
        for label, check in checks:
            self._wait_for(label, check, deadline=deadline, timeout=timeout, interval=interval)

    def _wait_for(self, label: str, check, *, deadline: float, timeout: float, interval: float) -> None:
        attempts = 0
        while True:
            attempts += 1
            remaining = deadline - time.monotonic()
            try:
                check(max(0.5, min(ATTEMPT_TIMEOUT_S, remaining)))
            except Exception as exc:
                error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                if time.monotonic() + interval >= deadline:
                    raise CommandError(
                        f"gave up waiting for {label} after {attempts} attempt(s) in {timeout:g}s; "
                        f"last error: {error}"
                    ) from exc
                if attempts == 1:
                    self.stdout.write(f"waiting for {label} ({error})")
                time.sleep(interval)
            else:
                self.stdout.write(f"ready: {label}")
                return
