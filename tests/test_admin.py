"""The operators' admin: call history (read-only), live calls, ending calls, people online."""

import re
import uuid
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from calls import presence
from calls.models import Call
from tests.support.sessions import session_cookie_for

S, R, M = Call.Status, Call.EndReason, Call.Media
TIMEOUT_S = 5
CHANGELIST = "admin:calls_call_changelist"
RELAY_REPORT = {"path": "relay", "rtt_ms": 42.0, "packet_loss": 0.005, "bitrate_kbps": 1200.0}


@pytest.fixture
def operator(make_user):
    return make_user("operator", is_staff=True, is_superuser=True)


@pytest.fixture
def people(make_user):
    return make_user("alice", "Alice A."), make_user("bob", "Bob B."), make_user("carol")


def make_call(caller, callee, *, status=S.COMPLETED, reason=R.HANGUP, media=M.AUDIO_VIDEO, days_ago=0, **fields):
    call = Call.objects.create(caller=caller, callee=callee, media=media)
    start = timezone.now() - timedelta(days=days_ago, minutes=5)
    answered = start + timedelta(seconds=2) if status in (S.COMPLETED, S.ACTIVE) else None
    ended = None if status in Call.LIVE_STATUSES else start + timedelta(seconds=95)
    Call.objects.filter(pk=call.pk).update(
        status=status, end_reason="" if status in Call.LIVE_STATUSES else reason,
        created_at=start, answered_at=answered, ended_at=ended, **fields,
    )
    return Call.objects.get(pk=call.pk)


def listed(response) -> set:
    return {call.pk for call in response.context["cl"].result_list}


# --- the call list -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_staff_see_the_call_list_with_every_column(client, operator, people):
    alice, bob, _ = people
    make_call(alice, bob, caller_report=RELAY_REPORT, callee_report={"path": "srflx"})
    client.force_login(operator)
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    html = response.content.decode()
    for heading in ("Caller", "Callee", "Media", "Status", "Created at", "Answered at", "Ended at", "Duration",
                    "End reason", "ICE path (caller / callee)"):
        assert heading in html, heading
    assert "1:33" in html  # answered 2 s after the start, ended at 95 s
    assert "relay / srflx" in html


@pytest.mark.django_db
def test_people_without_staff_status_are_sent_to_the_admin_login(client, people):
    client.force_login(people[0])
    for url in (reverse(CHANGELIST), reverse("admin:calls_call_online"), reverse("admin:accounts_loginsession_changelist")):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login")), url


@pytest.mark.django_db
def test_staff_without_call_permissions_are_refused(client, make_user):
    client.force_login(make_user("helper", is_staff=True))
    assert client.get(reverse(CHANGELIST)).status_code == 403
    assert client.get(reverse("admin:calls_call_online")).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query, expected",
    [
        ({"status__exact": "missed"}, {"missed"}),
        ({"end_reason__exact": "declined"}, {"declined"}),
        ({"media__exact": "audio"}, {"missed"}),
        ({"live": "yes"}, {"ringing", "active"}),
        ({"live": "no"}, {"completed", "missed", "declined", "old"}),
        ({"q": "carol"}, {"declined", "active"}),
        ({"q": "Bob B."}, {"completed", "missed", "ringing", "old"}),
    ],
)
def test_filters_and_search(client, operator, people, query, expected):
    alice, bob, carol = people
    calls = {
        "completed": make_call(alice, bob),
        "missed": make_call(bob, alice, status=S.MISSED, reason=R.MISSED, media=M.AUDIO),
        "declined": make_call(alice, carol, status=S.DECLINED, reason=R.DECLINED),
        "ringing": make_call(bob, alice, status=S.RINGING),
        "active": make_call(carol, alice, status=S.ACTIVE),
        "old": make_call(alice, bob, days_ago=400),
    }
    client.force_login(operator)
    response = client.get(reverse(CHANGELIST), query)
    assert response.status_code == 200
    assert listed(response) == {calls[name].pk for name in expected}


@pytest.mark.django_db
def test_date_hierarchy_narrows_by_day(client, operator, people):
    alice, bob, _ = people
    today, old = make_call(alice, bob), make_call(alice, bob, days_ago=400)
    client.force_login(operator)
    day = timezone.localdate(today.created_at)
    response = client.get(reverse(CHANGELIST), {"created_at__year": day.year, "created_at__month": day.month, "created_at__day": day.day})
    assert listed(response) == {today.pk}
    old_year = timezone.localdate(old.created_at).year
    assert listed(client.get(reverse(CHANGELIST), {"created_at__year": old_year})) == {old.pk}


