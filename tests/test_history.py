"""Call history for users: incoming / outgoing / missed, durations, call back, the missed badge."""

import re
from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from calls import context_processors, display, selectors, services
from calls.models import Call

pytestmark = pytest.mark.django_db

S, R, M = Call.Status, Call.EndReason, Call.Media


def ended_call(caller, callee, *, status, reason, talk_s=None, media=M.AUDIO_VIDEO, minutes_ago=10):
    """An ended call as services would have left it, started `minutes_ago`."""
    start = timezone.now() - timedelta(minutes=minutes_ago)
    call = Call.objects.create(caller=caller, callee=callee, media=media)
    answered = start + timedelta(seconds=3) if talk_s is not None else None
    ended = (answered + timedelta(seconds=talk_s)) if answered else start + timedelta(seconds=30)
    Call.objects.filter(pk=call.pk).update(
        created_at=start, answered_at=answered, ended_at=ended, status=status, end_reason=reason
    )
    return Call.objects.get(pk=call.pk)


def rows(response) -> list[tuple[str, str]]:
    """(direction, call_id) of each row on the page, in order."""
    html = response.content.decode()
    return re.findall(r'data-call-id="([0-9a-f-]+)" data-direction="(\w+)"', html)


def badge(response) -> int:
    found = re.search(r'data-missed-calls="(\d+)"', response.content.decode())
    return int(found.group(1)) if found else 0


@pytest.fixture
def people(make_user):
    return make_user("alice", "Alice A."), make_user("bob", "Bob B."), make_user("carol")


@pytest.fixture
def alices_calls(people):
    alice, bob, carol = people
    return {
        "talked_out": ended_call(alice, bob, status=S.COMPLETED, reason=R.HANGUP, talk_s=65, minutes_ago=50),
        "talked_in": ended_call(carol, alice, status=S.COMPLETED, reason=R.HANGUP, talk_s=3725, media=M.AUDIO, minutes_ago=40),
        "missed_in": ended_call(bob, alice, status=S.MISSED, reason=R.MISSED, minutes_ago=30),
        "declined_out": ended_call(alice, carol, status=S.DECLINED, reason=R.DECLINED, minutes_ago=20),
        "offline_in": ended_call(carol, alice, status=S.MISSED, reason=R.OFFLINE, media=M.AUDIO, minutes_ago=10),
        # Not Alice's: never shown to her.
        "others": ended_call(bob, carol, status=S.MISSED, reason=R.MISSED, minutes_ago=5),
    }


def test_history_lists_all_of_my_ended_calls_newest_first(client, people, alices_calls):
    client.force_login(people[0])
    response = client.get(reverse("calls:history"))
    assert response.status_code == 200
    c = alices_calls
    assert rows(response) == [
        (str(c["offline_in"].pk), "incoming"),
        (str(c["declined_out"].pk), "outgoing"),
        (str(c["missed_in"].pk), "incoming"),
        (str(c["talked_in"].pk), "incoming"),
        (str(c["talked_out"].pk), "outgoing"),
    ]


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("incoming", ["offline_in", "missed_in", "talked_in"]),
        ("outgoing", ["declined_out", "talked_out"]),
        ("missed", ["offline_in", "missed_in"]),
    ],
)
def test_history_tabs_filter_incoming_outgoing_and_missed(client, people, alices_calls, kind, expected):
    client.force_login(people[0])
    response = client.get(reverse("calls:history"), {"kind": kind})
    assert [call_id for call_id, _ in rows(response)] == [str(alices_calls[name].pk) for name in expected]
    assert f'href="?kind={kind}" aria-current="page"' in response.content.decode()


def test_history_shows_who_how_long_media_and_outcome(client, people, alices_calls):
    client.force_login(people[0])
    html = client.get(reverse("calls:history")).content.decode()
    assert "Bob B." in html and "carol" in html  # display name, else username
    assert "1:05" in html  # 65 s of talk
    assert "1:02:05" in html  # 3725 s
    assert "Callee offline" in html and "Declined" in html  # unanswered calls say why instead
    assert "Audio and video" in html and "Audio" in html


