"""Settings come from the environment; each case runs in a fresh interpreter."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_settings(**env) -> subprocess.CompletedProcess:
    code = (
        "import json, django; from django.conf import settings; django.setup();"
        "print(json.dumps({'layer': settings.CHANNEL_LAYERS['default'], 'debug': settings.DEBUG,"
        " 'db': settings.DATABASES['default']['ENGINE'], 'hosts': settings.ALLOWED_HOSTS,"
        " 'csrf': settings.CSRF_TRUSTED_ORIGINS, 'static_root': str(settings.STATIC_ROOT),"
        " 'finders': settings.WHITENOISE_USE_FINDERS, 'ring': settings.PEERLINE['RING_TIMEOUT_S']}))"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_URL", "DATABASE_URL"))}
    full_env = {**base, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_SECRET_KEY": "x" * 50,
                "DJANGO_DEBUG": "false", "REDIS_URL": "", "DATABASE_URL": "", **env}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=60)


def test_without_redis_url_the_channel_layer_is_in_process():
    result = load_settings()
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["layer"]["BACKEND"] == "channels.layers.InMemoryChannelLayer"
    assert values["db"] == "django.db.backends.sqlite3"
    assert values["debug"] is False


def test_redis_url_switches_the_channel_layer_to_redis():
    result = load_settings(REDIS_URL="redis://127.0.0.1:6390/2")
    assert result.returncode == 0, result.stderr
    layer = json.loads(result.stdout)["layer"]
    assert layer["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    # socket_timeout=None works around redis-py 8 dropping idle sockets (channels_redis#422).
    assert layer["CONFIG"]["hosts"] == [{"address": "redis://127.0.0.1:6390/2", "socket_timeout": None}]


def test_missing_secret_key_with_debug_off_fails_clearly():
    result = load_settings(DJANGO_SECRET_KEY="")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_debug_runs_without_a_secret_key():
    result = load_settings(DJANGO_SECRET_KEY="", DJANGO_DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["debug"] is True


def test_hosts_and_trusted_origins_come_from_the_environment():
    result = load_settings(
        DJANGO_ALLOWED_HOSTS="calls.example.com,.example.org",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://calls.example.com",
        DATABASE_URL="postgres://u:p@db:5432/peerline",
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["hosts"] == ["calls.example.com", ".example.org"]
    assert values["csrf"] == ["https://calls.example.com"]
    assert values["db"] == "django.db.backends.postgresql"


def test_empty_values_as_in_env_example_mean_unset():
    """`.env.example` (which `make run` copies) lists variables with empty values. Read as set,
    an empty DJANGO_STATIC_ROOT became the current directory and WhiteNoise served the whole
    repository under /static/."""
    result = load_settings(DJANGO_STATIC_ROOT="", DJANGO_STATIC_USE_FINDERS="", PEERLINE_RING_TIMEOUT_S="")
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["static_root"] == str(ROOT / "staticfiles")
    assert values["finders"] is False and values["ring"] == 30.0
