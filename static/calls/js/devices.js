// Device preferences, getUserMedia constraints and media error wording.
// Logic only: the one DOM object touched here is the media element a caller passes to
// applySpeaker(). Shared by the device-check page and the call UI.

export const PREFERENCES_KEY = "peerline.devices.v1";
export const VIDEO_WIDTH_IDEAL_PX = 1280;
export const VIDEO_HEIGHT_IDEAL_PX = 720;
export const VIDEO_FRAME_RATE_IDEAL = 30;
// Calls start at VGA: the first keyframe is smaller to capture, encode and decode, which takes
// ~100 ms off "accept -> first picture" on a 2-core machine. media.raiseVideoQuality() moves to
// the full size once the call is up.
export const VIDEO_START_WIDTH_PX = 640;
export const VIDEO_START_HEIGHT_PX = 480;

const EMPTY_PREFERENCES = Object.freeze({ cameraId: null, microphoneId: null, speakerId: null });

function cleanId(value) {
  return typeof value === "string" && value !== "" ? value : null;
}

function storage() {
  // localStorage can throw (privacy modes, sandboxed frames): treat as "nothing stored".
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

/** The remembered devices, each id or null; never throws, whatever is in storage. */
export function loadPreferences() {
  const store = storage();
  let raw = null;
  try {
    raw = store ? store.getItem(PREFERENCES_KEY) : null;
  } catch {
    raw = null;
  }
  if (!raw) return { ...EMPTY_PREFERENCES };
  let parsed;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { ...EMPTY_PREFERENCES };
  }
  if (!parsed || typeof parsed !== "object") return { ...EMPTY_PREFERENCES };
  return {
    cameraId: cleanId(parsed.cameraId),
    microphoneId: cleanId(parsed.microphoneId),
    speakerId: cleanId(parsed.speakerId),
  };
}

/** Remember the chosen devices (unknown keys dropped; missing ones stored as null). */
export function savePreferences(prefs) {
  const store = storage();
  if (!store) return;
  const value = {
    cameraId: cleanId(prefs && prefs.cameraId),
    microphoneId: cleanId(prefs && prefs.microphoneId),
    speakerId: cleanId(prefs && prefs.speakerId),
  };
  try {
    store.setItem(PREFERENCES_KEY, JSON.stringify(value));
  } catch {
    // Quota or privacy mode: preferences are a convenience, never fatal.
  }
}

/**
 * MediaStreamConstraints for getUserMedia. Device ids are `ideal` by default, so a camera that
 * was unplugged since it was chosen falls back to another one instead of failing the call.
 * Caveat: current Chromium ignores an `ideal` deviceId and opens the device chosen in its own
 * site settings (crbug.com/438606278, "won't fix"); to really get the chosen device use
 * openMedia(), which asks with `exact` first and falls back to these ideal constraints.
 * @param {string[]} media e.g. ["audio", "video"]
 * @param {{cameraId?: string|null, microphoneId?: string|null}} [prefs]
 * @param {{deviceMatch?: "ideal"|"exact", size?: "full"|"start"}} [options]
 */
export function constraintsFor(media, prefs = {}, { deviceMatch = "ideal", size = "full" } = {}) {
  const match = deviceMatch === "exact" ? "exact" : "ideal";
  const wanted = new Set(media || []);
  const cameraId = cleanId(prefs && prefs.cameraId);
  const microphoneId = cleanId(prefs && prefs.microphoneId);

  let audio = false;
  if (wanted.has("audio")) {
    audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
    if (microphoneId) audio.deviceId = { [match]: microphoneId };
  }
  let video = false;
  if (wanted.has("video")) {
    video = size === "start"
      ? { width: { ideal: VIDEO_START_WIDTH_PX }, height: { ideal: VIDEO_START_HEIGHT_PX }, frameRate: { ideal: VIDEO_FRAME_RATE_IDEAL } }
      : fullVideoSize();
    if (cameraId) video.deviceId = { [match]: cameraId };
  }
  return { audio, video };
}

/** The full capture size, for getUserMedia or a track's applyConstraints(). */
export function fullVideoSize() {
  return {
    width: { ideal: VIDEO_WIDTH_IDEAL_PX },
    height: { ideal: VIDEO_HEIGHT_IDEAL_PX },
    frameRate: { ideal: VIDEO_FRAME_RATE_IDEAL },
  };
}

// What getUserMedia says when an `exact` device is no longer there.
const DEVICE_GONE_ERRORS = new Set(["OverconstrainedError", "NotFoundError"]);

