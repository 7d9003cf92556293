#!/usr/bin/env bash
# Runs the WatermelonDB client scenarios (tests/clients/watermelondb) against a REAL foodcheck
# server started from an already-built binary. Builds nothing.
#
# Usage:
#   tests/clients/run-sync-tests.sh                 # SQLite in a fresh temporary data dir
#   tests/clients/run-sync-tests.sh postgres        # a fresh PostgreSQL database created from
#                                                   #   FOODCHECK_TEST_POSTGRES_URL (admin URL), dropped afterwards
#   tests/clients/run-sync-tests.sh [sqlite|postgres] -- <extra node --test args>
#                                                   # e.g. -- --test-name-pattern='^3\.'
#
# Environment:
#   FOODCHECK_BIN                 server binary (default: <repo>/target/debug/foodcheck)
#   FOODCHECK_TEST_POSTGRES_URL   admin URL for `postgres` mode, e.g. postgres://postgres@127.0.0.1:5432/postgres
#   FOODCHECK_DATABASE_URL        without the `postgres` argument: run against this database as is
#                                 (it is not emptied; the scenarios never assume an empty database,
#                                 and the admin gets a unique username)
#   FOODCHECK_KEEP=1              keep the temporary data dir (server log, SQLite file) afterwards
#   FOODCHECK_WMDB_VERBOSE=1      print WatermelonDB's own log lines
#
# Exit status: the test run's (2 for a set-up problem).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
harness="$here/watermelondb"
bin=${FOODCHECK_BIN:-$root/target/debug/foodcheck}

mode=sqlite
if [[ $# -gt 0 && $1 != -- ]]; then
  mode=$1
  shift
fi
if [[ $# -gt 0 && $1 == -- ]]; then shift; fi
case "$mode" in
  sqlite | postgres) ;;
  *)
    echo "usage: $0 [sqlite|postgres] [-- node --test args]" >&2
    exit 2
    ;;
esac

command -v node >/dev/null || { echo "run-sync-tests: node (>= 20) is required" >&2; exit 2; }
fc_name=sync-tests
# shellcheck source=server.sh
. "$here/server.sh"

admin_user=admin
admin_password=admin-password-123
fc_allow_existing=1
fc_database "$mode"
fc_admin "$admin_user" "$admin_password" "Sync harness admin"
fc_start_server

cd "$harness"
if [[ ! -d node_modules/@nozbe/watermelondb || ! -d node_modules/tus-js-client ]]; then
  npm ci --no-audit --no-fund || die "npm ci failed"
fi

export FOODCHECK_URL=$url FOODCHECK_ADMIN_USERNAME=$admin_user FOODCHECK_ADMIN_PASSWORD=$admin_password
# For scenarios that run the CLI on the server's database (tombstone purge).
export FOODCHECK_TEST_BIN=$bin FOODCHECK_TEST_DATA_DIR=$data_dir
set +e
if [[ $# -eq 0 ]]; then
  npm test --silent
else
  # node --test takes its options before the files, so extra options bypass `npm test`
  node --test --test-concurrency=1 "$@" sync.test.js lifecycle.test.js backlog.test.js session.test.js compress.test.js schema-doc.test.js fake-only.test.js
fi
status=$?
set -e

if [[ $status -ne 0 ]]; then
  echo "run-sync-tests: FAILED (exit $status); last server log lines:" >&2
  tail -n 30 "$data_dir/server.log" >&2
fi
exit "$status"
