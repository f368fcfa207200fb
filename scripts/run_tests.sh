#!/usr/bin/env bash
# The whole test suite, as `make test` runs it (and CI through .ci/run).
#
# 1. System tools the tests drive for real: Chromium (browser tests), redis-server, coturn (TURN
#    test), docker-compose and caddy (deployment files). On Debian as root, missing ones are installed with apt-get; elsewhere this says what to
#    install. With CI=true nothing missing is skipped: the run fails.
# 2. Pass one: every test (unit, consumer, live daphne, browser) on SQLite.
# 3. Pass two: the database tests again on PostgreSQL, production's database
#    (PEERLINE_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test).
# pytest's exit code 5 ("no tests ran") fails the run like any other failure.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${VENV:-.venv}/bin/python
CI=${CI:-false}

need_pkgs=()
command -v chromium >/dev/null 2>&1 || [ -n "${PEERLINE_CHROMIUM:-}" ] || need_pkgs+=(chromium)
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
command -v turnserver >/dev/null 2>&1 || need_pkgs+=(coturn)
# Validating the deployment files: compose v1 parses docker-compose.yml without an engine, and
# Caddy parses the Caddyfile.
command -v docker-compose >/dev/null 2>&1 || need_pkgs+=(docker-compose)
command -v caddy >/dev/null 2>&1 || need_pkgs+=(caddy)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" fonts-liberation >/dev/null \
      || { echo "apt-get install ${need_pkgs[*]} failed" >&2; exit 1; }
  else
    echo "missing system packages: ${need_pkgs[*]}" >&2
    echo "install them (Debian/Ubuntu: sudo apt-get install ${need_pkgs[*]}) or set PEERLINE_CHROMIUM to a Chromium binary." >&2
    if [ "$CI" = "true" ]; then exit 1; fi
    echo "(not CI: the tests that need them will be skipped with a reason)" >&2
  fi
fi

run_pytest() {
  local label=$1; shift
  echo ""
  echo "=== $label"
  "$PY" -m pytest "$@"
  local rc=$?
  if [ $rc -eq 5 ]; then
    echo "$label: no tests ran (pytest exit 5): failing the run" >&2
    return 1
  fi
  return $rc
}

status=0
DATABASE_URL= run_pytest "all tests on SQLite" || status=1

PG_URL=${PEERLINE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
if "$PY" - "$PG_URL" <<'PYEOF'
import sys, psycopg
try:
    psycopg.connect(sys.argv[1], connect_timeout=3).close()
except Exception as exc:
    print(f"PostgreSQL not reachable at {sys.argv[1]}: {exc}", file=sys.stderr)
    sys.exit(1)
PYEOF
then
  DATABASE_URL=$PG_URL run_pytest "database tests on PostgreSQL" -m "not e2e" || status=1
elif [ "$CI" = "true" ]; then
  echo "CI=true: the PostgreSQL pass is required; set PEERLINE_TEST_POSTGRES_URL." >&2
  status=1
else
  echo "skipping the PostgreSQL pass (not CI). Set PEERLINE_TEST_POSTGRES_URL to run it." >&2
fi
exit $status
