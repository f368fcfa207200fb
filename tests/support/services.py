"""Finding the real services the tests and benches need: Redis, Chromium, coturn.

`find_*` functions return what they found or raise ServiceMissing with what to install; the
benches use them directly. Tests use the wrappers below them: outside CI a missing service skips
the tests that need it, with the reason; in CI (CI=true) it fails them, because a green CI must
mean the real thing ran.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time

IN_CI = os.environ.get("CI", "").lower() == "true"

# Headless Chromium as the tests and benches drive it (../shared/notes/webrtc-e2e.md): fake camera
# and microphone that need no permission prompt, ICE allowed on loopback, nothing phoning home.
CHROMIUM_ARGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
]


class ServiceMissing(Exception):
    """A real service is not there; the message says what to install or set."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping())
    except Exception:
        return False


_started_redis_url: str | None = None


def find_redis_url() -> str:
    """PEERLINE_TEST_REDIS_URL / REDIS_URL when set, else 127.0.0.1:6379, else a redis-server
    started for this process (stopped when it exits)."""
    global _started_redis_url
    configured = os.environ.get("PEERLINE_TEST_REDIS_URL") or os.environ.get("REDIS_URL")
    if configured:
        if _redis_answers(configured):
            return configured
        raise ServiceMissing(f"Redis at REDIS_URL={configured} does not answer")
    if _redis_answers("redis://127.0.0.1:6379/0"):
        return "redis://127.0.0.1:6379/0"
    if _started_redis_url:
        return _started_redis_url
    binary = shutil.which("redis-server")
    if not binary:
        raise ServiceMissing("no Redis: set REDIS_URL, run one on 127.0.0.1:6379, or install redis-server")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="peerline-redis-")
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    atexit.register(proc.terminate)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _redis_answers(url):
            _started_redis_url = url
            return url
        time.sleep(0.05)
    raise ServiceMissing(f"started redis-server on port {port} but it does not answer")


def find_chromium() -> str:
    """PEERLINE_CHROMIUM when set, else the first Chromium on PATH."""
    path = os.environ.get("PEERLINE_CHROMIUM")
    if path:
        return path
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    raise ServiceMissing("no Chromium: install Debian's `chromium` package or set PEERLINE_CHROMIUM")


# --- for tests -------------------------------------------------------------------------------------

def unavailable(reason: str):
    """Fail in CI, skip (with the reason) on a developer machine."""
    import pytest

    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required, not skipped)", pytrace=False)
    pytest.skip(reason)


def redis_url() -> str:
    try:
        return find_redis_url()
    except ServiceMissing as missing:
        unavailable(str(missing))


def chromium_path() -> str:
    try:
        return find_chromium()
    except ServiceMissing as missing:
        unavailable(str(missing))


def turnserver_path() -> str:
    found = shutil.which("turnserver")
    if not found:
        unavailable("no coturn: install Debian's `coturn` package (turnserver)")
    return found