@pytest.mark.django_db
def test_the_change_page_shows_connection_reports_readably_and_edits_nothing(client, operator, people):
    alice, bob, _ = people
    call = make_call(alice, bob, caller_report=RELAY_REPORT)
    client.force_login(operator)
    url = reverse("admin:calls_call_change", args=[call.pk])
    html = client.get(url).content.decode()
    assert "relayed (TURN), round trip 42 ms, packet loss 0.5%, 1200 kbit/s" in html
    assert "no report" in html  # the callee sent none
    assert 'name="_save"' not in html  # a record, not a form

    client.post(url, {"status": "missed", "end_reason": "busy"})
    call.refresh_from_db()
    assert (call.status, call.end_reason) == (S.COMPLETED, R.HANGUP)


@pytest.mark.django_db
def test_history_cannot_be_added_or_deleted_from_the_admin(client, operator, people):
    call = make_call(*people[:2])
    client.force_login(operator)
    assert client.get(reverse("admin:calls_call_add")).status_code == 403
    assert client.get(reverse("admin:calls_call_delete", args=[call.pk])).status_code == 403
    actions = client.get(reverse(CHANGELIST)).context["action_form"].fields["action"].choices
    assert [name for name, _ in actions if name] == ["end_selected_calls"]


@pytest.mark.django_db
def test_ending_needs_the_change_permission(client, make_user, people):
    viewer = make_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_call"))
    live = make_call(*people[:2], status=S.ACTIVE)
    client.force_login(viewer)
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200 and response.context["action_form"] is None
    client.post(reverse(CHANGELIST), {"action": "end_selected_calls", "_selected_action": [live.pk]})
    live.refresh_from_db()
    assert live.status == S.ACTIVE


@pytest.mark.django_db
def test_ending_calls_that_are_over_changes_nothing_and_says_so(client, operator, people):
    done = make_call(*people[:2])
    client.force_login(operator)
    response = client.post(
        reverse(CHANGELIST), {"action": "end_selected_calls", "_selected_action": [done.pk]}, follow=True
    )
    messages = [str(m) for m in response.context["messages"]]
    assert messages == ["Ended 0 calls.", "1 selected call was not live."]
    done.refresh_from_db()
    assert done.end_reason == R.HANGUP and done.ended_by is None


# --- ending a live call through the admin, with real sockets -----------------------------------------


async def open_socket(user):
    from config.asgi import application

    cookie = await database_sync_to_async(session_cookie_for)(user)
    headers = [(b"origin", b"http://127.0.0.1:8000"), (b"cookie", cookie.encode())]
    socket = WebsocketCommunicator(application, "/ws/signal/", headers=headers)
    connected, _ = await socket.connect(timeout=TIMEOUT_S)
    assert connected
    await expect(socket, "hello")
    return socket


async def expect(socket, kind: str, **fields) -> dict:
    """The next frame of this type; roster frames (presence, status) in between are skipped."""
    while True:
        frame = await socket.receive_json_from(timeout=TIMEOUT_S)
        if frame["type"] in ("presence", "status"):
            continue
        assert frame["type"] == kind, frame
        for key, value in fields.items():
            assert frame[key] == value, frame
        return frame


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_end_selected_calls_hangs_up_both_browsers(layer, client, operator, people):
    """An accepted call ended by an operator: both tabs get `ended` / `ended_by_admin`, the row is
    closed with the operator as ended_by."""
    alice, bob, _ = people
    caller, callee = await open_socket(alice), await open_socket(bob)
    call_id = str(uuid.uuid4())
    await caller.send_json_to({"type": "invite", "call_id": call_id, "to": "bob", "media": ["audio", "video"]})
    await expect(callee, "invite", call_id=call_id)
    await expect(caller, "ringing", call_id=call_id)
    await callee.send_json_to({"type": "accept", "call_id": call_id})
    await expect(caller, "accepted", call_id=call_id)
    await expect(callee, "accepted", call_id=call_id)

    await sync_to_async(client.force_login)(operator)
    response = await sync_to_async(client.post)(
        reverse(CHANGELIST), {"action": "end_selected_calls", "_selected_action": [call_id]}, follow=True
    )
    assert [str(m) for m in response.context["messages"]] == ["Ended 1 call."]

    await expect(caller, "ended", call_id=call_id, reason="ended_by_admin")
    await expect(callee, "ended", call_id=call_id, reason="ended_by_admin")
    call = await database_sync_to_async(Call.objects.get)(pk=call_id)
    assert (call.status, call.end_reason, call.ended_by_id) == (S.COMPLETED, R.ENDED_BY_ADMIN, operator.pk)
    assert call.ended_at is not None
    statuses = await sync_to_async(presence.get_presence().statuses)([alice.pk, bob.pk])
    assert statuses == {alice.pk: presence.AVAILABLE, bob.pk: presence.AVAILABLE}

    await caller.disconnect()
    await callee.disconnect()


