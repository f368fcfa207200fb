"""Peerline settings: every value comes from the environment, with a safe local default.

One `env` object reads the process environment (and a `.env` file beside manage.py, if present
and DJANGO_READ_DOT_ENV is not false). `.env.example` documents every variable. With nothing set,
Peerline runs on SQLite with the in-process channel layer; setting REDIS_URL switches the channel
layer and presence to Redis.
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
env_file = BASE_DIR / ".env"
# DJANGO_READ_DOT_ENV=false (from the process environment only: .env cannot switch itself off)
# ignores .env. The test settings set it, for themselves and every server a test starts, so a
# developer's `make run` .env (PEERLINE_RECORD_IP, DJANGO_SECURE_SSL_REDIRECT...) never changes what
# the tests see. Anything but an explicit false reads it, as `make run` needs.
READ_DOT_ENV = os.environ.get("DJANGO_READ_DOT_ENV", "").strip().lower() not in ("false", "0", "no", "off")
if READ_DOT_ENV and env_file.exists():
    env.read_env(str(env_file), overwrite=False)
# An empty value means "not set". `.env.example` lists every variable, many of them empty, and
# django-environ would otherwise read "" as a path (the current directory: STATIC_ROOT would
# serve the repository) or as False, instead of falling back to the default.
env.ENVIRON = {key: value for key, value in os.environ.items() if value != ""}

# --- Core -----------------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it in the environment (or .env) to a long random "
            "string, or set DJANGO_DEBUG=true for local development."
        )
    SECRET_KEY = "insecure-local-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "accounts",
    "calls",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "accounts.middleware.LoginSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "calls.context_processors.missed_calls",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
# An empty DATABASE_URL means "not set": the local SQLite file.
DATABASE_URL = env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock up front, so two workers racing to change the
    # same call serialise instead of failing with "database is locked" half way through.
    # WAL lets readers go on while a call is being written, and synchronous=NORMAL (safe with
    # WAL: a power cut can lose the last commits, never corrupt the file) takes the fsync off
    # every commit: the call set-up path commits three times.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts -------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# Database sessions whose expiry (`manage.py clearsessions`) also prunes their LoginSession rows.
SESSION_ENGINE = "accounts.sessions"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "calls:lobby"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Channels -------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # socket_timeout=None: with redis-py 8 an idle BLPOP otherwise times out and the
                # consumer's socket is dropped (django/channels_redis#422).
                "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
                "prefix": env.str("PEERLINE_CHANNEL_PREFIX", default="peerline"),
                "capacity": 500,
                "expiry": 30,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Calls ----------------------------------------------------------------------------------------
PEERLINE = {
    "RING_TIMEOUT_S": env.float("PEERLINE_RING_TIMEOUT_S", default=30.0),
    "DISCONNECT_GRACE_S": env.float("PEERLINE_DISCONNECT_GRACE_S", default=15.0),
    # A browser ends a call whose media stayed down (ICE restarts failing) this long.
    "MEDIA_LOST_S": env.float("PEERLINE_MEDIA_LOST_S", default=45.0),
    "HEARTBEAT_INTERVAL_S": env.float("PEERLINE_HEARTBEAT_INTERVAL_S", default=10.0),
    "PRESENCE_TTL_S": env.float("PEERLINE_PRESENCE_TTL_S", default=35.0),
    "MAX_MESSAGE_BYTES": env.int("PEERLINE_MAX_MESSAGE_BYTES", default=64 * 1024),
    "RATE_BURST": env.int("PEERLINE_RATE_BURST", default=50),
    "RATE_PER_S": env.float("PEERLINE_RATE_PER_S", default=20.0),
    "INVITES_PER_WINDOW": env.int("PEERLINE_INVITES_PER_WINDOW", default=5),
    "INVITE_WINDOW_S": env.float("PEERLINE_INVITE_WINDOW_S", default=10.0),
    "ERRORS_BEFORE_CLOSE": env.int("PEERLINE_ERRORS_BEFORE_CLOSE", default=30),
    "STUN_URLS": env.list("PEERLINE_STUN_URLS", default=[]),
    "TURN_URLS": env.list("PEERLINE_TURN_URLS", default=[]),
    "TURN_SECRET": env.str("PEERLINE_TURN_SECRET", default=""),
    "TURN_TTL_S": env.int("PEERLINE_TURN_TTL_S", default=6 * 3600),
    "JANITOR": env.bool("PEERLINE_JANITOR", default=True),
    "PRESENCE_PREFIX": env.str("PEERLINE_PRESENCE_PREFIX", default="peerline:presence:"),
    # Keep the IP address of each login session for operators (personal data: off by default).
    "RECORD_IP": env.bool("PEERLINE_RECORD_IP", default=False),
}

# --- Static files ---------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
# Plain (unhashed) names on purpose: the browser code is ES modules that import each other by
# relative path, which hashed names would break. WhiteNoise compresses and serves them.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the source folders in development; production runs collectstatic.
WHITENOISE_USE_FINDERS = env.bool("DJANGO_STATIC_USE_FINDERS", default=DEBUG)

# --- Internationalisation -------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Security (production) ------------------------------------------------------------------------
# Behind a TLS reverse proxy (deploy/Caddyfile) Django sees plain HTTP: trust the proxy's
# X-Forwarded-Proto and X-Forwarded-Host. Only turn this on when the proxy is the only way in
# (it overwrites these headers; a client talking to daphne directly could forge them).
BEHIND_TLS_PROXY = env.bool("DJANGO_BEHIND_TLS_PROXY", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
USE_X_FORWARDED_HOST = env.bool("DJANGO_USE_X_FORWARDED_HOST", default=BEHIND_TLS_PROXY)
# Off by default: the proxy does TLS and redirects HTTP itself. Health checks and scrapes come
# over plain HTTP from inside the network, so they are never redirected.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Bearer token for /metrics (empty: only logged-in staff who may view calls can read it).
PEERLINE_METRICS_TOKEN = env.str("PEERLINE_METRICS_TOKEN", default="")

# --- Logging --------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # StreamHandler writes to stderr unless told otherwise; containers log stdout.
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stdout"}
    },
    "root": {"handlers": ["stdout"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}
