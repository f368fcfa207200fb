"""Login sessions: the only code that writes LoginSession rows or revokes a login.

Revoking deletes the Django session (the browser is logged out for HTTP at its next request) and
publishes `session.revoked` through calls.events, so every worker closes the WebSockets that were
opened with those sessions (close code 4401) at once, instead of at their next reconnect.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import LoginSession, User
from calls import events

logger = logging.getLogger(__name__)

# last_seen is a "roughly when" for operators; writing it on every request would cost a write per
# page view.
LAST_SEEN_RESOLUTION_S = 60

# First match wins: Edge and Opera also say "Chrome", Chrome also says "Safari", Android also says
# "Linux". A summary for operators, not a full user-agent parser.
_BROWSERS = (
    ("Edge", re.compile(r"\bEdg(e|A|iOS)?/")),
    ("Opera", re.compile(r"\b(OPR|Opera)/")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/")),
    ("Firefox", re.compile(r"\b(Firefox|FxiOS)/")),
    ("Chrome", re.compile(r"\b(Chrome|CriOS|Chromium)/")),
    ("Safari", re.compile(r"\bVersion/[\d.]+.*\bSafari/")),
)
_SYSTEMS = (
    ("Android", re.compile(r"\bAndroid\b")),
    ("iOS", re.compile(r"\b(iPhone|iPad|iPod)\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b")),
)


def summarize_user_agent(user_agent: str) -> tuple[str, str]:
    """(browser, operating system) from a User-Agent header; "" for what is not recognised."""
    browser = next((name for name, pattern in _BROWSERS if pattern.search(user_agent)), "")
    system = next((name for name, pattern in _SYSTEMS if pattern.search(user_agent)), "")
    return browser, system


def _ip_to_keep(ip: str | None) -> str | None:
    return (ip or None) if settings.PEERLINE.get("RECORD_IP") else None


def login_session_record(*, user: User, session_key: str, user_agent: str, ip: str | None) -> LoginSession:
    """At login (or the first request of a session that has no row yet): remember where."""
    browser, system = summarize_user_agent(user_agent or "")
    fields = {"user": user, "browser": browser, "os": system, "ip": _ip_to_keep(ip), "last_seen": timezone.now()}
    try:
        with transaction.atomic():
            session, _ = LoginSession.objects.update_or_create(session_key=session_key, defaults=fields)
    except IntegrityError:  # two requests of a brand-new session raced to create the row
        session = LoginSession.objects.get(session_key=session_key)
    return session


def login_session_touch(
    *, user: User, session_key: str, user_agent: str, ip: str | None, now: datetime | None = None
) -> bool:
    """Move last_seen forward if it is older than LAST_SEEN_RESOLUTION_S; True when written.

    The conditional UPDATE keeps it to one write a minute even with many workers."""
    now = now or timezone.now()
    changes = {"last_seen": now}
    if settings.PEERLINE.get("RECORD_IP") and ip:
        changes["ip"] = ip
    stale = now - timedelta(seconds=LAST_SEEN_RESOLUTION_S)
    if LoginSession.objects.filter(session_key=session_key, user=user, last_seen__lt=stale).update(**changes):
        return True
    if LoginSession.objects.filter(session_key=session_key).exists():
        return False
    # A session from before login sessions were tracked, or one whose login did not send the
    # signal (a test client's session): track it from now on.
    login_session_record(user=user, session_key=session_key, user_agent=user_agent, ip=ip)
    return True


def login_session_forget(*, session_key: str) -> None:
    """At logout: the session is gone, so is its row."""
    LoginSession.objects.filter(session_key=session_key).delete()


def _session_store_class():
    return import_module(settings.SESSION_ENGINE).SessionStore


def _sessions_in_database() -> bool:
    """Whether sessions are rows of django.contrib.sessions' Session model (the db and cached_db
    engines, and accounts.sessions built on them), which can be searched and joined against."""
    from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore

    return issubclass(_session_store_class(), DatabaseSessionStore)


def login_sessions_prune(*, now: datetime | None = None) -> int:
    """Delete the LoginSession rows whose Django session is gone or expired; returns how many.

    Run by `clearsessions` (accounts.sessions). One DELETE: a row whose session is still valid
    is never touched, so a login racing with the prune keeps its row."""
    if not _sessions_in_database():
        return 0
    from django.contrib.sessions.models import Session

    valid = Session.objects.filter(expire_date__gt=now or timezone.now()).values("session_key")
    count, _ = LoginSession.objects.exclude(session_key__in=valid).delete()
    if count:
        logger.info("pruned %d login session row(s) whose session had expired or gone", count)
    return count


@transaction.atomic
def login_sessions_revoke(*, sessions) -> int:
    """Log these sessions out everywhere: HTTP and open WebSockets. Returns how many."""
    store = _session_store_class()
    keys_by_user: dict[int, list[str]] = {}
    for session in sessions:
        keys_by_user.setdefault(session.user_id, []).append(session.session_key)
    for user_id, keys in keys_by_user.items():
        for key in keys:
            store(session_key=key).delete()
        LoginSession.objects.filter(session_key__in=keys).delete()
        events.send_on_commit(event_type="session.revoked", user_id=user_id, session_keys=keys)
        logger.info("revoked %d login session(s) of user %s", len(keys), user_id)
    return sum(len(keys) for keys in keys_by_user.values())


@transaction.atomic
def login_sessions_revoke_all(*, user: User) -> int:
    """Log a user out of every session, including any this app has no LoginSession row for."""
    keys = set(LoginSession.objects.filter(user=user).values_list("session_key", flat=True))
    keys |= _untracked_session_keys(user)
    store = _session_store_class()
    for key in keys:
        store(session_key=key).delete()
    LoginSession.objects.filter(user=user).delete()
    # No session_keys: every socket of the user closes, whichever session opened it.
    events.send_on_commit(event_type="session.revoked", user_id=user.pk, session_keys=None)
    logger.info("revoked all %d login session(s) of user %s", len(keys), user.pk)
    return len(keys)


def _untracked_session_keys(user: User) -> set[str]:
    """With database sessions, find the user's sessions by reading them (operators do this
    rarely; other session engines cannot be searched and rely on LoginSession rows)."""
    if not _sessions_in_database():
        return set()
    from django.contrib.sessions.models import Session

    found = set()
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get(SESSION_KEY) == str(user.pk):
            found.add(session.session_key)
    return found