# --- people online ------------------------------------------------------------------------------------


def online_rows(html: str) -> dict[str, tuple[int, str, str]]:
    """username -> (connections, in-call text, database live-call text) from the table."""
    rows = {}
    for username, body in re.findall(r'<tr data-username="([^"]+)">(.*?)</tr>', html, re.S):
        connections = int(re.search(r'class="connections">(\d+)<', body).group(1))
        cell = lambda name: re.sub(r"<[^>]+>", "", re.search(rf'class="{name}">(.*?)</td>', body, re.S).group(1)).strip()  # noqa: E731
        rows[username] = (connections, cell("in-call"), cell("live-call"))
    return rows


@pytest.mark.django_db
def test_people_online_shows_connections_and_calls_from_presence(layer, client, operator, people, make_user):
    """Connections and "in a call" both come from presence, not from Call rows: carol's call row
    is still active but presence says she is available; dave is busy with no row at all."""
    alice, bob, carol = people
    dave = make_user("dave")
    backend = presence.get_presence()
    backend.connect(user_id=alice.pk, channel="worker1!a1")
    backend.connect(user_id=alice.pk, channel="worker2!a2")
    backend.connect(user_id=bob.pk, channel="worker1!b1")
    backend.connect(user_id=carol.pk, channel="worker2!c1")
    backend.connect(user_id=dave.pk, channel="worker2!d1")
    backend.set_status(bob.pk, presence.BUSY)
    backend.set_status(dave.pk, presence.BUSY)
    active = make_call(bob, carol, status=S.ACTIVE)
    # A connection whose worker stopped refreshing it is not online, whatever the database says.
    backend.connect(user_id=operator.pk, channel="dead!o1", now=0)

    client.force_login(operator)
    response = client.get(reverse("admin:calls_call_online"))
    assert response.status_code == 200
    html = response.content.decode()
    assert online_rows(html) == {
        "alice": (2, "no", "none"),
        "bob": (1, "yes", "active"),  # busy in presence; the row is shown in its own column
        "carol": (1, "no", "active"),  # the row says active, presence says available
        "dave": (1, "yes", "none"),
    }
    assert "4 people online with 5 open connections" in html
    assert reverse("admin:calls_call_change", args=[active.pk]) in html


@pytest.mark.django_db
def test_people_online_links_to_each_persons_live_calls_with_the_username_encoded(
    layer, client, operator, make_user
):
    """`+` in a query string reads as a space: unencoded, "ann+lee" searched for "ann" and "lee"
    and also listed lee.ann's call."""
    ann, lee, bob, carol = (make_user(name) for name in ("ann+lee", "lee.ann", "bob", "carol"))
    mine = make_call(ann, bob, status=S.ACTIVE)
    make_call(lee, carol, status=S.ACTIVE)
    presence.get_presence().connect(user_id=ann.pk, channel="worker1!a1")

    client.force_login(operator)
    html = client.get(reverse("admin:calls_call_online")).content.decode()
    row = re.search(r'<tr data-username="ann\+lee">(.*?)</tr>', html, re.S).group(1)
    href = unescape(re.search(r'<a href="([^"]*)">live calls</a>', row).group(1))
    assert parse_qs(urlsplit(href).query) == {"q": ["ann+lee"], "live": ["yes"]}
    assert listed(client.get(href)) == {mine.pk}


@pytest.mark.django_db
def test_people_online_when_nobody_is(layer, client, operator):
    client.force_login(operator)
    html = client.get(reverse("admin:calls_call_online")).content.decode()
    assert "Nobody is connected right now." in html


@pytest.mark.django_db
def test_the_call_list_links_to_live_calls_and_people_online(client, operator):
    client.force_login(operator)
    html = client.get(reverse(CHANGELIST)).content.decode()
    assert 'href="?live=yes"' in html and reverse("admin:calls_call_online") in html

