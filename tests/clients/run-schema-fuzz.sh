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

fc_name=schema-fuzz
# shellcheck source=server.sh
. "$here/server.sh"
[[ -f $spec ]] || die "no $spec"
python=${PYTHON:-python3}
command -v "$python" >/dev/null || die "$python is required (for the venv with schemathesis)"

# Only what this script sets: no FOODCHECK_* of the caller's shell leaks into the server.
for v in $(env | sed -n 's/^\(FOODCHECK_[A-Z0-9_]*\)=.*/\1/p'); do
  case $v in
    FOODCHECK_BIN | FOODCHECK_TEST_POSTGRES_URL | FOODCHECK_FUZZ_* | FOODCHECK_KEEP) ;;
    *) unset "$v" ;;
  esac
done

fc_database "$mode"

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
fc_admin "$admin_user" "$admin_password" "Fuzz admin"
fc_start_server

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
