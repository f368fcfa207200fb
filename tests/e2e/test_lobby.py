"""The lobby beyond the happy path: a phone-sized screen, the caller's own camera while it rings,
and the missed-calls badge in the header."""

import pytest

from calls.models import Call
from tests.e2e.calling import lobby, place_call, roster_user, wait_state

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True}


NO_SIDEWAYS_SCROLL_JS = "() => document.documentElement.scrollWidth <= window.innerWidth"


def assert_on_screen(page, selector: str) -> None:
    """Visible and wholly inside the viewport where the page put it (no scrolling by the test)."""
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    assert box is not None, f"{selector} is not shown"
    inside = box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= size["width"] and box["y"] + box["height"] <= size["height"]
    assert inside, f"{selector} at {box} is not inside the {size} screen"


def test_the_lobby_on_a_phone_sized_screen(live_servers, redis_url, make_user, open_page):
    """On a 360x740 touch screen nothing scrolls sideways, whatever the lobby shows, and what a
    person must press next is on screen: the call buttons, Cancel, Accept / Decline, and every
    call control."""
    alice, bob = make_user("alice", "Alice Liddell-Wonderland"), make_user("bob", "Bob")
    server = live_servers(redis_url=redis_url)
    a, a_watch = lobby(open_page, server, alice, **PHONE)
    b, b_watch = lobby(open_page, server, bob, **PHONE)
    a.wait_for_selector(roster_user(a, "bob"))
    for page in (a, b):
        assert page.evaluate(NO_SIDEWAYS_SCROLL_JS)
    for button in ("call-audio", "call-video"):
        assert_on_screen(a, f"{roster_user(a, 'bob')} [data-testid={button}]")

    a.tap(f"{roster_user(a, 'bob')} [data-testid=call-video]")
    wait_state(a, "outgoing")
    wait_state(b, "incoming")
    a.wait_for_function("() => document.querySelector('[data-role=outgoing-preview]').videoWidth > 0", polling=100)
    b.wait_for_function("() => document.querySelector('[data-role=incoming-preview]').videoWidth > 0", polling=100)
    assert_on_screen(a, "[data-testid=cancel-call]")
    for button in ("accept-call", "decline-call"):
        assert_on_screen(b, f"[data-testid={button}]")
    for page in (a, b):
        assert page.evaluate(NO_SIDEWAYS_SCROLL_JS)

    b.tap("[data-testid=accept-call]")
    wait_state(a, "active")
    wait_state(b, "active")
    for page in (a, b):
        page.wait_for_function("() => document.querySelector('[data-testid=remote-video]').videoWidth > 0", polling=100)
        assert page.evaluate(NO_SIDEWAYS_SCROLL_JS)
        for control in ("toggle-mic", "toggle-camera", "snapshot", "hangup"):
            assert_on_screen(page, f"[data-testid={control}]")
        assert page.is_visible("[data-testid=remote-video]") and page.is_visible("[data-testid=local-video]")
    a.tap("[data-testid=hangup]")
    wait_state(b, "ended")
    assert a_watch.errors == [] and b_watch.errors == []


def test_the_caller_sees_their_camera_while_it_rings(alice_and_bob):
    """A video call shows the caller a (mirrored) preview on the ringing panel, gone once the call
    is answered (the call view's own local video takes over); an audio call shows none."""
    server, alice, bob, a, a_watch, b, b_watch = alice_and_bob()
    preview = "[data-role=outgoing-preview]"

    place_call(a, b, "bob", video=False)
    a.wait_for_function("() => window.__localTracks.length > 0", polling=50)
    assert a.is_hidden(preview)
    a.click("[data-testid=cancel-call]")
    wait_state(b, "ended")

    place_call(a, b, "bob")
    a.wait_for_function(f"() => document.querySelector('{preview}').videoWidth > 0", polling=100)
    assert a.is_visible(preview)
    assert a.eval_on_selector(preview, "v => getComputedStyle(v).transform") != "none", "preview is mirrored"
    b.click("[data-testid=accept-call]")
    wait_state(a, "active")
    assert a.is_hidden(preview) and a.eval_on_selector(preview, "v => v.srcObject") is None
    a.wait_for_function("() => document.querySelector('[data-testid=local-video]').videoWidth > 0", polling=100)
    a.click("[data-testid=hangup]")
    wait_state(b, "ended")
    assert a_watch.errors == [] and b_watch.errors == []


NOTE_MISSED_JS = "async () => (await import('/static/calls/js/ui.js')).noteMissedCall()"
BADGE_JS = """() => {
  const badge = document.querySelector("[data-testid=nav-history] [data-missed-calls]");
  return badge && [badge.dataset.missedCalls, badge.textContent, badge.getAttribute("aria-label")];
}"""


def test_a_missed_call_raises_the_header_badge(live_servers, redis_url, make_user, open_page):
    """ui.noteMissedCall() adds one to the missed-calls badge after "History": it creates the
    badge when the server rendered none, and counts on from the server's number when it did."""
    alice, bob = make_user("alice", "Alice"), make_user("bob", "Bob")
    server = live_servers(redis_url=redis_url)
    a, a_watch = lobby(open_page, server, alice)
    assert a.evaluate(BADGE_JS) is None
    a.evaluate(NOTE_MISSED_JS)
    assert a.evaluate(BADGE_JS) == ["1", "1", "1 missed"]
    a.evaluate(NOTE_MISSED_JS)
    assert a.evaluate(BADGE_JS) == ["2", "2", "2 missed"]

    Call.objects.create(caller=alice, callee=bob, media="audio", status="missed", end_reason="missed")
    b, b_watch = lobby(open_page, server, bob)
    assert b.evaluate(BADGE_JS) == ["1", "1", "1 missed"]  # from the server
    b.evaluate(NOTE_MISSED_JS)
    assert b.evaluate(BADGE_JS) == ["2", "2", "2 missed"]
    assert b.eval_on_selector("[data-missed-calls]", "e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
    assert a_watch.errors == [] and b_watch.errors == []
