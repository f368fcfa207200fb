"""The signalling consumer, end to end through the real ASGI app and a real database.

Every test runs twice: on the in-process channel layer and on a real Redis layer (with Redis
presence). Read top to bottom, they walk the protocol in docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model

from calls import presence, services
from calls.models import Call
from tests.support.signalling import ORIGIN, new_call_id, open_socket

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}


@pytest.fixture
def people(layer, make_user):
    return {name: make_user(name, name.title()) for name in ("alice", "bob", "carol")}


@pytest.fixture
def fast(settings):
    """Short ring timeout and grace period, so timeouts take a moment."""
    settings.PEERLINE = {**settings.PEERLINE, "RING_TIMEOUT_S": 0.4, "DISCONNECT_GRACE_S": 0.4}


get_call = database_sync_to_async(lambda call_id: Call.objects.get(pk=call_id))


async def wait_for_call(call_id, condition, timeout=5.0) -> Call:
    """Poll the call's row until `condition(call)` holds: a state to wait on, not a sleep."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        call = await get_call(call_id)
        if condition(call):
            return call
        assert loop.time() < deadline, f"call {call_id} never reached the expected state: {call.__dict__}"
        await asyncio.sleep(0.02)


async def open_all(people, *names):
    return [await open_socket(people[name]) for name in names]


async def start_call(caller, callee, media=("audio", "video")):
    """Invite, ring, accept: returns the call id once both sides hold `accepted`."""
    call_id = new_call_id()
    await caller.send(type="invite", call_id=call_id, to=callee.hello["user"]["username"], media=list(media))
    await callee.expect("invite", call_id=call_id)
    await caller.expect("ringing", call_id=call_id)
    await callee.send(type="accept", call_id=call_id)
    await caller.expect("accepted", call_id=call_id, polite=False)
    await callee.expect("accepted", call_id=call_id, polite=True)
    return call_id


# --- connecting and presence ---------------------------------------------------------------------

async def test_anonymous_sockets_are_closed_with_4401_before_any_data(layer):
    from config.asgi import application

    communicator = WebsocketCommunicator(application, "/ws/signal/", headers=[ORIGIN])
    connected, _ = await communicator.connect()
    assert connected
    assert await communicator.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}


async def test_foreign_origins_are_refused(people):
    from config.asgi import application

    communicator = WebsocketCommunicator(application, "/ws/signal/", headers=[(b"origin", b"http://evil.example")])
    connected, _ = await communicator.connect()
    assert not connected


async def test_hello_lists_who_else_is_online_and_presence_sends_only_changes(people):
    alice = await open_socket(people["alice"])
    assert alice.hello["user"] == {"username": "alice", "display_name": "Alice", "status": "available"}
    assert alice.hello["online"] == []
    assert alice.hello["ice_transport_policy"] == "all"

    bob = await open_socket(people["bob"])
    assert [u["username"] for u in bob.hello["online"]] == ["alice"]
    joined = await alice.expect("presence", event="online")
    assert joined["user"] == {"username": "bob", "display_name": "Bob", "status": "available"}

    await bob.close()
    left = await alice.expect("presence", event="offline")
    assert left["user"]["username"] == "bob"
    await alice.close()


async def test_one_join_costs_everyone_else_one_small_message(people):
    """Not the roster again (the original design's quadratic broadcast): one presence frame."""
    alice, carol = await open_socket(people["alice"]), await open_socket(people["carol"])
    await alice.expect("presence", event="online")  # carol
    bob = await open_socket(people["bob"])
    for watcher in (alice, carol):
        frame = await watcher.receive()
        assert frame == {"type": "presence", "event": "online",
                         "user": {"username": "bob", "display_name": "Bob", "status": "available"}}
        await watcher.expect_nothing(ignore_presence=False)
    for s in (alice, bob, carol):
        await s.close()


async def test_three_tabs_are_online_once_and_offline_when_the_last_closes(people):
    alice = await open_socket(people["alice"])
    tabs = [await open_socket(people["bob"], name=f"bob{i}") for i in range(3)]
    await alice.expect("presence", event="online")
    await tabs[0].close()
    await tabs[1].close()
    await alice.expect_nothing(ignore_presence=False)
    await tabs[2].close()
    await alice.expect("presence", event="offline")
    await alice.close()


async def test_ping_is_answered_with_pong(people):
    alice = await open_socket(people["alice"])
    await alice.send(type="ping")
    await alice.expect("pong")
    await alice.close()


