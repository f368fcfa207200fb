"""Signal relay latency through two daphne workers and Redis.

    .venv/bin/python bench/relay_latency.py [--pairs 50] [--seconds 10] [--rate 5]

Starts a throwaway Redis-backed deployment on loopback (two daphne processes, a temporary SQLite
database, a unique Redis prefix), signs in PAIRS pairs of users, puts each pair in an answered
call with the caller on worker 1 and the callee on worker 2, then for SECONDS every caller sends
`signal` frames (candidate-sized) at RATE per second. Each frame carries its send time; the
callee's socket (same process, same clock) records arrival. Prints p50/p90/p99/max of the one-way
A->B relay time. Traffic stays on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.services import ServiceMissing, find_redis_url, free_port  # noqa: E402

CANDIDATE = "candidate:842163049 1 udp 1677729535 127.0.0.1 {port} typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag abcd"


def prepare(env: dict, pairs: int) -> list[tuple[str, str]]:
    """Migrate a fresh database and create logged-in sessions; returns (caller, callee) cookies."""
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    script = f"""
import json
from django.contrib.auth import get_user_model
from tests.support.sessions import session_cookie_for
User = get_user_model()
out = []
for i in range({pairs}):
    a = User.objects.create_user(f"a{{i}}", password="x-bench-password")
    b = User.objects.create_user(f"b{{i}}", password="x-bench-password")
    out.append([session_cookie_for(a), session_cookie_for(b)])
print(json.dumps(out))
"""
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env,
                            check=True, capture_output=True, text=True)
    return [tuple(p) for p in json.loads(result.stdout.strip().splitlines()[-1])]


def start_worker(env: dict, port: int, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


async def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise SystemExit(f"worker on {port} did not start")


async def recv_type(ws, kind: str) -> dict:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 15))
        if frame["type"] == kind:
            return frame


timeline: list[tuple[float, float]] = []
ready: list[int] = []


async def run_pair(i, cookies, ports, seconds, rate, samples, start_gate):
    import websockets

    a_cookie, b_cookie = cookies
    url = "ws://127.0.0.1:{}/ws/signal/"
    origin = "http://127.0.0.1:{}"
    async with websockets.connect(url.format(ports[0]), origin=origin.format(ports[0]), additional_headers={"Cookie": a_cookie}) as a, \
               websockets.connect(url.format(ports[1]), origin=origin.format(ports[1]), additional_headers={"Cookie": b_cookie}) as b:
        await recv_type(a, "hello")
        await recv_type(b, "hello")
        call_id = str(uuid.uuid4())
        await a.send(json.dumps({"type": "invite", "call_id": call_id, "to": f"b{i}", "media": ["audio"]}))
        await recv_type(b, "invite")
        await b.send(json.dumps({"type": "accept", "call_id": call_id}))
        await recv_type(a, "accepted")
        await recv_type(b, "accepted")
        ready.append(i)
        await start_gate.wait()

        async def receiver():
            while True:
                frame = json.loads(await b.recv())
                if frame["type"] == "signal":
                    sent = float(frame["candidate"]["usernameFragment"])
                    samples.append((time.perf_counter() - sent) * 1000)
                    timeline.append((sent, samples[-1]))

        reader = asyncio.create_task(receiver())
        end = time.perf_counter() + seconds
        interval = 1 / rate
        next_send = time.perf_counter() + (i % 10) * interval / 10
        while time.perf_counter() < end:
            await asyncio.sleep(max(0, next_send - time.perf_counter()))
            next_send += interval
            await a.send(json.dumps({"type": "signal", "call_id": call_id, "candidate": {
                "candidate": CANDIDATE.format(port=40000 + i), "sdpMid": "0", "sdpMLineIndex": 0,
                "usernameFragment": repr(time.perf_counter())}}))
        await asyncio.sleep(1)
        reader.cancel()
        await a.send(json.dumps({"type": "hangup", "call_id": call_id}))


async def main_async(args):
    try:
        redis_url = find_redis_url()
    except ServiceMissing as missing:
        sys.exit(str(missing))
    tmp = Path(tempfile.mkdtemp(prefix="peerline-bench-"))
    prefix = f"peerline-bench-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_SECRET_KEY": "bench-" + uuid.uuid4().hex,
           "DJANGO_DEBUG": "false", "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}", "REDIS_URL": redis_url,
           "PEERLINE_CHANNEL_PREFIX": prefix, "PEERLINE_PRESENCE_PREFIX": f"{prefix}:presence:",
           "PEERLINE_RATE_BURST": "1000", "PEERLINE_RATE_PER_S": "1000", "PEERLINE_INVITES_PER_WINDOW": "1000",
           "DJANGO_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
           # The figures are of Peerline's defaults, not of whatever a developer's .env sets.
           "DJANGO_READ_DOT_ENV": "false"}
    cookies = prepare(env, args.pairs)
    ports = (free_port(), free_port())
    log = open(tmp / "workers.log", "wb")
    workers = [start_worker(env, port, log) for port in ports]
    try:
        for port in ports:
            await wait_ready(port)
        samples: list[float] = []
        gate = asyncio.Event()
        tasks = [asyncio.create_task(run_pair(i, c, ports, args.seconds, args.rate, samples, gate)) for i, c in enumerate(cookies)]
        # Measure steady relaying only: wait until every pair is in its call and the presence
        # fan-out of 2 x PAIRS logins (each one a message to everyone online) has drained.
        deadline = time.monotonic() + 60
        while len(ready) < len(cookies) and time.monotonic() < deadline:
            if any(t.done() for t in tasks):
                await asyncio.gather(*[t for t in tasks if t.done()])
            await asyncio.sleep(0.1)
        await asyncio.sleep(2)
        gate.set()
        await asyncio.gather(*tasks)
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=10)
        log.close()
    samples.sort()
    expected = args.pairs * args.seconds * args.rate

    def pct(p):
        return samples[min(len(samples) - 1, int(p / 100 * len(samples)))]

    print(f"signal relay A(worker1) -> B(worker2) via Redis: {args.pairs} pairs, {args.seconds}s, {args.rate}/s per pair")
    print(f"  delivered {len(samples)} of ~{expected:.0f} frames")
    if os.environ.get("BENCH_DETAIL"):
        t0 = min(t for t, _ in timeline)
        for second in range(int(args.seconds) + 1):
            bucket = sorted(l for t, l in timeline if second <= t - t0 < second + 1)
            if bucket:
                print(f"  second {second}: n={len(bucket)} p50 {bucket[len(bucket)//2]:.1f} max {bucket[-1]:.1f}")
    print(f"  p50 {pct(50):.2f} ms   p90 {pct(90):.2f} ms   p99 {pct(99):.2f} ms   max {samples[-1]:.2f} ms   mean {statistics.mean(samples):.2f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=5, help="signals per second per pair")
    args = parser.parse_args()
    if not (1 <= args.pairs <= 500 and 0 < args.seconds <= 120 and 0 < args.rate <= 200):
        sys.exit("bounded on purpose: pairs 1-500, seconds up to 120, rate up to 200/s")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