/**
 * getUserMedia for the given media with the chosen devices: asks for them `exact`ly (so
 * Chromium honours the choice) and, when a chosen device is gone, asks again with the `ideal`
 * constraints so the browser picks another. Other errors (refusal, busy device) are rethrown
 * as they are; describeMediaError() words them.
 * @returns {Promise<MediaStream>}
 */
export async function openMedia(media, prefs = {}, { size = "full" } = {}) {
  const wanted = new Set(media || []);
  const pinned =
    (wanted.has("video") && cleanId(prefs && prefs.cameraId)) ||
    (wanted.has("audio") && cleanId(prefs && prefs.microphoneId));
  if (pinned) {
    try {
      return await navigator.mediaDevices.getUserMedia(constraintsFor(media, prefs, { deviceMatch: "exact", size }));
    } catch (error) {
      if (!DEVICE_GONE_ERRORS.has(error && error.name)) throw error;
    }
  }
  return navigator.mediaDevices.getUserMedia(constraintsFor(media, prefs, { size }));
}

/** Whether this browser can route audio output to a chosen device. */
export function speakerSelectionSupported() {
  return typeof HTMLMediaElement !== "undefined" && "setSinkId" in HTMLMediaElement.prototype;
}

/**
 * Route a media element's audio to the given output device. Resolves quietly when the browser
 * cannot choose outputs or no speaker is chosen; rejects only when setSinkId itself fails.
 */
export async function applySpeaker(mediaElement, speakerId) {
  if (!mediaElement || typeof mediaElement.setSinkId !== "function") return;
  const target = cleanId(speakerId) || "";
  if (mediaElement.sinkId === target) return;
  await mediaElement.setSinkId(target);
}

/**
 * The available devices, grouped. Labels are empty strings until the page has been granted
 * media permission once; `label` here falls back to a numbered name so a list is never blank.
 * @returns {Promise<{cameras: Device[], microphones: Device[], speakers: Device[]}>}
 *   where Device is {deviceId, groupId, label, hasLabel}
 */
export async function listDevices() {
  const result = { cameras: [], microphones: [], speakers: [] };
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return result;
  const devices = await navigator.mediaDevices.enumerateDevices();
  const groups = { videoinput: result.cameras, audioinput: result.microphones, audiooutput: result.speakers };
  const names = { videoinput: "Camera", audioinput: "Microphone", audiooutput: "Speaker" };
  for (const device of devices) {
    const list = groups[device.kind];
    if (!list) continue;
    list.push({
      deviceId: device.deviceId,
      groupId: device.groupId,
      label: device.label || `${names[device.kind]} ${list.length + 1}`,
      hasLabel: Boolean(device.label),
    });
  }
  return result;
}

const MEDIA_ERRORS = {
  NotAllowedError: {
    code: "permission-denied",
    message:
      "Peerline is not allowed to use your camera or microphone. Allow access in your browser's " +
      "site settings (the icon next to the address), then reload this page.",
  },
  SecurityError: {
    code: "permission-denied",
    message:
      "Camera and microphone are blocked on this page. They need a secure (https) address and " +
      "permission in your browser's site settings.",
  },
  NotFoundError: {
    code: "no-device",
    message: "No camera or microphone was found. Plug one in, or check that it is switched on.",
  },
  NotReadableError: {
    code: "device-busy",
    message:
      "Your camera or microphone is in use by another application or tab, or could not be " +
      "started. Close the other app and try again.",
  },
  OverconstrainedError: {
    code: "overconstrained",
    message: "The chosen device cannot provide what was asked for. Pick another device and try again.",
  },
  AbortError: {
    code: "aborted",
    message: "Starting the camera or microphone was interrupted. Try again.",
  },
  TypeError: {
    code: "unsupported",
    message: "This browser cannot use a camera or microphone here.",
  },
};

// Older browsers used other names for the same failures.
const LEGACY_NAMES = {
  PermissionDeniedError: "NotAllowedError",
  DevicesNotFoundError: "NotFoundError",
  TrackStartError: "NotReadableError",
  ConstraintNotSatisfiedError: "OverconstrainedError",
};

/**
 * A stable code and a sentence for a user, for any getUserMedia / setSinkId failure.
 * @returns {{code: string, message: string}}
 */
export function describeMediaError(error) {
  const rawName = (error && error.name) || "";
  const name = LEGACY_NAMES[rawName] || rawName;
  const known = MEDIA_ERRORS[name];
  if (known) return { ...known };
  if (!navigator.mediaDevices) return { ...MEDIA_ERRORS.TypeError };
  const detail = error && error.message ? ` (${error.message})` : "";
  return {
    code: "media-error",
    message: `Your camera or microphone could not be started${detail}.`,
  };
}
