"""Calling back from the history page dials the person from the lobby."""

import pytest

from calls.models import Call
from tests.e2e.calling import lobby, wait_state

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def test_the_call_back_button_in_history_rings_the_other_person(live_servers, redis_url, make_user, open_page):
    alice, bob = make_user("alice", "Alice"), make_user("bob", "Bob")
    Call.objects.create(caller=bob, callee=alice, media="audio", status="missed", end_reason="missed")
    server = live_servers(redis_url=redis_url)
    b, _ = lobby(open_page, server, bob)
    a, a_watch = open_page(server, alice, path="/history/")

    a.click('a[href*="call=bob"]')
    wait_state(a, "outgoing")
    wait_state(b, "incoming")
    assert "call=" not in a.url  # a reload does not dial again
    a.click("[data-testid=cancel-call]")
    wait_state(b, "ended")
    assert a_watch.errors == []
