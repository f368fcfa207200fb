"""The device-check page (/devices/) in real Chromium with its fake camera and microphone.

The fake camera gives 640x480 frames and the fake microphone beeps, so the preview, the level
meter and snapshots can all be checked for real. Waits are on state the page exposes
(`data-state` on the page root, `data-level` on the meter, the video's size), never on sleeps.
"""

from __future__ import annotations

import re
import struct

import pytest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

ROOT = '[data-testid="device-check"]'
PREVIEW = '[data-testid="preview"]'
MESSAGE = '[data-testid="device-message"]'
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

DENY_MEDIA = """
navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
"""

NO_CAMERA = """
{
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (constraints) => constraints && constraints.video
    ? Promise.reject(new DOMException("Requested device not found", "NotFoundError"))
    : original(constraints);
}
"""


def open_devices(live_servers, open_page, make_user, *, init_script: str | None = None, name="alice", **options):
    """The device-check page for a signed-in user, optionally with a script run before the page's."""
    server = live_servers()
    user = make_user(name, name.title())
    page, watch = open_page(server, user, name=name, path=None, **options)
    if init_script:
        page.context.add_init_script(init_script)
    page.goto("/devices/")
    return page, watch


def wait_for_state(page, state: str) -> None:
    page.wait_for_function(
        "([root, state]) => document.querySelector(root).dataset.state === state", arg=[ROOT, state]
    )


def wait_for_preview(page) -> None:
    wait_for_state(page, "ready")
    page.wait_for_function("(sel) => document.querySelector(sel).videoWidth > 0", arg=PREVIEW)


def option_labels(page, testid: str) -> list[str]:
    return page.eval_on_selector_all(f'[data-testid="{testid}"] option', "options => options.map(o => o.textContent)")


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (always the first chunk)."""
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    _length, chunk_type = struct.unpack(">I4s", data[8:16])
    assert chunk_type == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_preview_device_lists_and_level_meter(live_servers, open_page, make_user):
    """The preview plays, the fake devices are listed by name and the meter follows the beep."""
    page, watch = open_devices(live_servers, open_page, make_user)
    wait_for_preview(page)

    # The fake camera gives 640x480 by default and follows the 1280x720 the page asks for.
    width, height = page.eval_on_selector(PREVIEW, "v => [v.videoWidth, v.videoHeight]")
    assert width >= 640 and height >= 480
    assert page.eval_on_selector(PREVIEW, "v => getComputedStyle(v).transform") != "none", "preview is mirrored"
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=camera-select] option').length > 0"
        " && !document.querySelector('[data-testid=camera-select]').disabled"
    )
    cameras = option_labels(page, "camera-select")
    microphones = option_labels(page, "microphone-select")
    assert any("fake" in label.lower() for label in cameras), cameras
    assert any("fake" in label.lower() for label in microphones), microphones

    page.wait_for_function("() => Number(document.querySelector('[data-testid=mic-level]').dataset.level) > 0")
    assert page.is_hidden(MESSAGE)
    assert page.is_enabled('[data-testid="snapshot"]')
    assert watch.errors == []


def test_choices_are_remembered_and_switching_stops_old_tracks(live_servers, open_page, make_user):
    """A chosen microphone and speaker survive a reload and are what loadPreferences() returns;
    switching device stops the tracks of the previous stream."""
    page, watch = open_devices(live_servers, open_page, make_user)
    wait_for_preview(page)
    mic_ids = page.eval_on_selector_all('[data-testid="microphone-select"] option', "os => os.map(o => o.value)")
    current_mic = page.input_value('[data-testid="microphone-select"]')
    other_mic = next(mic_id for mic_id in mic_ids if mic_id != current_mic)
    page.evaluate("sel => { window.__oldStream = document.querySelector(sel).srcObject; }", PREVIEW)

    page.select_option('[data-testid="microphone-select"]', other_mic)
    wait_for_preview(page)
    old_states = page.evaluate("() => window.__oldStream.getTracks().map(t => t.readyState)")
    assert old_states and set(old_states) == {"ended"}
    in_use = page.eval_on_selector(PREVIEW, "v => v.srcObject.getAudioTracks()[0].getSettings().deviceId")
    assert in_use == other_mic

    speaker_ids = page.eval_on_selector_all('[data-testid="speaker-select"] option', "os => os.map(o => o.value)")
    speaker = next((speaker_id for speaker_id in speaker_ids if speaker_id), None)
    if speaker:
        page.select_option('[data-testid="speaker-select"]', speaker)

    page.reload()
    wait_for_preview(page)
    page.wait_for_function("() => !document.querySelector('[data-testid=microphone-select]').disabled")
    assert page.input_value('[data-testid="microphone-select"]') == other_mic
    if speaker:
        assert page.input_value('[data-testid="speaker-select"]') == speaker
    prefs = page.evaluate("async () => (await import('/static/calls/js/devices.js')).loadPreferences()")
    assert prefs == {"cameraId": None, "microphoneId": other_mic, "speakerId": speaker}
    assert watch.errors == []


def test_snapshot_downloads_png_at_video_size(live_servers, open_page, make_user, artifacts_dir):
    """The snapshot is a PNG at the camera's intrinsic size, named prefix-YYYYmmdd-HHMMSS.png."""
    page, watch = open_devices(live_servers, open_page, make_user)
    wait_for_preview(page)
    video_size = tuple(page.eval_on_selector(PREVIEW, "v => [v.videoWidth, v.videoHeight]"))

    with page.expect_download() as download_info:
        page.click('[data-testid="snapshot"]')
    download = download_info.value
    assert re.fullmatch(r"peerline-snapshot-\d{8}-\d{6}\.png", download.suggested_filename)
    target = artifacts_dir / download.suggested_filename
    download.save_as(target)

    assert video_size[0] > 0 and video_size[1] > 0
    assert png_size(target.read_bytes()) == video_size
    page.wait_for_selector('[data-testid="device-status"]:has-text("Snapshot saved")')
    assert watch.errors == []


