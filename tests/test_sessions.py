"""Login sessions: recorded at login, touched by requests, shown to operators, revoked everywhere."""

import asyncio
import json
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
import websockets
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import LoginSession
from tests.conftest import PASSWORD
from tests.support.sessions import session_cookie_for

FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"
)
TIMEOUT_S = 10


@pytest.fixture
def operator(make_user):
    return make_user("operator", is_staff=True, is_superuser=True)


def log_in(client, username: str, user_agent: str = FIREFOX_LINUX, ip: str = "203.0.113.7"):
    response = client.post(
        reverse("accounts:login"), {"username": username, "password": PASSWORD},
        HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip,
    )
    assert response.status_code == 302
    return client.session.session_key


def session_exists(key: str) -> bool:
    return Session.objects.filter(session_key=key, expire_date__gt=timezone.now()).exists()


# --- recording ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user_agent, browser, system",
    [
        (FIREFOX_LINUX, "Firefox", "Linux"),
        (CHROME_ANDROID, "Chrome", "Android"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
         "Safari/537.36 Edg/126.0.0.0", "Edge", "Windows"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Version/17.5 Mobile/15E148 Safari/604.1", "Safari", "iOS"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
         "Safari/537.36 OPR/111.0.0.0", "Opera", "macOS"),
        ("curl/8.5.0", "", ""),
        ("", "", ""),
    ],
)
def test_user_agents_are_summarised_as_browser_and_system(user_agent, browser, system):
    assert services.summarize_user_agent(user_agent) == (browser, system)


@pytest.mark.django_db
def test_logging_in_records_the_session_without_the_ip_by_default(client, make_user):
    alice = make_user("alice")
    key = log_in(client, "alice")
    session = LoginSession.objects.get(session_key=key)
    assert (session.user, session.browser, session.os, session.ip) == (alice, "Firefox", "Linux", None)
    assert session.device == "Firefox on Linux"


@pytest.mark.django_db
def test_the_ip_is_kept_only_when_peerline_record_ip_is_on(client, make_user, settings):
    settings.PEERLINE = {**settings.PEERLINE, "RECORD_IP": True}
    make_user("alice")
    key = log_in(client, "alice", ip="203.0.113.7")
    assert LoginSession.objects.get(session_key=key).ip == "203.0.113.7"


@pytest.mark.django_db
def test_each_login_is_its_own_session(client, make_user):
    from django.test import Client

    alice = make_user("alice")
    first = log_in(client, "alice")
    second = log_in(Client(), "alice", user_agent=CHROME_ANDROID)
    assert first != second
    assert {(s.session_key, s.browser) for s in alice.login_sessions.all()} == {(first, "Firefox"), (second, "Chrome")}


@pytest.mark.django_db
def test_logging_out_removes_the_row(client, make_user):
    make_user("alice")
    key = log_in(client, "alice")
    client.post(reverse("accounts:logout"))
    assert not LoginSession.objects.filter(session_key=key).exists()


@pytest.mark.django_db
def test_requests_move_last_seen_at_most_once_a_minute(client, make_user):
    make_user("alice")
    key = log_in(client, "alice")
    cache.clear()
    five_minutes_ago = timezone.now() - timedelta(minutes=5)
    LoginSession.objects.filter(session_key=key).update(last_seen=five_minutes_ago)

    client.get(reverse("calls:lobby"))
    touched = LoginSession.objects.get(session_key=key).last_seen
    assert touched > five_minutes_ago

    half_a_minute_ago = timezone.now() - timedelta(seconds=30)
    LoginSession.objects.filter(session_key=key).update(last_seen=half_a_minute_ago)
    client.get(reverse("calls:lobby"))  # within the minute on this worker: no database work at all
    cache.clear()
    client.get(reverse("calls:lobby"))  # another worker (no cache entry): the row is still fresh
    assert LoginSession.objects.get(session_key=key).last_seen == half_a_minute_ago


