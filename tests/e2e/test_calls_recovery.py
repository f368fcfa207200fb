"""A call outlives its signalling socket (dropped, gone silent, the network away, the whole server
restarted) and ICE restarts."""

import time

import pytest

from calls.models import Call
from tests.e2e.calling import connect_call, lobby, wait_media_flowing, wait_state, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

UFRAGS_JS = """() => {
  const pc = window.peerline.pc();
  const ufrag = (d) => d && (d.sdp.match(/a=ice-ufrag:(\\S+)/) || [])[1];
  return [ufrag(pc.localDescription), ufrag(pc.remoteDescription)];
}"""


def remember_socket(page) -> None:
    page.evaluate("() => { window.__oldSocket = window.peerline.socket(); }")


def wait_new_socket_open(page) -> None:
    page.wait_for_function(
        "() => window.peerline.socket() !== window.__oldSocket && window.peerline.socket().readyState === 1"
        " && document.body.dataset.wsState === 'open'",
        polling=50,
    )


def restart_ice_and_wait(restarting, other) -> None:
    """Force an ICE restart from `restarting`; new credentials reach both sides; media flows on."""
    before = restarting.evaluate(UFRAGS_JS)
    restarting.evaluate("() => window.peerline.restartIce()")
    restarting.wait_for_function(
        f"([old]) => {{ const now = ({UFRAGS_JS})(); return now[0] !== old[0] && now[1] !== old[1]; }}",
        arg=[before], polling=50,
    )
    for page in (restarting, other):
        page.wait_for_function("() => window.peerline.pc().connectionState === 'connected'", polling=50)
        wait_media_flowing(page)


def test_call_survives_dropped_sockets_and_ice_restarts(alice_and_bob):
    """Each side loses its socket mid-call: frames keep decoding, the page reconnects and resumes
    the call, and an ICE restart from either side (through the new sockets) brings media back."""
    server, alice, bob, a, a_watch, b, b_watch = alice_and_bob()
    connect_call(a, b, "bob")
    wait_media_flowing(a)
    wait_media_flowing(b)

    for dropped, other in ((a, b), (b, a)):
        remember_socket(dropped)
        dropped.evaluate("() => window.peerline.dropSocket()")
        wait_media_flowing(other)
        wait_new_socket_open(dropped)
        wait_media_flowing(dropped)
        assert dropped.get_attribute("body", "data-call-state") == "active"
        restart_ice_and_wait(dropped, other)  # alice is impolite, bob polite: both may restart

    a.click("[data-testid=hangup]")
    wait_state(b, "ended")
    call = Call.objects.get()
    assert (call.status, call.end_reason) == ("completed", "hangup")
    assert a_watch.errors == [] and b_watch.errors == []


# Reconnecting after a server restart: the client retries at most 4 s apart
# (signalling-client.js BACKOFF_MAX_MS), and connecting takes well under its 5 s timeout.
BACK_AFTER_SERVER_S = 4 + 5


def test_call_survives_a_server_restart(alice_and_bob):
    """daphne restarts mid-call: media never stops, both pages reconnect soon after the server is
    back, and resume the call.

    The grace period is raised here: a SIGTERM stop may take up to 10 s on a loaded machine
    (tests/support/live.py) plus the start-up, which is the server's time, not the client's. What
    the client must do is come back quickly once the server answers, checked directly."""
    server, alice, bob, a, a_watch, b, b_watch = alice_and_bob(PEERLINE_DISCONNECT_GRACE_S="60")
    connect_call(a, b, "bob")
    wait_media_flowing(a)

    for page in (a, b):
        remember_socket(page)
    server.stop()
    a.wait_for_selector("body[data-ws-state=closed]", state="attached")
    wait_media_flowing(a)  # peer to peer: no server needed for media
    server.start()
    back_at = time.monotonic()
    for page in (a, b):
        wait_new_socket_open(page)
    back_after_s = time.monotonic() - back_at
    assert back_after_s < BACK_AFTER_SERVER_S, back_after_s
    for page in (a, b):
        assert page.get_attribute("body", "data-call-state") == "active"
    wait_until(lambda: Call.objects.filter(caller_detached_at__isnull=True, callee_detached_at__isnull=True,
                                           status="active").exists(), what="both sides resumed")
    restart_ice_and_wait(a, b)

    b.click("[data-testid=hangup]")
    wait_state(a, "ended")
    call = Call.objects.get()
    assert (call.status, call.end_reason) == ("completed", "hangup")
    errors = [e for e in a_watch.errors + b_watch.errors if "WebSocket" not in e]
    assert errors == []  # the browser itself logs the refused reconnect attempts while it is down


