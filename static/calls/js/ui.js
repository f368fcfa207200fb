// Everything that touches the DOM of the lobby. Holds no protocol state: main.js tells it what
// to show. User data goes in with textContent only. Tests read <body data-call-state> and
// <body data-ws-state>, and the data-testid hooks in templates/calls/lobby.html.

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);
const role = (name) => document.querySelector(`[data-role="${name}"]`);

const MEDIA_WORD = { audio: "audio", video: "video" };
const CONNECTION_TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
};
const PATH_TEXT = { host: "direct", srflx: "direct (via NAT)", prflx: "direct (via NAT)", relay: "relayed" };
// While a call rings the tab title alternates with "Incoming call — NAME": seen from another tab,
// and the one sign of the call when the browser keeps the ring tone locked (see tones.js).
const TITLE_FLASH_MS = 1_000;

export const els = {
  roster: $("roster"),
  search: $("roster-search"),
  empty: $("roster-empty"),
  noMatch: $("roster-nomatch"),
  wsStatus: $("ws-status"),
  message: $("call-message"),
  incoming: $("incoming-call"),
  accept: $("accept-call"),
  decline: $("decline-call"),
  outgoing: $("outgoing-call"),
  outgoingPreview: role("outgoing-preview"),
  cancel: $("cancel-call"),
  callView: $("call-view"),
  remoteVideo: $("remote-video"),
  localVideo: $("local-video"),
  hangup: $("hangup"),
  mic: $("toggle-mic"),
  camera: $("toggle-camera"),
  snapshot: $("snapshot"),
  timer: $("call-timer"),
  connection: $("connection"),
  peerName: $("call-peer-name"),
  peerMedia: $("peer-media"),
  remoteAvatar: role("remote-avatar"),
};

export function initials(name) {
  const parts = (name || "?").trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || "?").slice(0, 2);
  return letters.toUpperCase();
}

export function mediaWord(media) {
  return media && media.includes("video") ? "Video call" : "Audio call";
}

let shownState = "idle";
let titleFlash = null; // { original, timer } while the title flashes

// --- page state ------------------------------------------------------------------------------

export function setCallState(state) {
  shownState = state;
  document.body.dataset.callState = state;
  els.incoming.hidden = state !== "incoming";
  els.outgoing.hidden = state !== "outgoing";
  els.callView.hidden = !["connecting", "active", "reconnecting"].includes(state);
  if (state !== "incoming") stopTitleFlash();
  if (state !== "outgoing") showOutgoingPreview(null);
}

export function setWsState(state) {
  document.body.dataset.wsState = state;
  els.wsStatus.textContent = { connecting: "Connecting…", open: "Online", closed: "Offline — reconnecting…" }[state] || state;
}

export function setWsFinal(text) {
  els.wsStatus.textContent = text;
}

/** The text shown when a call ends or something goes wrong (aria-live). null hides it. */
export function setMessage(text) {
  els.message.textContent = text || "";
  els.message.hidden = !text;
}

// --- roster ----------------------------------------------------------------------------------

/** Draw the roster from a Map username -> USER; `onCall(username, media)` for the buttons. */
export function renderRoster(users, { filter, busyMe, onCall }) {
  const needle = (filter || "").trim().toLowerCase();
  const sorted = [...users.values()].sort((a, b) => a.display_name.localeCompare(b.display_name));
  const shown = sorted.filter(
    (u) => !needle || u.username.toLowerCase().includes(needle) || u.display_name.toLowerCase().includes(needle)
  );
  const focusedName = document.activeElement && document.activeElement.closest("[data-testid=roster-user]");
  const focusKey = focusedName ? [focusedName.dataset.username, document.activeElement.dataset.testid] : null;
  els.roster.replaceChildren(...shown.map((u) => rosterItem(u, { busyMe, onCall })));
  els.empty.hidden = users.size > 0;
  els.noMatch.hidden = users.size === 0 || shown.length > 0;
  if (focusKey) {
    const again = els.roster.querySelector(`[data-username="${CSS.escape(focusKey[0])}"] [data-testid="${focusKey[1]}"]`);
    if (again) again.focus();
  }
}

function rosterItem(user, { busyMe, onCall }) {
  const li = document.createElement("li");
  li.className = "roster-user";
  li.dataset.testid = "roster-user";
  li.dataset.username = user.username;
  li.dataset.status = user.status;
  const avatar = document.createElement("span");
  avatar.className = "avatar";
  avatar.setAttribute("aria-hidden", "true");
  avatar.textContent = initials(user.display_name);
  const who = document.createElement("div");
  who.className = "who";
  const name = document.createElement("div");
  name.className = "name";
  name.textContent = user.display_name;
  const meta = document.createElement("div");
  meta.className = "meta";
  const handle = document.createElement("span");
  handle.textContent = `@${user.username} · `;
  const status = document.createElement("span");
  status.className = "status";
  status.dataset.testid = "roster-status";
  status.textContent = user.status === "busy" ? "in a call" : "available";
  meta.append(handle, status);
  who.append(name, meta);
  const actions = document.createElement("div");
  actions.className = "actions";
  for (const [testid, media, label] of [
    ["call-audio", ["audio"], "Audio"],
    ["call-video", ["audio", "video"], "Video"],
  ]) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.testid = testid;
    button.textContent = label;
    button.setAttribute("aria-label", `${label} call ${user.display_name}`);
    button.disabled = busyMe;
    button.addEventListener("click", () => onCall(user.username, media));
    actions.append(button);
  }
  li.append(avatar, who, actions);
  return li;
}

