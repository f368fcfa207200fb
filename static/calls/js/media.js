// The local camera and microphone: acquire with fallbacks, switch the camera on and off, stop.
// No DOM and no signalling here.

import { describeMediaError, fullVideoSize, loadPreferences, openMedia } from "./devices.js";

/**
 * Get the media a call wants, falling back instead of failing the call:
 * audio+video -> audio only -> nothing (receive only).
 * Resolves {stream, problem}: problem is null, or {code, message} explaining what is missing.
 */
export async function acquire(media) {
  const prefs = loadPreferences();
  const wanted = media.filter((kind) => kind === "audio" || kind === "video");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return { stream: new MediaStream(), problem: describeMediaError(new TypeError("no mediaDevices")) };
  }
  let firstError = null;
  const attempts = wanted.includes("video") && wanted.includes("audio") ? [wanted, ["audio"]] : [wanted];
  for (const kinds of attempts) {
    try {
      // openMedia pins the devices chosen on /devices/ (Chromium ignores `ideal` device ids)
      // and falls back to any device when a chosen one is gone.
      const stream = await openMedia(kinds, prefs, { size: "start" });
      const problem = firstError ? fallbackProblem(firstError, "audio") : null;
      return { stream, problem };
    } catch (error) {
      firstError = firstError || error;
    }
  }
  return { stream: new MediaStream(), problem: fallbackProblem(firstError, "none") };
}

function fallbackProblem(error, kept) {
  const { code, message } = describeMediaError(error);
  const after = kept === "audio"
    ? " The call continues with audio only."
    : " You can still see and hear the other person, but they cannot see or hear you.";
  return { code, message: message + after };
}

/** A fresh camera track (turning the camera back on). Rejects with an Error carrying `code`. */
export async function cameraTrack() {
  try {
    const stream = await openMedia(["video"], loadPreferences());
    return stream.getVideoTracks()[0];
  } catch (error) {
    const { code, message } = describeMediaError(error);
    throw Object.assign(new Error(message), { code, cause: error });
  }
}

/** Once the call is up: from the quick-to-start VGA to the full capture size (the encoder
 * follows; nothing is renegotiated). A camera that cannot do it stays as it is. */
export async function raiseVideoQuality(stream) {
  const track = trackOf(stream, "video");
  if (!track) return;
  try {
    await track.applyConstraints(fullVideoSize());
  } catch (error) {
    console.warn("camera stays at its starting size:", error && error.name);
  }
}

export function trackOf(stream, kind) {
  return stream ? stream.getTracks().find((t) => t.kind === kind && t.readyState === "live") || null : null;
}

/** Stop every track: the camera light goes off. Safe to call twice. */
export function stopAll(stream) {
  if (!stream) return;
  for (const track of stream.getTracks()) track.stop();
}
