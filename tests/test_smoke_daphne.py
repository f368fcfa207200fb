"""The production entry point: one real daphne process serves pages, static files and sockets."""

import asyncio
import json
import urllib.request

import pytest
import websockets

from tests.support.sessions import session_cookie_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def fetch(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers, response.read()


def test_daphne_serves_pages_static_files_and_the_signal_socket(live_servers, make_user):
    server = live_servers()
    status, _, body = fetch(server.url + "/accounts/login/")
    assert status == 200 and b'name="username"' in body

    # The lobby needs a login: a redirect to the login page.
    request = urllib.request.Request(server.url + "/")
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(request, timeout=10)
    assert redirect.value.code == 302 and redirect.value.headers["Location"].startswith("/accounts/login/")

    status, headers, body = fetch(server.url + "/static/css/peerline.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css") and b"--accent" in body

    alice = make_user("alice", "Alice")
    cookie = session_cookie_for(alice)
    status, _, body = fetch_with_cookie(server.url + "/", cookie)
    assert status == 200 and b"Alice" in body

    hello = asyncio.run(first_frame(server.ws_url, cookie=cookie, origin=server.url))
    assert hello["type"] == "hello" and hello["user"]["username"] == "alice"


def test_the_socket_refuses_anonymous_users_with_4401(live_servers):
    server = live_servers()

    async def attempt():
        async with websockets.connect(server.ws_url, origin=server.url) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            return closed.value.rcvd.code

    assert asyncio.run(attempt()) == 4401


def test_the_socket_refuses_foreign_origins(live_servers, make_user):
    server = live_servers()
    cookie = session_cookie_for(make_user("alice"))

    async def attempt():
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(server.ws_url, origin="http://evil.example", additional_headers={"Cookie": cookie}):
                pass
        return refused.value.response.status_code

    assert asyncio.run(attempt()) == 403


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch_with_cookie(url: str, cookie: str):
    request = urllib.request.Request(url, headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.headers, response.read()


async def first_frame(url: str, *, cookie: str, origin: str) -> dict:
    async with websockets.connect(url, origin=origin, additional_headers={"Cookie": cookie}) as ws:
        return json.loads(await asyncio.wait_for(ws.recv(), 10))
