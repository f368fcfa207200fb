"""In a call: mute, camera off/on, what the other side sees, and a snapshot of the remote video."""

import struct

import pytest

from tests.e2e.calling import connect_call, inbound_over, wait_audio_heard, lobby, remote_video_size, wait_media_flowing, wait_remote_video

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
    inbound_over(b, 25)
    assert inbound_over(b, 50)["frames"] == 0

    a.click("[data-testid=toggle-camera]")
    b.wait_for_selector("body[data-peer-video=on]")
    b.wait_for_selector("[data-role=remote-avatar][hidden]", state="attached")
    wait_media_flowing(b)
    assert a_watch.errors == [] and b_watch.errors == []


def test_snapshot_downloads_a_png_of_the_remote_video(alice_and_bob):
    """The snapshot button saves the remote video's current frame at its intrinsic size.

    The fake camera gives what devices.constraintsFor asks for (1280x720 ideal); the remote copy
    is that or a WebRTC-scaled version of it (e.g. 640x360 while bandwidth estimation ramps up)."""
    server, alice, bob, a, a_watch, b, b_watch = alice_and_bob()
    connect_call(a, b, "bob")
    wait_remote_video(a)
    wait_media_flowing(a)

    before = remote_video_size(a)
    with a.expect_download() as info:
        a.click("[data-testid=snapshot]")
    download = info.value
    after = remote_video_size(a)  # WebRTC may change the resolution as bandwidth ramps up
    data = open(download.path(), "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert download.suggested_filename.startswith("peerline-bob-")
    assert (width, height) in {before, after}
    camera = b.evaluate("() => { const s = window.peerline.pc().getSenders().find(s => s.track && s.track.kind === 'video').track.getSettings(); return [s.width, s.height]; }")
    assert width * camera[1] == height * camera[0]  # Bob's camera picture, same aspect ratio
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
