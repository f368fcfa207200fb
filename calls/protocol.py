"""The signalling wire protocol: what a client may send, and how it is checked.

Pure and synchronous: no database, no channel layer. The consumer hands every text frame to
`parse_client_message`, which either returns a clean `ClientMessage` built only from the fields
the protocol knows (so a client's extra `from` or `user` field can never travel further), or
raises `ProtocolError` with one of the error codes below. docs/protocol.md describes the same
rules for people.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

# --- Error codes sent in {"type": "error", "code": ...} ---------------------------------------
BAD_JSON = "bad_json"
BAD_MESSAGE = "bad_message"
TOO_LARGE = "too_large"
RATE_LIMITED = "rate_limited"
UNKNOWN_USER = "unknown_user"
NOT_ALLOWED = "not_allowed"
UNKNOWN_CALL = "unknown_call"
BAD_STATE = "bad_state"
# Not caused by the client: the server failed to handle a valid message (logged server-side).
SERVER_ERROR = "server_error"
ERROR_CODES = frozenset(
    {BAD_JSON, BAD_MESSAGE, TOO_LARGE, RATE_LIMITED, UNKNOWN_USER, NOT_ALLOWED, UNKNOWN_CALL, BAD_STATE,
     SERVER_ERROR}
)

# --- Close codes --------------------------------------------------------------------------------
CLOSE_UNAUTHENTICATED = 4401
CLOSE_TOO_MANY_ERRORS = 4429

# --- Message types a client may send --------------------------------------------------------------
CLIENT_TYPES = frozenset(
    {"invite", "accept", "decline", "hangup", "signal", "ping", "resume", "media_state", "stats", "ice_servers"}
)
CALL_TYPES = frozenset({"accept", "decline", "hangup", "resume"})
MEDIA_KINDS = ("audio", "video")
SDP_TYPES = frozenset({"offer", "answer", "pranswer", "rollback"})

MAX_USERNAME_CHARS = 150
MAX_SDP_CHARS = 60 * 1024
MAX_CANDIDATE_CHARS = 1024
MAX_MID_CHARS = 64


class ProtocolError(Exception):
    """A client's message broke a rule; `code` is one of ERROR_CODES and is sent back."""

    def __init__(self, code: str, detail: str):
        assert code in ERROR_CODES, code
        super().__init__(detail)
        self.code = code
        self.detail = detail

    def as_frame(self) -> dict[str, str]:
        return {"type": "error", "code": self.code, "detail": self.detail}


@dataclass(frozen=True)
class ClientMessage:
    type: str
    call_id: uuid.UUID | None = None
    to: str | None = None
    media: tuple[str, ...] = ()
    # For `signal`: the sanitised description or candidate, exactly what is relayed.
    payload: dict[str, Any] = field(default_factory=dict)


