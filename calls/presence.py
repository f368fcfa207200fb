"""Who is online: one interface, two backends (Redis for real deployments, in-process otherwise).

A user is online while at least one of their connections is alive. A connection is alive while
its worker keeps refreshing it: every worker's janitor heartbeats all of its own connections every
HEARTBEAT_INTERVAL_S, and an entry that is not refreshed within PRESENCE_TTL_S counts as gone.
That is what takes the users of a worker that died without running `disconnect` out of the
roster (Channels does not promise that `disconnect` runs).

The API is synchronous on purpose: services (sync, inside database transactions), the admin and
the consumer (through sync_to_async) all share it, and a thread-safe Redis connection pool works
from any thread and any event loop.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

AVAILABLE = "available"
BUSY = "busy"

# A connection must survive one missed heartbeat plus scheduling jitter before it is declared
# gone; anything tighter flaps users offline on a busy worker.
TTL_TO_HEARTBEAT_MIN_RATIO = 2.5


def check_timing(*, heartbeat_interval_s: float, ttl_s: float) -> None:
    if heartbeat_interval_s <= 0 or ttl_s < TTL_TO_HEARTBEAT_MIN_RATIO * heartbeat_interval_s:
        raise ImproperlyConfigured(
            f"PEERLINE_PRESENCE_TTL_S ({ttl_s}) must be at least {TTL_TO_HEARTBEAT_MIN_RATIO} x "
            f"PEERLINE_HEARTBEAT_INTERVAL_S ({heartbeat_interval_s})."
        )


def heartbeat_interval_s() -> float:
    return settings.PEERLINE["HEARTBEAT_INTERVAL_S"]


def ttl_s() -> float:
    return settings.PEERLINE["PRESENCE_TTL_S"]


@dataclass(frozen=True)
class Connection:
    channel: str
    user_id: int
    since: float  # unix time the connection opened
    expires: float  # unix time it counts as gone unless refreshed


class Presence:
    """The interface. `now` parameters exist so tests can move time without sleeping."""

    def connect(self, *, user_id: int, channel: str, now: float | None = None) -> bool:
        """Record a new connection; True when the user was offline before it."""
        raise NotImplementedError

    def disconnect(self, *, user_id: int, channel: str, now: float | None = None) -> bool:
        """Forget a connection; True when it was the user's last one."""
        raise NotImplementedError

    def heartbeat(self, connections: list[tuple[int, str]], *, now: float | None = None) -> set[int]:
        """Refresh these (user_id, channel) pairs; returns users who had expired and are back."""
        raise NotImplementedError

    def sweep(self, *, now: float | None = None) -> set[int]:
        """Drop expired connections; returns the users that have no live connection left."""
        raise NotImplementedError

    def online_user_ids(self, *, now: float | None = None) -> set[int]:
        raise NotImplementedError

    def is_online(self, user_id: int, *, now: float | None = None) -> bool:
        return user_id in self.online_user_ids(now=now)

    def connections(self, user_id: int, *, now: float | None = None) -> list[Connection]:
        raise NotImplementedError

    def dead_connections(self, connections: list[tuple[int, str]], *, now: float | None = None) -> set[str]:
        """The channels among these (user_id, channel) pairs that are no longer alive."""
        raise NotImplementedError

    def set_status(self, user_id: int, status: str, *, at: float | None = None) -> bool:
        """Record busy/available as of `at` (unix time of the change). A change older than the one
        already recorded is ignored and False returned: the writes of one call's accept and
        hang-up run in the background, on any thread of any worker, and may land out of order."""
        raise NotImplementedError

    def statuses(self, user_ids: list[int]) -> dict[int, str]:
        raise NotImplementedError

    def clear(self) -> None:
        """Forget everything (tests)."""
        raise NotImplementedError


def _now(now: float | None) -> float:
    return time.time() if now is None else now


