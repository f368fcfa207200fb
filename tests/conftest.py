"""Fixtures shared by every test: users, channel layers (in-process and real Redis), live servers."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from channels.layers import channel_layers
from django.contrib.auth import get_user_model

from calls import presence
from tests.support.live import DaphneServer
from tests.support.services import redis_url as find_redis_url

PASSWORD = "correct-horse-battery-staple"


def pytest_collection_modifyitems(items):
    """Browser tests last: Playwright's sync API keeps an event loop running in this thread for
    the rest of the session, which pytest-asyncio tests cannot share."""
    items.sort(key=lambda item: "/e2e/" in str(item.fspath))


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """After the session, end any connection to the test database still open on PostgreSQL (a
    worker thread of an async test, a live server's straggler), so that dropping the database
    does not fail with "being accessed by other users" and the next run starts clean."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        connection.close()


@pytest.fixture
def make_user(db):
    def make(username: str, display_name: str = "", **extra):
        return get_user_model().objects.create_user(
            username=username, password=PASSWORD, display_name=display_name, **extra
        )

    return make


@pytest.fixture(scope="session")
def redis_url() -> str:
    return find_redis_url()


def _reset_layers() -> None:
    channel_layers.backends.clear()
    presence.get_presence.cache_clear()


def _use_memory(settings) -> None:
    settings.REDIS_URL = ""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def _use_redis(settings, url: str) -> str:
    prefix = f"peerline-test-{uuid.uuid4().hex[:8]}"
    settings.REDIS_URL = url
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": url, "socket_timeout": None}], "prefix": prefix},
        }
    }
    settings.PEERLINE = {**settings.PEERLINE, "PRESENCE_PREFIX": f"{prefix}:presence:"}
    return prefix


@pytest.fixture(params=["memory", "redis"])
def layer(request, settings):
    """Runs a test twice: on the in-process layer and on a real Redis layer (+ Redis presence)."""
    if request.param == "redis":
        _use_redis(settings, request.getfixturevalue("redis_url"))
    else:
        _use_memory(settings)
    _reset_layers()
    yield request.param
    presence.get_presence().clear()
    _reset_layers()


@pytest.fixture
def redis_layer(settings, redis_url):
    """Only the real Redis layer."""
    prefix = _use_redis(settings, redis_url)
    _reset_layers()
    yield prefix
    presence.get_presence().clear()
    _reset_layers()


@pytest.fixture
def artifacts_dir(request) -> Path:
    """A folder for this test's logs and screenshots (kept after the run)."""
    safe = request.node.nodeid.replace("/", "_").replace("::", "__").replace("[", "_").replace("]", "")
    path = Path(__file__).resolve().parent.parent / "test-results" / safe
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def live_servers(artifacts_dir):
    """Start daphne servers on demand; all are stopped after the test (logs in artifacts_dir)."""
    started: list[DaphneServer] = []

    def start(**kwargs) -> DaphneServer:
        server = DaphneServer(log_dir=artifacts_dir, name=f"daphne{len(started) + 1}", **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