async def test_ice_servers_are_handed_out_again_on_request_with_fresh_turn_credentials(people, settings):
    settings.PEERLINE = {**settings.PEERLINE, "TURN_URLS": ["turn:turn.example:3478"], "TURN_SECRET": "s3cret", "TURN_TTL_S": 600}
    alice = await open_socket(people["alice"])
    [turn] = alice.hello["ice_servers"]
    assert turn["urls"] == ["turn:turn.example:3478"] and turn["username"].endswith(f":{people['alice'].pk}")
    assert "s3cret" not in json.dumps(alice.hello)  # the shared secret never reaches a browser
    await alice.send(type="ice_servers")
    fresh = await alice.expect("ice_servers")
    assert fresh["ice_refresh_s"] == alice.hello["ice_refresh_s"] > 0
    assert fresh["ice_servers"][0]["username"].endswith(f":{people['alice'].pk}")
    assert "s3cret" not in json.dumps(fresh)
    await alice.close()


# --- a whole call ----------------------------------------------------------------------------------

async def test_invite_accept_signal_both_ways_and_hang_up(people):
    alice = await open_socket(people["alice"])
    bob = await open_socket(people["bob"])
    carol = await open_socket(people["carol"])

    call_id = new_call_id()
    await alice.send(type="invite", call_id=call_id, to="bob", media=["audio", "video"], **{"from": "carol"})
    invite = await bob.expect("invite", call_id=call_id, media=["audio", "video"])
    assert invite["from"]["username"] == "alice"  # stamped by the server, not the client's "carol"
    await alice.expect("ringing", call_id=call_id)

    await bob.send(type="accept", call_id=call_id)
    accepted = await alice.expect("accepted", call_id=call_id, polite=False)
    assert accepted["peer"] == "bob"
    await bob.expect("accepted", call_id=call_id, polite=True)
    busy = await carol.expect("presence", event="busy")
    assert busy["user"]["status"] == "busy"

    await alice.send(type="signal", call_id=call_id, description={"type": "offer", "sdp": SDP}, **{"from": "carol"})
    offer = await bob.expect("signal", call_id=call_id)
    assert offer == {"type": "signal", "call_id": call_id, "description": {"type": "offer", "sdp": SDP}, "from": "alice"}
    await bob.send(type="signal", call_id=call_id, description={"type": "answer", "sdp": SDP})
    assert (await alice.expect("signal"))["from"] == "bob"
    await bob.send(type="signal", call_id=call_id, candidate=CANDIDATE)
    assert (await alice.expect("signal"))["candidate"]["candidate"] == CANDIDATE["candidate"]
    await alice.send(type="media_state", call_id=call_id, audio=False, video=True)
    assert await bob.expect("media_state") == {"type": "media_state", "call_id": call_id, "audio": False, "video": True, "from": "alice"}
    await carol.expect_nothing()

    await bob.send(type="hangup", call_id=call_id)
    await alice.expect("ended", call_id=call_id, reason="hangup")
    await bob.expect("ended", call_id=call_id, reason="hangup")
    call = await get_call(call_id)
    assert call.status == "completed" and call.end_reason == "hangup" and call.ended_by_id == people["bob"].pk
    assert call.answered_at and call.ended_at and call.duration_s >= 0
    statuses = await database_sync_to_async(presence.get_presence().statuses)([people["alice"].pk, people["bob"].pk])
    assert set(statuses.values()) == {"available"}
    for s in (alice, bob, carol):
        await s.close()


async def test_the_callers_early_offer_waits_for_the_answer_and_goes_only_to_the_answering_tab(people):
    """The caller may make its offer while the phone rings (connecting faster); the server holds
    it and hands it over only once a tab has accepted, and only to that tab."""
    alice = await open_socket(people["alice"])
    tab1, tab2 = await open_socket(people["bob"], name="bob1"), await open_socket(people["bob"], name="bob2")
    call_id = new_call_id()
    await alice.send(type="invite", call_id=call_id, to="bob", media=["audio", "video"])
    await alice.send(type="signal", call_id=call_id, description={"type": "offer", "sdp": SDP})
    await alice.send(type="signal", call_id=call_id, candidate=CANDIDATE)
    await tab1.expect("invite", call_id=call_id)
    await tab2.expect("invite", call_id=call_id)
    await alice.expect("ringing", call_id=call_id)
    await tab1.expect_nothing()
    await alice.expect_nothing()  # held, not refused

    await tab2.send(type="accept", call_id=call_id)
    await tab2.expect("accepted", call_id=call_id, polite=True)
    offer = await tab2.expect("signal", call_id=call_id)
    assert offer["description"]["type"] == "offer" and offer["from"] == "alice"
    assert (await tab2.expect("signal", call_id=call_id))["candidate"] == {**CANDIDATE, "usernameFragment": None}
    await tab1.expect("ended", reason="answered_elsewhere")
    await tab1.expect_nothing()
    for s in (alice, tab1, tab2):
        await s.close()