def test_permission_denied_shows_a_clear_message(live_servers, open_page, make_user):
    """A refused getUserMedia explains how to allow access, and the controls stay usable."""
    page, _watch = open_devices(live_servers, open_page, make_user, init_script=DENY_MEDIA)
    wait_for_state(page, "error")

    message = page.locator(MESSAGE)
    assert message.is_visible()
    assert "not allowed to use your camera or microphone" in message.text_content()
    assert message.get_attribute("data-code") == "permission-denied"
    assert "blocked" in page.text_content('[data-testid="preview-placeholder"]')
    assert page.is_disabled('[data-testid="snapshot"]')
    assert float(page.get_attribute('[data-testid="mic-level"]', "data-level")) == 0


def test_no_camera_falls_back_to_a_microphone_check(live_servers, open_page, make_user):
    """Without a camera the page says so and still checks the microphone."""
    page, watch = open_devices(live_servers, open_page, make_user, init_script=NO_CAMERA)
    wait_for_state(page, "audio-only")

    message = page.locator(MESSAGE)
    assert "No camera or microphone was found" in message.text_content()
    assert "microphone and speaker only" in message.text_content()
    assert message.get_attribute("data-code") == "no-device"
    page.wait_for_function("() => Number(document.querySelector('[data-testid=mic-level]').dataset.level) > 0")
    assert page.is_disabled('[data-testid="snapshot"]')
    assert watch.errors == []


def test_a_remembered_device_that_is_gone_falls_back(live_servers, open_page, make_user):
    """Preferences naming devices that no longer exist still give a working preview, and the
    preference is kept (the device may come back)."""
    stale = '{"cameraId": "gone-camera", "microphoneId": "gone-mic", "speakerId": "gone-speaker"}'
    script = f"localStorage.setItem('peerline.devices.v1', {stale!r});"
    page, watch = open_devices(live_servers, open_page, make_user, init_script=script)
    wait_for_preview(page)
    assert page.is_hidden(MESSAGE)
    assert page.input_value('[data-testid="speaker-select"]') == ""
    prefs = page.evaluate("async () => (await import('/static/calls/js/devices.js')).loadPreferences()")
    assert prefs["cameraId"] == "gone-camera"
    assert watch.errors == []


