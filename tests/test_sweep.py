"""The janitor's call sweep runs on every worker every heartbeat: it must stay cheap."""

from datetime import timedelta

import pytest
from django.utils import timezone

from calls import services
from calls.models import Call

pytestmark = pytest.mark.django_db

S = Call.Status


def live_calls(make_user, n):
    people = [make_user(f"user{i}") for i in range(2 * n)]
    return [
        Call.objects.create(caller=people[2 * i], callee=people[2 * i + 1], media="audio", status=S.ACTIVE,
                            answered_at=timezone.now(), caller_channel=f"w1!c{i}", callee_channel=f"w2!c{i}")
        for i in range(n)
    ]


def sweep(asked, dead=frozenset(), now=None):
    def dead_connections(pairs):
        asked.append(list(pairs))
        return set(dead) & {channel for _, channel in pairs}

    return services.call_sweep(ring_timeout_s=30, grace_s=15, dead_connections=dead_connections, now=now)


def test_a_sweep_over_healthy_calls_costs_the_same_few_queries_however_many_there_are(make_user, django_assert_num_queries):
    live_calls(make_user, 25)
    asked = []
    with django_assert_num_queries(3):  # unanswered, away too long, live sockets
        assert sweep(asked) == 0
    assert len(asked) == 1 and len(asked[0]) == 50  # one batched presence lookup for every socket


def test_a_sweep_detaches_a_dead_socket_then_ends_the_call_after_the_grace_period(make_user):
    first, second = live_calls(make_user, 2)
    assert sweep([], dead={"w2!c0"}) == 0
    first.refresh_from_db()
    assert first.callee_channel == "" and first.callee_detached_at is not None and first.status == S.ACTIVE
    assert sweep([], now=first.callee_detached_at + timedelta(seconds=16)) == 1
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.status, first.end_reason) == (S.COMPLETED, "disconnected")
    assert second.status == S.ACTIVE


def test_a_sweep_ends_only_calls_that_rang_too_long(make_user):
    alice, bob, carol, dave = (make_user(n) for n in ("alice", "bob", "carol", "dave"))
    old = Call.objects.create(caller=alice, callee=bob, media="audio", caller_channel="w1!a")
    fresh = Call.objects.create(caller=carol, callee=dave, media="audio", caller_channel="w1!c")
    Call.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    assert sweep([]) == 1
    old.refresh_from_db(), fresh.refresh_from_db()
    assert (old.status, old.end_reason) == (S.MISSED, "missed") and fresh.status == S.RINGING
