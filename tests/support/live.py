"""Real daphne servers in subprocesses, sharing the test database (and Redis when given).

pytest-django's `live_server` is WSGI and serves no WebSockets; this runs the production entry
point (`daphne config.asgi:application`) instead. Tests that use it need
`@pytest.mark.django_db(transaction=True)` so their rows are committed where daphne can see them.

Those servers, and every other Django process a test starts, run `config.settings`, which would
read the developer's `.env`; NO_DOT_ENV, last in each environment built here, stops that.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import zlib
from pathlib import Path

from django.conf import settings
from django.db import connection

from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[2]

# config/settings.py ignores .env with this; nothing a test passes can switch it back.
NO_DOT_ENV = {"DJANGO_READ_DOT_ENV": "false"}
# What the environment of a Django process started by a test must not inherit from the test
# process: the suite's own settings would leak into the settings under test.
INHERITED_SETTINGS_PREFIXES = ("DJANGO_", "PEERLINE_", "DATABASE_URL", "REDIS_URL")


def isolated_env(**extra: str) -> dict[str, str]:
    """The test process's environment without Django/Peerline settings, plus `extra`, never
    reading .env: for settings, manage.py and script subprocesses."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(INHERITED_SETTINGS_PREFIXES)}
    return {**base, **extra, **NO_DOT_ENV}


# Short timings so tests about timeouts and dead workers finish in seconds, with room for a
# noisy 2-core machine: a janitor round (heartbeat) waits for the worker's one database thread,
# and with a 2 s TTL a round 1.5 s late takes a user offline mid-test; a page that lost its
# socket must reconnect, get `hello` and `resume` within the grace period.
FAST_TIMINGS = {
    "PEERLINE_HEARTBEAT_INTERVAL_S": "0.5",
    "PEERLINE_PRESENCE_TTL_S": "5",
    "PEERLINE_DISCONNECT_GRACE_S": "5",
    "PEERLINE_RING_TIMEOUT_S": "30",
}


def redis_prefix() -> str:
    """The channel-layer and presence prefix of this test's servers: their own, so they neither
    hear a developer's server on the same Redis (127.0.0.1:6379 is used when it answers) nor an
    earlier test's leftovers; every server one test starts shares it (a test passing its own
    prefix in `env` wins)."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
    return f"peerline-e2e-{os.getpid()}-{zlib.crc32(test.encode()):08x}"


def test_database_url() -> str:
    """The URL of the database pytest-django set up, for other processes."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    if s["ENGINE"].endswith("postgresql"):
        auth = s["USER"] or ""
        if s.get("PASSWORD"):
            auth += f":{s['PASSWORD']}"
        host = s["HOST"] or "127.0.0.1"
        return f"postgres://{auth}@{host}:{s['PORT'] or 5432}/{s['NAME']}"
    raise RuntimeError(f"no live-server support for {s['ENGINE']}")


class DaphneServer:
    def __init__(self, *, redis_url: str = "", env: dict[str, str] | None = None, log_dir: Path | None = None, name: str = "daphne"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws/signal/"
        self.name = name
        self.log_path = (log_dir or Path(os.environ.get("TMPDIR", "/tmp"))) / f"{name}-{self.port}.log"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            # The same key as the test process: sessions made by tests must verify in daphne.
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,
            "DJANGO_DEBUG": "false",
            "DJANGO_STATIC_USE_FINDERS": "true",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": redis_url,
            "PEERLINE_JANITOR": "true",
            "DJANGO_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            **FAST_TIMINGS,
            "PEERLINE_CHANNEL_PREFIX": redis_prefix(),
            "PEERLINE_PRESENCE_PREFIX": f"{redis_prefix()}:presence:",
            **(env or {}),
            **NO_DOT_ENV,
        }
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 20) -> "DaphneServer":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/accounts/login/", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {timeout_s}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if hasattr(self, "_log"):
            self._log.close()

    def kill(self) -> None:
        """SIGKILL: the worker dies without running any disconnect handler."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
