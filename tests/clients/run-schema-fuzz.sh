#!/usr/bin/env bash
# Fuzzes the API from its generated OpenAPI spec (api-spec/openapi.json) with schemathesis, against
# a REAL foodcheck server started from an already-built binary over a seeded database (demo
# district + an admin whose bearer token goes with every request). Builds nothing.
#
# Checks: not_a_server_error (no 5xx), status_code_conformance (every status answered is
# documented for its operation) and response_schema_conformance (documented bodies match).
#
# Usage:
#   tests/clients/run-schema-fuzz.sh                 # SQLite in a fresh temporary data dir
#   tests/clients/run-schema-fuzz.sh postgres        # a fresh PostgreSQL database created from
#                                                    #   FOODCHECK_TEST_POSTGRES_URL (admin URL), dropped afterwards
#   tests/clients/run-schema-fuzz.sh [sqlite|postgres] -- <extra schemathesis args>
#                                                    # e.g. -- --include-path-regex '^/api/v1/users'
#
# Environment:
#   FOODCHECK_BIN                 server binary (default: <repo>/target/debug/foodcheck)
#   FOODCHECK_TEST_POSTGRES_URL   admin URL for `postgres` mode, e.g. postgres://postgres@127.0.0.1:5432/postgres
#   FOODCHECK_FUZZ_EXAMPLES       test cases per operation and phase (default 30)
#   FOODCHECK_FUZZ_SEED           generator seed (default 9: the same run every time)
#   FOODCHECK_KEEP=1              keep the temporary data dir (server log, SQLite file) afterwards
#   PYTHON                        the python that creates tests/clients/schema-fuzz/.venv (default python3)
#
# Exit status: 0 if schemathesis found nothing, 1 if it found a failure, 2 for a set-up problem.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
harness="$here/schema-fuzz"
bin=${FOODCHECK_BIN:-$root/target/debug/foodcheck}
spec="$root/api-spec/openapi.json"

mode=sqlite
if [[ $# -gt 0 && $1 != -- ]]; then
  mode=$1
  shift
fi
if [[ $# -gt 0 && $1 == -- ]]; then shift; fi
case "$mode" in
  sqlite | postgres) ;;
  *)
    echo "usage: $0 [sqlite|postgres] [-- schemathesis args]" >&2
    exit 2
    ;;
esac

die() {
  echo "run-schema-fuzz: $*" >&2
  exit 2
}

[[ -x $bin ]] || die "no server binary at $bin (run \`cargo build\` first, or set FOODCHECK_BIN)"
[[ -f $spec ]] || die "no $spec"
command -v curl >/dev/null || die "curl is required"
python=${PYTHON:-python3}
command -v "$python" >/dev/null || die "$python is required (for the venv with schemathesis)"

data_dir=$(mktemp -d "${TMPDIR:-/tmp}/foodcheck-fuzz.XXXXXX")
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
    echo "run-schema-fuzz: kept $data_dir (server log: $data_dir/server.log)" >&2
  else
    rm -rf "$data_dir"
  fi
}
trap 'cleanup' EXIT
trap 'exit 130' INT TERM

# Only what this script sets: no FOODCHECK_* of the caller's shell leaks into the server.
for v in $(env | sed -n 's/^\(FOODCHECK_[A-Z0-9_]*\)=.*/\1/p'); do
  case $v in
    FOODCHECK_BIN | FOODCHECK_TEST_POSTGRES_URL | FOODCHECK_FUZZ_* | FOODCHECK_KEEP) ;;
    *) unset "$v" ;;
  esac
done

if [[ $mode == postgres ]]; then
  [[ -n ${FOODCHECK_TEST_POSTGRES_URL:-} ]] || die "postgres mode needs FOODCHECK_TEST_POSTGRES_URL (an admin URL)"
  command -v psql >/dev/null || die "psql is required for postgres mode"
  pg_db="fc_fuzz_$$_$RANDOM"
  psql "$FOODCHECK_TEST_POSTGRES_URL" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $pg_db" ||
    { pg_db=; die "could not create database from FOODCHECK_TEST_POSTGRES_URL"; }
  # Same URL, other database (the path).
  FOODCHECK_DATABASE_URL=$("$python" -c '
import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))
' "$FOODCHECK_TEST_POSTGRES_URL" "$pg_db")
  export FOODCHECK_DATABASE_URL
  echo "run-schema-fuzz: PostgreSQL database $pg_db"
else
  echo "run-schema-fuzz: SQLite in $data_dir"
fi

# The fuzzer first (no server needed).
venv="$harness/.venv"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$harness/requirements.txt" | cut -d' ' -f1)
if [[ ! -x $venv/bin/python || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  [[ -x $venv/bin/python ]] || "$python" -m venv "$venv" || die "could not create $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$harness/requirements.txt" ||
    die "pip install -r requirements.txt failed"
  echo "$want" >"$stamp"
fi

# A config file in the caller's working directory must not leak in.
cd "$data_dir"
# Tokens outlive the run; the fuzzer's wrong logins must not lock anything it needs.
export FOODCHECK_ACCESS_TOKEN_TTL_SECS=7200

admin_user=fuzz-admin
admin_password=fuzz-admin-password-123
"$bin" --data-dir "$data_dir" demo-data --establishments 200 >"$data_dir/demo-data.log" 2>&1 ||
  { tail -n 20 "$data_dir/demo-data.log" >&2; die "demo-data failed"; }
printf '%s\n' "$admin_password" |
  "$bin" --data-dir "$data_dir" user add --username "$admin_user" --role admin --name "Fuzz admin" \
    >"$data_dir/user-add.log" 2>&1 ||
  { cat "$data_dir/user-add.log" >&2; die "could not create the admin with the CLI"; }

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
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
echo "run-schema-fuzz: server on $url (pid $server_pid)"

login=$(curl -s "$url/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"username\":\"$admin_user\",\"password\":\"$admin_password\",\"device_id\":\"schema-fuzz\"}")
token=$(printf '%s' "$login" | "$python" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') ||
  die "login failed: $login"

set +e
PYTHONPATH="$harness" SCHEMATHESIS_HOOKS=hooks "$venv/bin/schemathesis" run "$spec" \
  --url "$url" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing \
  --max-examples "${FOODCHECK_FUZZ_EXAMPLES:-30}" \
  --seed "${FOODCHECK_FUZZ_SEED:-9}" \
  --workers 2 \
  --no-color \
  --report junit --report-dir "$data_dir/report" \
  "$@"
fuzz_status=$?
set -e

if [[ $fuzz_status -eq 0 ]]; then
  status=0
  echo "run-schema-fuzz: no server errors, no undocumented statuses"
else
  status=1
  echo "run-schema-fuzz: FAILED (schemathesis exit $fuzz_status); last server log lines:" >&2
  grep -i 'error\|panic' "$data_dir/server.log" | tail -n 20 >&2 || true
fi
exit "$status"
