"""Ringing and every way a call can fail to start: decline, busy, no answer, cancel, two tabs."""

import pytest

from calls.models import Call
from tests.e2e.calling import (
    connect_call, keep_call_media, lobby, message, place_call, roster_user, wait_media_flowing, wait_remote_video,
    wait_state, wait_torn_down, wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def test_audio_call_shows_avatars_and_can_turn_the_camera_on(live_servers, redis_url, make_user, open_page):
    """An audio-only call carries audio, shows initials; turning a camera on renegotiates video."""
    alice, bob = make_user("alice", "Alice Liddell"), make_user("bob", "Bob Builder")
    server = live_servers(redis_url=redis_url)
    a, a_watch = lobby(open_page, server, alice)
    b, b_watch = lobby(open_page, server, bob)

    place_call(a, b, "bob", video=False)
    assert "Audio call" in b.text_content("[data-testid=incoming-call]")
    assert "Alice Liddell" in b.text_content("[data-testid=incoming-call]")
    b.click("[data-testid=accept-call]")
    wait_state(a, "active")
    wait_state(b, "active")
    for page in (a, b):
        wait_media_flowing(page, video=False)
        assert page.is_visible("[data-role=remote-avatar]")
        assert page.is_hidden("[data-testid=local-video]")
    assert b.text_content("[data-role=remote-initials]") == "AL"

    a.click("[data-testid=toggle-camera]")  # perfect negotiation: a new video m-line mid-call
    wait_remote_video(b)
    b.wait_for_selector("body[data-peer-video=on]")
    wait_media_flowing(b)
    assert b.is_hidden("[data-role=remote-avatar]")

    b.click("[data-testid=hangup]")
    wait_state(a, "ended")
    wait_state(b, "ended")
    call = wait_until(lambda: Call.objects.filter(caller_report__isnull=False, callee_report__isnull=False).first(),
                      what="both connection reports")
    assert call.media == "audio" and call.status == Call.Status.COMPLETED
    assert call.caller_report["path"] == "host"
    assert a_watch.errors == [] and b_watch.errors == []


def ring_and_keep(a, b) -> None:
    """Alice video-calls Bob; both pages hold their peer connection and camera + microphone."""
    place_call(a, b, "bob")
    for page in (a, b):
        keep_call_media(page, tracks=2)


def test_decline_cancel_and_no_answer(alice_and_bob):
    """Declined, cancelled and missed calls each end both sides with a clear message, and on both
    sides every local track is stopped and the peer connection closed (no camera light left on)."""
    server, alice, bob, a, a_watch, b, b_watch = alice_and_bob(PEERLINE_RING_TIMEOUT_S="3")

    ring_and_keep(a, b)
    b.click("[data-testid=decline-call]")
    wait_state(a, "ended")
    wait_state(b, "ended")
    assert message(a) == "Bob declined the call."
    for page in (a, b):
        wait_torn_down(page)

    ring_and_keep(a, b)
    a.click("[data-testid=cancel-call]")
    wait_state(a, "ended")
    wait_state(b, "ended")
    assert message(b) == "Alice cancelled the call."
    for page in (a, b):
        wait_torn_down(page)

    ring_and_keep(a, b)
    b.keyboard.press("Escape")  # Escape declines a ringing call
    wait_state(a, "ended")
    wait_state(b, "ended")
    assert message(a) == "Bob declined the call."
    for page in (a, b):
        wait_torn_down(page)

    ring_and_keep(a, b)
    wait_state(a, "ended", timeout_ms=10_000)  # ring timeout: 3 s
    wait_state(b, "ended")
    assert message(a) == "Bob did not answer."
    assert message(b) == "You missed a call from Alice."
    for page in (a, b):
        wait_torn_down(page)

    statuses = sorted(Call.objects.values_list("status", "end_reason"))
    assert statuses == [("declined", "declined"), ("declined", "declined"), ("missed", "cancelled"), ("missed", "missed")]
    assert a_watch.errors == [] and b_watch.errors == []


def test_busy_callee(live_servers, redis_url, make_user, open_page):
    """Calling someone who is in another call tells the caller at once; the roster shows it."""
    alice, bob, carol = make_user("alice", "Alice"), make_user("bob", "Bob"), make_user("carol", "Carol")
    server = live_servers(redis_url=redis_url)
    a, a_watch = lobby(open_page, server, alice)
    b, b_watch = lobby(open_page, server, bob)
    c, c_watch = lobby(open_page, server, carol)

    connect_call(c, b, "bob", video=False)
    a.wait_for_selector(f"{roster_user(a, 'bob')}[data-status=busy]")
    assert "in a call" in a.text_content(roster_user(a, "bob"))
    a.click(f"{roster_user(a, 'bob')} [data-testid=call-video]")
    wait_state(a, "ended")
    assert message(a) == "Bob is in another call. Try again later."
    assert b.get_attribute("body", "data-call-state") == "active"
    assert a_watch.errors == [] and b_watch.errors == [] and c_watch.errors == []


def test_answered_on_one_of_two_tabs(live_servers, redis_url, make_user, open_page):
    """Both of Bob's tabs ring; the one that answers gets the call, the other says so."""
    alice, bob = make_user("alice", "Alice"), make_user("bob", "Bob")
    server = live_servers(redis_url=redis_url)
    a, a_watch = lobby(open_page, server, alice)
    b1, b1_watch = lobby(open_page, server, bob)
    b2, b2_watch = lobby(open_page, server, bob)

    place_call(a, b1, "bob")
    wait_state(b2, "incoming")
    b2.click("[data-testid=accept-call]")
    wait_state(b1, "ended")
    assert message(b1) == "Answered on another device."
    wait_state(a, "active")
    wait_state(b2, "active")
    wait_media_flowing(a)
    wait_media_flowing(b2)
    a.click("[data-testid=hangup]")
    wait_state(b2, "ended")
    assert a_watch.errors == [] and b1_watch.errors == [] and b2_watch.errors == []
