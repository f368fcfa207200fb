"""Real Chromium (Debian's package, driven by Playwright) against live daphne servers.

Playwright's sync API runs an event loop in this thread, so Django's "no ORM from async context"
guard must be off here (the tests themselves are plain sync code).
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import pytest

from tests.e2e.calling import LOCAL_TRACKS_JS, lobby
from tests.support.services import CHROMIUM_ARGS, chromium_path

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

WAIT_MS = 20_000


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def strict_autoplay_browser(browser):
    """A Chromium with its real autoplay policy (no --autoplay-policy flag): audio stays locked
    until the page gets a user gesture, as for a person who opened Peerline and walked away.
    Playwright's evaluate() and its selector waits give the page a user activation, which alone
    lets a new AudioContext start (test_calls_tones.QuietReader reads a page without one); key
    presses and clicks are real gestures."""
    args = [arg for arg in CHROMIUM_ARGS if not arg.startswith("--autoplay-policy")]
    strict = browser.browser_type.launch(executable_path=chromium_path(), headless=True, args=args)
    yield strict
    strict.close()


class PageWatch:
    """Console errors and page errors of one page, for assertions and failure dumps."""

    def __init__(self, page, name: str):
        self.page, self.name = page, name
        self.console: list[str] = []
        self.errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _on_console(self, message):
        line = f"[{message.type}] {message.text}"
        self.console.append(line)
        if message.type == "error":
            self.errors.append(line)


@pytest.fixture
def open_page(browser, request, artifacts_dir):
    """open_page(server, user=None, name=..., in_browser=None) -> (page, watch): a fresh browser
    context per call (in the session's browser unless another is given), logged in as `user`
    through a session cookie when given. Every page records the tracks getUserMedia gave it
    (calling.LOCAL_TRACKS_JS). On failure every page's screenshot and console are written to the
    test's artifacts folder."""
    from tests.support.sessions import session_cookie_for

    contexts, watches = [], []

    def open_(server, user=None, *, name: str | None = None, path: str = "/", in_browser=None, **context_options):
        context = (in_browser or browser).new_context(base_url=server.url, accept_downloads=True, **context_options)
        context.set_default_timeout(WAIT_MS)
        context.add_init_script(LOCAL_TRACKS_JS)
        if user is not None:
            cookie_name, value = session_cookie_for(user).split("=", 1)
            context.add_cookies([{"name": cookie_name, "value": value, "url": server.url}])
        page = context.new_page()
        watch = PageWatch(page, name or (user.username if user else f"page{len(watches) + 1}"))
        contexts.append(context)
        watches.append(watch)
        if path is not None:
            page.goto(path)
        return page, watch

    yield open_
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for watch in watches:
        if failed:
            try:
                watch.page.screenshot(path=str(artifacts_dir / f"{watch.name}-failure.png"))
            except Exception:
                pass
        (artifacts_dir / f"{watch.name}-console.log").write_text("\n".join(watch.console))
    for context in contexts:
        context.close()


class TwoLobbies(NamedTuple):
    server: Any
    alice: Any
    bob: Any
    a: Any
    a_watch: PageWatch
    b: Any
    b_watch: PageWatch


@pytest.fixture
def alice_and_bob(live_servers, redis_url, make_user, open_page):
    """Alice and Bob, each in their lobby with the socket open, on one live daphne with Redis.
    Server settings go in as keywords: `alice_and_bob(PEERLINE_RING_TIMEOUT_S="3")`."""

    def start(**env) -> TwoLobbies:
        alice, bob = make_user("alice", "Alice"), make_user("bob", "Bob")
        server = live_servers(redis_url=redis_url, env=env)
        a, a_watch = lobby(open_page, server, alice)
        b, b_watch = lobby(open_page, server, bob)
        return TwoLobbies(server, alice, bob, a, a_watch, b, b_watch)

    return start