async def test_an_early_offer_is_dropped_when_the_call_is_declined(people):
    alice, bob = await open_socket(people["alice"]), await open_socket(people["bob"])
    call_id = new_call_id()
    await alice.send(type="invite", call_id=call_id, to="bob", media=["audio"])
    await alice.send(type="signal", call_id=call_id, description={"type": "offer", "sdp": SDP})
    await bob.expect("invite", call_id=call_id)
    await bob.send(type="decline", call_id=call_id)
    await bob.expect("ended", reason="declined")
    await bob.expect_nothing()
    await alice.close(), await bob.close()


async def test_the_callee_declines(people):
    alice, bob = await open_socket(people["alice"]), await open_socket(people["bob"])
    call_id = new_call_id()
    await alice.send(type="invite", call_id=call_id, to="bob", media=["audio"])
    await bob.expect("invite", call_id=call_id, media=["audio"])
    await alice.expect("ringing", call_id=call_id)
    await bob.send(type="decline", call_id=call_id)
    await alice.expect("ended", call_id=call_id, reason="declined")
    await bob.expect("ended", call_id=call_id, reason="declined")
    call = await get_call(call_id)
    assert (call.status, call.end_reason, call.media) == ("declined", "declined", "audio")
    await alice.close(), await bob.close()


async def test_hangup_before_answer_cancels_and_the_callee_stops_ringing(people):
    alice, bob = await open_socket(people["alice"]), await open_socket(people["bob"])
    call_id = new_call_id()
    await alice.send(type="invite", call_id=call_id, to="bob", media=["audio"])
    await bob.expect("invite")
    await alice.expect("ringing", call_id=call_id)
    await alice.send(type="hangup", call_id=call_id)
    await alice.expect("ended", call_id=call_id, reason="cancelled")
    await bob.expect("ended", call_id=call_id, reason="cancelled")
    call = await get_call(call_id)
    assert (call.status, call.end_reason) == ("missed", "cancelled")
    await alice.close(), await bob.close()


async def test_calling_someone_in_a_call_ends_busy_at_once(people):
    alice, bob, carol = await open_all(people, "alice", "bob", "carol")
    await start_call(bob, carol)
    call_id = new_call_id()
    await alice.send(type="invite", call_id=call_id, to="bob", media=["audio"])
    await alice.expect("ended", call_id=call_id, reason="busy")
    await bob.expect_nothing()
    call = await get_call(call_id)
    assert (call.status, call.end_reason) == ("missed", "busy")
    for s in (alice, bob, carol):
        await s.close()


async def test_calling_an_offline_user_ends_offline_and_leaves_them_a_missed_call(people):
    alice = await open_socket(people["alice"])
    call_id = new_call_id()
    await alice.send(type="invite", call_id=call_id, to="bob", media=["video"])
    await alice.expect("ended", call_id=call_id, reason="offline")
    call = await get_call(call_id)
    assert (call.status, call.end_reason, call.callee_id) == ("missed", "offline", people["bob"].pk)
    await alice.close()


async def test_an_unanswered_call_becomes_missed_after_the_ring_timeout(people, fast):
    alice, bob = await open_socket(people["alice"]), await open_socket(people["bob"])
    call_id = new_call_id()
    await alice.send(type="invite", call_id=call_id, to="bob", media=["audio"])
    await bob.expect("invite")
    await alice.expect("ringing")
    await alice.expect("ended", call_id=call_id, reason="missed", timeout=3)
    await bob.expect("ended", call_id=call_id, reason="missed", timeout=3)
    call = await get_call(call_id)
    assert (call.status, call.end_reason, call.ended_by_id) == ("missed", "missed", None)
    await alice.close(), await bob.close()


# --- many tabs ---------------------------------------------------------------------------------------

async def test_an_invite_rings_every_tab_and_the_first_accept_wins(people):
    alice = await open_socket(people["alice"])
    tab1, tab2 = await open_socket(people["bob"], name="bob1"), await open_socket(people["bob"], name="bob2")
    call_id = new_call_id()
    await alice.send(type="invite", call_id=call_id, to="bob", media=["audio", "video"])
    await tab1.expect("invite", call_id=call_id)
    await tab2.expect("invite", call_id=call_id)
    await alice.expect("ringing", call_id=call_id)
    await alice.expect_nothing()  # one `ringing`, however many tabs ring

    await tab2.send(type="accept", call_id=call_id)
    await tab2.expect("accepted", call_id=call_id, polite=True)
    await tab1.expect("ended", call_id=call_id, reason="answered_elsewhere")
    await alice.expect("accepted", call_id=call_id)
    await tab1.send(type="accept", call_id=call_id)
    await tab1.expect_error("bad_state")

    # Only the answering tab takes part in the call.
    await alice.send(type="signal", call_id=call_id, candidate=CANDIDATE)
    await tab2.expect("signal", call_id=call_id)
    await tab1.expect_nothing()
    await tab1.send(type="signal", call_id=call_id, candidate=CANDIDATE)
    await tab1.expect_error("not_allowed")
    await alice.expect_nothing()
    for s in (alice, tab1, tab2):
        await s.close()