// --- ringing ---------------------------------------------------------------------------------

export function showIncoming(from, media) {
  role("incoming-avatar").textContent = initials(from.display_name);
  role("incoming-name").textContent = from.display_name;
  role("incoming-detail").textContent = `@${from.username} · ${mediaWord(media)}`;
  role("incoming-preview").hidden = true;
  flashTitle(`Incoming call — ${from.display_name}`);
}

/** Alternate the tab title with `text` until stopTitleFlash(); the page's own title comes back. */
function flashTitle(text) {
  stopTitleFlash();
  const original = document.title;
  let flashed = false;
  const toggle = () => {
    flashed = !flashed;
    document.title = flashed ? text : original;
  };
  toggle();
  titleFlash = { original, timer: setInterval(toggle, TITLE_FLASH_MS) };
}

function stopTitleFlash() {
  if (!titleFlash) return;
  clearInterval(titleFlash.timer);
  document.title = titleFlash.original;
  titleFlash = null;
}

export function showIncomingPreview(stream) {
  const preview = role("incoming-preview");
  const hasVideo = stream && stream.getVideoTracks().length > 0;
  preview.srcObject = hasVideo ? stream : null;
  preview.hidden = !hasVideo;
}

export function showOutgoing(peer, media, detail) {
  role("outgoing-avatar").textContent = initials(peer.display_name);
  role("outgoing-name").textContent = peer.display_name;
  role("outgoing-detail").textContent = detail || `${mediaWord(media)} · calling…`;
}

export function setOutgoingDetail(text) {
  role("outgoing-detail").textContent = text;
}

export function focus(el) {
  if (el && !el.hidden) el.focus();
}

// --- in a call -------------------------------------------------------------------------------

export function showCall(peer) {
  els.peerName.textContent = peer.display_name;
  role("remote-initials").textContent = initials(peer.display_name);
  els.timer.textContent = "0:00";
}

export function setTimer(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  els.timer.textContent = h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

export function setConnection(state, path) {
  els.connection.dataset.quality = state;
  els.connection.dataset.path = path || "unknown";
  const where = state === "connected" && PATH_TEXT[path] ? ` · ${PATH_TEXT[path]}` : "";
  els.connection.textContent = (CONNECTION_TEXT[state] || state) + where;
}

function hasLiveVideo(stream) {
  return Boolean(stream && stream.getVideoTracks().some((t) => t.readyState === "live" && t.enabled));
}

export function setLocalStream(stream) {
  if (els.localVideo.srcObject !== stream) els.localVideo.srcObject = stream || null;
  els.localVideo.hidden = !hasLiveVideo(stream);
  // The caller sees themselves while it rings (the call view, with local-video, is not shown yet).
  showOutgoingPreview(shownState === "outgoing" ? stream : null);
}

function showOutgoingPreview(stream) {
  const preview = els.outgoingPreview;
  const shown = hasLiveVideo(stream) ? stream : null;
  if (preview.srcObject !== shown) preview.srcObject = shown;
  preview.hidden = !shown;
}

export function setRemoteStream(stream) {
  if (els.remoteVideo.srcObject !== stream) els.remoteVideo.srcObject = stream;
  const play = els.remoteVideo.play();
  if (play) play.catch(() => {});
}

/** Video or avatar, and the peer's mute / camera state as words. */
export function setPeerMedia({ audio, video, hasVideoTrack, videoCall }) {
  const showVideo = video && hasVideoTrack;
  els.remoteVideo.classList.toggle("audio-only", !showVideo);
  els.remoteAvatar.hidden = showVideo;
  els.remoteVideo.style.visibility = showVideo ? "visible" : "hidden";
  document.body.dataset.peerAudio = audio ? "on" : "off";
  document.body.dataset.peerVideo = video ? "on" : "off";
  const notes = [];
  if (!audio) notes.push("microphone muted");
  if (!video && videoCall) notes.push("camera off");
  els.peerMedia.textContent = notes.length ? `(${notes.join(", ")})` : "";
}

export function setLocalMedia({ audio, video, canVideo }) {
  els.mic.setAttribute("aria-pressed", String(!audio));
  els.mic.textContent = audio ? "Mute" : "Unmute";
  els.camera.setAttribute("aria-pressed", String(!video));
  els.camera.textContent = video ? "Camera off" : "Camera on";
  els.camera.disabled = canVideo === false;
  document.body.dataset.localAudio = audio ? "on" : "off";
  document.body.dataset.localVideo = video ? "on" : "off";
}

// --- header ----------------------------------------------------------------------------------

/**
 * One more missed call in the header's badge (templates/base.html renders it with the count the
 * server knows at page load); the badge is created when there was none.
 */
export function noteMissedCall() {
  let badge = document.querySelector("[data-missed-calls]");
  if (!badge) {
    const history = document.querySelector('[data-testid="nav-history"]');
    if (!history) return;
    badge = document.createElement("span");
    badge.className = "badge";
    badge.title = "Missed calls";
    history.append(" ", badge);
  }
  const count = (Number.parseInt(badge.dataset.missedCalls, 10) || 0) + 1;
  badge.dataset.missedCalls = String(count);
  badge.setAttribute("aria-label", `${count} missed`);
  badge.textContent = String(count);
}