def test_pagehide_stops_every_track(live_servers, open_page, make_user):
    """Leaving the page releases the camera and microphone and closes the audio context."""
    page, watch = open_devices(live_servers, open_page, make_user)
    wait_for_preview(page)
    states = page.evaluate(
        """(sel) => {
          const stream = document.querySelector(sel).srcObject;
          window.dispatchEvent(new PageTransitionEvent("pagehide", { persisted: false }));
          return stream.getTracks().map(t => t.readyState);
        }""",
        PREVIEW,
    )
    assert states and set(states) == {"ended"}
    wait_for_state(page, "stopped")
    assert watch.errors == []


def test_phone_sized_screen_and_keyboard(live_servers, open_page, make_user):
    """On a phone-sized viewport nothing overflows sideways; controls are labelled and reachable
    by keyboard."""
    page, watch = open_devices(
        live_servers, open_page, make_user, viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True
    )
    wait_for_preview(page)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    for label in ("Camera", "Microphone"):
        assert page.get_by_label(label, exact=True).is_enabled()

    page.focus('[data-testid="camera-select"]')
    focused = []
    for _ in range(6):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("() => document.activeElement.dataset.testid || ''"))
    assert "microphone-select" in focused and "test-sound" in focused and "snapshot" in focused
    assert watch.errors == []


def test_test_sound_plays(live_servers, open_page, make_user):
    """The test sound plays to the end and asks the user whether they heard it."""
    page, watch = open_devices(live_servers, open_page, make_user)
    wait_for_preview(page)
    page.click('[data-testid="test-sound"]')
    page.wait_for_selector('[data-testid="device-status"]:has-text("Did you hear")')
    assert page.is_enabled('[data-testid="test-sound"]')
    assert watch.errors == []


def test_constraints_and_error_descriptions_in_the_page(live_servers, open_page, make_user):
    """constraintsFor, describeMediaError and the preference store, evaluated in the browser."""
    page, _watch = open_devices(live_servers, open_page, make_user)
    result = page.evaluate(
        """async () => {
          const d = await import('/static/calls/js/devices.js');
          const error = (name) => d.describeMediaError(new DOMException("x", name));
          localStorage.setItem(d.PREFERENCES_KEY, "{not json");
          const corrupt = d.loadPreferences();
          return {
            audioOnly: d.constraintsFor(["audio"], { microphoneId: "mic-1" }),
            both: d.constraintsFor(["audio", "video"], { cameraId: "cam-1", microphoneId: null }),
            none: d.constraintsFor([], {}),
            exact: d.constraintsFor(["audio", "video"], { cameraId: "cam-1", microphoneId: "mic-1" },
                                    { deviceMatch: "exact" }),
            denied: error("NotAllowedError"),
            missing: error("NotFoundError"),
            busy: error("NotReadableError"),
            over: d.describeMediaError(Object.assign(new Error("x"), { name: "OverconstrainedError" })),
            legacy: d.describeMediaError({ name: "PermissionDeniedError" }),
            other: d.describeMediaError(new Error("boom")),
            corrupt,
          };
        }"""
    )
    assert result["audioOnly"]["video"] is False
    assert result["audioOnly"]["audio"]["deviceId"] == {"ideal": "mic-1"}
    assert result["audioOnly"]["audio"]["echoCancellation"] is True
    assert result["audioOnly"]["audio"]["noiseSuppression"] is True
    assert result["both"]["video"]["deviceId"] == {"ideal": "cam-1"}
    assert result["both"]["video"]["width"] == {"ideal": 1280}
    assert result["both"]["video"]["height"] == {"ideal": 720}
    assert "deviceId" not in result["both"]["audio"]
    assert result["none"] == {"audio": False, "video": False}
    assert result["exact"]["video"]["deviceId"] == {"exact": "cam-1"}
    assert result["exact"]["audio"]["deviceId"] == {"exact": "mic-1"}
    assert result["denied"]["code"] == "permission-denied"
    assert result["missing"]["code"] == "no-device"
    assert result["busy"]["code"] == "device-busy"
    assert "in use" in result["busy"]["message"]
    assert result["over"]["code"] == "overconstrained"
    assert result["legacy"]["code"] == "permission-denied"
    assert result["other"]["code"] == "media-error" and "boom" in result["other"]["message"]
    assert result["corrupt"] == {"cameraId": None, "microphoneId": None, "speakerId": None}
