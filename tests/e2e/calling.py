"""Helpers for the call tests: open logged-in lobbies, place calls, read getStats in the page.

Every wait is on something the page exposes (<body data-call-state>, data-ws-state, the
window.peerline test hook), never a sleep.
"""

from __future__ import annotations

STATS_JS = """async () => {
  const pc = window.peerline.pc();
  if (!pc) return null;
  const out = { framesDecoded: 0, audioPackets: 0, audioLevel: 0, videoTracks: 0 };
  (await pc.getStats()).forEach((s) => {
    if (s.type !== "inbound-rtp") return;
    if (s.kind === "video") out.framesDecoded += s.framesDecoded || 0;
    if (s.kind === "audio") { out.audioPackets += s.packetsReceived || 0; out.audioLevel = s.audioLevel || 0; }
  });
  return out;
}"""

GROWING_JS = """async ([base, frames, packets]) => {
  const s = await (%s)();
  return Boolean(s && s.framesDecoded >= base.framesDecoded + frames && s.audioPackets >= base.audioPackets + packets);
}""" % STATS_JS


# Every track getUserMedia hands the page, kept in window.__localTracks (installed on every page
# by conftest.open_page): the ground truth for "no camera light left on", including tracks a
# callee opened for its preview while it rang and never sent.
LOCAL_TRACKS_JS = """(() => {
  const devices = navigator.mediaDevices;
  if (!devices || !devices.getUserMedia) return;
  const tracks = window.__localTracks = [];
  const real = devices.getUserMedia.bind(devices);
  devices.getUserMedia = async (constraints) => {
    const stream = await real(constraints);
    tracks.push(...stream.getTracks());
    return stream;
  };
})();"""

# Held before a call ends: peerline.pc() is null afterwards and srcObject is cleared whether or
# not anything was stopped, so only references taken before the end can prove the teardown.
KEEP_JS = """() => {
  const pc = window.peerline.pc();
  const tracks = [...window.__localTracks];
  if (pc) for (const sender of pc.getSenders()) if (sender.track && !tracks.includes(sender.track)) tracks.push(sender.track);
  window.__kept = { pc, tracks };
  return { pc: Boolean(pc), tracks: tracks.length, live: tracks.filter((t) => t.readyState === "live").length };
}"""

KEPT_STATE_JS = """() => ({
  signalingState: window.__kept.pc.signalingState,
  connectionState: window.__kept.pc.connectionState,
  tracks: window.__kept.tracks.map((t) => `${t.kind}:${t.readyState}`),
})"""


def lobby(open_page, server, user, **options):
    """A logged-in lobby whose signalling socket is open (options go to open_page)."""
    page, watch = open_page(server, user, **options)
    page.wait_for_selector("body[data-ws-state=open]")
    return page, watch


def keep_call_media(page, *, tracks: int) -> None:
    """Before a call ends: hold this page's peer connection and its local tracks, once its
    camera/microphone (`tracks` of them) have started."""
    page.wait_for_function(
        "n => window.__localTracks.filter((t) => t.readyState === 'live').length >= n", arg=tracks, polling=50
    )
    kept = page.evaluate(KEEP_JS)
    assert kept["pc"] and kept["live"] >= tracks, kept


def wait_torn_down(page) -> None:
    """After the end: the kept peer connection is closed and every local track has ended."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            "() => window.__kept.pc.signalingState === 'closed'"
            " && window.__kept.tracks.every((t) => t.readyState === 'ended')",
            polling=50, timeout=10_000,
        )
    except PlaywrightTimeout:
        raise AssertionError(f"call not torn down: {page.evaluate(KEPT_STATE_JS)}") from None


def roster_user(page, username: str) -> str:
    return f'[data-testid=roster-user][data-username="{username}"]'


def wait_state(page, state: str, timeout_ms: float | None = None) -> None:
    page.wait_for_selector(f"body[data-call-state={state}]", state="attached", timeout=timeout_ms)


def place_call(caller, callee, callee_username: str, *, video: bool = True) -> None:
    """caller clicks the callee's call button; the callee sees the ringing UI."""
    caller.wait_for_selector(roster_user(caller, callee_username))
    button = "call-video" if video else "call-audio"
    caller.click(f"{roster_user(caller, callee_username)} [data-testid={button}]")
    wait_state(caller, "outgoing")
    wait_state(callee, "incoming")
    callee.wait_for_selector("[data-testid=incoming-call]:not([hidden])")


def connect_call(caller, callee, callee_username: str, *, video: bool = True) -> None:
    """A call from caller to callee, answered, with media connected on both sides."""
    place_call(caller, callee, callee_username, video=video)
    callee.click("[data-testid=accept-call]")
    wait_state(caller, "active")
    wait_state(callee, "active")


def stats(page) -> dict:
    return page.evaluate(STATS_JS)


def wait_media_flowing(page, *, frames: int = 5, packets: int = 10, video: bool = True) -> dict:
    """Wait until inbound video frames decoded and audio packets received grow from now."""
    base = stats(page)
    page.wait_for_function(GROWING_JS, arg=[base, frames if video else 0, packets], polling=100)
    return stats(page)


def remote_video_size(page) -> tuple[int, int]:
    return tuple(page.eval_on_selector("[data-testid=remote-video]", "v => [v.videoWidth, v.videoHeight]"))


def wait_remote_video(page) -> None:
    page.wait_for_function(
        "() => document.querySelector('[data-testid=remote-video]').videoWidth > 0", polling=100
    )


def message(page) -> str:
    return page.text_content("[data-testid=call-message]").strip()


def wait_until(predicate, *, timeout_s: float = 20, what: str = "condition"):
    """Poll something outside the browser (the database) until it holds."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


AUDIO_ENERGY_JS = """async () => {
  const pc = window.peerline.pc();
  let energy = 0, packets = 0, frames = 0;
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") { energy += s.totalAudioEnergy || 0; packets += s.packetsReceived || 0; }
    if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
  });
  return { energy, packets, frames };
}"""


def inbound_over(page, packets: int) -> dict:
    """Inbound audio energy and video frames gained while `packets` more audio packets arrive
    (audio packets come every 20 ms whether or not anyone speaks: a clock that needs no sleep)."""
    before = page.evaluate(AUDIO_ENERGY_JS)
    page.wait_for_function(
        "async ([js, base, n]) => (await eval(js)()).packets >= base + n",
        arg=[AUDIO_ENERGY_JS, before["packets"], packets], polling=50,
    )
    after = page.evaluate(AUDIO_ENERGY_JS)
    return {"energy": after["energy"] - before["energy"], "frames": after["frames"] - before["frames"]}


def wait_audio_heard(page, *, energy: float = 0.01) -> None:
    """Wait until the inbound audio carries sound (the fake microphone beeps; it starts silent)."""
    base = page.evaluate(AUDIO_ENERGY_JS)["energy"]
    page.wait_for_function(
        "async ([js, base, gain]) => (await eval(js)()).energy > base + gain",
        arg=[AUDIO_ENERGY_JS, base, energy], polling=100,
    )
