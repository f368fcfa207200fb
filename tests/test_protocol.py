"""The wire protocol's validation: every client frame is either clean or an error with a code."""

import json
import uuid

import pytest

from calls import protocol
from calls.protocol import ProtocolError, parse_client_message

CALL_ID = str(uuid.uuid4())
LIMIT = 64 * 1024


def parse(obj):
    return parse_client_message(json.dumps(obj), max_bytes=LIMIT)


def code_of(text) -> str:
    with pytest.raises(ProtocolError) as error:
        parse_client_message(text, max_bytes=LIMIT)
    return error.value.code


def test_an_invite_is_parsed_with_media_in_canonical_order():
    message = parse({"type": "invite", "call_id": CALL_ID, "to": "bob", "media": ["video", "audio"]})
    assert message.type == "invite" and message.to == "bob"
    assert message.call_id == uuid.UUID(CALL_ID) and message.media == ("audio", "video")


@pytest.mark.parametrize(
    "media", [[], ["screen"], "audio", ["audio", "audio"], [1], None],
)
def test_invite_media_must_be_a_non_empty_subset_of_audio_and_video(media):
    assert code_of(json.dumps({"type": "invite", "call_id": CALL_ID, "to": "bob", "media": media})) == "bad_message"


@pytest.mark.parametrize("call_id", [None, 5, "not-a-uuid", ""])
def test_call_id_must_be_a_uuid(call_id):
    assert code_of(json.dumps({"type": "accept", "call_id": call_id})) == "bad_message"


def test_not_json_is_bad_json():
    assert code_of("{nope") == "bad_json"


@pytest.mark.parametrize("frame", ["[]", "3", '"hello"', "null"])
def test_a_frame_must_be_an_object(frame):
    assert code_of(frame) == "bad_message"


@pytest.mark.parametrize("kind", ["calls.ended", "presence.update", "calls_signal", "websocket.disconnect", None, 7])
def test_only_client_types_are_accepted_never_server_event_names(kind):
    assert code_of(json.dumps({"type": kind, "call_id": CALL_ID})) == "bad_message"


def test_a_binary_frame_is_refused():
    assert code_of(None) == "bad_message"


def test_oversized_frames_are_refused_before_parsing():
    big = json.dumps({"type": "ping", "pad": "x" * LIMIT})
    assert code_of(big) == "too_large"


def test_multibyte_text_is_measured_in_bytes():
    text = json.dumps({"type": "ping", "pad": "é" * (LIMIT // 2)}, ensure_ascii=False)
    assert len(text) < LIMIT < len(text.encode())
    assert code_of(text) == "too_large"


def test_a_signal_carries_exactly_one_of_description_or_candidate():
    both = {"type": "signal", "call_id": CALL_ID, "description": {"type": "offer", "sdp": "v=0"}, "candidate": None}
    neither = {"type": "signal", "call_id": CALL_ID}
    assert code_of(json.dumps(both)) == "bad_message"
    assert code_of(json.dumps(neither)) == "bad_message"


def test_a_signal_keeps_only_known_fields_so_a_spoofed_from_is_dropped():
    message = parse({
        "type": "signal", "call_id": CALL_ID, "from": "mallory", "user": "root",
        "description": {"type": "offer", "sdp": "v=0", "extra": "x"},
    })
    assert message.payload == {"description": {"type": "offer", "sdp": "v=0"}}


def test_candidates_are_rebuilt_from_known_fields():
    message = parse({
        "type": "signal", "call_id": CALL_ID,
        "candidate": {"candidate": "candidate:1 1 udp 2122 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0, "evil": 1},
    })
    assert message.payload["candidate"] == {
        "candidate": "candidate:1 1 udp 2122 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0,
        "usernameFragment": None,
    }


def test_a_null_candidate_marks_the_end_of_candidates():
    assert parse({"type": "signal", "call_id": CALL_ID, "candidate": None}).payload == {"candidate": None}


@pytest.mark.parametrize("description", [
    {"type": "bogus", "sdp": "v=0"}, {"type": "offer", "sdp": ""}, {"type": "offer", "sdp": 5}, "offer",
])
def test_bad_descriptions_are_refused(description):
    assert code_of(json.dumps({"type": "signal", "call_id": CALL_ID, "description": description})) == "bad_message"


def test_a_rollback_needs_no_sdp():
    assert parse({"type": "signal", "call_id": CALL_ID, "description": {"type": "rollback"}}).payload == {
        "description": {"type": "rollback", "sdp": ""}
    }


@pytest.mark.parametrize("candidate", [
    {"candidate": 5, "sdpMid": "0"}, {"candidate": "c", "sdpMLineIndex": -1}, {"candidate": "c", "sdpMLineIndex": True},
    {"candidate": "c"}, "candidate:1",
])
def test_bad_candidates_are_refused(candidate):
    assert code_of(json.dumps({"type": "signal", "call_id": CALL_ID, "candidate": candidate})) == "bad_message"


def test_media_state_needs_two_booleans():
    assert parse({"type": "media_state", "call_id": CALL_ID, "audio": False, "video": True}).payload == {
        "audio": False, "video": True
    }
    assert code_of(json.dumps({"type": "media_state", "call_id": CALL_ID, "audio": "off", "video": True})) == "bad_message"


def test_stats_summary_is_validated_and_normalised():
    message = parse({"type": "stats", "call_id": CALL_ID, "summary": {"path": "relay", "rtt_ms": 12, "packet_loss": 0.01, "junk": 1}})
    assert message.payload == {"path": "relay", "rtt_ms": 12.0, "packet_loss": 0.01}
    for bad in ({"path": "moon"}, {"rtt_ms": -1}, {"packet_loss": 2}, {"bitrate_kbps": "fast"}):
        assert code_of(json.dumps({"type": "stats", "call_id": CALL_ID, "summary": bad})) == "bad_message"


def test_every_client_type_has_a_parser_and_every_error_a_known_code():
    for kind in protocol.CLIENT_TYPES:
        assert kind in protocol._PARSERS
    with pytest.raises(AssertionError):
        ProtocolError("made_up", "x")
