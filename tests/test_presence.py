"""Presence: both backends behave the same, on a clock the tests move."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from calls import presence
from calls.presence import AVAILABLE, BUSY, check_timing

pytestmark = pytest.mark.django_db


@pytest.fixture
def backend(layer, settings):
    settings.PEERLINE = {**settings.PEERLINE, "HEARTBEAT_INTERVAL_S": 10, "PRESENCE_TTL_S": 30}
    presence.get_presence.cache_clear()
    backend = presence.get_presence()
    backend.clear()
    yield backend
    backend.clear()


T0 = 1_800_000_000.0


def test_timing_constants_must_leave_room_for_a_missed_heartbeat():
    check_timing(heartbeat_interval_s=10, ttl_s=35)
    with pytest.raises(ImproperlyConfigured):
        check_timing(heartbeat_interval_s=10, ttl_s=20)


def test_three_tabs_are_online_once_and_offline_after_the_last(backend):
    assert backend.connect(user_id=1, channel="a", now=T0) is True
    assert backend.connect(user_id=1, channel="b", now=T0) is False
    assert backend.connect(user_id=1, channel="c", now=T0) is False
    assert backend.online_user_ids(now=T0) == {1}
    assert len(backend.connections(1, now=T0)) == 3
    assert backend.disconnect(user_id=1, channel="a", now=T0) is False
    assert backend.disconnect(user_id=1, channel="b", now=T0) is False
    assert backend.disconnect(user_id=1, channel="c", now=T0) is True
    assert backend.online_user_ids(now=T0) == set()


def test_a_dead_worker_users_expire_after_the_ttl_and_sweep_reports_them(backend):
    backend.connect(user_id=1, channel="w1.a", now=T0)  # on a worker that will die
    backend.connect(user_id=2, channel="w2.b", now=T0)  # on a live worker
    for t in (T0 + 10, T0 + 20, T0 + 30):
        backend.heartbeat([(2, "w2.b")], now=t)
    assert backend.sweep(now=T0 + 25) == set()
    assert backend.is_online(1, now=T0 + 29)
    assert backend.sweep(now=T0 + 31) == {1}
    assert backend.online_user_ids(now=T0 + 31) == {2}
    assert backend.dead_connections([(1, "w1.a"), (2, "w2.b"), (3, "never")], now=T0 + 31) == {"w1.a", "never"}
    assert backend.sweep(now=T0 + 32) == set()  # reported once


def test_a_user_with_one_live_tab_left_is_not_swept(backend):
    backend.connect(user_id=1, channel="dead", now=T0)
    backend.connect(user_id=1, channel="alive", now=T0 + 5)
    backend.heartbeat([(1, "alive")], now=T0 + 20)
    assert backend.sweep(now=T0 + 31) == set()
    assert [c.channel for c in backend.connections(1, now=T0 + 31)] == ["alive"]


def test_a_heartbeat_brings_back_a_connection_that_had_expired(backend):
    backend.connect(user_id=1, channel="slow", now=T0)
    assert backend.sweep(now=T0 + 31) == {1}
    assert backend.heartbeat([(1, "slow")], now=T0 + 32) == {1}
    assert backend.is_online(1, now=T0 + 33)
    assert backend.heartbeat([(1, "slow")], now=T0 + 34) == set()


def test_connections_remember_when_they_opened(backend):
    backend.connect(user_id=1, channel="a", now=T0)
    backend.heartbeat([(1, "a")], now=T0 + 10)
    [conn] = backend.connections(1, now=T0 + 10)
    assert conn.since == pytest.approx(T0) and conn.expires == pytest.approx(T0 + 40)


def test_busy_status_is_kept_until_available_or_offline(backend):
    backend.connect(user_id=1, channel="a")
    assert backend.statuses([1, 2]) == {1: AVAILABLE, 2: AVAILABLE}
    backend.set_status(1, BUSY)
    assert backend.statuses([1]) == {1: BUSY}
    backend.set_status(1, AVAILABLE)
    assert backend.statuses([1]) == {1: AVAILABLE}
    backend.set_status(1, BUSY)
    backend.disconnect(user_id=1, channel="a")
    assert backend.statuses([1]) == {1: AVAILABLE}


def test_a_status_change_older_than_the_recorded_one_is_ignored(backend):
    """Accept (busy) and hang-up (available) write their status in the background, on any thread
    of any worker: whichever lands last, the newer change wins."""
    backend.connect(user_id=1, channel="a", now=T0)
    assert backend.set_status(1, AVAILABLE, at=T0 + 2) is True  # the hang-up's write lands first
    assert backend.set_status(1, BUSY, at=T0 + 1) is False  # the accept's write, late
    assert backend.statuses([1]) == {1: AVAILABLE}
    assert backend.set_status(1, BUSY, at=T0 + 3) is True  # the next call
    assert backend.statuses([1]) == {1: BUSY}


def test_a_heartbeat_does_not_announce_a_user_whose_other_tab_kept_them_online(backend):
    backend.connect(user_id=1, channel="stalled", now=T0)
    backend.connect(user_id=1, channel="alive", now=T0 + 20)
    assert backend.sweep(now=T0 + 31) == set()  # "stalled" expired, "alive" still counts
    # The stalled tab's worker catches up: its connection is back, but the user never left.
    assert backend.heartbeat([(1, "stalled")], now=T0 + 32) == set()
    assert backend.heartbeat([(1, "alive"), (2, "new")], now=T0 + 33) == {2}