def test_reconnect_attempts_land_inside_the_grace_period(live_servers, open_page):
    """signalling-client.js's backoff, whatever its jitter draws: at least five attempts start
    within 12 s of losing the socket (the server keeps a call 15 s), attempts are never more than
    4 s apart, and the jitter really spreads them (a crowd of tabs does not come back at once)."""
    page, watch = open_page(live_servers(), path="/accounts/login/")
    schedule = page.evaluate(
        """async () => {
          const m = await import("/static/calls/js/signalling-client.js");
          const at = (random) => {
            let t = 0;
            return Array.from({ length: 12 }, (_, attempt) => (t += m.retryDelayMs(attempt, random)));
          };
          const gaps = Array.from({ length: 12 }, (_, attempt) => [m.retryDelayMs(attempt, () => 0), m.retryDelayMs(attempt, () => 1)]);
          return { slowest: at(() => 1), budget: m.RECOVERY_BUDGET_MS, gaps };
        }"""
    )
    assert schedule["budget"] == 15_000
    assert len([t for t in schedule["slowest"] if t <= 12_000]) >= 5, schedule["slowest"]
    assert max(longest for _, longest in schedule["gaps"]) <= 4_000, schedule["gaps"]
    assert all(shortest < longest for shortest, longest in schedule["gaps"]), schedule["gaps"]
    assert watch.errors == []


# Lets a test make the page's current socket go silent: frames still arrive at the browser but no
# longer reach the page (as when a proxy or the server wedges, or a network black-holes them).
# Registered before the page's own handlers, so it can stop them seeing anything.
SILENCER_JS = """(() => {
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.silenced = false;
      this.addEventListener("open", () => { this.openedAt = performance.now(); });
      this.addEventListener("message", (event) => { if (this.silenced) event.stopImmediatePropagation(); });
    }
  };
  window.__silenceSocket = () => {
    const ws = window.peerline.socket();
    ws.silenced = true;
    window.__silencedAt = performance.now();
  };
})();"""

# A page notices a silent socket within one ping interval plus the time a pong may take
# (5 s + 4 s in signalling-client.js) and replaces it at once; 3 s of slack for a loaded machine
# still leaves the server's 15 s grace period untouched.
SILENT_SOCKET_REPLACED_MS = 12_000


def mute_reaches_the_other_side(muting, other) -> None:
    """A round trip through both signalling sockets: mute, seen by the other side, unmute."""
    muting.click("[data-testid=toggle-mic]")
    other.wait_for_selector("body[data-peer-audio=off]", state="attached")
    muting.click("[data-testid=toggle-mic]")
    other.wait_for_selector("body[data-peer-audio=on]", state="attached")


def call_with_alice_scripted(live_servers, redis_url, make_user, open_page, init_script):
    """Alice (her page running `init_script` before its own code) in a call with Bob, media
    flowing to Alice. Returns (alice's page, its watch, bob's page, its watch)."""
    alice, bob = make_user("alice", "Alice"), make_user("bob", "Bob")
    server = live_servers(redis_url=redis_url)
    a, a_watch = open_page(server, alice, path=None)
    a.context.add_init_script(init_script)
    a.goto("/")
    a.wait_for_selector("body[data-ws-state=open]")
    b, b_watch = lobby(open_page, server, bob)
    connect_call(a, b, "bob")
    wait_media_flowing(a)
    return a, a_watch, b, b_watch