def parse_client_message(text: str | None, *, max_bytes: int) -> ClientMessage:
    """Decode and validate one text frame from a client."""
    if text is None:
        raise ProtocolError(BAD_MESSAGE, "Only JSON text frames are accepted.")
    if len(text) > max_bytes or len(text.encode("utf-8")) > max_bytes:
        raise ProtocolError(TOO_LARGE, f"Message is larger than {max_bytes} bytes.")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError(BAD_JSON, "Message is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ProtocolError(BAD_MESSAGE, "Message must be a JSON object.")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        raise ProtocolError(BAD_MESSAGE, f"Unknown message type: {_shown(kind)}.")
    return _PARSERS[kind](data)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _call_id(data: dict) -> uuid.UUID:
    raw = data.get("call_id")
    if not isinstance(raw, str):
        raise ProtocolError(BAD_MESSAGE, "call_id must be a UUID string.")
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ProtocolError(BAD_MESSAGE, "call_id must be a UUID string.") from None


def _parse_invite(data: dict) -> ClientMessage:
    to = data.get("to")
    if not isinstance(to, str) or not to or len(to) > MAX_USERNAME_CHARS:
        raise ProtocolError(BAD_MESSAGE, "invite needs `to`: a username.")
    media = data.get("media")
    if (
        not isinstance(media, list)
        or not media
        or not all(isinstance(m, str) for m in media)
        or not set(media) <= set(MEDIA_KINDS)
        or len(set(media)) != len(media)
    ):
        raise ProtocolError(BAD_MESSAGE, "media must be a non-empty list of 'audio' and/or 'video'.")
    ordered = tuple(m for m in MEDIA_KINDS if m in media)
    return ClientMessage(type="invite", call_id=_call_id(data), to=to, media=ordered)


def _parse_call_action(data: dict) -> ClientMessage:
    return ClientMessage(type=data["type"], call_id=_call_id(data))


def _parse_ping(data: dict) -> ClientMessage:
    return ClientMessage(type="ping")


def _parse_signal(data: dict) -> ClientMessage:
    call_id = _call_id(data)
    has_description = "description" in data
    has_candidate = "candidate" in data
    if has_description == has_candidate:
        raise ProtocolError(BAD_MESSAGE, "signal carries exactly one of `description` or `candidate`.")
    if has_description:
        payload = {"description": _description(data["description"])}
    else:
        payload = {"candidate": _candidate(data["candidate"])}
    return ClientMessage(type="signal", call_id=call_id, payload=payload)


def _description(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ProtocolError(BAD_MESSAGE, "description must be an object with `type` and `sdp`.")
    sdp_type = value.get("type")
    if sdp_type not in SDP_TYPES:
        raise ProtocolError(BAD_MESSAGE, "description.type must be offer, answer, pranswer or rollback.")
    sdp = value.get("sdp", "")
    if not isinstance(sdp, str) or len(sdp) > MAX_SDP_CHARS:
        raise ProtocolError(BAD_MESSAGE, "description.sdp must be a string.")
    if sdp_type != "rollback" and not sdp:
        raise ProtocolError(BAD_MESSAGE, "description.sdp must not be empty.")
    return {"type": sdp_type, "sdp": sdp}


def _candidate(value: Any) -> dict[str, Any]:
    """An RTCIceCandidateInit; `null` is allowed as the end-of-candidates marker."""
    if value is None:
        return None  # type: ignore[return-value]
    if not isinstance(value, dict):
        raise ProtocolError(BAD_MESSAGE, "candidate must be an RTCIceCandidateInit object.")
    candidate = value.get("candidate", "")
    mid = value.get("sdpMid")
    index = value.get("sdpMLineIndex")
    ufrag = value.get("usernameFragment")
    if not isinstance(candidate, str) or len(candidate) > MAX_CANDIDATE_CHARS:
        raise ProtocolError(BAD_MESSAGE, "candidate.candidate must be a string.")
    if mid is not None and (not isinstance(mid, str) or len(mid) > MAX_MID_CHARS):
        raise ProtocolError(BAD_MESSAGE, "candidate.sdpMid must be a string or null.")
    if index is not None and (isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 1024):
        raise ProtocolError(BAD_MESSAGE, "candidate.sdpMLineIndex must be a small integer or null.")
    if ufrag is not None and (not isinstance(ufrag, str) or len(ufrag) > 256):
        raise ProtocolError(BAD_MESSAGE, "candidate.usernameFragment must be a string or null.")
    if mid is None and index is None and candidate:
        raise ProtocolError(BAD_MESSAGE, "candidate needs sdpMid or sdpMLineIndex.")
    return {"candidate": candidate, "sdpMid": mid, "sdpMLineIndex": index, "usernameFragment": ufrag}


def _parse_media_state(data: dict) -> ClientMessage:
    """The sender's microphone / camera state, shown to the other side of the call."""
    state = {}
    for key in ("audio", "video"):
        value = data.get(key)
        if not isinstance(value, bool):
            raise ProtocolError(BAD_MESSAGE, "media_state needs boolean `audio` and `video`.")
        state[key] = value
    return ClientMessage(type="media_state", call_id=_call_id(data), payload=state)


STATS_FIELDS = {
    "path": (str, ("host", "srflx", "prflx", "relay", "unknown")),
    "rtt_ms": (float, (0, 60_000)),
    "packet_loss": (float, (0, 1)),
    "bitrate_kbps": (float, (0, 1_000_000)),
}


def _parse_stats(data: dict) -> ClientMessage:
    """The small connection summary a client sends when a call ends (shown to operators)."""
    summary = data.get("summary")
    if not isinstance(summary, dict):
        raise ProtocolError(BAD_MESSAGE, "stats needs a `summary` object.")
    clean: dict[str, Any] = {}
    for key, (kind, allowed) in STATS_FIELDS.items():
        value = summary.get(key)
        if value is None:
            continue
        if kind is str:
            if value not in allowed:
                raise ProtocolError(BAD_MESSAGE, f"stats.summary.{key} is not one of {allowed}.")
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ProtocolError(BAD_MESSAGE, f"stats.summary.{key} must be a number.")
            low, high = allowed
            if not low <= value <= high:
                raise ProtocolError(BAD_MESSAGE, f"stats.summary.{key} is out of range.")
            value = float(value)
        clean[key] = value
    return ClientMessage(type="stats", call_id=_call_id(data), payload=clean)


_PARSERS = {
    "invite": _parse_invite,
    "accept": _parse_call_action,
    "decline": _parse_call_action,
    "hangup": _parse_call_action,
    "resume": _parse_call_action,
    "signal": _parse_signal,
    "ping": _parse_ping,
    "ice_servers": lambda data: ClientMessage(type="ice_servers"),
    "media_state": _parse_media_state,
    "stats": _parse_stats,
}
assert set(_PARSERS) == CLIENT_TYPES


def user_payload(user, *, status: str) -> dict[str, str]:
    """USER in the protocol: what other people may know about someone."""
    return {"username": user.username, "display_name": user.display_name or user.username, "status": status}
