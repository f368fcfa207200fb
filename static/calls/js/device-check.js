// Entry module of the device-check page (/devices/): mirrored camera preview, device pickers,
// microphone level, speaker test sound and snapshot. Device logic lives in devices.js and
// snapshot.js; this file holds the page's state and its DOM. The page root exposes
// data-state ("starting" | "ready" | "audio-only" | "video-only" | "error" | "stopped") for tests.

import {
  applySpeaker,
  describeMediaError,
  listDevices,
  loadPreferences,
  openMedia,
  savePreferences,
  speakerSelectionSupported,
} from "./devices.js";
import { downloadSnapshot } from "./snapshot.js";

const ANALYSER_FFT_SIZE = 2048;
const LEVEL_FLOOR_DB = -60; // at or below this the meter shows empty
const LEVEL_DECAY_PER_FRAME = 0.92; // peak falls back smoothly instead of flickering
const RESTART_AFTER_ENDED_MIN_INTERVAL_MS = 2000; // a device that keeps failing must not loop
const TEST_SOUND_NOTES_HZ = [523.25, 659.25, 783.99, 1046.5]; // C5 E5 G5 C6
const TEST_SOUND_NOTE_S = 0.16;
const TEST_SOUND_TAIL_S = 0.5;
const TEST_SOUND_GAIN = 0.25;
const SNAPSHOT_PREFIX = "peerline-snapshot";
// Worth retrying with less media: something is missing or busy. A refusal is not retried, so a
// user who said no is not asked again at once.
const FALLBACK_ERRORS = new Set(["NotFoundError", "DevicesNotFoundError", "NotReadableError",
  "TrackStartError", "OverconstrainedError", "AbortError"]);
const MEDIA_ATTEMPTS = [["audio", "video"], ["audio"], ["video"]];

// ---------------------------------------------------------------------------------------------
// Microphone level: Web Audio only, no DOM. Reports a level 0..1 on every animation frame.

function rmsToLevel(rms) {
  if (!(rms > 0)) return 0;
  const db = 20 * Math.log10(rms);
  return Math.min(1, Math.max(0, (db - LEVEL_FLOOR_DB) / -LEVEL_FLOOR_DB));
}

class LevelMeter {
  constructor(audioContext, track, onLevel) {
    this.onLevel = onLevel;
    this.level = 0;
    this.frame = 0;
    this.source = audioContext.createMediaStreamSource(new MediaStream([track]));
    this.analyser = audioContext.createAnalyser();
    this.analyser.fftSize = ANALYSER_FFT_SIZE;
    this.samples = new Float32Array(this.analyser.fftSize);
    // Not connected to the destination: hearing yourself live would feed back.
    this.source.connect(this.analyser);
    this.tick = this.tick.bind(this);
    this.frame = requestAnimationFrame(this.tick);
  }

  tick() {
    this.analyser.getFloatTimeDomainData(this.samples);
    let sum = 0;
    for (const sample of this.samples) sum += sample * sample;
    const level = rmsToLevel(Math.sqrt(sum / this.samples.length));
    this.level = Math.max(level, this.level * LEVEL_DECAY_PER_FRAME);
    if (this.level < 0.001) this.level = 0;
    this.onLevel(this.level);
    this.frame = requestAnimationFrame(this.tick);
  }

  stop() {
    if (!this.analyser) return;
    cancelAnimationFrame(this.frame);
    this.source.disconnect();
    this.analyser = this.source = null;
    this.onLevel(0);
  }
}

// ---------------------------------------------------------------------------------------------
// The page's elements and everything that writes to them.

const root = document.querySelector('[data-testid="device-check"]');
const el = {
  message: root.querySelector('[data-testid="device-message"]'),
  status: root.querySelector('[data-testid="device-status"]'),
  video: root.querySelector('[data-testid="preview"]'),
  placeholder: root.querySelector('[data-testid="preview-placeholder"]'),
  camera: root.querySelector('[data-testid="camera-select"]'),
  microphone: root.querySelector('[data-testid="microphone-select"]'),
  speaker: root.querySelector('[data-testid="speaker-select"]'),
  speakerUnsupported: root.querySelector('[data-testid="speaker-unsupported"]'),
  meter: root.querySelector('[data-testid="mic-level"]'),
  meterBar: root.querySelector(".level-meter-bar"),
  meterHelp: root.querySelector('[data-testid="mic-level-help"]'),
  testSound: root.querySelector('[data-testid="test-sound"]'),
  testSoundOutput: root.querySelector('[data-testid="test-sound-output"]'),
  snapshot: root.querySelector('[data-testid="snapshot"]'),
};

