"""Ring tone, ringback and the flashing tab title, with and without Chromium's autoplay lock,
and the speaker chosen on /devices/ used for the ring and for the call.

A tone "plays" here when tones.js has it on and its AudioContext is running with its clock moving
(a suspended context's clock stands still: nothing is heard). The state comes from tones.js's
test hook, window.peerlineTones.
"""

import pytest

from tests.e2e.calling import inbound_over, lobby, place_call, roster_user, wait_state, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

TONES_JS = "() => window.peerlineTones.state()"
PAGE_TITLE = "Peerline"

# Counts changes of document.title from now on.
TITLE_WATCH_JS = """() => {
  window.__titleChanges = 0;
  new MutationObserver(() => { window.__titleChanges += 1; })
    .observe(document.querySelector("title"), { childList: true, characterData: true, subtree: true });
}"""


def wait_tone_heard(page, tone: str) -> None:
    """`tone` is on, its AudioContext runs, and the audio clock moves on (sound is rendered)."""
    page.wait_for_function(
        "(tone) => { const s = window.peerlineTones.state(); return s.tone === tone && s.context === 'running'; }",
        arg=tone, polling=50,
    )
    start = page.evaluate(TONES_JS)["currentTime"]
    page.wait_for_function("(t) => window.peerlineTones.state().currentTime > t + 0.2", arg=start, polling=50)


def wait_title_flashing(page, text: str) -> None:
    """The tab title alternates between `text` and the page's own title."""
    for title in (text, PAGE_TITLE, text):
        page.wait_for_function("(t) => document.title === t", arg=title, polling=50)


def test_ring_ringback_and_the_flashing_title(alice_and_bob):
    """Bob hears the ring and his tab title flashes "Incoming call — Alice"; Alice hears the
    ringback. Answering stops both tones and gives Bob his title back for good; so does declining."""
    server, alice, bob, a, a_watch, b, b_watch = alice_and_bob()

    place_call(a, b, "bob")
    wait_tone_heard(b, "ring")
    wait_title_flashing(b, "Incoming call — Alice")
    wait_tone_heard(a, "ringback")
    assert a.title() == PAGE_TITLE  # the caller's title does not flash

    b.click("[data-testid=accept-call]")
    wait_state(a, "active")
    wait_state(b, "active")
    for page in (a, b):
        page.wait_for_function("() => window.peerlineTones.state().tone === null", polling=50)
    assert b.title() == PAGE_TITLE
    b.evaluate(TITLE_WATCH_JS)
    inbound_over(b, 100)  # ~2 s of audio packets: two flash periods
    assert b.title() == PAGE_TITLE and b.evaluate("() => window.__titleChanges") == 0

    a.click("[data-testid=hangup]")
    wait_state(b, "ended")
    place_call(a, b, "bob")
    wait_title_flashing(b, "Incoming call — Alice")
    b.click("[data-testid=decline-call]")
    wait_state(b, "ended")
    assert b.title() == PAGE_TITLE
    assert b.evaluate("() => window.peerlineTones.state().tone") is None
    assert a_watch.errors == [] and b_watch.errors == []


# Bob has not let the site use his camera and microphone (blocked, or the prompt still open).
# That matters here: Chromium lets a page that is capturing media play sound without a gesture,
# so a callee whose camera preview starts while it rings gets an audible ring anyway.
NO_CAPTURE_JS = """navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException("Permission denied", "NotAllowedError"));"""


class QuietReader:
    """Reads a page through the DevTools protocol without giving it a user gesture: Playwright's
    evaluate() and its selector waits run as one (sticky activation), which alone would let a
    new AudioContext start and hide the very lock this is about."""

    def __init__(self, page):
        self.cdp = page.context.new_cdp_session(page)

    def value(self, expression: str):
        answer = self.cdp.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "userGesture": False})
        return answer["result"].get("value")

    def wait(self, expression: str) -> None:
        wait_until(lambda: self.value(expression), what=expression)


def test_without_the_autoplay_flag_the_first_gesture_unlocks_the_ring(
    live_servers, redis_url, make_user, open_page, strict_autoplay_browser
):
    """Bob's Chromium has its real autoplay policy, Bob has not touched his page and is not
    capturing media: the ring starts locked (suspended, its clock standing still) and the
    flashing title is what tells him. His first key press anywhere unlocks it and he hears the
    ring (a user activation alone does not: tones.js must resume the context on the gesture)."""
    alice, bob = make_user("alice", "Alice"), make_user("bob", "Bob")
    server = live_servers(redis_url=redis_url)
    a, a_watch = lobby(open_page, server, alice)
    b, b_watch = open_page(server, bob, path=None, in_browser=strict_autoplay_browser)
    b.context.add_init_script(NO_CAPTURE_JS)
    b.goto("/")
    quiet = QuietReader(b)
    quiet.wait("document.body.dataset.wsState === 'open'")

    a.wait_for_selector(roster_user(a, "bob"))
    a.click(f"{roster_user(a, 'bob')} [data-testid=call-video]")
    quiet.wait("document.body.dataset.callState === 'incoming'")
    for title in ("Incoming call — Alice", PAGE_TITLE, "Incoming call — Alice"):
        quiet.wait(f"document.title === {title!r}")
    assert quiet.value("navigator.userActivation.hasBeenActive") is False
    locked = quiet.value("window.peerlineTones.state()")
    assert (locked["tone"], locked["context"], locked["currentTime"]) == ("ring", "suspended", 0), locked

    b.evaluate("() => {}")  # a user activation, but no gesture event: still locked
    assert b.evaluate(TONES_JS)["context"] == "suspended"
    b.keyboard.press("Shift")  # a key that does nothing in the lobby
    wait_tone_heard(b, "ring")
    assert b.get_attribute("body", "data-call-state") == "incoming"

    b.click("[data-testid=decline-call]")
    wait_state(a, "ended")
    wait_state(b, "ended")
    b.wait_for_function("() => window.peerlineTones.state().tone === null", polling=50)
    assert b.title() == PAGE_TITLE
    assert a_watch.errors == [] and b_watch.errors == []


def test_the_speaker_chosen_on_the_devices_page_rings_and_plays_the_call(alice_and_bob):
    """Bob picks a speaker on /devices/ (Chromium's fake devices include two besides the
    default); the ring and then the call's audio go to it (AudioContext.setSinkId and the remote
    video's setSinkId)."""
    server, alice, bob, a, a_watch, b, b_watch = alice_and_bob()
    b.goto("/devices/")
    b.wait_for_function("() => document.querySelectorAll('[data-testid=speaker-select] option').length > 1")
    speakers = b.eval_on_selector_all(
        "[data-testid=speaker-select] option", "options => options.map((o) => [o.value, o.textContent])"
    )
    chosen, label = speakers[1]
    assert chosen and "default" not in label.lower(), speakers
    b.select_option("[data-testid=speaker-select]", chosen)
    b.goto("/")
    b.wait_for_selector("body[data-ws-state=open]")

    place_call(a, b, "bob")
    b.wait_for_function("(id) => window.peerlineTones.state().sinkId === id", arg=chosen, polling=50)
    wait_tone_heard(b, "ring")
    b.click("[data-testid=accept-call]")
    wait_state(b, "active")
    b.wait_for_function(
        "(id) => document.querySelector('[data-testid=remote-video]').sinkId === id", arg=chosen, polling=50
    )
    # Alice chose nothing: her call plays on the system default.
    assert a.eval_on_selector("[data-testid=remote-video]", "v => v.sinkId") == ""
    assert a_watch.errors == [] and b_watch.errors == []
