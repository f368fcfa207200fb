"""Settings come from the environment; each case runs in a fresh interpreter."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.live import DaphneServer, isolated_env

ROOT = Path(__file__).resolve().parent.parent


def load_settings(**env) -> subprocess.CompletedProcess:
    code = (
        "import json, django; from django.conf import settings; django.setup();"
        "print(json.dumps({'layer': settings.CHANNEL_LAYERS['default'], 'debug': settings.DEBUG,"
        " 'db': settings.DATABASES['default']['ENGINE'], 'hosts': settings.ALLOWED_HOSTS,"
        " 'csrf': settings.CSRF_TRUSTED_ORIGINS, 'static_root': str(settings.STATIC_ROOT),"
        " 'finders': settings.WHITENOISE_USE_FINDERS, 'ring': settings.PEERLINE['RING_TIMEOUT_S']}))"
    )
    full_env = isolated_env(**{"DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_SECRET_KEY": "x" * 50,
                               "DJANGO_DEBUG": "false", "REDIS_URL": "", "DATABASE_URL": "", **env})
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


# --- a developer's .env never reaches the tests ---------------------------------------------------
# `make run` writes .env beside manage.py and config/settings.py reads it. These run the settings
# from a copy of config/ beside a hostile .env, so the real one is never touched.
HOSTILE_DOT_ENV = "PEERLINE_RECORD_IP=true\nDJANGO_SECURE_SSL_REDIRECT=true\nPEERLINE_RING_TIMEOUT_S=7\n"
READ_BACK = (
    "import importlib, json, os, sys; s = importlib.import_module(os.environ['DJANGO_SETTINGS_MODULE']);"
    "print(json.dumps({'record_ip': s.PEERLINE['RECORD_IP'], 'redirect': s.SECURE_SSL_REDIRECT,"
    " 'ring': s.PEERLINE['RING_TIMEOUT_S'], 'base': str(s.BASE_DIR),"
    " 'read_dot_env': os.environ.get('DJANGO_READ_DOT_ENV')}))"
)


@pytest.fixture
def project_with_dot_env(tmp_path) -> Path:
    shutil.copytree(ROOT / "config", tmp_path / "config", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / ".env").write_text(HOSTILE_DOT_ENV)
    return tmp_path


def settings_seen(project: Path, env: dict[str, str]) -> dict:
    """The settings a process with this environment gets, its BASE_DIR being `project`."""
    env = {**env, "PYTHONPATH": os.pathsep.join([str(project), str(ROOT)])}
    result = subprocess.run([sys.executable, "-c", READ_BACK], cwd=project, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values.pop("base") == str(project), "ran the real config/, not the copy"
    return values


def test_settings_read_dot_env_for_make_run(project_with_dot_env):
    """The other half: without DJANGO_READ_DOT_ENV=false, .env counts (so the tests below can fail)."""
    env = {k: v for k, v in isolated_env(DJANGO_SETTINGS_MODULE="config.settings", DJANGO_SECRET_KEY="x" * 50).items()
           if k != "DJANGO_READ_DOT_ENV"}
    assert settings_seen(project_with_dot_env, env) == {"record_ip": True, "redirect": True, "ring": 7.0,
                                                        "read_dot_env": None}


def test_test_settings_ignore_dot_env_and_pass_that_on(project_with_dot_env):
    """Even when the shell says to read it; and the setting stays in os.environ for children."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test", "DJANGO_READ_DOT_ENV": "true"}
    for name in ("PEERLINE_RECORD_IP", "DJANGO_SECURE_SSL_REDIRECT", "PEERLINE_RING_TIMEOUT_S"):
        env.pop(name, None)
    assert settings_seen(project_with_dot_env, env) == {"record_ip": False, "redirect": False, "ring": 30.0,
                                                        "read_dot_env": "false"}


def test_processes_tests_start_ignore_dot_env(project_with_dot_env):
    """Live daphne servers and settings/manage.py subprocesses, even when a test asks otherwise."""
    server_env = DaphneServer(env={"DJANGO_READ_DOT_ENV": "true"}).env
    subprocess_env = isolated_env(DJANGO_SETTINGS_MODULE="config.settings", DJANGO_SECRET_KEY="x" * 50,
                                  DJANGO_READ_DOT_ENV="true")
    for env in (server_env, subprocess_env):
        assert settings_seen(project_with_dot_env, env) == {"record_ip": False, "redirect": False, "ring": 30.0,
                                                            "read_dot_env": "false"}