const ui = {
  setState(name) {
    root.dataset.state = name;
  },

  showMessage(text, { severity = "error", code = "" } = {}) {
    el.message.textContent = text;
    el.message.dataset.severity = severity;
    el.message.dataset.code = code;
    el.message.hidden = false;
  },

  clearMessage() {
    el.message.textContent = "";
    el.message.dataset.code = "";
    el.message.hidden = true;
  },

  setStatus(text) {
    el.status.textContent = text;
  },

  showPreview(stream) {
    const hasVideo = stream.getVideoTracks().length > 0;
    el.video.srcObject = hasVideo ? stream : null;
    el.video.hidden = !hasVideo;
    ui.setPlaceholder(hasVideo ? "" : "No camera in use: the microphone and speaker can still be checked.");
  },

  clearPreview(placeholder) {
    el.video.srcObject = null;
    el.video.hidden = true;
    ui.setPlaceholder(placeholder);
    el.snapshot.disabled = true;
  },

  setPlaceholder(text) {
    el.placeholder.textContent = text;
    el.placeholder.hidden = !text;
  },

  setLevel(level) {
    const shown = level.toFixed(3);
    if (el.meter.dataset.level === shown) return;
    el.meter.dataset.level = shown;
    el.meter.setAttribute("aria-valuenow", String(Math.round(level * 100)));
    el.meterBar.style.setProperty("--level", shown);
  },

  setMeterHelp(text) {
    el.meterHelp.textContent = text;
  },

  /** Fill a <select> with devices; a placeholder option when there are none or no labels yet. */
  fillSelect(select, devices, selectedId, { none, locked }) {
    const options = [];
    const usable = devices.filter((device) => device.deviceId && device.hasLabel);
    if (usable.length === 0) {
      options.push(new Option(devices.length === 0 ? none : locked, ""));
    } else {
      for (const device of usable) options.push(new Option(device.label, device.deviceId));
    }
    select.replaceChildren(...options);
    select.disabled = usable.length === 0;
    if (usable.some((device) => device.deviceId === selectedId)) select.value = selectedId;
  },

  fillSpeakers(devices, selectedId) {
    const options = [new Option("System default", "")];
    for (const device of devices) {
      // Chromium lists the system default as its own "default" entry: the first option covers it.
      if (device.deviceId && device.deviceId !== "default" && device.hasLabel) {
        options.push(new Option(device.label, device.deviceId));
      }
    }
    el.speaker.replaceChildren(...options);
    el.speaker.value = options.some((option) => option.value === selectedId) ? selectedId : "";
  },

  showSpeakerSupport(supported) {
    el.speaker.hidden = !supported;
    el.speaker.disabled = !supported;
    el.speakerUnsupported.hidden = supported;
  },
};

// ---------------------------------------------------------------------------------------------
// Page state and behaviour.

const state = {
  prefs: loadPreferences(),
  stream: null,
  generation: 0, // bumped by every start/stop; a slower, older getUserMedia result is discarded
  meter: null,
  audioContext: null,
  lastStartAt: 0,
  playingTestSound: false,
};

function stopTracks(stream) {
  if (stream) for (const track of stream.getTracks()) track.stop();
}

function stopMedia() {
  if (state.meter) state.meter.stop();
  state.meter = null;
  stopTracks(state.stream);
  state.stream = null;
}

function audioContext() {
  if (!state.audioContext) {
    state.audioContext = new AudioContext();
    if (state.audioContext.state === "suspended") {
      ui.setMeterHelp("Click or press a key anywhere on the page to start the level meter.");
    }
  }
  return state.audioContext;
}

function resumeAudio() {
  const context = state.audioContext;
  if (context && context.state === "suspended") {
    context.resume().then(() => ui.setMeterHelp("Speak: the bar should move."), () => {});
  }
}

/** getUserMedia with the preferred devices, falling back to less media when some is missing. */
async function acquireMedia(prefs) {
  let firstError = null;
  for (const media of MEDIA_ATTEMPTS) {
    try {
      const stream = await openMedia(media, prefs);
      return { stream, firstError };
    } catch (error) {
      firstError = firstError || error;
      if (!FALLBACK_ERRORS.has(error && error.name)) break;
    }
  }
  throw firstError;
}

