"""ICE servers handed to each browser in `hello`.

TURN credentials follow the TURN REST API convention that coturn's `use-auth-secret` checks:
username `<expiry unix time>:<user id>`, credential base64(HMAC-SHA1(secret, username)). The shared
secret stays on the server; a browser only ever sees credentials that expire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time


def turn_credentials(*, secret: str, user_id: int, ttl_s: int, now: float | None = None) -> tuple[str, str]:
    expiry = int((time.time() if now is None else now) + ttl_s)
    username = f"{expiry}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers_for(*, user_id: int, config: dict, now: float | None = None) -> list[dict]:
    servers: list[dict] = []
    if config.get("STUN_URLS"):
        servers.append({"urls": list(config["STUN_URLS"])})
    if config.get("TURN_URLS") and config.get("TURN_SECRET"):
        username, credential = turn_credentials(
            secret=config["TURN_SECRET"], user_id=user_id, ttl_s=config["TURN_TTL_S"], now=now
        )
        servers.append({"urls": list(config["TURN_URLS"]), "username": username, "credential": credential})
    return servers


def ice_refresh_after_s(config: dict) -> float:
    """When a client should ask for fresh credentials: well before they expire."""
    return max(1.0, config["TURN_TTL_S"] * 0.5)
