"""TURN that just works: real calls between two Chromium browsers through a real coturn.

coturn (tests/support/turn.py) checks the TURN REST credentials daphne hands out in `hello`
(calls/ice.py). The users choose "relay only" (`relay_only=True` → `iceTransportPolicy: "relay"`),
so a call can only connect through the relay, and a relay that refuses the credentials (wrong
secret, expired) must make the call fail visibly rather than hang in "Connecting…".
"""

from __future__ import annotations

import json
import re
import time

import pytest

from calls.ice import turn_credentials
from tests.e2e.calling import (
    connect_call, message, place_call, wait_media_flowing, wait_remote_video, wait_state,
)
from tests.support.turn import TurnServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

# Installed before the page's own scripts: records what the page's RTCPeerConnections and its
# signalling socket see, without changing what they do.
RECORDER_JS = """(() => {
  const log = window.__turn = { errors: [], local: [], remote: [], remoteSdp: [], frames: [] };
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(config) {
      super(config);
      this.addEventListener("icecandidateerror", (e) => log.errors.push({ code: e.errorCode, url: e.url, text: e.errorText }));
      this.addEventListener("icecandidate", (e) => { if (e.candidate && e.candidate.candidate) log.local.push(e.candidate.candidate); });
    }
    addIceCandidate(candidate, ...rest) {
      if (candidate && candidate.candidate) log.remote.push(candidate.candidate);
      return super.addIceCandidate(candidate, ...rest);
    }
    setRemoteDescription(description, ...rest) {
      if (description && description.sdp) log.remoteSdp.push(description.sdp);
      return super.setRemoteDescription(description, ...rest);
    }
  };
  const NativeSocket = window.WebSocket;
  window.WebSocket = class extends NativeSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (e) => {
        try {
          const frame = JSON.parse(e.data);
          if (frame.type === "hello" || frame.type === "ice_servers") {
            log.frames.push({ type: frame.type, at: Date.now(), ice_servers: frame.ice_servers, ice_refresh_s: frame.ice_refresh_s });
          }
        } catch (error) {}
      });
    }
  };
})();"""

# The selected pair's candidate types, and the types of every candidate getStats knows.
PATH_JS = """async () => {
  const report = await window.peerline.pc().getStats();
  let pair = null;
  const local = [], remote = [];
  report.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
    if (s.type === "local-candidate") local.push(s.candidateType);
    if (s.type === "remote-candidate") remote.push(s.candidateType);
  });
  const type = (id) => (report.get(id) || {}).candidateType || null;
  return {
    selected: pair ? { local: type(pair.localCandidateId), remote: type(pair.remoteCandidateId), state: pair.state } : null,
    local, remote,
  };
}"""

TURN_USERNAME_JS = """() => {
  const pc = window.peerline.pc();
  const server = pc && pc.getConfiguration().iceServers.find((s) => s.username);
  return server ? server.username : null;
}"""

CALL_WAIT_MS = 25_000  # the page gives up on a call that does not connect after 15 s
# Gaps between `ice_servers` answers with PEERLINE_TURN_TTL_S=4 (refresh every 2 s): a little
# under the 2 s period (arrival times jitter; timers never fire early), and up to 4x the period
# for a noisy machine.
REFRESH_GAP_MIN_MS = 1_500
REFRESH_GAP_MAX_MS = 8_000


@pytest.fixture
def turn_server(artifacts_dir):
    """A coturn on loopback with a random shared secret, stopped after the test."""
    with TurnServer(log_dir=artifacts_dir) as turn:
        yield turn


def recorded_lobby(open_page, server, user):
    """A logged-in lobby (socket open) whose RTCPeerConnections and socket frames are recorded."""
    page, watch = open_page(server, user, path=None)
    page.add_init_script(RECORDER_JS)
    page.goto("/")
    page.wait_for_selector("body[data-ws-state=open]")
    return page, watch


def recorded(page) -> dict:
    return page.evaluate("() => window.__turn")


def candidate_type(line: str) -> str:
    return re.search(r" typ (\w+)", line).group(1)


def expiry(username: str) -> int:
    return int(username.split(":", 1)[0])


