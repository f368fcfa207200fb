"""ICE servers and TURN REST credentials (the scheme coturn's use-auth-secret checks)."""

import base64
import hashlib
import hmac

from calls.ice import ice_refresh_after_s, ice_servers_for, turn_credentials

CONFIG = {"STUN_URLS": ["stun:turn.example.com:3478"], "TURN_URLS": ["turn:turn.example.com:3478"],
          "TURN_SECRET": "s3cret", "TURN_TTL_S": 3600}


def test_turn_username_is_expiry_and_user_id_and_credential_is_the_hmac():
    username, credential = turn_credentials(secret="s3cret", user_id=42, ttl_s=3600, now=1_700_000_000)
    assert username == "1700003600:42"
    expected = base64.b64encode(hmac.new(b"s3cret", b"1700003600:42", hashlib.sha1).digest()).decode()
    assert credential == expected


def test_ice_servers_carry_stun_and_turn_but_never_the_secret():
    servers = ice_servers_for(user_id=7, config=CONFIG, now=1_700_000_000)
    assert servers[0] == {"urls": ["stun:turn.example.com:3478"]}
    assert servers[1]["urls"] == ["turn:turn.example.com:3478"] and servers[1]["username"] == "1700003600:7"
    assert "s3cret" not in repr(servers)


def test_without_a_secret_no_turn_server_is_offered():
    assert ice_servers_for(user_id=7, config={**CONFIG, "TURN_SECRET": ""}) == [{"urls": ["stun:turn.example.com:3478"]}]


def test_clients_refresh_well_before_credentials_expire():
    assert ice_refresh_after_s(CONFIG) <= CONFIG["TURN_TTL_S"] / 2
