// The lobby: wiring only. Protocol frames in, call-state transitions, Peer and media calls,
// ui.js for the DOM. docs/protocol.md is the contract with the server.

import * as CS from "./call-state.js";
import { applySpeaker, loadPreferences } from "./devices.js";
import { acquire, cameraTrack, raiseVideoQuality, stopAll, trackOf } from "./media.js";
import { Peer } from "./peer.js";
import { SignallingClient } from "./signalling-client.js";
import { downloadSnapshot } from "./snapshot.js";
import * as tones from "./tones.js";
import * as ui from "./ui.js";

const WS_PATH = "/ws/signal/";
const TIMER_TICK_MS = 1_000;
const PATH_POLL_MS = 2_000;
// The camera starts at VGA for a quick first picture and goes to full size this long after the
// media first connects (long enough for both sides to show a first frame).
const RAISE_QUALITY_AFTER_MS = 1_500;
// An answered call whose media never connects (e.g. the TURN server refuses the credentials of a
// "relay only" user: no candidate at all, ICE stays `new` forever) is ended with a message.
const CONNECT_TIMEOUT_MS = 15_000;
// A call whose media stays down this long (ICE restarts keep failing while both sockets live:
// the other browser froze, or its network never came back) ends with a message rather than
// "reconnecting" forever. The server may set it (hello.limits.media_lost_s).
const MEDIA_LOST_DEFAULT_MS = 45_000;
const SIGNAL_TYPES = new Set(["signal", "media_state"]);

const now = () => performance.timeOrigin + performance.now(); // epoch ms, comparable across tabs

const app = {
  state: CS.IDLE,
  me: null,
  online: new Map(), // username -> USER
  iceServers: [],
  icePolicy: "all",
  iceRefreshTimer: null,
  mediaLostMs: MEDIA_LOST_DEFAULT_MS,
  call: null,
  // The call_id of a call another tab or window of mine holds (hello.call.elsewhere), or true
  // when a `status` frame says I am busy somewhere else; this tab then places no call.
  elsewhere: null,
  // Test/diagnostic: epoch-ms marks of the last call's setup (see bench/call_setup.py).
  timings: {},
  callBack: readCallBack(),
};

/**
 * A call-back link from the history page: /?call=<username>&media=audio|video. Dialled once,
 * after the first `hello`; the address is cleaned so a reload does not dial again.
 */
function readCallBack() {
  const params = new URLSearchParams(location.search);
  const username = params.get("call");
  if (!username) return null;
  history.replaceState(null, "", location.pathname);
  return { username, media: params.get("media") === "video" ? ["audio", "video"] : ["audio"] };
}