def test_a_silent_socket_is_replaced_in_time_and_the_call_goes_on(live_servers, redis_url, make_user, open_page):
    """Alice's socket stays open but nothing comes through it any more (no close event, no
    error): her page notices from its unanswered pings, drops the socket at once and opens a new
    one well within the grace period; the call never stops decoding, stays active on both sides,
    and the new socket carries its signalling both ways."""
    a, a_watch, b, b_watch = call_with_alice_scripted(live_servers, redis_url, make_user, open_page, SILENCER_JS)
    wait_media_flowing(b)

    remember_socket(a)
    a.evaluate("() => window.__silenceSocket()")
    wait_media_flowing(b)
    wait_new_socket_open(a)
    replaced_after_ms = a.evaluate("() => window.peerline.socket().openedAt - window.__silencedAt")
    assert replaced_after_ms < SILENT_SOCKET_REPLACED_MS, replaced_after_ms

    for page in (a, b):
        wait_media_flowing(page)
        assert page.get_attribute("body", "data-call-state") == "active"
    wait_until(lambda: Call.objects.filter(caller_detached_at__isnull=True, callee_detached_at__isnull=True,
                                           status="active").exists(), what="Alice's side resumed")
    mute_reaches_the_other_side(a, b)  # Alice -> server on the new socket
    mute_reaches_the_other_side(b, a)  # server -> Alice on the new socket
    b.click("[data-testid=hangup]")
    wait_state(a, "ended")
    assert Call.objects.values_list("status", "end_reason").get() == ("completed", "hangup")
    assert a_watch.errors == [] and b_watch.errors == []


# Marks sockets the page opens while handling the browser's `online` event (in the same task).
ONLINE_WATCH_JS = """(() => {
  window.__inOnline = false;
  window.addEventListener("online", () => {
    window.__inOnline = true;
    setTimeout(() => { window.__inOnline = false; });  // after every other `online` listener
  });
  const Native = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.openedOnOnline = window.__inOnline;
      window.__sockets.push(this);
    }
  };
})();"""


def test_the_network_going_away_and_back(live_servers, redis_url, make_user, open_page):
    """Alice's browser goes offline mid-call (Chromium then black-holes her open socket: no close
    event until the network is back). Her page notices from its pings, keeps retrying, and the
    moment the browser says `online` it opens a new socket (no backoff wait) and resumes; the media,
    peer to peer on loopback, never stops."""
    a, a_watch, b, b_watch = call_with_alice_scripted(live_servers, redis_url, make_user, open_page, ONLINE_WATCH_JS)

    remember_socket(a)
    a.context.set_offline(True)
    a.wait_for_selector("body[data-ws-state=closed]", state="attached")  # noticed: ping unanswered
    # Retrying while offline fails at once; at least one attempt is made.
    a.wait_for_function("() => window.__sockets.length >= 3", polling=100)
    for page in (a, b):
        wait_media_flowing(page)
    a.context.set_offline(False)
    wait_new_socket_open(a)
    assert a.evaluate("() => window.__sockets.some((ws) => ws.openedOnOnline)"), "no socket opened on `online`"
    assert a.evaluate("() => window.peerline.socket().openedOnOnline")

    for page in (a, b):
        wait_media_flowing(page)
        assert page.get_attribute("body", "data-call-state") == "active"
    mute_reaches_the_other_side(a, b)
    mute_reaches_the_other_side(b, a)
    a.click("[data-testid=hangup]")
    wait_state(b, "ended")
    assert Call.objects.values_list("status", "end_reason").get() == ("completed", "hangup")
    # The browser logs each refused attempt while offline (net::ERR_INTERNET_DISCONNECTED).
    assert [e for e in a_watch.errors if "WebSocket" not in e] == [] and b_watch.errors == []


def test_a_call_whose_media_never_comes_back_ends_with_a_message(alice_and_bob):
    """Bob's browser stops answering on the media path (its peer connection is gone) while both
    sockets stay up: Alice tries to restore the media, then ends the call instead of showing
    "reconnecting" forever."""
    server, alice, bob, a, a_watch, b, _ = alice_and_bob(PEERLINE_MEDIA_LOST_S="3")
    connect_call(a, b, "bob")
    wait_media_flowing(a)

    b.evaluate("() => window.peerline.pc().close()")
    wait_state(a, "reconnecting")
    wait_state(a, "ended", timeout_ms=45_000)
    assert "could not be restored" in a.text_content("[data-testid=call-message]")
    wait_state(b, "ended")
    wait_until(lambda: Call.objects.filter(status="completed", end_reason="hangup").exists(), what="call row closed")
    assert [e for e in a_watch.errors if "ICE" not in e] == []