async def test_a_tab_opened_during_a_call_knows_the_call_is_elsewhere_and_leaves_it_alone(people):
    """The new tab's hello says another connection holds the call (so the page does not take it
    for an orphan and hang it up); it hears the user's busy/available status; the call's signals
    keep flowing between the two original tabs only."""
    alice, bob = await open_socket(people["alice"]), await open_socket(people["bob"])
    call_id = await start_call(alice, bob)
    second = await open_socket(people["alice"], name="alice2")
    assert second.hello["call"] == {
        "call_id": call_id, "state": "active", "role": "caller", "elsewhere": True, "media": ["audio", "video"],
        "peer": {"username": "bob", "display_name": "Bob", "status": "busy"},
    }
    await bob.send(type="signal", call_id=call_id, candidate=CANDIDATE)
    await alice.expect("signal", call_id=call_id)
    await second.send(type="signal", call_id=call_id, candidate=CANDIDATE)
    await second.expect_error("not_allowed")
    await bob.expect_nothing()

    await bob.send(type="hangup", call_id=call_id)
    await alice.expect("ended", call_id=call_id, reason="hangup")
    while (frame := await second.receive())["type"] != "status":
        assert frame["type"] == "presence", frame
    assert frame == {"type": "status", "status": "available"}
    for s in (alice, bob, second):
        await s.close()


async def ringing_with_a_late_tab(people):
    """Alice calls Bob; Bob's first tab rings; then Bob opens another tab. -> alice, bob, late, id"""
    alice, bob = await open_socket(people["alice"]), await open_socket(people["bob"])
    call_id = new_call_id()
    await alice.send(type="invite", call_id=call_id, to="bob", media=["audio"])
    await bob.expect("invite", call_id=call_id)
    late = await open_socket(people["bob"], name="bob-late")
    return alice, bob, late, call_id


async def test_a_callee_tab_opened_while_the_phone_rings_rings_too_and_hears_the_outcome(people):
    alice, bob, late, call_id = await ringing_with_a_late_tab(people)
    assert late.hello["call"]["state"] == "ringing" and late.hello["call"]["elsewhere"] is False
    # A page that reconnects while ringing may say `resume`: nothing to take over, no error.
    await late.send(type="resume", call_id=call_id)
    await late.expect("resumed", call_id=call_id, state="ringing", polite=True)
    await alice.send(type="hangup", call_id=call_id)
    await bob.expect("ended", call_id=call_id, reason="cancelled")
    await late.expect("ended", call_id=call_id, reason="cancelled")
    for s in (alice, bob, late):
        await s.close()


async def test_a_callee_tab_opened_while_the_phone_rings_can_answer_and_the_first_tab_stops(people):
    alice, bob, late, call_id = await ringing_with_a_late_tab(people)
    await late.send(type="accept", call_id=call_id)
    await late.expect("accepted", call_id=call_id, polite=True)
    await bob.expect("ended", call_id=call_id, reason="answered_elsewhere")
    await alice.expect("ringing", call_id=call_id)
    await alice.expect("accepted", call_id=call_id)
    for s in (alice, bob, late):
        await s.close()


async def test_resume_takes_the_call_from_a_connection_that_still_held_it(people):
    """A page whose socket went silent reconnects before the server noticed the old one: the new
    socket takes the call, the old one is told it went elsewhere and can no longer signal."""
    alice, bob = await open_socket(people["alice"]), await open_socket(people["bob"])
    call_id = await start_call(alice, bob)
    fresh = await open_socket(people["alice"], name="alice-fresh")
    await fresh.send(type="resume", call_id=call_id)
    await fresh.expect("resumed", call_id=call_id, state="active", polite=False)
    await alice.expect("ended", call_id=call_id, reason="answered_elsewhere")
    await alice.send(type="signal", call_id=call_id, candidate=CANDIDATE)
    await alice.expect_error("not_allowed")
    await bob.expect_nothing()
    await fresh.send(type="signal", call_id=call_id, candidate=CANDIDATE)
    await bob.expect("signal", call_id=call_id, **{"from": "alice"})
    assert (await get_call(call_id)).status == "active"
    for s in (alice, bob, fresh):
        await s.close()


