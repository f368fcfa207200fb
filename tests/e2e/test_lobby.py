"""The lobby beyond the happy path: calling someone offline, the keyboard, a phone-sized screen,
the caller's own camera while it rings, and the missed-calls badge in the header."""

import pytest

from calls.models import Call
from tests.e2e.calling import lobby, message, place_call, roster_user, wait_media_flowing, wait_state

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True}


def focused_testid(page) -> str:
    return page.evaluate("() => document.activeElement.dataset.testid || document.activeElement.tagName")


def tab_to(page, selector: str, *, max_presses: int = 30) -> int:
    """Press Tab until `selector` has the focus; how many presses it took."""
    for presses in range(1, max_presses + 1):
        page.keyboard.press("Tab")
        if page.evaluate("(sel) => document.activeElement === document.querySelector(sel)", selector):
            return presses
    raise AssertionError(f"Tab never reached {selector}")


def test_calling_someone_offline_says_so(live_servers, redis_url, make_user, open_page):
    """Alice calls Bob back from her history while he is not online: the call ends at once with
    a message saying so, and the camera and microphone it opened are released."""
    alice, bob = make_user("alice", "Alice"), make_user("bob", "Bob")
    server = live_servers(redis_url=redis_url)
    a, a_watch = open_page(server, alice, path="/?call=bob&media=video")

    wait_state(a, "ended")
    assert a.is_visible("[data-testid=call-message]")
    assert message(a).endswith("is offline."), message(a)
    assert message(a).lower().startswith("bob")
    assert Call.objects.values_list("status", "end_reason").get() == ("missed", "offline")
    a.wait_for_function("() => window.__localTracks.every((t) => t.readyState === 'ended')", polling=50)
    assert a_watch.errors == []


def test_the_lobby_by_keyboard(alice_and_bob):
    """Tab reaches a roster call button and Enter dials; the focus goes to Cancel and Escape
    cancels; the callee's focus is on Accept, so Enter answers; Enter on Hang up ends it."""
    server, alice, bob, a, a_watch, b, b_watch = alice_and_bob()
    a.wait_for_selector(roster_user(a, "bob"))

    tab_to(a, f"{roster_user(a, 'bob')} [data-testid=call-audio]")
    a.keyboard.press("Enter")
    wait_state(a, "outgoing")
    wait_state(b, "incoming")
    assert focused_testid(a) == "cancel-call"
    a.keyboard.press("Escape")
    wait_state(a, "ended")
    wait_state(b, "ended")
    assert message(a) == "Call cancelled." and message(b) == "Alice cancelled the call."
    assert focused_testid(a) == "roster-search"  # back where a new call starts

    tab_to(a, f"{roster_user(a, 'bob')} [data-testid=call-video]", max_presses=3)
    a.keyboard.press("Enter")
    wait_state(b, "incoming")
    assert focused_testid(b) == "accept-call"
    b.keyboard.press("Enter")
    wait_state(a, "active")
    wait_state(b, "active")
    wait_media_flowing(a)
    assert focused_testid(b) == "hangup" and focused_testid(a) == "hangup"
    b.keyboard.press("Enter")
    wait_state(a, "ended")
    wait_state(b, "ended")
    assert Call.objects.filter(status="completed", end_reason="hangup").count() == 1
    assert a_watch.errors == [] and b_watch.errors == []


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
