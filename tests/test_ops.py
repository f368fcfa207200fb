"""/healthz and /metrics (calls.ops, calls.ops_views)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from channels.layers import channel_layers
from django.contrib.auth.models import Permission
from django.db import OperationalError

from calls import ops, presence
from calls.models import Call
from tests.support.sessions import session_cookie_for

METRICS_TOKEN = "metrics-token-for-tests-0123456789"


def parse_prometheus(text: str) -> dict[str, float]:
    """{'name{labels}': value} for every sample line; checks the HELP/TYPE lines on the way."""
    samples: dict[str, float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
        elif line.startswith("#") or not line:
            continue
        else:
            series, value = line.rsplit(" ", 1)
            assert series.split("{")[0] in typed, f"sample before its TYPE line: {line}"
            samples[series] = float(value)
    return samples


@pytest.fixture
def broken_layer(settings):
    """A Redis channel layer pointing at a port nothing listens on."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0", "socket_timeout": 1}]},
        }
    }
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


# --- /healthz -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_healthz_is_ok_without_login(client, layer):
    """Anonymous, on both layers: 200 and every part ok (no redirect to the login page)."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "channel_layer": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_healthz_is_503_when_the_channel_layer_is_down(client, broken_layer):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failed"
    assert body["database"] == "ok"
    assert body["channel_layer"].startswith("failed")


@pytest.mark.django_db
def test_healthz_is_503_when_the_database_fails(client, monkeypatch):
    def broken_query():
        raise OperationalError("connection refused")

    monkeypatch.setattr(ops, "_query_database", broken_query)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body == {"status": "failed", "database": "failed: OperationalError", "channel_layer": "ok"}


@pytest.mark.django_db
def test_healthz_gives_up_on_a_channel_layer_that_never_answers(client, monkeypatch):
    """A hung check is reported as a failure within its timeout, never awaited forever."""

    async def hang():
        await asyncio.sleep(60)

    monkeypatch.setattr(ops, "_probe_channel_layer", hang)
    monkeypatch.setattr(ops, "CHANNEL_LAYER_TIMEOUT_S", 0.2)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["channel_layer"] == "failed: no round trip within 0.2s"


def test_healthz_only_answers_get(client):
    assert client.post("/healthz").status_code == 405


# --- /metrics -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_refuses_anonymous_with_403_not_a_login_redirect(client, settings):
    settings.PEERLINE_METRICS_TOKEN = METRICS_TOKEN
    response = client.get("/metrics")
    assert response.status_code == 403


@pytest.mark.django_db
def test_metrics_refuses_a_wrong_token_and_a_non_staff_user(client, settings, make_user):
    settings.PEERLINE_METRICS_TOKEN = METRICS_TOKEN
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": METRICS_TOKEN}).status_code == 403
    client.force_login(make_user("alice"))
    assert client.get("/metrics").status_code == 403


@pytest.mark.django_db
def test_metrics_token_is_disabled_when_unset(client, settings):
    """An empty PEERLINE_METRICS_TOKEN must not let an empty bearer token in."""
    settings.PEERLINE_METRICS_TOKEN = ""
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer"}).status_code == 403


@pytest.mark.django_db
def test_metrics_with_the_token(client, settings):
    settings.PEERLINE_METRICS_TOKEN = METRICS_TOKEN
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = parse_prometheus(response.content.decode())
    assert samples["peerline_users_online"] == 0
    assert samples['peerline_calls{status="ringing"}'] == 0


def staff_who_may_view_calls(make_user, username: str = "operator"):
    user = make_user(username, is_staff=True)
    user.user_permissions.add(Permission.objects.get(content_type__app_label="calls", codename="view_call"))
    return user


@pytest.mark.django_db
def test_metrics_for_staff_who_may_view_calls_and_for_superusers(client, make_user):
    for user in (staff_who_may_view_calls(make_user), make_user("root", is_staff=True, is_superuser=True)):
        client.force_login(user)
        response = client.get("/metrics")
        assert response.status_code == 200, user
        assert "peerline_connections_open" in response.content.decode()


@pytest.mark.django_db
def test_metrics_refuse_staff_without_the_view_call_permission(client, make_user):
    """Staff status alone opens the admin's front door, not its call pages: nor /metrics."""
    helper = make_user("helper", is_staff=True)
    helper.user_permissions.add(Permission.objects.get(content_type__app_label="accounts", codename="view_user"))
    client.force_login(helper)
    response = client.get("/metrics")
    assert response.status_code == 403
    assert "calls.view_call" in response.content.decode()