@pytest.mark.django_db
def test_a_session_without_a_row_gets_one_on_its_next_request(client, make_user):
    """Sessions from before login sessions were tracked appear once they are used."""
    alice = make_user("alice")
    cookie = session_cookie_for(alice)
    name, key = cookie.split("=", 1)
    client.cookies[name] = key
    cache.clear()
    assert client.get(reverse("calls:lobby"), HTTP_USER_AGENT=CHROME_ANDROID).status_code == 200
    session = LoginSession.objects.get(session_key=key)
    assert (session.user, session.device) == (alice, "Chrome on Android")


@pytest.mark.django_db
def test_clearsessions_prunes_the_rows_of_expired_and_vanished_sessions(make_user):
    """Django's own daily clean-up takes the rows with it; a valid session keeps its row."""
    from django.test import Client

    make_user("alice")
    kept, expired, vanished = (log_in(Client(), "alice") for _ in range(3))
    Session.objects.filter(session_key=expired).update(expire_date=timezone.now() - timedelta(seconds=1))
    Session.objects.filter(session_key=vanished).delete()  # e.g. a session table restored from a backup
    assert LoginSession.objects.count() == 3

    call_command("clearsessions")

    assert set(LoginSession.objects.values_list("session_key", flat=True)) == {kept}
    assert session_exists(kept) and not Session.objects.filter(session_key=expired).exists()


@pytest.mark.django_db(transaction=True)
def test_each_workers_janitor_prunes_expired_rows_hourly_without_cron(make_user, monkeypatch):
    """A deployment that never runs clearsessions still loses the rows of expired sessions."""
    import asyncio

    from django.test import Client

    from calls import janitor

    make_user("alice")
    kept, expired = (log_in(Client(), "alice") for _ in range(2))
    Session.objects.filter(session_key=expired).update(expire_date=timezone.now() - timedelta(seconds=1))
    monkeypatch.setattr(janitor, "_last_prune_at", float("-inf"))
    asyncio.run(janitor.run_once())
    assert set(LoginSession.objects.values_list("session_key", flat=True)) == {kept}

    # Within the hour the next rounds leave the table alone (one DELETE an hour, not a heartbeat).
    Session.objects.filter(session_key=kept).update(expire_date=timezone.now() - timedelta(seconds=1))
    asyncio.run(janitor.run_once())
    assert LoginSession.objects.filter(session_key=kept).exists()


@pytest.mark.django_db
def test_pruning_leaves_every_row_of_a_valid_session(make_user):
    from django.test import Client

    make_user("alice")
    make_user("bob")
    keys = {log_in(Client(), "alice"), log_in(Client(), "bob")}
    assert services.login_sessions_prune() == 0
    assert set(LoginSession.objects.values_list("session_key", flat=True)) == keys
    # As of tomorrow (the sessions' two weeks still run) nothing changes either; in a month, all go.
    assert services.login_sessions_prune(now=timezone.now() + timedelta(days=1)) == 0
    assert services.login_sessions_prune(now=timezone.now() + timedelta(days=30)) == 2


# --- what operators see ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_operators_see_sessions_in_a_list_and_on_the_user_page(client, make_user, operator):
    from django.test import Client

    alice = make_user("alice")
    log_in(Client(), "alice", user_agent=CHROME_ANDROID)
    expired_key = log_in(Client(), "alice")
    Session.objects.filter(session_key=expired_key).update(expire_date=timezone.now() - timedelta(days=1))
    client.force_login(operator)

    listing = client.get(reverse("admin:accounts_loginsession_changelist"), {"q": "alice"})
    assert listing.status_code == 200
    assert {s.session_key for s in listing.context["cl"].result_list} == set(
        alice.login_sessions.values_list("session_key", flat=True)
    )
    assert "Chrome on Android" in listing.content.decode()
    valid_only = client.get(reverse("admin:accounts_loginsession_changelist"), {"alive": "yes", "q": "alice"})
    assert expired_key not in {s.session_key for s in valid_only.context["cl"].result_list}

    user_page = client.get(reverse("admin:accounts_user_change", args=[alice.pk]))
    html = user_page.content.decode()
    assert "Active login sessions" in html and "Android" in html and "Firefox" not in html  # expired one hidden