function partialMediaMessage(stream, firstError) {
  const { message } = describeMediaError(firstError);
  if (stream.getVideoTracks().length === 0) {
    return `${message} Checking your microphone and speaker only.`;
  }
  return `${message} Checking your camera only; no microphone is in use.`;
}

async function start() {
  const generation = ++state.generation;
  stopMedia();
  state.lastStartAt = Date.now();
  ui.setState("starting");
  ui.setStatus("Starting your camera and microphone…");

  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    const reason = window.isSecureContext ? "TypeError" : "SecurityError";
    const { code, message } = describeMediaError({ name: reason });
    ui.showMessage(message, { code });
    ui.clearPreview("Camera unavailable");
    ui.setStatus("");
    ui.setState("error");
    return;
  }

  let result;
  try {
    result = await acquireMedia(state.prefs);
  } catch (error) {
    if (generation !== state.generation) return;
    const { code, message } = describeMediaError(error);
    ui.showMessage(message, { code });
    ui.clearPreview(code === "permission-denied" ? "Camera and microphone blocked" : "Camera unavailable");
    ui.setMeterHelp("No microphone in use.");
    ui.setStatus("");
    ui.setState("error");
    await refreshDeviceLists();
    return;
  }
  if (generation !== state.generation) {
    stopTracks(result.stream); // a newer start() or pagehide won the race
    return;
  }
  useStream(result.stream, result.firstError);
  await refreshDeviceLists();
}

function useStream(stream, firstError) {
  state.stream = stream;
  for (const track of stream.getTracks()) {
    track.addEventListener("ended", () => onTrackEnded(stream));
  }
  const hasVideo = stream.getVideoTracks().length > 0;
  const [audioTrack] = stream.getAudioTracks();

  if (firstError) {
    const { code } = describeMediaError(firstError);
    ui.showMessage(partialMediaMessage(stream, firstError), { severity: "warning", code });
  } else {
    ui.clearMessage();
  }
  ui.showPreview(stream);
  el.snapshot.disabled = true; // enabled once a frame is showing (see "loadeddata" below)
  if (hasVideo) el.video.play().catch(() => {}); // autoplay + muted; play() covers older engines

  if (audioTrack) {
    state.meter = new LevelMeter(audioContext(), audioTrack, ui.setLevel);
    resumeAudio();
    if (state.audioContext.state !== "suspended") ui.setMeterHelp("Speak: the bar should move.");
  } else {
    ui.setLevel(0);
    ui.setMeterHelp("No microphone in use.");
  }
  ui.setStatus("");
  ui.setState(hasVideo && audioTrack ? "ready" : hasVideo ? "video-only" : "audio-only");
}

function onTrackEnded(stream) {
  if (stream !== state.stream) return;
  ui.showMessage("A device stopped working or was unplugged. Trying the others…", {
    severity: "warning",
    code: "device-ended",
  });
  if (Date.now() - state.lastStartAt >= RESTART_AFTER_ENDED_MIN_INTERVAL_MS) start();
}

function currentDeviceId(tracks) {
  const [track] = tracks;
  if (!track || !track.getSettings) return null;
  return track.getSettings().deviceId || null;
}

async function refreshDeviceLists() {
  let devices;
  try {
    devices = await listDevices();
  } catch {
    return; // the selects keep what they show; nothing a user can act on
  }
  const stream = state.stream;
  const cameraId = (stream && currentDeviceId(stream.getVideoTracks())) || state.prefs.cameraId;
  const microphoneId = (stream && currentDeviceId(stream.getAudioTracks())) || state.prefs.microphoneId;
  ui.fillSelect(el.camera, devices.cameras, cameraId, {
    none: "No camera found",
    locked: "Allow camera access to choose",
  });
  ui.fillSelect(el.microphone, devices.microphones, microphoneId, {
    none: "No microphone found",
    locked: "Allow microphone access to choose",
  });
  if (speakerSelectionSupported()) ui.fillSpeakers(devices.speakers, state.prefs.speakerId);
}

function choose(key, value) {
  state.prefs = { ...state.prefs, [key]: value || null };
  savePreferences(state.prefs);
}