def test_relay_only_call_connects_through_turn_and_hides_host_candidates(
    live_servers, redis_url, make_user, open_page, turn_server, artifacts_dir
):
    """Two "relay only" users: the call connects through coturn, video decodes both ways, the
    selected pair is relay/relay on both sides, no host candidate ever reaches the other side, and
    the UI says "relayed"."""
    alice = make_user("alice", "Alice", relay_only=True)
    bob = make_user("bob", "Bob", relay_only=True)
    server = live_servers(redis_url=redis_url, env=turn_server.env())
    a, a_watch = recorded_lobby(open_page, server, alice)
    b, b_watch = recorded_lobby(open_page, server, bob)

    connect_call(a, b, "bob")
    for page in (a, b):
        wait_remote_video(page)
        wait_media_flowing(page)

    for page in (a, b):
        path = page.evaluate(PATH_JS)
        assert path["selected"] == {"local": "relay", "remote": "relay", "state": "succeeded"}, path
        assert path["local"] and set(path["local"]) == {"relay"}, path
        assert path["remote"] and set(path["remote"]) == {"relay"}, path
        log = recorded(page)
        assert log["errors"] == []
        # What the other side sent us (trickled candidates and any in the SDP): relay only.
        assert log["remote"] and {candidate_type(c) for c in log["remote"]} == {"relay"}, log["remote"]
        sdp_candidates = [l for sdp in log["remoteSdp"] for l in sdp.splitlines() if l.startswith("a=candidate:")]
        assert all(candidate_type(l) == "relay" for l in sdp_candidates), sdp_candidates
        assert all(candidate_type(c) == "relay" for c in log["local"]), log["local"]
        page.wait_for_selector("[data-testid=connection][data-quality=connected][data-path=relay]")
        assert "relayed" in page.text_content("[data-testid=connection]")
        assert page.get_attribute("body", "data-ice-path") == "relay"

    # Both users really allocated on this coturn (user ids are in the TURN usernames).
    turn_log = turn_server.log_text()
    for user in (alice, bob):
        assert re.search(rf"user <\d+:{user.pk}>", turn_log), f"no allocation for user {user.pk}"

    ta, tb = a.evaluate("() => window.peerline.timings()"), b.evaluate("() => window.peerline.timings()")
    figures = {
        "accept_to_caller_connected_ms": round(ta["connectedAt"] - tb["acceptClickedAt"]),
        "accept_to_callee_connected_ms": round(tb["connectedAt"] - tb["acceptClickedAt"]),
        "accept_to_caller_first_frame_ms": round(ta["firstRemoteFrameAt"] - tb["acceptClickedAt"]),
        "accept_to_callee_first_frame_ms": round(tb["firstRemoteFrameAt"] - tb["acceptClickedAt"]),
    }
    (artifacts_dir / "turn-figures.json").write_text(json.dumps(figures, indent=2))
    print("through TURN:", figures)

    a.click("[data-testid=hangup]")
    wait_state(b, "ended")
    assert a_watch.errors == [] and b_watch.errors == []


@pytest.mark.parametrize("fault", ["wrong_secret", "expired"])
def test_relay_only_call_fails_visibly_when_turn_refuses_the_credentials(
    live_servers, redis_url, make_user, open_page, turn_server, fault
):
    """daphne hands out credentials coturn refuses (signed with another secret, or already
    expired): 401, no relay candidate, the call never becomes active, and the page says it could
    not connect and ends the call instead of showing "Connecting…" forever."""
    alice = make_user("alice", "Alice", relay_only=True)
    bob = make_user("bob", "Bob", relay_only=True)
    env = (
        turn_server.env(PEERLINE_TURN_SECRET="not-" + turn_server.secret)
        if fault == "wrong_secret" else turn_server.env(PEERLINE_TURN_TTL_S="-60")
    )
    server = live_servers(redis_url=redis_url, env=env)
    a, a_watch = recorded_lobby(open_page, server, alice)
    b, b_watch = recorded_lobby(open_page, server, bob)
    if fault == "expired":
        username = recorded(a)["frames"][0]["ice_servers"][0]["username"]
        assert expiry(username) < recorded(a)["frames"][0]["at"] / 1000

    place_call(a, b, "bob")
    b.click("[data-testid=accept-call]")
    wait_state(a, "connecting")

    # The page gives up: an explicit message, the call ended on both sides, never "active".
    for page in (a, b):
        page.wait_for_function(
            "() => ['ended', 'active'].includes(document.body.dataset.callState)", timeout=CALL_WAIT_MS, polling=100
        )
    for page in (a, b):
        assert page.get_attribute("body", "data-call-state") == "ended"
        log = recorded(page)
        assert log["local"] == [] and log["remote"] == []
        # Chromium reports `icecandidateerror` only for gathering that follows a
        # setLocalDescription, not for the candidate pool gathered while the call rings, so a
        # page may have seen none; whatever it did see is coturn's 401.
        assert all(e["code"] == 401 and e["url"] == turn_server.url for e in log["errors"]), log["errors"]
    texts = [message(a), message(b)]
    assert any("could not be connected" in t.lower() for t in texts), texts
    assert "relay" in " ".join(texts).lower(), texts
    # coturn itself refused both users' credentials (their user ids are in the TURN usernames).
    turn_log = turn_server.log_text()
    for user in (alice, bob):
        assert re.search(rf"Cannot find credentials of user <\d+:{user.pk}>", turn_log), f"no refusal for user {user.pk}"
    assert a_watch.errors == [] and b_watch.errors == []


