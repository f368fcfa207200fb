#!/bin/sh
# Peerline's container entry point: wait for the services, apply migrations, become the server.
#
#   deploy/entrypoint.sh              -> daphne on 0.0.0.0:8000 (behind the TLS proxy)
#   deploy/entrypoint.sh CMD ARGS...  -> the same preparation, then CMD (e.g. `python manage.py shell`)
#
# POSIX sh (the slim image has no bash); it also runs outside a container (tests/test_deployment.py).
# Environment:
#   PEERLINE_WAIT_TIMEOUT_S  seconds to wait for the database and Redis in all (default 60)
#   PEERLINE_WAIT_INTERVAL_S seconds between attempts (default 1)
#   PEERLINE_MIGRATE         false: skip `migrate` (e.g. when a release job applies migrations)
#   PEERLINE_PYTHON          the Python to run manage.py with (default: python on PATH)
set -eu

cd "$(dirname "$0")/.."
PYTHON=${PEERLINE_PYTHON:-python}

if [ -n "${REDIS_URL:-}" ]; then
  echo "entrypoint: waiting for the database and Redis"
else
  echo "entrypoint: waiting for the database"
fi
"$PYTHON" manage.py wait_for_services || {
  echo "entrypoint: giving up: a required service is unreachable (see above); not starting." >&2
  exit 1
}

if [ "${PEERLINE_MIGRATE:-true}" = "true" ]; then
  echo "entrypoint: applying migrations"
  "$PYTHON" manage.py migrate --noinput
else
  echo "entrypoint: PEERLINE_MIGRATE=${PEERLINE_MIGRATE}: not migrating"
fi

if [ "$#" -eq 0 ]; then
  # --proxy-headers: client addresses from X-Forwarded-For, set by the proxy in front (Caddy).
  set -- daphne -b 0.0.0.0 -p 8000 --proxy-headers config.asgi:application
fi
echo "entrypoint: starting $*"
exec "$@"