def test_each_row_has_a_call_back_link_to_the_lobby(client, people, alices_calls):
    client.force_login(people[0])
    html = client.get(reverse("calls:history"), {"kind": "incoming"}).content.decode()
    lobby = reverse("calls:lobby")
    assert f'href="{lobby}?call=carol&amp;media=audio"' in html  # audio-only call: called back by audio
    assert f'href="{lobby}?call=bob&amp;media=video"' in html  # a call with video: by video


def test_no_call_back_link_for_deactivated_people(client, people, alices_calls):
    alice, bob, carol = people
    bob.is_active = False
    bob.save()
    client.force_login(alice)
    html = client.get(reverse("calls:history")).content.decode()
    assert "call=bob" not in html and "call=carol" in html


def test_unknown_kind_shows_everything(client, people, alices_calls):
    client.force_login(people[0])
    assert len(rows(client.get(reverse("calls:history"), {"kind": "<script>"}))) == 5


def test_live_calls_are_not_history(client, people):
    alice, bob, _ = people
    Call.objects.create(caller=bob, callee=alice, media=M.AUDIO)  # still ringing
    client.force_login(alice)
    assert rows(client.get(reverse("calls:history"))) == []


def test_history_is_paginated_by_fifty(client, people):
    alice, bob, _ = people
    for i in range(55):
        ended_call(bob, alice, status=S.COMPLETED, reason=R.HANGUP, talk_s=10, minutes_ago=100 - i)
    client.force_login(alice)
    first = client.get(reverse("calls:history"))
    second = client.get(reverse("calls:history"), {"page": 2})
    assert len(rows(first)) == 50 and len(rows(second)) == 5
    assert "Page 1 of 2" in first.content.decode()


def test_history_needs_a_login(client):
    response = client.get(reverse("calls:history"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))


# --- the missed-calls badge -------------------------------------------------------------------------


def test_missed_badge_counts_until_the_history_is_viewed(client, people, alices_calls):
    alice, bob, _ = people
    client.force_login(alice)
    assert badge(client.get(reverse("calls:lobby"))) == 2

    history = client.get(reverse("calls:history"), {"kind": "incoming"})
    assert badge(history) == 0  # viewing it is what clears it
    assert history.content.decode().count('class="new-mark"') == 2  # ... and the page says which were new
    assert badge(client.get(reverse("calls:lobby"))) == 0

    ended_call(bob, alice, status=S.MISSED, reason=R.CANCELLED, minutes_ago=0)
    assert badge(client.get(reverse("calls:lobby"))) == 1
    assert client.get(reverse("calls:history")).content.decode().count('class="new-mark"') == 1


def test_declined_and_outgoing_unanswered_calls_are_not_missed_calls(client, people):
    alice, bob, _ = people
    ended_call(bob, alice, status=S.DECLINED, reason=R.DECLINED)
    ended_call(alice, bob, status=S.MISSED, reason=R.MISSED)
    client.force_login(alice)
    assert badge(client.get(reverse("calls:lobby"))) == 0


def test_the_badge_count_is_one_query_and_only_when_a_page_shows_it(people, alices_calls, django_assert_num_queries):
    alice = people[0]
    request = RequestFactory().get("/")
    request.user = alice
    with django_assert_num_queries(0):
        context = context_processors.missed_calls(request)  # building the context costs nothing
    with django_assert_num_queries(1):
        assert context["missed_calls_unseen"]() == 2
        assert context["missed_calls_unseen"]() == 2  # asked twice in a template: still one query


def test_no_badge_work_for_anonymous_visitors(django_assert_num_queries):
    from django.contrib.auth.models import AnonymousUser

    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    with django_assert_num_queries(0):
        assert context_processors.missed_calls(request) == {}


def test_history_mark_seen_returns_when_the_user_last_looked(people):
    alice = people[0]
    assert services.history_mark_seen(user=alice) is None
    first = alice.missed_calls_seen_at
    assert services.history_mark_seen(user=alice) == first
    alice.refresh_from_db()
    assert alice.missed_calls_seen_at >= first
    assert selectors.missed_calls_unseen_count(user=alice) == 0


@pytest.mark.parametrize("seconds, shown", [(None, ""), (0, "0:00"), (9.6, "0:10"), (65, "1:05"), (3725, "1:02:05")])
def test_durations_read_like_a_clock(seconds, shown):
    assert display.format_duration(seconds) == shown