class InProcessPresence(Presence):
    """For the embedded single-process deployment: plain dicts behind a lock."""

    def __init__(self):
        self._lock = threading.Lock()
        self._conns: dict[int, dict[str, Connection]] = {}
        self._status: dict[int, tuple[str, float]] = {}  # user id -> (status, as of)

    def _prune(self, user_id: int, now: float) -> dict[str, Connection]:
        live = {ch: c for ch, c in self._conns.get(user_id, {}).items() if c.expires > now}
        if live:
            self._conns[user_id] = live
        else:
            self._conns.pop(user_id, None)
        return live

    def connect(self, *, user_id, channel, now=None):
        now = _now(now)
        with self._lock:
            was_online = bool(self._prune(user_id, now))
            self._conns.setdefault(user_id, {})[channel] = Connection(channel, user_id, now, now + ttl_s())
            return not was_online

    def disconnect(self, *, user_id, channel, now=None):
        now = _now(now)
        with self._lock:
            had = self._conns.get(user_id, {}).pop(channel, None) is not None
            if self._prune(user_id, now):
                return False
            self._status.pop(user_id, None)
            return had

    def heartbeat(self, connections, *, now=None):
        now = _now(now)
        back = set()
        with self._lock:
            was_online = {uid for uid, _ in connections if self._prune(uid, now)}
            for user_id, channel in connections:
                conns = self._conns.setdefault(user_id, {})
                old = conns.get(channel)
                if (old is None or old.expires <= now) and user_id not in was_online:
                    back.add(user_id)
                since = old.since if old else now
                conns[channel] = Connection(channel, user_id, since, now + ttl_s())
        return back

    def sweep(self, *, now=None):
        now = _now(now)
        gone = set()
        with self._lock:
            for user_id in list(self._conns):
                if not self._prune(user_id, now):
                    self._status.pop(user_id, None)
                    gone.add(user_id)
        return gone

    def online_user_ids(self, *, now=None):
        now = _now(now)
        with self._lock:
            return {uid for uid, conns in self._conns.items() if any(c.expires > now for c in conns.values())}

    def connections(self, user_id, *, now=None):
        now = _now(now)
        with self._lock:
            return sorted(
                (c for c in self._conns.get(user_id, {}).values() if c.expires > now), key=lambda c: c.since
            )

    def dead_connections(self, connections, *, now=None):
        now = _now(now)
        with self._lock:
            return {
                channel for user_id, channel in connections
                if (conn := self._conns.get(user_id, {}).get(channel)) is None or conn.expires <= now
            }

    def set_status(self, user_id, status, *, at=None):
        at = _now(at)
        with self._lock:
            current = self._status.get(user_id)
            if current is not None and current[1] > at:
                return False
            self._status[user_id] = (status, at)
            return True

    def statuses(self, user_ids):
        with self._lock:
            return {uid: self._status.get(uid, (AVAILABLE, 0))[0] for uid in user_ids}

    def clear(self):
        with self._lock:
            self._conns.clear()
            self._status.clear()


