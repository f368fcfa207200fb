"""calls.services under concurrency: two workers acting on calls at the same moment.

Threads stand in for workers: each has its own database connection, as two daphne processes do.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connections

from calls import services
from calls.exceptions import CallError
from calls.models import Call

pytestmark = pytest.mark.django_db(transaction=True)


def run_together(*actions):
    """Start every action at once (a barrier), each in its own thread; return result or error."""
    barrier = threading.Barrier(len(actions))
    outcomes: list = [None] * len(actions)

    def run(index, action):
        try:
            barrier.wait(timeout=10)
            outcomes[index] = action()
        except Exception as error:  # noqa: BLE001 - the outcome is what the test checks
            outcomes[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def test_two_callers_who_pick_the_same_call_id_at_once_one_wins_and_one_hears_bad_state(make_user):
    """They lock different people, so neither waits for the other; the primary key decides."""
    alice, bob, carol, dave = (make_user(n) for n in ("alice", "bob", "carol", "dave"))
    call_id = uuid.uuid4()

    def invite(caller, callee):
        return lambda: services.call_invite(
            caller=caller, call_id=call_id, callee_username=callee.username, media=("audio",),
            caller_channel=f"chan.{caller.username}", is_online=lambda user_id: True,
        )

    outcomes = run_together(invite(alice, bob), invite(carol, dave))
    calls = [o for o in outcomes if isinstance(o, Call)]
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert len(calls) == 1 and len(errors) == 1, outcomes
    assert isinstance(errors[0], CallError) and errors[0].code == "bad_state", errors
    assert Call.objects.get(pk=call_id).caller_id == calls[0].caller_id


def test_two_people_calling_each_other_at_once_make_one_call(make_user):
    """Crossing invites: both lock the same two people in the same order, so exactly one call
    rings and the other invite finds its callee busy (or the caller already in a call)."""
    alice, bob = make_user("alice"), make_user("bob")

    def invite(caller, callee):
        return lambda: services.call_invite(
            caller=caller, call_id=uuid.uuid4(), callee_username=callee.username, media=("audio",),
            caller_channel=f"chan.{caller.username}", is_online=lambda user_id: True,
        )

    outcomes = run_together(invite(alice, bob), invite(bob, alice))
    assert not any(isinstance(o, Exception) and not isinstance(o, CallError) for o in outcomes), outcomes
    assert Call.objects.filter(status=Call.Status.RINGING).count() == 1
    others = [o for o in outcomes if not (isinstance(o, Call) and o.status == Call.Status.RINGING)]
    assert len(others) == 1
    other = others[0]
    assert (isinstance(other, Call) and other.end_reason == Call.EndReason.BUSY) or (
        isinstance(other, CallError) and other.code == "bad_state"
    ), other


def test_accept_and_cancel_at_once_agree_on_one_outcome(make_user):
    """The callee answers just as the caller gives up: the row ends in exactly one story, and the
    loser hears bad_state rather than a second, contradictory ending."""
    alice, bob = make_user("alice"), make_user("bob")
    for _ in range(5):
        call = services.call_invite(
            caller=alice, call_id=uuid.uuid4(), callee_username="bob", media=("audio",),
            caller_channel="chan.alice", is_online=lambda user_id: True,
        )
        accept = lambda: services.call_accept(user=bob, call_id=call.call_id, channel="chan.bob")  # noqa: E731
        cancel = lambda: services.call_hangup(user=alice, call_id=call.call_id)  # noqa: E731
        accepted, cancelled = run_together(accept, cancel)
        row = Call.objects.get(pk=call.call_id)
        if isinstance(accepted, Exception):
            assert isinstance(accepted, CallError) and accepted.code == "bad_state", accepted
            assert (row.status, row.end_reason) == ("missed", "cancelled")
        else:
            # Accepted first: the caller's hang-up then ends the answered call.
            assert isinstance(cancelled, Call), cancelled
            assert (row.status, row.end_reason) == ("completed", "hangup") and row.answered_at
        if row.is_live:
            services.call_hangup(user=alice, call_id=row.call_id)
