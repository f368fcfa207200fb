#!/bin/sh
# Before `make` creates .venv: can this Python create a virtual environment?
#
#   sh scripts/check_python.sh [PYTHON]      (default python3; the Makefile passes $(PYTHON))
#
# `python3 -m venv` needs the ensurepip module, which Debian and Ubuntu ship separately
# (python3.X-venv): without it a fresh machine gets "ensurepip is not available" half way
# through, after a broken .venv was already made. This says up front what to install. As in
# scripts/run_tests.sh, on Debian as root the package is installed with apt-get, for the
# system's own Python only (apt cannot add a module to a Python it did not install).
set -eu
PYTHON=${1:-python3}

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "make: $PYTHON not found. Install Python 3.11 or newer (Debian/Ubuntu: apt-get install python3 python3-venv)," >&2
  echo "      or name one: make PYTHON=python3.12 ..." >&2
  exit 1
fi

# "ok", or the Debian package that provides ensurepip for this version and where Python lives.
probe() {
  "$PYTHON" - <<'PY'
import sys
try:
    import ensurepip, venv  # noqa: F401
except ImportError:
    print("python%d.%d-venv" % sys.version_info[:2], sys.base_prefix)
else:
    print("ok")
PY
}

result=$(probe)
[ "$result" = ok ] && exit 0
package=${result%% *}
prefix=${result#* }

if [ "$prefix" = /usr ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing $package ($PYTHON -m venv needs its ensurepip module)"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq && apt-get install -y -qq --no-install-recommends "$package" >/dev/null \
     && [ "$(probe)" = ok ]; then
    exit 0
  fi
  echo "make: apt-get install $package failed" >&2
  exit 1
fi

echo "make: $PYTHON cannot create a virtual environment: its ensurepip module is missing." >&2
if [ "$prefix" = /usr ]; then
  echo "      Install it: sudo apt-get install $package   (Debian/Ubuntu; python3-venv is the same for the default python3)" >&2
else
  echo "      This Python ($prefix) was built without ensurepip: reinstall it with ensurepip, or use another" >&2
  echo "      one: make PYTHON=/path/to/python3.11-or-newer ..." >&2
fi
exit 1
