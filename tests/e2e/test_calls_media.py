"""In a call: mute, camera off/on, what the other side sees, snapshots (remote and my own camera),
the call timer."""

import re
import struct

import pytest

from tests.e2e.calling import (
    connect_call, inbound_over, lobby, remote_video_size, wait_audio_heard, wait_media_flowing, wait_remote_video,
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

# 100 audio packets at 20 ms each: about 2 s, long enough to hear the fake microphone's beep.
AUDIO_WINDOW_PACKETS = 100
# The fake microphone's beep gives about 0.1 of totalAudioEnergy per second; a muted one ~1e-9.
SILENCE_ENERGY = 0.001


def test_mute_and_camera_off_reach_the_other_side(alice_and_bob):
    """Muting silences Alice's audio at Bob and says so; camera off stops her video, on resumes it."""
    server, alice, bob, a, a_watch, b, b_watch = alice_and_bob()
    connect_call(a, b, "bob")
    wait_media_flowing(b)

    wait_audio_heard(b)
    a.click("[data-testid=toggle-mic]")
    assert a.get_attribute("[data-testid=toggle-mic]", "aria-pressed") == "true"
    b.wait_for_selector("body[data-peer-audio=off]")
    assert "microphone muted" in b.text_content("[data-testid=peer-media]")
    # Audio sent before the mute drains from the jitter buffer (longer on a loaded machine): wait
    # for a silent window, bounded, instead of assuming one after a fixed drain.
    windows = [inbound_over(b, AUDIO_WINDOW_PACKETS // 2)["energy"] for _ in range(6)]
    assert min(windows) < SILENCE_ENERGY, windows
    a.click("[data-testid=toggle-mic]")
    b.wait_for_selector("body[data-peer-audio=on]")

    a.click("[data-testid=toggle-camera]")
    b.wait_for_selector("body[data-peer-video=off]")
    b.wait_for_selector("[data-role=remote-avatar]:not([hidden])")
    assert "camera off" in b.text_content("[data-testid=peer-media]")
    assert a.evaluate("() => window.peerline.pc().getSenders().find(s => s.track && s.track.kind === 'video')") is None
    wait_video_stopped(b)

    a.click("[data-testid=toggle-camera]")
    b.wait_for_selector("body[data-peer-video=on]")
    b.wait_for_selector("[data-role=remote-avatar][hidden]", state="attached")
    wait_media_flowing(b)
    assert a_watch.errors == [] and b_watch.errors == []


def wait_video_stopped(page, *, window_packets: int = 50, windows: int = 15) -> None:
    """Inbound video stops: frames already on the way (more of them on a loaded machine) may still
    decode, so wait for a window of ~1 s (50 audio packets) with no frame, up to ~15 s; then one
    more such window proves it stays stopped."""
    seen = []
    for _ in range(windows):
        seen.append(inbound_over(page, window_packets)["frames"])
        if seen[-1] == 0:
            break
    assert seen[-1] == 0, f"video frames kept coming: {seen}"
    assert inbound_over(page, window_packets)["frames"] == 0


# Records the size of every frame a snapshot draws, at the moment it draws it.
DRAW_RECORDER_JS = """() => {
  window.__drawn = [];
  const draw = CanvasRenderingContext2D.prototype.drawImage;
  CanvasRenderingContext2D.prototype.drawImage = function (source, ...rest) {
    window.__drawn.push({ testid: source.dataset.testid, width: source.videoWidth, height: source.videoHeight });
    return draw.call(this, source, ...rest);
  };
}"""

CAMERA_SIZE_JS = """() => {
  const sender = window.peerline.pc().getSenders().find((s) => s.track && s.track.kind === "video");
  const settings = sender.track.getSettings();
  return [settings.width, settings.height];
}"""

# main.js has asked the camera for the full size (applyConstraints done): from here on the
# camera's size no longer changes by itself.
CAMERA_RAISED_JS = """async () => {
  const { VIDEO_WIDTH_IDEAL_PX } = await import("/static/calls/js/devices.js");
  const sender = window.peerline.pc().getSenders().find((s) => s.track && s.track.kind === "video");
  const width = sender.track.getConstraints().width;
  return (width && typeof width === "object" ? width.ideal : width) === VIDEO_WIDTH_IDEAL_PX;
}"""


def same_shape(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[1] > 0 and b[1] > 0 and abs(a[0] / a[1] - b[0] / b[1]) < 0.02


def snapshot_png(page) -> tuple[object, tuple[int, int], dict]:
    """Click Snapshot; (download, PNG width x height, what the page drew for it)."""
    page.evaluate(DRAW_RECORDER_JS)
    with page.expect_download() as info:
        page.click("[data-testid=snapshot]")
    download = info.value
    data = open(download.path(), "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    drawn = page.evaluate("() => window.__drawn")
    assert len(drawn) == 1, drawn
    return download, struct.unpack(">II", data[16:24]), drawn[0]


def test_snapshot_downloads_a_png_of_the_remote_video(alice_and_bob):
    """The snapshot button saves the remote video's current frame at its intrinsic size.

    Bob's camera starts at 640x480 for a quick first picture and main.js asks it for 1280x720
    1.5 s after the media connects (RAISE_QUALITY_AFTER_MS; Chromium's fake camera may stay at
    640x480, a real one changes shape to 16:9); WebRTC may also scale what Alice receives while
    bandwidth estimation ramps up. So the test waits until the raise is done and Alice's picture
    has Bob's camera's shape, and compares the PNG with the frame drawn at the moment of the
    snapshot rather than with a size read before or after it."""
    server, alice, bob, a, a_watch, b, b_watch = alice_and_bob()
    connect_call(a, b, "bob")
    wait_remote_video(a)
    wait_media_flowing(a)
    b.wait_for_function(CAMERA_RAISED_JS, polling=100)
    wait_until(lambda: same_shape(remote_video_size(a), tuple(b.evaluate(CAMERA_SIZE_JS))),
               what="Alice's picture to have the shape of Bob's camera")

    camera_before = tuple(b.evaluate(CAMERA_SIZE_JS))
    download, (width, height), drawn = snapshot_png(a)
    camera_after = tuple(b.evaluate(CAMERA_SIZE_JS))
    assert download.suggested_filename.startswith("peerline-bob-")
    assert drawn["testid"] == "remote-video"
    assert (width, height) == (drawn["width"], drawn["height"])
    # Bob's camera picture: its shape, whichever side of a (late) size change the frame was on.
    assert same_shape((width, height), camera_before) or same_shape((width, height), camera_after), (
        (width, height), camera_before, camera_after)
    assert a_watch.errors == [] and b_watch.errors == []


def test_snapshot_in_an_audio_call_saves_my_own_camera(alice_and_bob):
    """With no picture from the other side (Bob is on audio only), Snapshot saves my own camera
    frame: Alice turns her camera on in an audio call and gets her local video as a PNG."""
    server, alice, bob, a, a_watch, b, b_watch = alice_and_bob()
    connect_call(a, b, "bob", video=False)
    a.click("[data-testid=toggle-camera]")
    a.wait_for_function("() => document.querySelector('[data-testid=local-video]').videoWidth > 0", polling=100)
    assert a.eval_on_selector("[data-testid=remote-video]", "v => v.videoWidth") == 0

    download, (width, height), drawn = snapshot_png(a)
    assert download.suggested_filename.startswith("peerline-bob-")
    assert drawn["testid"] == "local-video"
    assert (width, height) == (drawn["width"], drawn["height"]) and width > 0
    assert a_watch.errors == [] and b_watch.errors == []


def test_the_call_timer_advances(alice_and_bob):
    """The timer starts at 0:00 when the call is answered and counts up in m:ss on both sides."""
    server, alice, bob, a, a_watch, b, b_watch = alice_and_bob()
    connect_call(a, b, "bob", video=False)
    seconds_js = """() => {
      const [m, s] = document.querySelector('[data-testid=call-timer]').textContent.split(':').map(Number);
      return m * 60 + s;
    }"""
    for page in (a, b):
        assert re.fullmatch(r"0:0\d", page.text_content("[data-testid=call-timer]"))
        page.wait_for_function(f"() => ({seconds_js})() >= 2", polling=100)
    first = a.evaluate(seconds_js)
    a.wait_for_function(f"(t) => ({seconds_js})() > t", arg=first, polling=100)
    assert re.fullmatch(r"\d+:\d\d", a.text_content("[data-testid=call-timer]"))
    assert a_watch.errors == [] and b_watch.errors == []


CAMERA_BUSY_JS = """(() => {
  const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (constraints) => constraints && constraints.video
    ? Promise.reject(new DOMException("Could not start video source", "NotReadableError"))
    : real(constraints);
})();"""


def test_busy_camera_falls_back_to_audio_only(live_servers, redis_url, make_user, open_page):
    """Bob's camera is taken by another app: he is told, and the call goes on with his audio
    while he still sees Alice."""
    alice, bob = make_user("alice", "Alice"), make_user("bob", "Bob")
    server = live_servers(redis_url=redis_url)
    a, a_watch = lobby(open_page, server, alice)
    b, b_watch = open_page(server, bob, path=None)
    b.context.add_init_script(CAMERA_BUSY_JS)
    b.goto("/")
    b.wait_for_selector("body[data-ws-state=open]")

    connect_call(a, b, "bob")
    assert "audio only" in b.text_content("[data-testid=call-message]")
    assert "in use" in b.text_content("[data-testid=call-message]")
    wait_media_flowing(b)  # Alice's video and audio reach Bob
    wait_media_flowing(a, video=False)  # Bob's audio reaches Alice
    a.wait_for_selector("body[data-peer-video=off]")
    assert a.is_visible("[data-role=remote-avatar]")

    b.click("[data-testid=toggle-camera]")  # still busy: a message, not a broken call
    b.wait_for_selector("[data-testid=toggle-camera]:not([disabled])")
    assert b.get_attribute("body", "data-call-state") == "active"
    assert a_watch.errors == [] and b_watch.errors == []