@pytest.mark.django_db
def test_sessions_cannot_be_added_or_edited_in_the_admin(client, make_user, operator):
    client.force_login(operator)
    assert client.get(reverse("admin:accounts_loginsession_add")).status_code == 403


@pytest.mark.django_db
def test_revoking_a_session_logs_that_browser_out_and_only_that_one(client, make_user, operator):
    from django.test import Client

    make_user("alice")
    revoked_browser, kept_browser = Client(), Client()
    revoked, kept = log_in(revoked_browser, "alice"), log_in(kept_browser, "alice", user_agent=CHROME_ANDROID)
    client.force_login(operator)
    response = client.post(
        reverse("admin:accounts_loginsession_changelist"),
        {"action": "revoke", "_selected_action": [LoginSession.objects.get(session_key=revoked).pk]},
        follow=True,
    )
    assert [str(m) for m in response.context["messages"]] == [
        "Revoked 1 login session: logged out, and their open connections closed."
    ]
    assert not session_exists(revoked) and session_exists(kept)
    assert not LoginSession.objects.filter(session_key=revoked).exists()
    lobby = revoked_browser.get(reverse("calls:lobby"))
    assert lobby.status_code == 302 and lobby["Location"].startswith(reverse("accounts:login"))
    assert kept_browser.get(reverse("calls:lobby")).status_code == 200


@pytest.mark.django_db
def test_revoke_all_logs_a_user_out_everywhere_even_untracked_sessions(client, make_user, operator):
    from django.test import Client

    alice, bob = make_user("alice"), make_user("bob")
    tracked = log_in(Client(), "alice")
    untracked = session_cookie_for(alice).split("=", 1)[1]  # no LoginSession row
    bobs = log_in(Client(), "bob")
    client.force_login(operator)
    response = client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "revoke_all_sessions", "_selected_action": [alice.pk]},
        follow=True,
    )
    assert [str(m) for m in response.context["messages"]] == [
        "Revoked 2 login sessions: logged out, and their open connections closed."
    ]
    assert not session_exists(tracked) and not session_exists(untracked)
    assert not alice.login_sessions.exists()
    assert session_exists(bobs) and bob.login_sessions.exists()


@pytest.mark.django_db
def test_non_staff_cannot_revoke(client, make_user):
    alice = make_user("alice")
    key = log_in(client, "alice")
    response = client.post(
        reverse("admin:accounts_loginsession_changelist"),
        {"action": "revoke", "_selected_action": [LoginSession.objects.get(session_key=key).pk]},
    )
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    assert session_exists(key) and alice.login_sessions.exists()


# --- sockets close at once (in process, both layers) ------------------------------------------------------


async def open_socket(cookie: str) -> WebsocketCommunicator:
    from config.asgi import application

    headers = [(b"origin", b"http://127.0.0.1:8000"), (b"cookie", cookie.encode())]
    socket = WebsocketCommunicator(application, "/ws/signal/", headers=headers)
    connected, _ = await socket.connect(timeout=TIMEOUT_S)
    assert connected
    assert (await socket.receive_json_from(timeout=TIMEOUT_S))["type"] == "hello"
    return socket


async def close_code(socket: WebsocketCommunicator) -> int:
    """Read until the server closes the socket; its close code."""
    while True:
        message = await socket.receive_output(timeout=TIMEOUT_S)
        if message["type"] == "websocket.close":
            return message["code"]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_revoke_all_closes_every_socket_of_the_user_with_4401(layer, client, make_user, operator):
    alice = await database_sync_to_async(make_user)("alice")
    tabs = [await open_socket(await database_sync_to_async(session_cookie_for)(alice)) for _ in range(2)]
    await database_sync_to_async(client.force_login)(operator)
    await database_sync_to_async(client.post)(
        reverse("admin:accounts_user_changelist"), {"action": "revoke_all_sessions", "_selected_action": [alice.pk]}
    )
    assert [await close_code(tab) for tab in tabs] == [4401, 4401]


