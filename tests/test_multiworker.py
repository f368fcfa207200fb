"""Two real daphne workers sharing one real Redis: the deployment shape Peerline scales out with.

alice's socket lives on one worker, bob's on the other; everything between them crosses Redis.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
import websockets
from django.db import close_old_connections

from calls.models import Call
from tests.support.live import FAST_TIMINGS
from tests.support.sessions import session_cookie_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live, pytest.mark.redis]

SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


class Tab:
    """A browser tab's signalling socket over a real network connection."""

    def __init__(self, ws, name):
        self.ws, self.name = ws, name

    async def send(self, **frame):
        await self.ws.send(json.dumps(frame))

    async def expect(self, kind, timeout=10, **fields):
        deadline = time.monotonic() + timeout
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), max(0.05, deadline - time.monotonic())))
            if frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items()):
                return frame
            if frame["type"] not in ("presence", "status", kind):
                raise AssertionError(f"{self.name}: expected {kind} {fields}, got {frame}")


async def open_tab(server, cookie, name):
    ws = await websockets.connect(server.ws_url, origin=server.url, additional_headers={"Cookie": cookie})
    tab = Tab(ws, name)
    tab.hello = await tab.expect("hello")
    return tab


@pytest.fixture
def two_workers(live_servers, redis_url):
    prefix = f"peerline-mw-{uuid.uuid4().hex[:8]}"
    env = {"PEERLINE_CHANNEL_PREFIX": prefix, "PEERLINE_PRESENCE_PREFIX": f"{prefix}:presence:"}
    return live_servers(redis_url=redis_url, env=env), live_servers(redis_url=redis_url, env=env)


def fetch_call(call_id):
    close_old_connections()
    return Call.objects.get(pk=call_id)


def test_a_call_across_two_workers_from_invite_to_hangup(two_workers, make_user):
    w1, w2 = two_workers
    alice_cookie = session_cookie_for(make_user("alice", "Alice"))
    bob_cookie = session_cookie_for(make_user("bob", "Bob"))
    call_id = str(uuid.uuid4())

    async def scenario():
        alice = await open_tab(w1, alice_cookie, "alice@w1")
        bob = await open_tab(w2, bob_cookie, "bob@w2")
        assert [u["username"] for u in bob.hello["online"]] == ["alice"]
        await alice.expect("presence", event="online")  # presence crossed workers

        await alice.send(type="invite", call_id=call_id, to="bob", media=["audio", "video"])
        await bob.expect("invite", call_id=call_id)
        await alice.expect("ringing", call_id=call_id)
        await bob.send(type="accept", call_id=call_id)
        await alice.expect("accepted", call_id=call_id, polite=False)
        await bob.expect("accepted", call_id=call_id, polite=True)

        await alice.send(type="signal", call_id=call_id, description={"type": "offer", "sdp": SDP})
        offer = await bob.expect("signal", call_id=call_id)
        assert offer["from"] == "alice" and offer["description"]["type"] == "offer"
        await bob.send(type="signal", call_id=call_id, description={"type": "answer", "sdp": SDP})
        assert (await alice.expect("signal", call_id=call_id))["from"] == "bob"

        await alice.send(type="hangup", call_id=call_id)
        await alice.expect("ended", call_id=call_id, reason="hangup")
        await bob.expect("ended", call_id=call_id, reason="hangup")
        await bob.ws.close()
        await alice.expect("presence", event="offline")
        await alice.ws.close()

    asyncio.run(scenario())
    call = fetch_call(call_id)
    assert call.status == "completed" and call.end_reason == "hangup" and call.duration_s is not None


def test_a_killed_worker_takes_its_users_offline_within_the_ttl_and_ends_their_call(two_workers, make_user):
    w1, w2 = two_workers
    alice_cookie = session_cookie_for(make_user("alice", "Alice"))
    bob_cookie = session_cookie_for(make_user("bob", "Bob"))
    call_id = str(uuid.uuid4())
    ttl = float(FAST_TIMINGS["PEERLINE_PRESENCE_TTL_S"])
    heartbeat = float(FAST_TIMINGS["PEERLINE_HEARTBEAT_INTERVAL_S"])

    async def scenario():
        alice = await open_tab(w1, alice_cookie, "alice@w1")
        bob = await open_tab(w2, bob_cookie, "bob@w2")
        await alice.send(type="invite", call_id=call_id, to="bob", media=["audio"])
        await bob.expect("invite", call_id=call_id)
        await alice.expect("ringing", call_id=call_id)
        await bob.send(type="accept", call_id=call_id)
        await alice.expect("accepted", call_id=call_id)

        w2.kill()  # SIGKILL: no disconnect handler runs on w2
        killed_at = time.monotonic()
        offline = await alice.expect("presence", event="offline", timeout=ttl + 4 * heartbeat + 5)
        offline_after = time.monotonic() - killed_at
        assert offline["user"]["username"] == "bob"
        ended = await alice.expect("ended", call_id=call_id, timeout=10)
        assert ended["reason"] == "disconnected"
        await alice.ws.close()
        return offline_after

    offline_after = asyncio.run(scenario())
    # Within the TTL plus one janitor round (and scheduling slack on a loaded machine).
    assert offline_after <= ttl + 2 * heartbeat + 1.5, offline_after
    call = fetch_call(call_id)
    assert (call.status, call.end_reason) == ("completed", "disconnected")


def test_a_restarted_worker_ends_what_its_predecessor_left_without_any_browser(live_servers, redis_url, make_user):
    """Every worker died with a call ringing and another answered, and nobody reconnects. A new
    worker sweeps them once anything reaches it (in production the container health check does,
    seconds after start): the ringing call becomes missed and the answered one, whose sockets
    nobody holds, ends as disconnected after the grace period."""
    from datetime import timedelta

    from django.utils import timezone

    alice, bob, carol, dave = (make_user(n) for n in ("alice", "bob", "carol", "dave"))
    long_ago = timezone.now() - timedelta(minutes=5)
    ringing = Call.objects.create(caller=alice, callee=bob, media="audio", caller_channel="gone.1")
    active = Call.objects.create(
        caller=carol, callee=dave, media="audio", status=Call.Status.ACTIVE, answered_at=long_ago,
        caller_channel="gone.2", callee_channel="gone.3",
    )
    Call.objects.filter(pk__in=[ringing.pk, active.pk]).update(created_at=long_ago)

    prefix = f"peerline-restart-{uuid.uuid4().hex[:8]}"
    live_servers(redis_url=redis_url, env={"PEERLINE_CHANNEL_PREFIX": prefix, "PEERLINE_PRESENCE_PREFIX": f"{prefix}:presence:"})
    grace = float(FAST_TIMINGS["PEERLINE_DISCONNECT_GRACE_S"])
    deadline = time.monotonic() + grace + 10
    while time.monotonic() < deadline:
        states = {fetch_call(c.pk).end_reason for c in (ringing, active)}
        if states == {"missed", "disconnected"}:
            break
        time.sleep(0.1)
    assert (fetch_call(ringing.pk).status, fetch_call(ringing.pk).end_reason) == ("missed", "missed")
    assert (fetch_call(active.pk).status, fetch_call(active.pk).end_reason) == ("completed", "disconnected")
