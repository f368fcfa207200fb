"""The web container's health check: exit 0 when GET /healthz on this container answers 200.

    python deploy/healthcheck.py [PORT]      (default 8000, where the image's daphne listens)

Used by the Dockerfile's HEALTHCHECK and the web service's healthcheck in docker-compose.yml.
It connects to 127.0.0.1 but sends a Host header taken from DJANGO_ALLOWED_HOSTS, so it works
whatever host names the operator allows: Django answers 400 to a Host it does not allow, and
127.0.0.1 need not be one of them. Standard library only, no Django import: it runs every few
seconds and must stay cheap.
"""

from __future__ import annotations

import http.client
import os
import sys

DEFAULT_PORT = 8000
TIMEOUT_S = 4
# Django's own default when DJANGO_ALLOWED_HOSTS is unset (config/settings.py).
FALLBACK_HOST = "localhost"


def host_header(allowed_hosts: str) -> str:
    """The first concrete name in a DJANGO_ALLOWED_HOSTS value: "*" allows anything, and
    ".example.com" allows example.com itself."""
    for entry in (part.strip() for part in allowed_hosts.split(",")):
        if not entry or entry == "*":
            continue
        return entry.lstrip(".")
    return FALLBACK_HOST


def healthy(port: int, host: str) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    try:
        connection.request("GET", "/healthz", headers={"Host": host})
        response = connection.getresponse()
        body = response.read(200).decode(errors="replace")
    except OSError as exc:
        print(f"healthcheck: no answer on port {port}: {exc}", file=sys.stderr)
        return False
    finally:
        connection.close()
    if response.status != 200:
        print(f"healthcheck: /healthz answered {response.status} (Host: {host}): {body}", file=sys.stderr)
    return response.status == 200


def main(argv: list[str]) -> int:
    port = int(argv[1]) if len(argv) > 1 else DEFAULT_PORT
    return 0 if healthy(port, host_header(os.environ.get("DJANGO_ALLOWED_HOSTS", ""))) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
