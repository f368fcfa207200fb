"""Test settings: the real settings module with test-only speed-ups.

The environment still decides the database (DATABASE_URL) and Redis, so the same suite runs on
SQLite and on PostgreSQL. A `.env` file never does: the tests must behave the same on a machine
where `make run` wrote one.
"""

import os

# Forced, not defaulted, and left in os.environ on purpose: every process a test starts inherits
# it (tests/support/live.py also sets it for the servers and subprocesses it builds environments for).
os.environ["DJANGO_READ_DOT_ENV"] = "false"
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
# The suite chooses layers per test (tests/conftest.py): the defaults stay in-process, and a
# REDIS_URL from the environment only tells the tests where the real Redis is.
os.environ["PEERLINE_TEST_REDIS_URL"] = os.environ.get("PEERLINE_TEST_REDIS_URL") or os.environ.get("REDIS_URL", "")
os.environ["REDIS_URL"] = ""
# Consumer tests drive timers and sweeps themselves; live servers get their own environment.
os.environ.setdefault("PEERLINE_JANITOR", "false")

from config.settings import *  # noqa: E402,F401,F403
from config.settings import BASE_DIR, DATABASES  # noqa: E402

# Hashing real passwords with PBKDF2 costs ~0.3 s per login; tests log in hundreds of times.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Live daphne servers in the tests open the test database from another process: it must be a
# file, not SQLite's default in-memory test database.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("PEERLINE_TEST_SQLITE", str(BASE_DIR / "test-db.sqlite3"))}

# Tests never run collectstatic in-process; serve from the source folders instead.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
