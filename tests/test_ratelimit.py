"""Per-connection limits, on a fake clock."""

from calls.ratelimit import SlidingWindow, TokenBucket


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_token_bucket_allows_a_burst_then_refills_at_its_rate():
    clock = Clock()
    bucket = TokenBucket(burst=50, per_s=20, clock=clock)
    assert all(bucket.allow() for _ in range(50))
    assert not bucket.allow()
    clock.now += 0.5  # 10 tokens
    assert sum(bucket.allow() for _ in range(20)) == 10


def test_a_token_bucket_never_saves_more_than_its_burst():
    clock = Clock()
    bucket = TokenBucket(burst=5, per_s=20, clock=clock)
    clock.now += 3600
    assert sum(bucket.allow() for _ in range(10)) == 5


def test_a_sliding_window_counts_events_in_the_last_window():
    clock = Clock()
    window = SlidingWindow(limit=5, window_s=10, clock=clock)
    assert all(window.allow() for _ in range(5))
    assert not window.allow()
    clock.now += 9.9
    assert not window.allow()
    clock.now += 0.2
    assert window.allow()
