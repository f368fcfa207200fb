"""Call setup time between two headless Chromium tabs, through a real daphne and Redis.

    .venv/bin/python bench/call_setup.py            # 10 calls
    .venv/bin/python bench/call_setup.py 30 --answer-after-ms 0

It starts everything itself: a Redis (REDIS_URL / PEERLINE_TEST_REDIS_URL, else 127.0.0.1:6379,
else a redis-server on a free port), a temporary SQLite database migrated in a subprocess, two
users with login sessions, and daphne on a free port. Chromium: PEERLINE_CHROMIUM or the first
chromium on PATH, with fake camera and microphone.

Each call: alice clicks "video call", bob's tab rings, bob waits --answer-after-ms (a person
takes a moment to answer; 0 answers at once) and clicks accept; then alice hangs up. Times come
from the pages themselves (epoch milliseconds from performance.timeOrigin + performance.now(),
recorded by static/calls/js/main.js in window.peerline.timings(); first remote frame from
requestVideoFrameCallback), never from Python clocks. It prints p50 / p90 of:

  (a) accept click -> first remote video frame shown, on bob's side and on alice's side;
  (b) call click -> ringing shown on bob's side.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.services import CHROMIUM_ARGS, ServiceMissing, find_chromium, find_redis_url, free_port  # noqa: E402

WAIT_MS = 20_000
USERS = {"alice": "Alice", "bob": "Bob"}
DETAIL = bool(os.environ.get("BENCH_DETAIL"))  # BENCH_DETAIL=1: also print each step's time
MAKE_USERS = """
from django.contrib.auth import get_user_model
from tests.support.sessions import session_cookie_for
for username, name in {users!r}.items():
    user = get_user_model().objects.create_user(username=username, password=None, display_name=name)
    print("SESSION", username, session_cookie_for(user).split("=", 1)[1])
"""


def start_server(workdir: Path, redis_url: str, cleanup: list) -> tuple[str, dict[str, str]]:
    """Migrate a fresh SQLite database, make the users, start daphne; returns (url, sessions)."""
    prefix = f"peerline-bench-{secrets.token_hex(4)}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
        "DJANGO_DEBUG": "false",
        "DJANGO_STATIC_USE_FINDERS": "true",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
        "REDIS_URL": redis_url,
        "PEERLINE_CHANNEL_PREFIX": prefix,
        "PEERLINE_PRESENCE_PREFIX": f"{prefix}:presence:",
        "PEERLINE_JANITOR": "true",
        # A benchmark places calls back to back, faster than the anti-spam limit (5 per 10 s) allows.
        "PEERLINE_INVITES_PER_WINDOW": "1000",
        "DJANGO_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        # The figures are of Peerline's defaults, not of whatever a developer's .env sets.
        "DJANGO_READ_DOT_ENV": "false",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True)
    made = subprocess.run(
        [*manage, "shell", "-c", MAKE_USERS.format(users=USERS)], cwd=ROOT, env=env, check=True,
        capture_output=True, text=True,
    )
    sessions = dict(line.split()[1:] for line in made.stdout.splitlines() if line.startswith("SESSION "))
    port = free_port()
    log = open(workdir / "daphne.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    cleanup.append(proc)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(url + "/accounts/login/", timeout=2):
                return url, sessions
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"daphne did not start; see {workdir / 'daphne.log'}")
            time.sleep(0.1)


def open_lobby(browser, url: str, session_key: str):
    context = browser.new_context(base_url=url)
    context.set_default_timeout(WAIT_MS)
    context.add_cookies([{"name": "sessionid", "value": session_key, "url": url}])
    page = context.new_page()
    page.on("pageerror", lambda exc: print(f"page error: {exc}", file=sys.stderr))
    page.goto("/")
    page.wait_for_selector("body[data-ws-state=open]")
    return page


def one_call(alice, bob, answer_after_ms: int) -> dict[str, float]:
    alice.click('[data-username="bob"] [data-testid=call-video]')
    bob.wait_for_selector("body[data-call-state=incoming]", state="attached")
    if answer_after_ms:
        bob.wait_for_timeout(answer_after_ms)  # the callee's human pause, not a measurement
    bob.click("[data-testid=accept-call]")
    for page in (alice, bob):
        page.wait_for_function("() => window.peerline.timings().firstRemoteFrameAt", polling=20)
    a, b = alice.evaluate("window.peerline.timings()"), bob.evaluate("window.peerline.timings()")
    alice.click("[data-testid=hangup]")
    for page in (alice, bob):
        page.wait_for_selector("body[data-call-state=ended]", state="attached")
    return {
        "accept_to_video_callee_ms": b["firstRemoteFrameAt"] - b["acceptClickedAt"],
        "accept_to_video_caller_ms": a["firstRemoteFrameAt"] - b["acceptClickedAt"],
        "accept_to_video_both_ms": max(a["firstRemoteFrameAt"], b["firstRemoteFrameAt"]) - b["acceptClickedAt"],
        "call_click_to_ringing_ms": b["ringingShownAt"] - a["callClickedAt"],
        **({"detail_" + k: v for k, v in breakdown(a, b).items()} if DETAIL else {}),
    }


def breakdown(a: dict, b: dict) -> dict[str, float]:
    """Where the time goes after the accept click (all relative to it)."""
    t0 = b["acceptClickedAt"]
    marks = {f"caller_{k}": v for k, v in a.items()} | {f"callee_{k}": v for k, v in b.items()}
    return {k.removesuffix("At") + "_ms": v - t0 for k, v in sorted(marks.items(), key=lambda kv: kv[1]) if v >= t0}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("calls", type=int, nargs="?", default=10, help="number of calls (default 10)")
    parser.add_argument("--answer-after-ms", type=int, default=1000,
                        help="how long bob lets it ring before accepting (default 1000)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    try:
        redis_url, chromium = find_redis_url(), find_chromium()
    except ServiceMissing as missing:
        sys.exit(str(missing))
    cleanup: list[subprocess.Popen] = []
    workdir = Path(tempfile.mkdtemp(prefix="peerline-bench-"))
    try:
        url, sessions = start_server(workdir, redis_url, cleanup)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            alice, bob = open_lobby(browser, url, sessions["alice"]), open_lobby(browser, url, sessions["bob"])
            alice.wait_for_selector('[data-username="bob"] [data-testid=call-video]')
            results = [one_call(alice, bob, args.answer_after_ms) for _ in range(args.calls)]
            browser.close()
    finally:
        for proc in reversed(cleanup):
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"{args.calls} calls, callee answers after {args.answer_after_ms} ms (loopback, fake devices)")
    print(f"{'':34} {'p50 ms':>8} {'p90 ms':>8}")
    for key in results[0]:
        values = [r[key] for r in results]
        print(f"{key:34} {percentile(values, 50):8.0f} {percentile(values, 90):8.0f}")


if __name__ == "__main__":
    main()