async def test_a_caller_who_reconnects_while_the_phone_rings_keeps_the_call(people):
    """The new socket resumes the outgoing call; the answer reaches it, and so do the signals it
    sends again (the old socket's held offer went with it)."""
    alice, bob = await open_socket(people["alice"]), await open_socket(people["bob"])
    call_id = new_call_id()
    await alice.send(type="invite", call_id=call_id, to="bob", media=["audio"])
    await alice.send(type="signal", call_id=call_id, description={"type": "offer", "sdp": SDP})
    await bob.expect("invite", call_id=call_id)
    await alice.expect("ringing", call_id=call_id)
    await alice.close()
    again = await open_socket(people["alice"], name="alice-again")
    assert again.hello["call"]["state"] == "ringing" and again.hello["call"]["role"] == "caller"
    await again.send(type="resume", call_id=call_id)
    await again.expect("resumed", call_id=call_id, state="ringing")
    await again.send(type="signal", call_id=call_id, description={"type": "offer", "sdp": SDP})
    await bob.send(type="accept", call_id=call_id)
    await bob.expect("accepted", call_id=call_id)
    await again.expect("accepted", call_id=call_id)
    offer = await bob.expect("signal", call_id=call_id)
    assert offer["description"]["type"] == "offer"
    await bob.expect_nothing()  # one offer: the old socket's held copy died with it
    await again.close(), await bob.close()


async def test_signals_held_while_the_phone_rings_are_bounded_and_the_offer_is_kept(people, settings):
    from calls.consumers import HELD_SIGNALS_MAX

    settings.PEERLINE = {**settings.PEERLINE, "RATE_BURST": 500}
    alice, bob = await open_socket(people["alice"]), await open_socket(people["bob"])
    call_id = new_call_id()
    await alice.send(type="invite", call_id=call_id, to="bob", media=["audio"])
    await alice.expect("ringing", call_id=call_id)
    await alice.send(type="signal", call_id=call_id, description={"type": "offer", "sdp": SDP})
    for _ in range(HELD_SIGNALS_MAX - 1):
        await alice.send(type="signal", call_id=call_id, candidate=CANDIDATE)
    await alice.send(type="signal", call_id=call_id, candidate=CANDIDATE)
    await alice.expect_error("rate_limited")
    await bob.expect("invite", call_id=call_id)
    await bob.send(type="accept", call_id=call_id)
    await bob.expect("accepted", call_id=call_id)
    first = await bob.expect("signal", call_id=call_id)
    assert first["description"]["type"] == "offer"
    for _ in range(HELD_SIGNALS_MAX - 1):
        assert "candidate" in await bob.expect("signal", call_id=call_id)
    await bob.expect_nothing()
    await alice.close(), await bob.close()


# --- refusing bad input ------------------------------------------------------------------------------

async def test_every_error_code_is_answered_and_the_connection_stays_usable(people, settings):
    alice, bob = await open_socket(people["alice"]), await open_socket(people["bob"])
    await alice.send_raw("{not json")
    await alice.expect_error("bad_json")
    await alice.send(type="explode")
    await alice.expect_error("bad_message")
    await alice.send_raw(data=b"\x00\x01")
    await alice.expect_error("bad_message")
    await alice.send(type="ping", pad="x" * (64 * 1024))
    await alice.expect_error("too_large")
    await alice.send(type="invite", call_id=new_call_id(), to="nobody", media=["audio"])
    await alice.expect_error("unknown_user")
    await alice.send(type="invite", call_id=new_call_id(), to="alice", media=["audio"])
    await alice.expect_error("not_allowed")
    await alice.send(type="accept", call_id=new_call_id())
    await alice.expect_error("unknown_call")
    await alice.send(type="signal", call_id=new_call_id(), candidate=CANDIDATE)
    await alice.expect_error("unknown_call")

    call_id = new_call_id()
    await alice.send(type="invite", call_id=call_id, to="bob", media=["audio"])
    await bob.expect("invite")
    await alice.expect("ringing")
    await alice.send(type="accept", call_id=call_id)  # the caller cannot answer their own call
    await alice.expect_error("not_allowed")
    await bob.send(type="signal", call_id=call_id, candidate=CANDIDATE)  # the callee, before answering
    await bob.expect_error("bad_state")
    await alice.send(type="invite", call_id=new_call_id(), to="bob", media=["audio"])  # one call at a time
    await alice.expect_error("bad_state")
    await alice.send(type="hangup", call_id=call_id)
    await alice.expect("ended", reason="cancelled")
    await bob.expect("ended", reason="cancelled")
    await alice.send(type="invite", call_id=call_id, to="bob", media=["audio"])  # reused call_id
    await alice.expect_error("bad_state")
    await bob.send(type="accept", call_id=call_id)  # accepting an ended call
    await bob.expect_error("bad_state")
    await alice.send(type="hangup", call_id=call_id)
    await alice.expect_error("bad_state")

    await alice.send(type="ping")
    await alice.expect("pong")
    await alice.close(), await bob.close()