const client = new SignallingClient({
  url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${WS_PATH}`,
  onMessage: (frame) => receive(frame),
  onState: (state, detail) => wsStateChanged(state, detail),
});

// --- state -----------------------------------------------------------------------------------

function go(event) {
  app.state = CS.next(app.state, event);
  ui.setCallState(app.state);
  renderRoster();
}

function wsStateChanged(state, detail) {
  ui.setWsState(state);
  if (state === "closed" && detail && detail.code === 4401) {
    ui.setWsFinal("Signed out — log in again to take calls.");
    if (app.call) finish("disconnected");
  }
}

function renderRoster() {
  ui.renderRoster(app.online, {
    filter: ui.els.search.value,
    busyMe: CS.LIVE.has(app.state) || Boolean(app.elsewhere),
    onCall: (username, media) => dial(username, media),
  });
}

// --- frames from the server ------------------------------------------------------------------

const HANDLERS = {
  hello: onHello,
  presence: onPresence,
  invite: onInvite,
  ringing: onRinging,
  accepted: onAccepted,
  signal: onSignal,
  media_state: onMediaState,
  resumed: onResumed,
  ended: onEnded,
  status: onOwnStatus,
  ice_servers: onIceServers,
  error: onError,
};

function receive(frame) {
  const handler = HANDLERS[frame.type];
  if (handler) handler(frame);
}

function onHello(hello) {
  app.me = hello.user;
  app.online = new Map(hello.online.map((u) => [u.username, u]));
  app.icePolicy = hello.ice_transport_policy || "all"; // before the servers reach a live call
  const limits = hello.limits || {};
  if (limits.media_lost_s > 0) app.mediaLostMs = limits.media_lost_s * 1000;
  onIceServers(hello);
  renderRoster();
  const call = app.call;
  const live = hello.call;
  if (call && live && live.call_id === call.id) {
    // Our call survived the reconnect. A ringing callee has nothing to take back: the server
    // rings every tab, this new socket included.
    if (app.state !== CS.INCOMING) client.sendFirst({ type: "resume", call_id: call.id });
  } else if (call && !inviteStillQueued(call)) {
    finish(call.state === CS.INCOMING ? "missed" : "lost_while_away");
  }
  setElsewhere(live && live.elsewhere && (!app.call || live.call_id !== app.call.id) ? live.call_id : null);
  if (live && !live.elsewhere && (!call || live.call_id !== call.id)) adoptOrphan(live);
  if (app.callBack && !app.call) {
    const { username, media } = app.callBack;
    app.callBack = null;
    dial(username, media); // an offline person gets the usual "offline" message
  }
}

const ELSEWHERE_TEXT = "You are in a call in another tab or window.";

/** I am in a call in another tab or window: say so (unless a message about how this tab's own
 * call ended is showing, e.g. "Answered on another device."), and place no call meanwhile. */
function setElsewhere(callId) {
  const was = app.elsewhere;
  app.elsewhere = callId;
  const shown = ui.els.message.textContent;
  if (callId && !app.call && !shown) ui.setMessage(ELSEWHERE_TEXT);
  else if (was && !callId && !app.call && shown === ELSEWHERE_TEXT) ui.setMessage(null);
  renderRoster();
}

/** My own busy/available, from whichever tab's call it is. */
function onOwnStatus({ status }) {
  if (status === "available") setElsewhere(null);
  else if (status === "busy" && !app.call) setElsewhere(app.elsewhere || true);
}

/** A live call the server knows but this page does not (the page was reloaded). */
function adoptOrphan(live) {
  if (live.state === "ringing" && live.role === "callee") {
    onInvite({ call_id: live.call_id, from: live.peer, media: live.media });
  } else {
    // Its media died with the old page: end it rather than leave the peer waiting.
    client.send({ type: "hangup", call_id: live.call_id });
  }
}

function inviteStillQueued(call) {
  return call.role === "caller" && !call.ringing && client.queue.some((f) => f.type === "invite" && f.call_id === call.id);
}

function onPresence({ user, event }) {
  if (event === "offline") app.online.delete(user.username);
  else app.online.set(user.username, user);
  renderRoster();
}

function onIceServers(frame) {
  app.iceServers = frame.ice_servers || [];
  clearTimeout(app.iceRefreshTimer);
  if (frame.ice_refresh_s > 0) {
    app.iceRefreshTimer = setTimeout(() => client.send({ type: "ice_servers" }), frame.ice_refresh_s * 1000);
  }
  if (app.call && app.call.rtc) app.call.rtc.setIceServers(app.iceServers, app.icePolicy);
}

function onError({ code, detail }) {
  console.warn(`signalling error ${code}: ${detail}`);
  const call = app.call;
  // In `outgoing` before `ringing` the only thing we sent about the call is the invite.
  if (call && app.state === CS.OUTGOING && !call.ringing && code !== "server_error") {
    finish(null, detail);
  } else if (call && call.role === "callee" && app.state === CS.CONNECTING && !call.answered &&
             ["bad_state", "unknown_call", "not_allowed"].includes(code)) {
    // Our accept was refused (the call ended as we answered): there is no call to wait for.
    finish(null, detail);
  }
}

// --- placing a call --------------------------------------------------------------------------

function newCall({ id, role, peer, media }) {
  return {
    id, role, peer, media,
    state: null,
    stream: null,
    mediaReady: null, // Promise<{stream, problem}>
    rtc: null,
    outbox: [], // signals made before the server confirmed the call (`ringing` / `accepted`)
    // The caller's signals sent while the phone rings: the server holds them on the socket that
    // sent them, so after a reconnect they go again to the new one.
    sentBeforeAnswer: [],
    answered: false,
    ringing: false,
    polite: role === "callee",
    answeredAt: 0,
    peerMedia: { audio: true, video: media.includes("video") },
    timer: null,
    pathTimer: null,
    connectTimer: null,
    everConnected: false,
    connection: "connecting",
    path: "unknown",
    firstFrameSeen: false,
  };
}

function dial(username, media) {
  if (CS.LIVE.has(app.state) || app.elsewhere) return;
  const peer = app.online.get(username) || { username, display_name: username, status: "available" };
  const call = newCall({ id: crypto.randomUUID(), role: "caller", peer, media });
  app.call = call;
  app.timings = { callClickedAt: now() };
  ui.setMessage(null);
  go("dial");
  call.state = app.state;
  ui.showOutgoing(peer, media);
  ui.focus(ui.els.cancel);
  client.send({ type: "invite", call_id: call.id, to: username, media });
  // Ringback, media and the offer all happen while the other side rings: accepting is then
  // only an answer and a few candidates away from video.
  startMedia(call);
  buildPeer(call);
}

function onRinging({ call_id }) {
  const call = app.call;
  if (!call || call.id !== call_id) return;
  call.ringing = true;
  flushOutbox(call); // the server holds the offer for whichever tab answers
  ui.setOutgoingDetail(`${ui.mediaWord(call.media)} · ringing…`);
  tones.startRingback();
}

function cancel() {
  const call = app.call;
  if (!call || app.state !== CS.OUTGOING) return;
  client.send({ type: "hangup", call_id: call.id });
  finish("cancelled");
}

// --- receiving a call ------------------------------------------------------------------------

function onInvite({ call_id, from, media }) {
  if (!CS.can(app.state, "invited")) return; // the server never rings a busy user; be safe
  const call = newCall({ id: call_id, role: "callee", peer: from, media });
  app.call = call;
  app.timings = { ringingShownAt: now() };
  ui.setMessage(null);
  ui.showIncoming(from, media);
  go("invited");
  call.state = app.state;
  ui.focus(ui.els.accept);
  tones.startRing();
  startMedia(call).then(({ stream }) => {
    if (app.call === call && app.state === CS.INCOMING) ui.showIncomingPreview(stream);
  });
  buildPeer(call); // ready (candidates gathered) before the accept click; closed if declined
}

function accept() {
  const call = app.call;
  if (!call || app.state !== CS.INCOMING) return;
  app.timings.acceptClickedAt = now();
  tones.stop();
  client.send({ type: "accept", call_id: call.id });
  go("accept");
  call.state = app.state;
  enterCallView(call);
  // From the click, not from `accepted`: an accept the server never confirms must not leave
  // this side in "Connecting…" with the camera on.
  call.connectTimer = setTimeout(() => connectTimedOut(call), CONNECT_TIMEOUT_MS);
}

function decline() {
  const call = app.call;
  if (!call || app.state !== CS.INCOMING) return;
  client.send({ type: "decline", call_id: call.id });
  finish("declined");
}

// --- the answered call -----------------------------------------------------------------------

function onAccepted({ call_id, polite }) {
  const call = app.call;
  if (!call || call.id !== call_id) return;
  call.polite = polite;
  if (call.rtc) call.rtc.polite = polite; // the server decides who yields in a glare
  call.answered = true;
  call.answeredAt = now();
  app.timings.acceptedAt = call.answeredAt;
  tones.stop();
  if (call.role === "caller") {
    go("accepted");
    call.state = app.state;
    enterCallView(call);
  }
  flushOutbox(call);
  sendMediaState(call);
  if (!call.everConnected && !call.connectTimer) {
    call.connectTimer = setTimeout(() => connectTimedOut(call), CONNECT_TIMEOUT_MS);
  }
  call.timer = setInterval(() => ui.setTimer((now() - call.answeredAt) / 1000), TIMER_TICK_MS);
}

function enterCallView(call) {
  ui.showCall(call.peer);
  ui.setConnection("connecting");
  ui.setRemoteStream(null);
  updateLocalView(call);
  updatePeerView(call);
  ui.focus(ui.els.hangup);
  applySpeaker(ui.els.remoteVideo, loadPreferences().speakerId).catch((error) => {
    console.warn("could not use the chosen speaker", error);
  });
}

function startMedia(call) {
  call.mediaReady = acquire(call.media).then((result) => {
    if (app.call !== call) {
      stopAll(result.stream); // the call ended while the camera was starting
      return result;
    }
    call.stream = result.stream;
    if (result.problem) ui.setMessage(result.problem.message);
    updateLocalView(call);
    return result;
  });
  return call.mediaReady;
}

function buildPeer(call) {
  const rtc = new Peer({
    polite: call.role === "callee",
    iceServers: app.iceServers,
    iceTransportPolicy: app.icePolicy,
    waitForRemoteOffer: call.role === "callee",
    sendSignal: (body) => sendSignal(call, body),
    onTrack: (stream) => remoteTrackArrived(call, stream),
    onConnectionState: (state) => connectionChanged(call, state),
  });
  call.rtc = rtc;
  // Nothing from the peer is applied before our own tracks are attached (callee: to the
  // transceivers the caller's offer creates, so the answer carries them at once).
  rtc.chain = call.mediaReady.then(({ stream }) => {
    if (rtc.closed) return;
    rtc.attach(stream);
    if (call.role === "caller") {
      for (const kind of call.media) if (!trackOf(stream, kind)) rtc.receive(kind);
    }
  });
}

/**
 * The caller's offer and candidates may leave while the other side rings: the server holds them
 * and hands them to the tab that answers, the moment it answers. Before the server has confirmed
 * the call (`ringing`) they wait here, and the callee never signals before it has accepted.
 */
function sendSignal(call, body) {
  if (app.call !== call) return;
  if (call.answered || (call.role === "caller" && call.ringing)) sendNow(call, body);
  else call.outbox.push(body);
}

function sendNow(call, body) {
  if (!call.answered) call.sentBeforeAnswer.push(body);
  client.send({ type: "signal", call_id: call.id, ...body });
}

function flushOutbox(call) {
  const queued = call.outbox;
  call.outbox = [];
  queued.forEach((body) => sendNow(call, body));
}

function onSignal(frame) {
  const call = app.call;
  if (!call || call.id !== frame.call_id || !call.rtc) return;
  const body = "description" in frame ? { description: frame.description } : { candidate: frame.candidate };
  if (body.description) {
    const mark = body.description.type === "offer" ? "remoteOfferAt" : "remoteAnswerAt";
    app.timings[mark] = app.timings[mark] || now();
  }
  call.rtc.handleSignal(body);
}

function remoteTrackArrived(call, stream) {
  if (app.call !== call) return;
  ui.setRemoteStream(stream);
  updatePeerView(call);
  const video = ui.els.remoteVideo;
  if (!call.firstFrameSeen && stream.getVideoTracks().length && video.requestVideoFrameCallback) {
    video.requestVideoFrameCallback(() => {
      if (app.call !== call || call.firstFrameSeen) return;
      call.firstFrameSeen = true;
      app.timings.firstRemoteFrameAt = now();
    });
  }
}

function connectionChanged(call, state) {
  if (app.call !== call || !CS.ANSWERED.has(app.state)) return;
  if (state === "connected") {
    if (!call.everConnected) {
      call.raiseTimer = setTimeout(() => app.call === call && raiseVideoQuality(call.stream), RAISE_QUALITY_AFTER_MS);
    }
    call.everConnected = true;
    clearTimeout(call.connectTimer);
    clearTimeout(call.lostTimer);
    call.lostTimer = null;
    if (app.state !== CS.ACTIVE) {
      app.timings.connectedAt = app.timings.connectedAt || now();
      go("media_up");
      call.state = app.state;
    }
    call.connection = "connected";
    refreshPath(call);
    if (!call.pathTimer) call.pathTimer = setInterval(() => refreshPath(call), PATH_POLL_MS);
  } else if (state === "disconnected" || state === "failed") {
    go("media_down");
    call.state = app.state;
    call.connection = "reconnecting";
    if (call.everConnected && !call.lostTimer) call.lostTimer = setTimeout(() => mediaLost(call), app.mediaLostMs);
  }
  ui.setConnection(call.connection, call.path);
}

function connectTimedOut(call) {
  if (app.call !== call || call.everConnected || !CS.ANSWERED.has(app.state)) return;
  console.warn(`call ${call.id}: media did not connect within ${CONNECT_TIMEOUT_MS} ms`,
    call.rtc ? { ice: call.rtc.pc.iceConnectionState, gathering: call.rtc.pc.iceGatheringState } : null);
  client.send({ type: "hangup", call_id: call.id });
  finish(app.icePolicy === "relay" ? "no_media_path_relay" : "no_media_path");
}

function mediaLost(call) {
  if (app.call !== call || call.connection !== "reconnecting") return;
  console.warn(`call ${call.id}: media stayed down for ${app.mediaLostMs} ms; ending the call`);
  client.send({ type: "hangup", call_id: call.id });
  finish("media_lost");
}

async function refreshPath(call) {
  if (!call.rtc || call.rtc.closed) return;
  call.path = await call.rtc.path();
  if (app.call !== call) return;
  document.body.dataset.icePath = call.path;
  ui.setConnection(call.connection, call.path);
}

function onResumed({ call_id, polite, state }) {
  const call = app.call;
  if (!call || call.id !== call_id) return;
  call.polite = polite;
  const rtc = call.rtc;
  if (call.role === "caller" && !call.answered) {
    // The old socket held our offer for the answering tab, and went away with it; and if the
    // answer came while we were away, its `accepted` went there too.
    const unsent = call.sentBeforeAnswer.splice(0);
    if (state === "active") onAccepted({ call_id, polite });
    unsent.forEach((body) => sendNow(call, body));
    if (state === "ringing") return;
  }
  if (!rtc) return;
  rtc.polite = polite;
  // An offer of ours may have gone to the socket that just died; its answer never came.
  if (rtc.pc.signalingState === "have-local-offer" && rtc.pc.localDescription) {
    client.send({ type: "signal", call_id: call.id, description: rtc.pc.localDescription.toJSON() });
  }
  // The media path may have broken while signalling was away: look for a new one now.
  if (!polite && ["disconnected", "failed"].includes(rtc.pc.iceConnectionState)) rtc.restartIce();
}

// --- microphone, camera, what the peer shows ---------------------------------------------------

function localMedia(call) {
  const audio = trackOf(call.stream, "audio");
  const video = trackOf(call.stream, "video");
  return { audio: Boolean(audio && audio.enabled), video: Boolean(video && video.enabled) };
}

function sendMediaState(call) {
  if (!call.answered || app.call !== call) return;
  client.send({ type: "media_state", call_id: call.id, ...localMedia(call) });
}

function updateLocalView(call) {
  const state = localMedia(call);
  ui.setLocalStream(call.stream);
  ui.setLocalMedia({ ...state, canVideo: Boolean(navigator.mediaDevices) });
  ui.els.mic.disabled = !trackOf(call.stream, "audio");
}

function updatePeerView(call) {
  const stream = call.rtc ? call.rtc.remoteStream : null;
  const hasVideoTrack = Boolean(stream && stream.getVideoTracks().length);
  ui.setPeerMedia({ ...call.peerMedia, hasVideoTrack, videoCall: call.media.includes("video") || hasVideoTrack });
}

function onMediaState({ call_id, audio, video }) {
  const call = app.call;
  if (!call || call.id !== call_id) return;
  call.peerMedia = { audio, video };
  updatePeerView(call);
}

function toggleMic() {
  const call = app.call;
  const track = call && trackOf(call.stream, "audio");
  if (!track) return;
  track.enabled = !track.enabled;
  updateLocalView(call);
  sendMediaState(call);
}

async function toggleCamera() {
  const call = app.call;
  if (!call || !call.stream) return;
  const track = trackOf(call.stream, "video");
  if (track) {
    // Off means off: stop the camera (its light too), keep the transceiver for turning it on.
    if (call.rtc) await call.rtc.unsendTrack(track);
    track.stop();
    call.stream.removeTrack(track);
  } else {
    ui.els.camera.disabled = true;
    try {
      const fresh = await cameraTrack();
      if (app.call !== call) {
        fresh.stop();
        return;
      }
      call.stream.addTrack(fresh);
      if (call.rtc) await call.rtc.sendTrack(fresh, call.stream);
      ui.setMessage(null);
    } catch (problem) {
      ui.setMessage(problem.message || "The camera could not be started.");
    } finally {
      ui.els.camera.disabled = false;
    }
  }
  if (app.call !== call) return;
  ui.setLocalStream(null); // re-evaluate the preview for the changed track set
  updateLocalView(call);
  sendMediaState(call);
}

async function snapshot() {
  const call = app.call;
  const remote = ui.els.remoteVideo;
  const source = remote.videoWidth > 0 ? remote : ui.els.localVideo;
  const who = call ? call.peer.username : "peerline";
  try {
    await downloadSnapshot(source, `peerline-${who}`);
  } catch (error) {
    ui.setMessage(error.message);
  }
}

// --- the end ---------------------------------------------------------------------------------

function hangup() {
  const call = app.call;
  if (!call) return;
  if (app.state === CS.OUTGOING) return cancel();
  if (app.state === CS.INCOMING) return decline();
  client.send({ type: "hangup", call_id: call.id });
  finish("hangup");
}

function onEnded({ call_id, reason }) {
  const call = app.call;
  if (!call || call.id !== call_id) {
    if (app.elsewhere === call_id) setElsewhere(null);
    return;
  }
  // It rang here and nobody answered anywhere: a missed call, counted in the header at once.
  if (call.role === "callee" && !call.answered && ["missed", "cancelled"].includes(reason)) ui.noteMissedCall();
  finish(reason);
}

/** Every way a call ends comes through here: tones off, stats sent, tracks stopped, pc closed. */
function finish(reason, text) {
  const call = app.call;
  if (!call) return;
  app.call = null;
  tones.stop();
  clearInterval(call.timer);
  clearInterval(call.pathTimer);
  clearTimeout(call.connectTimer);
  clearTimeout(call.raiseTimer);
  clearTimeout(call.lostTimer);
  client.discard((f) => SIGNAL_TYPES.has(f.type) && f.call_id === call.id);
  const rtc = call.rtc;
  if (rtc && call.answered) {
    const elapsedS = (now() - call.answeredAt) / 1000;
    rtc.summary(elapsedS)
      .then((summary) => summary && client.send({ type: "stats", call_id: call.id, summary }))
      .catch((error) => console.warn("could not read call statistics", error))
      .finally(() => rtc.close());
  } else if (rtc) {
    rtc.close();
  }
  stopAll(call.stream);
  ui.setRemoteStream(null);
  ui.setLocalStream(null);
  ui.showIncomingPreview(null);
  delete document.body.dataset.icePath;
  if (CS.can(app.state, "end")) go("end");
  ui.setMessage(text || CS.endedMessage(reason, { role: call.role, peerName: call.peer.display_name }));
  ui.focus(ui.els.search);
}

// --- wiring ----------------------------------------------------------------------------------

function wire() {
  ui.els.search.addEventListener("input", renderRoster);
  ui.els.accept.addEventListener("click", accept);
  ui.els.decline.addEventListener("click", decline);
  ui.els.cancel.addEventListener("click", cancel);
  ui.els.hangup.addEventListener("click", hangup);
  ui.els.mic.addEventListener("click", toggleMic);
  ui.els.camera.addEventListener("click", toggleCamera);
  ui.els.snapshot.addEventListener("click", snapshot);
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    if (app.state === CS.INCOMING) decline();
    else if (app.state === CS.OUTGOING) cancel();
    else if (ui.els.search === document.activeElement && ui.els.search.value) {
      ui.els.search.value = "";
      renderRoster();
    }
  });
  // Leaving the page ends the call now rather than after the server's grace period.
  window.addEventListener("pagehide", () => {
    const call = app.call;
    if (!call) return;
    if (app.state === CS.INCOMING) client.send({ type: "decline", call_id: call.id });
    else client.send({ type: "hangup", call_id: call.id });
    stopAll(call.stream);
  });
}

// Test/diagnostic hook (used by tests/e2e and bench/call_setup.py; not an API for pages).
window.peerline = {
  pc: () => (app.call && app.call.rtc ? app.call.rtc.pc : null),
  restartIce: () => app.call && app.call.rtc && app.call.rtc.restartIce(),
  socket: () => client.ws,
  dropSocket: () => client.drop(),
  callId: () => (app.call ? app.call.id : null),
  state: () => app.state,
  timings: () => ({ ...app.timings }),
};

ui.setCallState(app.state);
wire();
renderRoster();
client.start();