# --- across two real workers sharing Redis ------------------------------------------------------------------


def get_status(url: str, cookie: str) -> int:
    """HTTP status of a GET with this session cookie, redirects not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers={"Cookie": cookie}), timeout=TIMEOUT_S) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


async def ws_open(server, cookie: str):
    ws = await websockets.connect(server.ws_url, origin=server.url, additional_headers={"Cookie": cookie})
    hello = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S))
    assert hello["type"] == "hello"
    return ws


async def ws_close_code(ws) -> int:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), TIMEOUT_S)
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


async def ws_still_open(ws) -> bool:
    """Answers a ping with a pong (presence frames in between are skipped)."""
    await ws.send(json.dumps({"type": "ping"}))
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S))
        if frame["type"] == "pong":
            return True


@pytest.fixture
def two_workers(live_servers, redis_layer, redis_url):
    """Two daphne processes sharing this test's Redis prefix (channel layer and presence)."""
    env = {"PEERLINE_CHANNEL_PREFIX": redis_layer, "PEERLINE_PRESENCE_PREFIX": f"{redis_layer}:presence:"}
    return live_servers(redis_url=redis_url, env=env), live_servers(redis_url=redis_url, env=env)


def revoke_through_the_admin(client, operator, session_key: str) -> None:
    client.force_login(operator)
    row = LoginSession.objects.get(session_key=session_key)
    response = client.post(reverse("admin:accounts_loginsession_changelist"), {"action": "revoke", "_selected_action": [row.pk]})
    assert response.status_code == 302


def tracked_cookie(server, user) -> tuple[str, str]:
    """A fresh login session, used once over HTTP so the worker's middleware tracks it."""
    cookie = session_cookie_for(user)
    assert get_status(server.url + "/", cookie) == 200
    key = cookie.split("=", 1)[1]
    assert LoginSession.objects.filter(session_key=key, user=user).exists()
    return cookie, key


@pytest.mark.live
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_revoking_a_session_closes_its_sockets_on_every_worker_and_logs_it_out(two_workers, client, make_user, operator):
    worker1, worker2 = two_workers
    alice = make_user("alice")
    cookie, key = tracked_cookie(worker1, alice)

    async def scenario():
        sockets = [await ws_open(worker1, cookie), await ws_open(worker2, cookie)]
        await asyncio.to_thread(revoke_through_the_admin, client, operator, key)
        return [await ws_close_code(ws) for ws in sockets]

    assert asyncio.run(scenario()) == [4401, 4401]
    assert get_status(worker2.url + "/", cookie) == 302  # logged out for HTTP too
    assert not LoginSession.objects.filter(session_key=key).exists()


@pytest.mark.live
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_revoking_one_session_leaves_the_users_other_sessions_connected(two_workers, client, make_user, operator):
    worker1, worker2 = two_workers
    alice = make_user("alice")
    revoked_cookie, revoked_key = tracked_cookie(worker1, alice)
    kept_cookie, _ = tracked_cookie(worker2, alice)

    async def scenario():
        revoked = [await ws_open(worker1, revoked_cookie), await ws_open(worker2, revoked_cookie)]
        kept = [await ws_open(worker1, kept_cookie), await ws_open(worker2, kept_cookie)]
        await asyncio.to_thread(revoke_through_the_admin, client, operator, revoked_key)
        codes = [await ws_close_code(ws) for ws in revoked]
        still_open = [await ws_still_open(ws) for ws in kept]
        for ws in kept:
            await ws.close()
        return codes, still_open

    assert asyncio.run(scenario()) == ([4401, 4401], [True, True])
    assert get_status(worker1.url + "/", revoked_cookie) == 302
    assert get_status(worker1.url + "/", kept_cookie) == 200
