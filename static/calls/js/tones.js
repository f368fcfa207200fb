// Ring tone (callee) and ringback (caller), synthesised with Web Audio: no sound files.

const RING = { freqsHz: [440, 480], onS: 0.4, gapS: 0.2, bursts: 2, periodS: 3.0, gain: 0.12 };
const RINGBACK = { freqsHz: [440, 480], onS: 2.0, gapS: 0, bursts: 1, periodS: 6.0, gain: 0.06 };
const RAMP_S = 0.02;

let context = null;
let current = null;

function audioContext() {
  if (!context) {
    const Ctor = window.AudioContext || window.webkitAudioContext;
    if (!Ctor) return null;
    context = new Ctor();
  }
  if (context.state === "suspended") context.resume().catch(() => {});
  return context;
}

function play(pattern) {
  stop();
  const ctx = audioContext();
  if (!ctx) return;
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
  // Schedule the on/off envelope a period at a time, a little ahead of the clock.
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
  current = { oscillators, output, timer };
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
