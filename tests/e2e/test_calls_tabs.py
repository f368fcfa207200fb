"""One person, several tabs or windows: a call belongs to one of them and the others leave it be.

Real Chromium, a live daphne with Redis. Each extra tab is its own browser context logged in as
the same user (another window, another device): what matters to the server is the user.
"""

from __future__ import annotations

import pytest

from calls.models import Call
from tests.e2e.calling import (
    connect_call, lobby, message, place_call, roster_user, wait_media_flowing, wait_remote_video, wait_state,
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def call_row(**filters) -> Call | None:
    from django.db import close_old_connections

    close_old_connections()
    return Call.objects.filter(**filters).order_by("-created_at").first()


def test_a_second_tab_opened_during_a_call_leaves_the_call_alone(alice_and_bob, open_page):
    """Alice opens the lobby again mid-call: that tab says she is in a call elsewhere and offers
    no call buttons; the call keeps its media on both sides; when it ends, the tab is free again."""
    s = alice_and_bob()
    connect_call(s.a, s.b, "bob")
    call_id = s.a.evaluate("() => window.peerline.callId()")

    second, second_watch = lobby(open_page, s.server, s.alice)
    second.wait_for_function(
        "() => document.querySelector('[data-testid=call-message]').textContent.includes('another tab')"
    )
    assert second.get_attribute("body", "data-call-state") == "idle"
    second.wait_for_selector(f"{roster_user(second, 'bob')} [data-testid=call-video]:disabled")

    for page in (s.a, s.b):
        wait_media_flowing(page)
        assert page.get_attribute("body", "data-call-state") == "active"
    assert call_row(pk=call_id).status == "active"

    s.b.click("[data-testid=hangup]")
    wait_state(s.a, "ended")
    second.wait_for_selector(f"{roster_user(second, 'bob')} [data-testid=call-video]:enabled")
    assert "another tab" not in message(second)
    assert call_row(pk=call_id).end_reason == "hangup"
    assert second_watch.errors == [] and s.a_watch.errors == [] and s.b_watch.errors == []


def test_a_callee_tab_opened_while_the_phone_rings_rings_and_can_answer(alice_and_bob, open_page):
    s = alice_and_bob()
    place_call(s.a, s.b, "bob")
    late, late_watch = lobby(open_page, s.server, s.bob)
    wait_state(late, "incoming")
    late.click("[data-testid=accept-call]")
    for page in (s.a, late):
        wait_state(page, "active")
        wait_remote_video(page)
        wait_media_flowing(page)
    # The first tab stops ringing, says where the call went, and places no call while it lasts.
    wait_state(s.b, "ended")
    assert "another device" in message(s.b).lower()
    s.b.wait_for_selector(f"{roster_user(s.b, 'alice')} [data-testid=call-video]:disabled")
    late.click("[data-testid=hangup]")
    s.b.wait_for_selector(f"{roster_user(s.b, 'alice')} [data-testid=call-video]:enabled")
    assert s.a_watch.errors == [] and late_watch.errors == [] and s.b_watch.errors == []


def test_a_caller_whose_socket_drops_while_the_phone_rings_still_connects(alice_and_bob):
    """The server held Alice's offer on the socket that dropped; her page sends it again on the
    new one, so Bob's answer finds an offer and the call connects."""
    s = alice_and_bob()
    place_call(s.a, s.b, "bob")
    s.a.wait_for_function("() => document.body.dataset.callState === 'outgoing' && window.peerline.timings().callClickedAt")
    s.a.wait_for_function("() => window.peerline.pc() && window.peerline.pc().localDescription !== null")
    before = wait_until(lambda: call_row(caller=s.alice, status="ringing"), what="the call ringing").caller_channel
    s.a.evaluate("() => window.peerline.dropSocket()")
    wait_until(
        lambda: (row := call_row(caller=s.alice, status="ringing")) and row.caller_channel not in ("", before),
        what="the caller's new socket resuming the ringing call",
    )
    s.b.click("[data-testid=accept-call]")
    for page in (s.a, s.b):
        wait_state(page, "active")
        wait_remote_video(page)
        wait_media_flowing(page)
    assert s.a_watch.errors == [] and s.b_watch.errors == []