@pytest.mark.django_db
def test_metrics_match_the_rows_and_presence(client, layer, make_user):
    """On both presence backends: the figures are the database's and presence's own."""
    alice, bob, carol, dave = (make_user(n) for n in ("alice", "bob", "carol", "dave"))
    staff = staff_who_may_view_calls(make_user, "staff")
    for status, n in [("ringing", 1), ("active", 2), ("completed", 3), ("missed", 1), ("declined", 0)]:
        for _ in range(n):
            Call.objects.create(caller=alice, callee=bob, media="audio", status=status)
    backend = presence.get_presence()
    backend.connect(user_id=alice.pk, channel="worker1!a1")
    backend.connect(user_id=alice.pk, channel="worker2!a2")
    backend.connect(user_id=bob.pk, channel="worker1!b1")
    backend.connect(user_id=carol.pk, channel="worker2!c1")
    backend.set_status(bob.pk, presence.BUSY)

    client.force_login(staff)
    samples = parse_prometheus(client.get("/metrics").content.decode())

    assert samples["peerline_users_online"] == 3
    assert samples["peerline_users_busy"] == 1
    assert samples["peerline_connections_open"] == 4
    assert samples['peerline_calls{status="ringing"}'] == 1
    assert samples['peerline_calls{status="active"}'] == 2
    assert samples['peerline_calls{status="completed"}'] == 3
    assert samples['peerline_calls{status="missed"}'] == 1
    assert samples['peerline_calls{status="declined"}'] == 0
    assert samples["peerline_calls_active"] == 2
    assert samples["peerline_calls_ringing"] == 1
    assert dave.pk not in backend.online_user_ids()


def test_render_prometheus_escapes_labels_and_formats_values():
    text = ops.render_prometheus(
        [ops.Metric("x_total", "An example.", [({"name": 'a"b\\c\nd'}, 2.0), ({}, 0.5)], kind="counter")]
    )
    assert text == (
        "# HELP x_total An example.\n"
        "# TYPE x_total counter\n"
        'x_total{name="a\\"b\\\\c\\nd"} 2\n'
        "x_total 0.5\n"
    )


async def _open_signalling_sockets(server, cookies: list[str]) -> list:
    """One socket per cookie, each past `hello` (sent once presence has recorded it)."""
    import websockets

    sockets = []
    for cookie in cookies:
        ws = await websockets.connect(server.ws_url, origin=server.url, additional_headers={"Cookie": cookie})
        sockets.append(ws)
        while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "hello":
            pass
    return sockets


@pytest.mark.live
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_healthz_and_metrics_on_a_real_daphne_with_redis(live_servers, redis_url, make_user):
    """The production entry point, with the Redis layer: the probe runs on daphne's event loop,
    and the figures count the sockets really open on it (a prefix of its own keeps other runs
    on the same Redis out of the count)."""
    import urllib.error
    import urllib.request

    prefix = f"peerline-ops-{uuid.uuid4().hex[:8]}"
    server = live_servers(redis_url=redis_url, env={
        "PEERLINE_METRICS_TOKEN": METRICS_TOKEN, "PEERLINE_CHANNEL_PREFIX": prefix,
        "PEERLINE_PRESENCE_PREFIX": f"{prefix}:presence:",
    })
    with urllib.request.urlopen(server.url + "/healthz", timeout=10) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"status": "ok", "database": "ok", "channel_layer": "ok"}

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(server.url + "/metrics", timeout=10)
    assert refused.value.code == 403

    def scrape() -> dict[str, float]:
        request = urllib.request.Request(server.url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            return parse_prometheus(response.read().decode())

    before = scrape()
    assert (before["peerline_connections_open"], before["peerline_users_online"]) == (0, 0)
    assert 'peerline_calls{status="active"}' in before

    alice, bob = make_user("alice"), make_user("bob")
    cookies = [session_cookie_for(alice), session_cookie_for(alice), session_cookie_for(bob)]

    async def scenario():
        sockets = await _open_signalling_sockets(server, cookies)
        try:
            return await asyncio.to_thread(scrape)
        finally:
            for ws in sockets:
                await ws.close()

    during = asyncio.run(scenario())
    assert during["peerline_connections_open"] == 3
    assert during["peerline_users_online"] == 2