async def test_too_many_messages_are_rate_limited(people, settings):
    settings.PEERLINE = {**settings.PEERLINE, "RATE_BURST": 5, "RATE_PER_S": 0.001}
    alice = await open_socket(people["alice"])
    for _ in range(5):
        await alice.send(type="ping")
        await alice.expect("pong")
    await alice.send(type="ping")
    await alice.expect_error("rate_limited")
    await alice.close()


async def test_more_than_five_invites_in_ten_seconds_are_rate_limited(people):
    alice = await open_socket(people["alice"])
    for _ in range(5):
        call_id = new_call_id()
        await alice.send(type="invite", call_id=call_id, to="bob", media=["audio"])
        await alice.expect("ended", call_id=call_id, reason="offline")
    await alice.send(type="invite", call_id=new_call_id(), to="bob", media=["audio"])
    await alice.expect_error("rate_limited")
    await alice.close()


async def test_a_flood_of_bad_frames_closes_the_connection_with_4429(people, settings):
    settings.PEERLINE = {**settings.PEERLINE, "ERRORS_BEFORE_CLOSE": 5}
    alice = await open_socket(people["alice"])
    for _ in range(10):
        await alice.send_raw("garbage")
    codes = []
    while True:
        output = await alice.comm.receive_output(timeout=2)
        if output["type"] == "websocket.close":
            assert output["code"] == 4429
            break
        codes.append(json.loads(output["text"])["code"])
    assert codes == ["bad_json"] * 6


async def test_a_stranger_cannot_signal_or_end_someone_elses_call(people):
    alice, bob, carol = await open_all(people, "alice", "bob", "carol")
    call_id = await start_call(alice, bob)
    await carol.send(type="signal", call_id=call_id, description={"type": "offer", "sdp": SDP})
    await carol.expect_error("not_allowed")
    await carol.send(type="hangup", call_id=call_id)
    await carol.expect_error("not_allowed")
    await carol.send(type="media_state", call_id=call_id, audio=False, video=False)
    await carol.expect_error("not_allowed")
    await alice.expect_nothing()
    await bob.expect_nothing()
    assert (await get_call(call_id)).status == "active"
    for s in (alice, bob, carol):
        await s.close()


async def test_a_client_in_one_call_cannot_signal_into_another_pairs_call(people, make_user):
    """Carol is in a call of her own with Dave; she tries Alice and Bob's call_id, spoofing `from`."""
    dave = await database_sync_to_async(make_user)("dave", "Dave")
    alice, bob, carol = await open_all(people, "alice", "bob", "carol")
    dave_s = await open_socket(dave)
    theirs = await start_call(alice, bob)
    ours = await start_call(carol, dave_s)
    await carol.send(type="signal", call_id=theirs, description={"type": "offer", "sdp": SDP}, **{"from": "alice"})
    await carol.expect_error("not_allowed")
    await carol.send(type="signal", call_id=theirs, candidate=CANDIDATE)
    await carol.expect_error("not_allowed")
    await alice.expect_nothing()
    await bob.expect_nothing()
    await carol.send(type="signal", call_id=ours, candidate=CANDIDATE, **{"from": "alice"})
    assert (await dave_s.expect("signal", call_id=ours))["from"] == "carol"
    for s in (alice, bob, carol, dave_s):
        await s.close()


async def test_end_of_candidates_is_relayed_as_null(people):
    alice, bob = await open_socket(people["alice"]), await open_socket(people["bob"])
    call_id = await start_call(alice, bob)
    await alice.send(type="signal", call_id=call_id, candidate=None)
    assert await bob.expect("signal", call_id=call_id) == {"type": "signal", "call_id": call_id, "candidate": None, "from": "alice"}
    await alice.close(), await bob.close()


async def test_a_server_failure_is_answered_as_server_error_and_the_connection_stays_open(people, monkeypatch):
    alice, bob = await open_socket(people["alice"]), await open_socket(people["bob"])
    call_id = await start_call(alice, bob)

    def broken(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "call_hangup", broken)
    await alice.send(type="hangup", call_id=call_id)
    await alice.expect_error("server_error")
    await alice.send(type="ping")
    await alice.expect("pong")
    monkeypatch.undo()
    await alice.send(type="hangup", call_id=call_id)
    await bob.expect("ended", call_id=call_id, reason="hangup")
    await alice.close(), await bob.close()


