// Ring tone (callee) and ringback (caller), synthesised with Web Audio: no sound files.
//
// Browsers keep an AudioContext made without a user gesture suspended (Chromium's autoplay
// policy): a tab opened and left alone would ring in silence. So the context is unlocked by the
// first click, tap or key press anywhere on the page (listeners installed here, removed once it
// runs), and ui.js flashes the tab title while a call rings, which is seen even when the tone
// is not heard. Tones go to the speaker chosen on /devices/ where AudioContext.setSinkId exists.

import { loadPreferences } from "./devices.js";

const RING = { name: "ring", freqsHz: [440, 480], onS: 0.4, gapS: 0.2, bursts: 2, periodS: 3.0, gain: 0.12 };
const RINGBACK = { name: "ringback", freqsHz: [440, 480], onS: 2.0, gapS: 0, bursts: 1, periodS: 6.0, gain: 0.06 };
const RAMP_S = 0.02;
const UNLOCK_EVENTS = ["pointerdown", "keydown", "touchend"];

let context = null;
let current = null;

function audioContext() {
  if (!context) {
    const Ctor = window.AudioContext || window.webkitAudioContext;
    if (!Ctor) return null;
    context = new Ctor();
  }
  return context;
}

/** Resume the context when the browser allows it; a refusal is expected until a gesture. */
function resume(ctx) {
  if (ctx.state !== "suspended") return;
  ctx.resume().then(
    () => ctx.state === "running" && stopListeningForGesture(),
    () => {}, // still locked: the next gesture tries again
  );
}

/** A user gesture: the one moment a browser lets a page start audio. */
function unlock() {
  const ctx = audioContext();
  if (!ctx || ctx.state === "running") stopListeningForGesture();
  else resume(ctx);
}

function listenForGesture() {
  for (const type of UNLOCK_EVENTS) document.addEventListener(type, unlock, { capture: true, passive: true });
}

function stopListeningForGesture() {
  for (const type of UNLOCK_EVENTS) document.removeEventListener(type, unlock, { capture: true });
}

/** Route to the speaker chosen on /devices/ (read each time: it may have changed in another tab). */
function routeToChosenSpeaker(ctx) {
  if (typeof ctx.setSinkId !== "function") return;
  const wanted = loadPreferences().speakerId || "";
  if (ctx.sinkId === wanted) return;
  ctx.setSinkId(wanted).catch((error) => {
    // The chosen speaker is gone or not allowed: the tone stays on the current output.
    console.warn("tones: could not use the chosen speaker", error && error.name);
  });
}

function play(pattern) {
  stop();
  const ctx = audioContext();
  if (!ctx) return;
  routeToChosenSpeaker(ctx);
  resume(ctx);
  const output = ctx.createGain();
  output.gain.value = 0;
  output.connect(ctx.destination);
  const oscillators = pattern.freqsHz.map((hz) => {
    const osc = ctx.createOscillator();
    osc.frequency.value = hz;
    osc.connect(output);
    osc.start();
    return osc;
  });
  // Schedule the on/off envelope a period at a time, a little ahead of the clock. A suspended
  // context's clock stands still, so the pattern simply starts when it is unlocked.
  let periodStart = ctx.currentTime + 0.05;
  const schedule = () => {
    while (periodStart < ctx.currentTime + pattern.periodS) {
      let t = periodStart;
      for (let i = 0; i < pattern.bursts; i += 1) {
        output.gain.setValueAtTime(0, t);
        output.gain.linearRampToValueAtTime(pattern.gain, t + RAMP_S);
        output.gain.setValueAtTime(pattern.gain, t + pattern.onS - RAMP_S);
        output.gain.linearRampToValueAtTime(0, t + pattern.onS);
        t += pattern.onS + pattern.gapS;
      }
      periodStart += pattern.periodS;
    }
  };
  schedule();
  const timer = setInterval(schedule, (pattern.periodS * 1000) / 2);
  current = { name: pattern.name, oscillators, output, timer };
}

export function startRing() { play(RING); }
export function startRingback() { play(RINGBACK); }

export function stop() {
  if (!current) return;
  clearInterval(current.timer);
  for (const osc of current.oscillators) {
    try { osc.stop(); } catch { /* already stopped */ }
    osc.disconnect();
  }
  current.output.disconnect();
  current = null;
}

listenForGesture();

// Test/diagnostic hook (tests/e2e): what is playing, and whether the audio clock runs.
window.peerlineTones = {
  state: () => ({
    tone: current ? current.name : null,
    context: context ? context.state : "none",
    currentTime: context ? context.currentTime : 0,
    sinkId: context && "sinkId" in context ? context.sinkId : null,
  }),
};
