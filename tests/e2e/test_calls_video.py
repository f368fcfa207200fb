"""Two people in two browser contexts: the roster, and a video call with media on both sides."""

import pytest

from calls.models import Call
from tests.e2e.calling import (
    connect_call, keep_call_media, lobby, remote_video_size, roster_user, wait_media_flowing, wait_remote_video,
    wait_state, wait_torn_down,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def test_people_appear_and_disappear_in_the_roster(live_servers, redis_url, make_user, open_page):
    """Presence updates the roster live; search filters it; the empty state shows when alone."""
    alice, bob = make_user("alice", "Alice Liddell"), make_user("bob", "Bob Builder")
    server = live_servers(redis_url=redis_url)
    a, a_watch = lobby(open_page, server, alice)
    assert a.is_visible("[data-testid=roster-empty]")

    b, b_watch = lobby(open_page, server, bob)
    a.wait_for_selector(roster_user(a, "bob"))
    b.wait_for_selector(roster_user(b, "alice"))
    assert "Bob Builder" in a.text_content(roster_user(a, "bob"))
    assert a.is_hidden("[data-testid=roster-empty]")

    a.fill("[data-testid=roster-search]", "zzz")
    a.wait_for_selector(roster_user(a, "bob"), state="detached")
    assert a.is_visible("[data-testid=roster-nomatch]")
    a.fill("[data-testid=roster-search]", "build")
    a.wait_for_selector(roster_user(a, "bob"))

    b.context.close()
    a.wait_for_selector(roster_user(a, "bob"), state="detached")
    a.wait_for_selector("[data-testid=roster-empty]:not([hidden])")
    assert a_watch.errors == [] and b_watch.errors == []


def test_video_call_media_flows_both_ways_and_hangup_completes_it(alice_and_bob):
    """Alice video-calls Bob; both decode video and receive audio; hang-up ends both and the row,
    and on both sides stops every local track and closes the peer connection."""
    server, alice, bob, a, a_watch, b, b_watch = alice_and_bob()

    connect_call(a, b, "bob")
    for page in (a, b):
        wait_remote_video(page)
        assert remote_video_size(page)[0] > 0
        wait_media_flowing(page)
    assert a.text_content("[data-testid=call-peer-name]") == "Bob"
    assert b.text_content("[data-testid=call-peer-name]") == "Alice"
    assert a.is_visible("[data-testid=local-video]")
    a.wait_for_selector("[data-testid=connection][data-quality=connected][data-path=host]")
    for page in (a, b):
        keep_call_media(page, tracks=2)

    a.click("[data-testid=hangup]")
    wait_state(a, "ended")
    wait_state(b, "ended")
    assert "ended" in b.text_content("[data-testid=call-message]").lower()
    for page in (a, b):
        wait_torn_down(page)

    call = Call.objects.get()
    assert call.status == Call.Status.COMPLETED
    assert call.answered_at is not None and call.ended_at is not None
    assert call.duration_s > 0
    assert a_watch.errors == [] and b_watch.errors == []