async def test_server_event_names_sent_by_a_client_are_refused_and_reach_nobody(people):
    alice, bob = await open_socket(people["alice"]), await open_socket(people["bob"])
    call_id = await start_call(alice, bob)
    for kind in ("calls.ended", "calls_ended", "session.revoked", "presence.update", "websocket.disconnect"):
        await alice.send(type=kind, call_id=call_id, reason="hangup", frame={"type": "ended"})
        await alice.expect_error("bad_message")
    await bob.expect_nothing()
    assert (await get_call(call_id)).status == "active"
    await alice.close(), await bob.close()


async def test_garbage_never_corrupts_state_a_call_still_works_after_it(people):
    alice, bob = await open_socket(people["alice"]), await open_socket(people["bob"])
    for junk in ('{"type":"invite"}', '{"type":"signal","call_id":"x"}', '[', '{"type":"accept","call_id":null}', '{"type": {"a": 1}}'):
        await alice.send_raw(junk)
        await alice.expect("error")
    call_id = await start_call(alice, bob)
    await alice.send(type="hangup", call_id=call_id)
    await bob.expect("ended", reason="hangup")
    await alice.close(), await bob.close()


async def test_an_event_whose_handling_fails_does_not_kill_the_connection(people):
    """Channels ends a consumer whose handler raises, without running disconnect: a ghost online.
    Ours logs the failure and carries on."""
    from channels.layers import get_channel_layer

    alice = await open_socket(people["alice"])
    [(_, channel)] = [(u, c) for u, c in __import__("calls.janitor", fromlist=["x"]).local_connections() if u == people["alice"].pk]
    await get_channel_layer().send(channel, {"type": "calls.signal"})  # no call_id: the handler raises
    await alice.send(type="ping")
    await alice.expect("pong")
    await alice.close()
    assert not [c for u, c in __import__("calls.janitor", fromlist=["x"]).local_connections() if c == channel]


async def test_a_connection_the_server_cannot_set_up_is_closed_and_leaves_nothing_behind(people, monkeypatch):
    """Presence (Redis) away while a tab connects: close 1011, no heartbeat keeps a ghost alive."""
    from calls import janitor
    from config.asgi import application
    from tests.support.sessions import session_cookie_for

    def broken(**kwargs):
        raise ConnectionError("presence is away")

    monkeypatch.setattr(presence.get_presence(), "connect", broken)
    cookie = await database_sync_to_async(session_cookie_for)(people["alice"])
    communicator = WebsocketCommunicator(application, "/ws/signal/", headers=[ORIGIN, (b"cookie", cookie.encode())])
    connected, _ = await communicator.connect()
    assert connected
    assert await communicator.receive_output(timeout=2) == {"type": "websocket.close", "code": 1011}
    await communicator.disconnect()
    assert all(u != people["alice"].pk for u, _ in janitor.local_connections())


# --- lost connections ----------------------------------------------------------------------------------

async def test_a_participant_who_does_not_come_back_ends_the_call_as_disconnected(people, fast):
    alice, bob = await open_socket(people["alice"]), await open_socket(people["bob"])
    call_id = await start_call(alice, bob)
    await bob.close()
    await alice.expect("ended", call_id=call_id, reason="disconnected", timeout=3)
    call = await get_call(call_id)
    assert (call.status, call.end_reason) == ("completed", "disconnected")
    await alice.close()


async def test_a_reconnecting_tab_resumes_its_call_and_gets_the_signals_it_missed(people, settings):
    settings.PEERLINE = {**settings.PEERLINE, "DISCONNECT_GRACE_S": 5}
    alice, bob = await open_socket(people["alice"]), await open_socket(people["bob"])
    call_id = await start_call(alice, bob)
    await bob.close()
    await wait_for_call(call_id, lambda c: c.callee_channel == "")  # alice's side now holds signals
    await alice.send(type="signal", call_id=call_id, candidate=CANDIDATE)

    bob_again = await open_socket(people["bob"], name="bob-again")
    assert bob_again.hello["call"]["call_id"] == call_id and bob_again.hello["call"]["role"] == "callee"
    await bob_again.send(type="resume", call_id=call_id)
    resumed = await bob_again.expect("resumed", call_id=call_id, polite=True, state="active")
    assert resumed["peer"]["username"] == "alice"
    held = await bob_again.expect("signal", call_id=call_id)
    assert held["candidate"]["candidate"] == CANDIDATE["candidate"]
    await bob_again.send(type="signal", call_id=call_id, description={"type": "offer", "sdp": SDP})
    await alice.expect("signal", call_id=call_id)
    assert (await get_call(call_id)).status == "active"
    await alice.send(type="hangup", call_id=call_id)
    await bob_again.expect("ended", reason="hangup")
    await alice.close(), await bob_again.close()


async def test_another_user_cannot_resume_a_call(people):
    alice, bob, carol = await open_all(people, "alice", "bob", "carol")
    call_id = await start_call(alice, bob)
    await carol.send(type="resume", call_id=call_id)
    await carol.expect_error("not_allowed")
    for s in (alice, bob, carol):
        await s.close()


