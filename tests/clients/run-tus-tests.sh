#!/usr/bin/env bash
# Runs the photo-upload client tests (tests/clients/tus: tus-js-client 4.x under Node, tuspy under
# Python) against a REAL foodcheck server started from an already-built binary. Builds nothing.
#
# Usage:
#   tests/clients/run-tus-tests.sh                  # SQLite in a fresh temporary data dir
#   tests/clients/run-tus-tests.sh postgres         # a fresh PostgreSQL database created from
#                                                   #   FOODCHECK_TEST_POSTGRES_URL (admin URL), dropped afterwards
#
# Environment:
#   FOODCHECK_BIN                 server binary (default: <repo>/target/debug/foodcheck); the crash
#                                 scenario (tus/crash.test.js) starts and kills its own instance of it
#   FOODCHECK_TEST_POSTGRES_URL   admin URL for `postgres` mode, e.g. postgres://postgres@127.0.0.1:5432/postgres
#   FOODCHECK_DATABASE_URL        without the `postgres` argument: run against this database as is
#                                 (not emptied; the tests never assume an empty database, and the
#                                 admin gets a unique username)
#   FOODCHECK_KEEP=1              keep the temporary data dir (server log, SQLite file, blobs) afterwards
#   PYTHON                        the python that creates tests/clients/tus/.venv (default python3)
#
# Exit status: 0 if both suites passed, 1 if a test failed (or pytest collected no tests), 2 for a
# set-up problem.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
harness="$here/tus"
bin=${FOODCHECK_BIN:-$root/target/debug/foodcheck}

mode=${1:-sqlite}
case "$mode" in
  sqlite | postgres) ;;
  *)
    echo "usage: $0 [sqlite|postgres]" >&2
    exit 2
    ;;
esac

fc_name=tus-tests
# shellcheck source=server.sh
. "$here/server.sh"
command -v node >/dev/null || die "node (>= 20) is required"
python=${PYTHON:-python3}
command -v "$python" >/dev/null || die "$python is required (for the venv with tuspy, Pillow, piexif)"

admin_user=admin
admin_password=admin-password-123
fc_allow_existing=1
fc_database "$mode"

# Client dependencies first (no server needed): node_modules by the lockfile, the Python venv.
cd "$harness"
if [[ ! -d node_modules/tus-js-client ]]; then
  npm ci --no-audit --no-fund || die "npm ci failed"
fi
venv="$harness/.venv"
stamp="$venv/.requirements.sha256"
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [[ ! -x $venv/bin/python || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  [[ -x $venv/bin/python ]] || "$python" -m venv "$venv" || die "could not create $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt ||
    die "pip install -r requirements.txt failed"
  echo "$want" >"$stamp"
fi
export FOODCHECK_TUS_PYTHON="$venv/bin/python"

fc_admin "$admin_user" "$admin_password" "Upload harness admin"
fc_start_server
[[ $(curl -s -o /dev/null -w '%{http_code}' -X OPTIONS "$url/api/v1/uploads" || true) == 204 ]] ||
  die "$bin has no tus endpoint (OPTIONS /api/v1/uploads is not 204): rebuild it"

export FOODCHECK_URL=$url FOODCHECK_ADMIN_USERNAME=$admin_user FOODCHECK_ADMIN_PASSWORD=$admin_password
# crash.test.js starts (and SIGKILLs) its own server from this binary, in its own data dir.
export FOODCHECK_BIN=$bin
cd "$harness"
set +e
echo "run-tus-tests: tus-js-client (npm test)"
npm test --silent
node_status=$?
echo "run-tus-tests: tuspy (pytest)"
"$venv/bin/python" -m pytest -q -rxXs -p no:cacheprovider
py_status=$?
set -e
# pytest: 5 = no tests collected, which is a failure here too.
[[ $py_status -eq 5 ]] && echo "run-tus-tests: pytest collected no tests" >&2

status=0
if [[ $node_status -ne 0 || $py_status -ne 0 ]]; then
  status=1
  echo "run-tus-tests: FAILED (node --test exit $node_status, pytest exit $py_status); last server log lines:" >&2
  tail -n 30 "$data_dir/server.log" >&2
else
  echo "run-tus-tests: all passed"
fi
exit "$status"
