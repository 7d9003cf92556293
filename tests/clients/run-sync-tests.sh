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

die() {
  echo "run-sync-tests: $*" >&2
  exit 2
}

[[ -x $bin ]] || die "no server binary at $bin (run \`cargo build\` first, or set FOODCHECK_BIN)"
command -v node >/dev/null || die "node (>= 20) is required"
command -v curl >/dev/null || die "curl is required"

data_dir=$(mktemp -d "${TMPDIR:-/tmp}/foodcheck-sync.XXXXXX")
server_pid=
pg_db=
status=2

cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ -n $pg_db ]]; then
    psql "$FOODCHECK_TEST_POSTGRES_URL" -qX -v ON_ERROR_STOP=1 \
      -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 ||
      psql "$FOODCHECK_TEST_POSTGRES_URL" -qX -c "DROP DATABASE IF EXISTS $pg_db" >/dev/null 2>&1 || true
  fi
  if [[ ${FOODCHECK_KEEP:-} == 1 || $status -ne 0 ]]; then
    echo "run-sync-tests: kept $data_dir (server log: $data_dir/server.log)" >&2
  else
    rm -rf "$data_dir"
  fi
}
trap 'cleanup' EXIT
trap 'exit 130' INT TERM

admin_user=admin
admin_password=admin-password-123

if [[ $mode == postgres ]]; then
  [[ -n ${FOODCHECK_TEST_POSTGRES_URL:-} ]] || die "postgres mode needs FOODCHECK_TEST_POSTGRES_URL (an admin URL)"
  command -v psql >/dev/null || die "psql is required for postgres mode"
  pg_db="fc_sync_$$_$RANDOM"
  psql "$FOODCHECK_TEST_POSTGRES_URL" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $pg_db" ||
    { pg_db=; die "could not create database from FOODCHECK_TEST_POSTGRES_URL"; }
  # Same URL, other database (the path).
  FOODCHECK_DATABASE_URL=$(node -e '
    const u = new URL(process.argv[1]); u.pathname = "/" + process.argv[2]; console.log(u.href)
  ' "$FOODCHECK_TEST_POSTGRES_URL" "$pg_db")
  export FOODCHECK_DATABASE_URL
  echo "run-sync-tests: PostgreSQL database $pg_db"
elif [[ -n ${FOODCHECK_DATABASE_URL:-} ]]; then
  export FOODCHECK_DATABASE_URL
  admin_user="sync-admin-$(date +%s)-$$"
  echo "run-sync-tests: using FOODCHECK_DATABASE_URL as is (admin $admin_user)"
else
  unset FOODCHECK_DATABASE_URL
  echo "run-sync-tests: SQLite in $data_dir"
fi
# A config file in the caller's working directory must not leak in.
cd "$data_dir"

printf '%s\n' "$admin_password" |
  "$bin" --data-dir "$data_dir" user add --username "$admin_user" --role admin --name "Sync harness admin" \
    >"$data_dir/user-add.log" 2>&1 ||
  { cat "$data_dir/user-add.log" >&2; die "could not create the admin with the CLI"; }

port=$(node -e '
  const s = require("node:net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close() })
')
url="http://127.0.0.1:$port"

NO_COLOR=1 "$bin" --data-dir "$data_dir" serve --listen "127.0.0.1:$port" >"$data_dir/server.log" 2>&1 &
server_pid=$!

ready=
for _ in $(seq 1 300); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    tail -n 40 "$data_dir/server.log" >&2
    die "the server exited during start-up"
  fi
  if [[ $(curl -s -o /dev/null -w '%{http_code}' "$url/readyz" || true) == 200 ]]; then
    ready=1
    break
  fi
  sleep 0.2
done
[[ -n $ready ]] || { tail -n 40 "$data_dir/server.log" >&2; die "no 200 from $url/readyz within 60 s"; }
echo "run-sync-tests: server $("$bin" --version 2>/dev/null || echo "$bin") on $url (pid $server_pid)"

cd "$harness"
if [[ ! -d node_modules/@nozbe/watermelondb ]]; then
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
  node --test --test-concurrency=1 "$@" sync.test.js backlog.test.js session.test.js fake-only.test.js
fi
status=$?
set -e

if [[ $status -ne 0 ]]; then
  echo "run-sync-tests: FAILED (exit $status); last server log lines:" >&2
  tail -n 30 "$data_dir/server.log" >&2
fi
exit "$status"