def test_turn_credentials_are_refreshed_and_reach_a_live_call(
    live_servers, redis_url, make_user, open_page, turn_server
):
    """PEERLINE_TURN_TTL_S=4: `hello` says refresh after 2 s; the page asks again and again, each
    answer expires later, the live call's RTCPeerConnection gets the new credentials, and media
    keeps flowing through the relay after the first credentials have expired."""
    alice = make_user("alice", "Alice", relay_only=True)
    bob = make_user("bob", "Bob", relay_only=True)
    server = live_servers(redis_url=redis_url, env=turn_server.env(PEERLINE_TURN_TTL_S="4"))
    a, a_watch = recorded_lobby(open_page, server, alice)
    b, b_watch = recorded_lobby(open_page, server, bob)
    hello = recorded(a)["frames"][0]
    assert hello["type"] == "hello" and hello["ice_refresh_s"] == 2

    connect_call(a, b, "bob")
    first = a.evaluate(TURN_USERNAME_JS)
    assert first and first.endswith(f":{alice.pk}")

    a.wait_for_function("() => window.__turn.frames.filter((f) => f.type === 'ice_servers').length >= 2", polling=100)
    a.wait_for_function("([js, old]) => eval(js)() !== old", arg=[TURN_USERNAME_JS, first], polling=100)
    frames = recorded(a)["frames"]
    usernames = [next(s["username"] for s in f["ice_servers"] if "username" in s) for f in frames]
    expiries = [expiry(u) for u in usernames]
    assert expiries == sorted(set(expiries)), usernames  # strictly increasing
    gaps = [later["at"] - earlier["at"] for earlier, later in zip(frames, frames[1:])]
    # The page asks again ice_refresh_s (2 s) after each answer: never sooner (timers only run
    # late), and a late timer on a loaded machine is fine as long as the refresh keeps coming.
    assert all(REFRESH_GAP_MIN_MS <= gap <= REFRESH_GAP_MAX_MS for gap in gaps), gaps
    now_username = a.evaluate(TURN_USERNAME_JS)
    assert now_username in usernames[1:] and expiry(now_username) > expiry(first)

    # Past the first credentials' expiry: the relay allocation made with them keeps carrying media.
    a.wait_for_function(f"() => Date.now() / 1000 > {expiry(first) + 0.5}", polling=100)
    for page in (a, b):
        wait_media_flowing(page)
        assert page.get_attribute("body", "data-call-state") == "active"
        assert page.evaluate(PATH_JS)["selected"]["local"] == "relay"
    assert a_watch.errors == [] and b_watch.errors == []


GATHER_JS = """async ([server, policy]) => {
  const pc = new RTCPeerConnection({ iceServers: [server], iceTransportPolicy: policy });
  const types = [], errors = [];
  pc.addEventListener("icecandidateerror", (e) => errors.push(e.errorCode));
  pc.addEventListener("icecandidate", (e) => { if (e.candidate && e.candidate.candidate) types.push(e.candidate.type); });
  pc.addTransceiver("audio");
  await pc.setLocalDescription();
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
    setTimeout(resolve, 5000);
  });
  pc.close();
  return { types, errors };
}"""


def test_coturn_accepts_our_credentials_and_refuses_wrong_or_expired_ones(browser, turn_server):
    """calls.ice.turn_credentials against coturn, straight from a page: valid → a relay candidate;
    another secret or an expiry in the past → 401 and none."""
    def gather(username: str, credential: str) -> dict:
        server = {"urls": [turn_server.url], "username": username, "credential": credential}
        return page.evaluate(GATHER_JS, [server, "relay"])

    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto("about:blank")
        valid = gather(*turn_credentials(secret=turn_server.secret, user_id=7, ttl_s=60))
        wrong = gather(*turn_credentials(secret="another-secret", user_id=7, ttl_s=60))
        expired = gather(*turn_credentials(secret=turn_server.secret, user_id=7, ttl_s=60, now=time.time() - 120))
    finally:
        context.close()
    assert valid == {"types": ["relay"], "errors": []}, valid
    for refused in (wrong, expired):
        assert refused["types"] == [] and 401 in refused["errors"], refused