class RedisPresence(Presence):
    """Shared by every worker through Redis.

    Keys (all under `prefix`):
      conns:<user_id>  sorted set  channel -> expiry (unix time)
      online           sorted set  user_id -> latest expiry of any of the user's connections
      since            hash        channel -> {"user_id", "since"} (for the operators' view)
      status           hash        user_id -> "<busy|available>|<as of, unix time>" (absent: available)
    The scripts run atomically in Redis, so two workers racing on one user's connections agree on
    who came online and who went offline. They compute per-user keys inside the script, which is
    fine for a single Redis (not a cluster).
    """

    _CONNECT = """
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
    local before = redis.call('ZCARD', KEYS[1])
    redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
    redis.call('ZADD', KEYS[2], 'GT', ARGV[3], ARGV[4])
    redis.call('HSET', KEYS[3], ARGV[1], ARGV[5])
    return before
    """
    _DISCONNECT = """
    local had = redis.call('ZREM', KEYS[1], ARGV[1])
    redis.call('HDEL', KEYS[3], ARGV[1])
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
    if redis.call('ZCARD', KEYS[1]) > 0 then return 0 end
    redis.call('HDEL', KEYS[4], ARGV[3])
    local was_listed = redis.call('ZREM', KEYS[2], ARGV[3])
    if had == 1 or was_listed == 1 then return 1 end
    return 0
    """
    _SWEEP = """
    local gone = {}
    local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
    for _, uid in ipairs(stale) do
      local key = ARGV[2] .. 'conns:' .. uid
      local dead = redis.call('ZRANGEBYSCORE', key, '-inf', ARGV[1])
      for _, ch in ipairs(dead) do redis.call('HDEL', KEYS[2], ch) end
      redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
      local best = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
      if #best == 0 then
        redis.call('ZREM', KEYS[1], uid)
        redis.call('HDEL', KEYS[3], uid)
        table.insert(gone, uid)
      else
        redis.call('ZADD', KEYS[1], best[2], uid)
      end
    end
    return gone
    """

    _SET_STATUS = """
    local current = redis.call('HGET', KEYS[1], ARGV[1])
    if current then
      local sep = string.find(current, '|', 1, true)
      if sep and tonumber(string.sub(current, sep + 1)) > tonumber(ARGV[3]) then return 0 end
    end
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
    return 1
    """

    def __init__(self, url: str, prefix: str = "peerline:presence:"):
        import redis

        self.prefix = prefix
        self.client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5, health_check_interval=30)
        self._connect = self.client.register_script(self._CONNECT)
        self._disconnect = self.client.register_script(self._DISCONNECT)
        self._sweep = self.client.register_script(self._SWEEP)
        self._set_status = self.client.register_script(self._SET_STATUS)

    def _k(self, name: str) -> str:
        return self.prefix + name

    def _conns_key(self, user_id: int) -> str:
        return self._k(f"conns:{user_id}")

    def connect(self, *, user_id, channel, now=None):
        now = _now(now)
        info = json.dumps({"user_id": user_id, "since": now})
        before = self._connect(
            keys=[self._conns_key(user_id), self._k("online"), self._k("since")],
            args=[channel, now, now + ttl_s(), user_id, info],
        )
        return int(before) == 0

    def disconnect(self, *, user_id, channel, now=None):
        now = _now(now)
        result = self._disconnect(
            keys=[self._conns_key(user_id), self._k("online"), self._k("since"), self._k("status")],
            args=[channel, now, user_id],
        )
        return int(result) == 1

    def heartbeat(self, connections, *, now=None):
        if not connections:
            return set()
        now = _now(now)
        expiry = now + ttl_s()
        users = sorted({uid for uid, _ in connections})
        pipe = self.client.pipeline(transaction=False)
        for user_id in users:
            pipe.zscore(self._k("online"), str(user_id))
        for user_id, channel in connections:
            pipe.zadd(self._conns_key(user_id), {channel: expiry})
            pipe.zadd(self._k("online"), {str(user_id): expiry}, gt=True)
            pipe.hsetnx(self._k("since"), channel, json.dumps({"user_id": user_id, "since": now}))
        results = pipe.execute()
        online_before = {uid for uid, score in zip(users, results) if score is not None and score > now}
        added = results[len(users)::3]
        # ZADD answers 1 when it had to add the channel again: it had expired and been swept. The
        # user is back only if no other connection of theirs kept them online meanwhile.
        return {uid for (uid, _), again in zip(connections, added) if again and uid not in online_before}

    def sweep(self, *, now=None):
        now = _now(now)
        gone = self._sweep(keys=[self._k("online"), self._k("since"), self._k("status")], args=[now, self.prefix])
        return {int(uid) for uid in gone}

    def online_user_ids(self, *, now=None):
        now = _now(now)
        return {int(uid) for uid in self.client.zrangebyscore(self._k("online"), f"({now}", "+inf")}

    def is_online(self, user_id, *, now=None):
        return bool(self.client.zcount(self._conns_key(user_id), f"({_now(now)}", "+inf"))

    def connections(self, user_id, *, now=None):
        now = _now(now)
        live = self.client.zrangebyscore(self._conns_key(user_id), f"({now}", "+inf", withscores=True)
        if not live:
            return []
        infos = self.client.hmget(self._k("since"), [ch for ch, _ in live])
        result = []
        for (channel, expires), info in zip(live, infos):
            since = json.loads(info)["since"] if info else now
            result.append(Connection(channel, user_id, since, expires))
        return sorted(result, key=lambda c: c.since)

    def dead_connections(self, connections, *, now=None):
        if not connections:
            return set()
        now = _now(now)
        pipe = self.client.pipeline(transaction=False)
        for user_id, channel in connections:
            pipe.zscore(self._conns_key(user_id), channel)
        scores = pipe.execute()
        return {channel for (_, channel), score in zip(connections, scores) if score is None or score <= now}

    def set_status(self, user_id, status, *, at=None):
        return bool(self._set_status(keys=[self._k("status")], args=[str(user_id), status, repr(_now(at))]))

    def statuses(self, user_ids):
        if not user_ids:
            return {}
        values = self.client.hmget(self._k("status"), [str(u) for u in user_ids])
        return {uid: (value.split("|", 1)[0] if value else AVAILABLE) for uid, value in zip(user_ids, values)}

    def clear(self):
        keys = list(self.client.scan_iter(match=self.prefix + "*", count=500))
        if keys:
            self.client.delete(*keys)


@lru_cache(maxsize=1)
def get_presence() -> Presence:
    """The backend for this process: Redis whenever REDIS_URL is set."""
    check_timing(heartbeat_interval_s=heartbeat_interval_s(), ttl_s=ttl_s())
    if settings.REDIS_URL:
        prefix = settings.PEERLINE.get("PRESENCE_PREFIX", "peerline:presence:")
        return RedisPresence(settings.REDIS_URL, prefix=prefix)
    return InProcessPresence()