async function routeTestSound() {
  try {
    await applySpeaker(el.testSoundOutput, state.prefs.speakerId);
    return true;
  } catch (error) {
    const { code, message } = describeMediaError(error);
    ui.showMessage(`The chosen speaker could not be used. ${message}`, { code });
    return false;
  }
}

function scheduleChime(context, destination) {
  const gain = context.createGain();
  gain.connect(destination);
  const t0 = context.currentTime + 0.05;
  TEST_SOUND_NOTES_HZ.forEach((frequency, index) => {
    const oscillator = context.createOscillator();
    const envelope = context.createGain();
    const start = t0 + index * TEST_SOUND_NOTE_S;
    const stop = start + TEST_SOUND_NOTE_S + (index === TEST_SOUND_NOTES_HZ.length - 1 ? TEST_SOUND_TAIL_S : 0);
    oscillator.type = "sine";
    oscillator.frequency.value = frequency;
    envelope.gain.setValueAtTime(0, start);
    envelope.gain.linearRampToValueAtTime(TEST_SOUND_GAIN, start + 0.02);
    envelope.gain.exponentialRampToValueAtTime(0.001, stop);
    oscillator.connect(envelope).connect(gain);
    oscillator.start(start);
    oscillator.stop(stop);
  });
  const endsAt = t0 + TEST_SOUND_NOTES_HZ.length * TEST_SOUND_NOTE_S + TEST_SOUND_TAIL_S;
  return { gain, durationMs: (endsAt - context.currentTime) * 1000 };
}

async function playTestSound() {
  if (state.playingTestSound) return;
  state.playingTestSound = true;
  el.testSound.disabled = true;
  ui.setStatus("Playing the test sound…");
  const context = audioContext();
  // Through an <audio> element rather than context.destination, so setSinkId picks the speaker.
  const destination = context.createMediaStreamDestination();
  let chime = null;
  try {
    await context.resume();
    if (!(await routeTestSound())) {
      ui.setStatus("");
      return;
    }
    chime = scheduleChime(context, destination);
    el.testSoundOutput.srcObject = destination.stream;
    await el.testSoundOutput.play();
    await new Promise((resolve) => setTimeout(resolve, chime.durationMs));
    ui.setStatus("Did you hear a short chime? If not, pick another speaker or check the volume.");
  } catch (error) {
    ui.setStatus("");
    ui.showMessage(`The test sound could not be played: ${error.message || error.name}.`, {
      code: "test-sound-failed",
    });
  } finally {
    el.testSoundOutput.pause();
    el.testSoundOutput.srcObject = null;
    if (chime) chime.gain.disconnect();
    state.playingTestSound = false;
    el.testSound.disabled = false;
  }
}

async function takeSnapshot() {
  el.snapshot.disabled = true;
  try {
    await downloadSnapshot(el.video, SNAPSHOT_PREFIX);
    ui.setStatus("Snapshot saved to your downloads.");
  } catch (error) {
    ui.showMessage(error.message, { code: "snapshot-failed" });
  } finally {
    el.snapshot.disabled = !(state.stream && state.stream.getVideoTracks().length);
  }
}

function shutdown() {
  state.generation += 1; // a getUserMedia still pending will stop its own tracks
  stopMedia();
  el.video.srcObject = null;
  if (state.audioContext) state.audioContext.close().catch(() => {});
  state.audioContext = null;
  ui.setState("stopped");
}

// ---------------------------------------------------------------------------------------------
// Wiring.

el.video.addEventListener("loadeddata", () => {
  el.snapshot.disabled = !el.video.videoWidth;
});
el.camera.addEventListener("change", () => {
  choose("cameraId", el.camera.value);
  start();
});
el.microphone.addEventListener("change", () => {
  choose("microphoneId", el.microphone.value);
  start();
});
el.speaker.addEventListener("change", () => {
  choose("speakerId", el.speaker.value);
  ui.setStatus("Speaker saved. Play the test sound to check it.");
});
el.testSound.addEventListener("click", playTestSound);
el.snapshot.addEventListener("click", takeSnapshot);
document.addEventListener("pointerdown", resumeAudio);
document.addEventListener("keydown", resumeAudio);
if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
  navigator.mediaDevices.addEventListener("devicechange", refreshDeviceLists);
}
window.addEventListener("pagehide", shutdown);
window.addEventListener("pageshow", (event) => {
  if (event.persisted) start(); // back from the back/forward cache: media was stopped on pagehide
});

ui.showSpeakerSupport(speakerSelectionSupported());
start();