async def test_a_socket_that_died_with_its_worker_gets_the_grace_period_then_the_call_ends(people):
    alice, bob = await open_socket(people["alice"]), await open_socket(people["bob"])
    call_id = await start_call(alice, bob)
    bob_channel = (await get_call(call_id)).callee_channel

    def sweep(at=None):
        return services.call_sweep(
            ring_timeout_s=30, grace_s=15, now=at,
            dead_connections=lambda pairs: {bob_channel},  # bob's worker is gone
        )

    assert await database_sync_to_async(sweep)() == 0  # detached, not ended: bob may come back
    call = await get_call(call_id)
    assert call.status == "active" and call.callee_channel == "" and call.callee_detached_at is not None
    later = call.callee_detached_at + __import__("datetime").timedelta(seconds=16)
    assert await database_sync_to_async(sweep)(later) == 1
    await alice.expect("ended", call_id=call_id, reason="disconnected")
    assert (await get_call(call_id)).end_reason == "disconnected"
    assert await database_sync_to_async(sweep)(later) == 0  # idempotent
    await alice.close(), await bob.close()


async def test_a_socket_that_died_with_its_worker_can_resume_within_the_grace_period(people):
    alice, bob = await open_socket(people["alice"]), await open_socket(people["bob"])
    call_id = await start_call(alice, bob)
    bob_channel = (await get_call(call_id)).callee_channel
    await database_sync_to_async(services.call_sweep)(
        ring_timeout_s=30, grace_s=15, dead_connections=lambda pairs: {bob_channel}
    )
    bob_again = await open_socket(people["bob"], name="bob-again")
    await bob_again.send(type="resume", call_id=call_id)
    await bob_again.expect("resumed", call_id=call_id, state="active")
    await alice.send(type="signal", call_id=call_id, candidate=CANDIDATE)
    await bob_again.expect("signal", call_id=call_id)
    assert (await get_call(call_id)).status == "active"
    for s in (alice, bob, bob_again):
        await s.close()


async def test_the_sweep_ends_calls_left_ringing_after_a_restart(people):
    alice = await open_socket(people["alice"])
    bob = await open_socket(people["bob"])
    call_id = new_call_id()
    await alice.send(type="invite", call_id=call_id, to="bob", media=["audio"])
    await bob.expect("invite")
    await alice.expect("ringing")
    await database_sync_to_async(Call.objects.filter(pk=call_id).update)(
        created_at=(await get_call(call_id)).created_at - __import__("datetime").timedelta(minutes=5)
    )
    ended = await database_sync_to_async(services.call_sweep)(
        ring_timeout_s=30, grace_s=15, dead_connections=lambda pairs: set()
    )
    assert ended == 1
    await alice.expect("ended", call_id=call_id, reason="missed")
    assert (await get_call(call_id)).status == "missed"
    await alice.close(), await bob.close()


async def test_stats_are_kept_for_answered_calls_only(people):
    alice, bob = await open_socket(people["alice"]), await open_socket(people["bob"])
    call_id = await start_call(alice, bob)
    await alice.send(type="hangup", call_id=call_id)
    await alice.expect("ended")
    await alice.send(type="stats", call_id=call_id, summary={"path": "host", "rtt_ms": 3.5, "packet_loss": 0, "bitrate_kbps": 900})
    await bob.send(type="stats", call_id=call_id, summary={"path": "relay"})
    await bob.expect("ended", call_id=call_id, reason="hangup")
    call = await wait_for_call(call_id, lambda c: c.caller_report and c.callee_report)
    assert call.caller_report == {"path": "host", "rtt_ms": 3.5, "packet_loss": 0.0, "bitrate_kbps": 900.0}
    assert call.callee_report == {"path": "relay"}

    unanswered = new_call_id()
    await alice.send(type="invite", call_id=unanswered, to="bob", media=["audio"])
    await bob.expect("invite", call_id=unanswered)
    await alice.expect("ringing", call_id=unanswered)
    await alice.send(type="hangup", call_id=unanswered)
    await alice.expect("ended", call_id=unanswered, reason="cancelled")
    await alice.send(type="stats", call_id=unanswered, summary={"path": "host"})
    await alice.expect_error("bad_state")
    assert (await get_call(unanswered)).caller_report is None
    await alice.close(), await bob.close()


async def test_relay_only_users_get_a_relay_policy(people):
    await database_sync_to_async(get_user_model().objects.filter(username="carol").update)(relay_only=True)
    carol = await open_socket(await database_sync_to_async(get_user_model().objects.get)(username="carol"))
    assert carol.hello["ice_transport_policy"] == "relay"
    await carol.close()
