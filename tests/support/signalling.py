"""Sockets for consumer tests: WebsocketCommunicator against the real ASGI app, logged in."""

from __future__ import annotations

import asyncio
import json
import uuid

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from tests.support.sessions import session_cookie_for

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
TIMEOUT_S = 5
# Roster news arrives whenever anyone's status changes, in no fixed order with call frames.
ROSTER_TYPES = frozenset({"presence", "status"})


class Socket:
    """One browser tab's signalling socket, with helpers that read like the protocol."""

    def __init__(self, communicator: WebsocketCommunicator, hello: dict | None, name: str):
        self.comm, self.hello, self.name = communicator, hello, name

    async def send(self, **frame) -> None:
        await self.comm.send_to(text_data=json.dumps(frame))

    async def send_raw(self, text: str | None = None, data: bytes | None = None) -> None:
        await self.comm.send_to(text_data=text, bytes_data=data)

    async def receive(self, timeout: float = TIMEOUT_S) -> dict:
        return await self.comm.receive_json_from(timeout=timeout)

    async def expect(self, kind: str, timeout: float = TIMEOUT_S, **fields) -> dict:
        """The next frame of this type (roster frames in between are skipped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.receive(timeout=max(0.05, deadline - loop.time()))
            if frame["type"] == kind:
                for key, value in fields.items():
                    assert frame.get(key) == value, f"{self.name}: {key}={frame.get(key)!r} in {frame}"
                return frame
            if frame["type"] not in ROSTER_TYPES:
                raise AssertionError(f"{self.name}: expected {kind}, got {frame}")

    async def expect_error(self, code: str) -> dict:
        return await self.expect("error", code=code)

    async def expect_nothing(self, timeout: float = 0.3, *, ignore_presence: bool = True) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if await self.comm.receive_nothing(timeout=max(0.01, deadline - loop.time())):
                return
            frame = await self.receive()
            if not (ignore_presence and frame["type"] in ROSTER_TYPES):
                raise AssertionError(f"{self.name} should receive nothing, got {frame}")

    async def close(self) -> None:
        await self.comm.disconnect()


async def open_socket(user, *, name: str | None = None) -> Socket:
    from config.asgi import application

    cookie = await database_sync_to_async(session_cookie_for)(user)
    communicator = WebsocketCommunicator(application, "/ws/signal/", headers=[ORIGIN, (b"cookie", cookie.encode())])
    connected, _ = await communicator.connect(timeout=TIMEOUT_S)
    assert connected
    socket = Socket(communicator, None, name or user.username)
    socket.hello = await socket.expect("hello")
    return socket


def new_call_id() -> str:
    return str(uuid.uuid4())
