// The call's life on this tab, as an explicit transition table. Pure: no DOM, no network.
// ui.js mirrors the state into <body data-call-state>, which tests and CSS read.

export const IDLE = "idle";
export const OUTGOING = "outgoing";
export const INCOMING = "incoming";
export const CONNECTING = "connecting";
export const ACTIVE = "active";
export const RECONNECTING = "reconnecting";
export const ENDED = "ended";

// event -> next state, per state. Anything not listed is a bug in the caller, not a user error.
const TRANSITIONS = Object.freeze({
  [IDLE]: { dial: OUTGOING, invited: INCOMING, resume: CONNECTING },
  [ENDED]: { dial: OUTGOING, invited: INCOMING, resume: CONNECTING, dismiss: IDLE },
  [OUTGOING]: { accepted: CONNECTING, end: ENDED },
  [INCOMING]: { accept: CONNECTING, end: ENDED },
  [CONNECTING]: { media_up: ACTIVE, media_down: RECONNECTING, end: ENDED },
  [ACTIVE]: { media_up: ACTIVE, media_down: RECONNECTING, end: ENDED },
  [RECONNECTING]: { media_up: ACTIVE, media_down: RECONNECTING, end: ENDED },
});

/** States in which a call exists on this tab (ringing or answered). */
export const LIVE = Object.freeze(new Set([OUTGOING, INCOMING, CONNECTING, ACTIVE, RECONNECTING]));
/** States in which the call was answered and media may flow. */
export const ANSWERED = Object.freeze(new Set([CONNECTING, ACTIVE, RECONNECTING]));

export function can(state, event) {
  return Boolean(TRANSITIONS[state] && TRANSITIONS[state][event]);
}

/** The state after `event`; throws an error with code "bad_transition" when it is not allowed. */
export function next(state, event) {
  const to = TRANSITIONS[state] && TRANSITIONS[state][event];
  if (!to) {
    const error = new Error(`call state: no transition ${state} --${event}-->`);
    error.code = "bad_transition";
    throw error;
  }
  return to;
}

/** Human text for an `ended` reason, from this side's point of view. */
export function endedMessage(reason, { role, peerName }) {
  const who = peerName || "The other person";
  switch (reason) {
    case "declined": return role === "caller" ? `${who} declined the call.` : "You declined the call.";
    case "busy": return `${who} is in another call. Try again later.`;
    case "missed": return role === "caller" ? `${who} did not answer.` : `You missed a call from ${who}.`;
    case "offline": return `${who} is offline.`;
    case "cancelled": return role === "caller" ? "Call cancelled." : `${who} cancelled the call.`;
    case "hangup": return "Call ended.";
    case "disconnected": return `The connection to ${who} was lost. The call has ended.`;
    case "media_lost": return `The connection to ${who} could not be restored. The call has ended.`;
    case "answered_elsewhere": return "Answered on another device.";
    case "ended_by_admin": return "An administrator ended the call.";
    case "lost_while_away": return "The call ended while you were disconnected.";
    case "no_media_path": return `The call could not be connected: no network path to ${who} was found.`;
    case "no_media_path_relay":
      return "The call could not be connected: your “relay only” setting needs the relay (TURN) server, and it could not be used.";
    default: return "The call has ended.";
  }
}
