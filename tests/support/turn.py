"""A real TURN server for a test: Debian's coturn (`turnserver`) on loopback.

It checks TURN REST credentials (`--use-auth-secret`) against a random shared secret, exactly as a
production coturn next to Peerline does. The relay ports come from a random 200-port window inside
20000–29999: outside the kernel's ephemeral range (32768–60999), where coturn fails about one
allocation in six with "508 Cannot create socket", and random so parallel runs rarely collide.

    with TurnServer(log_dir=artifacts_dir) as turn:
        env = {"PEERLINE_TURN_URLS": turn.url, "PEERLINE_TURN_SECRET": turn.secret}
"""

from __future__ import annotations

import random
import secrets
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.services import turnserver_path

RELAY_LOW, RELAY_HIGH, RELAY_WINDOW = 20000, 29999, 200
STUN_MAGIC_COOKIE = 0x2112A442


def free_udp_tcp_port() -> int:
    """A loopback port free for both UDP and TCP (coturn listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            try:
                with socket.socket() as tcp:
                    tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free UDP+TCP port on 127.0.0.1")


def stun_binding_answers(host: str, port: int, timeout_s: float = 0.2) -> bool:
    """Send one STUN Binding request over UDP; True when a STUN answer with our transaction id comes back."""
    transaction = secrets.token_bytes(12)
    request = (0x0001).to_bytes(2, "big") + (0).to_bytes(2, "big") + STUN_MAGIC_COOKIE.to_bytes(4, "big") + transaction
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout_s)
        try:
            s.sendto(request, (host, port))
            data, _ = s.recvfrom(2048)
        except OSError:  # timeout, or ICMP port unreachable while it is still starting
            return False
    return len(data) >= 20 and data[8:20] == transaction


class TurnServer:
    def __init__(self, *, log_dir: Path | None = None, name: str = "turnserver", realm: str = "peerline.test"):
        self.secret = secrets.token_urlsafe(24)
        self.realm = realm
        self.host = "127.0.0.1"
        self.port = free_udp_tcp_port()
        self.min_port = random.randrange(RELAY_LOW, RELAY_HIGH - RELAY_WINDOW + 2)
        self.max_port = self.min_port + RELAY_WINDOW - 1
        self.url = f"turn:{self.host}:{self.port}?transport=udp"
        self.name = name
        self.log_dir = log_dir or Path(tempfile.gettempdir())
        self.log_path = self.log_dir / f"{name}-{self.port}.log"
        self.proc: subprocess.Popen | None = None
        self._workdir: tempfile.TemporaryDirectory | None = None

    def command(self) -> list[str]:
        work = Path(self._workdir.name)
        return [
            turnserver_path(), "-n",
            f"--listening-ip={self.host}", f"--listening-port={self.port}", f"--relay-ip={self.host}",
            f"--min-port={self.min_port}", f"--max-port={self.max_port}",
            "--use-auth-secret", f"--static-auth-secret={self.secret}", f"--realm={self.realm}",
            "--no-tls", "--no-dtls", "--allow-loopback-peers", "--no-cli", "--fingerprint",
            "--log-file=stdout", "--simple-log", "--verbose",
            # Keep its files out of /var: a throwaway user database and pid file per server.
            f"--db={work / 'turndb'}", f"--pidfile={work / 'turnserver.pid'}",
        ]

    def start(self, timeout_s: float = 10) -> "TurnServer":
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._workdir = tempfile.TemporaryDirectory(prefix="peerline-turn-")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            if stun_binding_answers(self.host, self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer STUN on {self.host}:{self.port} within {timeout_s}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if hasattr(self, "_log") and not self._log.closed:
            self._log.close()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> "TurnServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:]) or "(no log)"

    def env(self, **overrides: str) -> dict[str, str]:
        """The daphne environment that points Peerline at this server."""
        return {"PEERLINE_TURN_URLS": self.url, "PEERLINE_TURN_SECRET": self.secret, **overrides}


__all__ = ["TurnServer", "stun_binding_answers", "free_udp_tcp_port"]
