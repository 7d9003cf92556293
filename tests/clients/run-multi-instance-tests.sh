#!/usr/bin/env bash
# Two foodcheck instances over one database behind a round-robin proxy that alternates every
# request between them (no sticky sessions), and the real clients through the proxy:
#   - tus-js-client (tests/clients/tus/tus.test.js) and tuspy (test_tuspy.py) uploading real
#     JPEGs, with uploads interrupted mid-PATCH and resumed (the resume lands on the other
#     instance; the script checks in the proxy's log that uploads were served by both);
#   - the WatermelonDB 0.28 suite (tests/clients/watermelondb) syncing through the proxy.
# Each instance has its own data directory (nothing on disk is shared); they share the
# database, the JWT secret, the audit signing key and the photo storage, moto's S3 server
# (PyPI `moto[server]`) as in run-s3-tests.sh. Builds nothing.
#
# Usage:
#   tests/clients/run-multi-instance-tests.sh postgres   # a fresh database from FOODCHECK_TEST_POSTGRES_URL (default)
#   tests/clients/run-multi-instance-tests.sh sqlite     # both instances on one SQLite file
#
# Environment: FOODCHECK_BIN (default <repo>/target/debug/foodcheck), FOODCHECK_TEST_POSTGRES_URL,
# FOODCHECK_KEEP=1 (keep the data dirs and logs), PYTHON.
# Exit status: 0 if every suite passed, 1 if a test failed, 2 for a set-up problem.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${FOODCHECK_BIN:-$root/target/debug/foodcheck}
mode=${1:-postgres}
case "$mode" in
  sqlite | postgres) ;;
  *)
    echo "usage: $0 [postgres|sqlite]" >&2
    exit 2
    ;;
esac

fc_name=multi-instance-tests
# shellcheck source=server.sh
. "$here/server.sh"
command -v node >/dev/null || die "node (>= 20) is required"
python=${PYTHON:-python3}

pids=()
multi_cleanup() {
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  fc_cleanup
}
trap 'multi_cleanup' EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_ready() { # URL PID LOG
  for _ in $(seq 1 300); do
    kill -0 "$2" 2>/dev/null || { tail -n 40 "$3" >&2; die "$1 exited during start-up"; }
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$1/readyz" || true) == 200 ]] && return 0
    sleep 0.2
  done
  tail -n 40 "$3" >&2
  die "no 200 from $1/readyz within 60 s"
}

admin_user=admin
admin_password=admin-password-123
fc_database "$mode"
if [[ $mode == sqlite ]]; then
  # One database file for both instances (server.sh's default is the first data dir's).
  export FOODCHECK_DATABASE_URL="sqlite://$data_dir/foodcheck.db?mode=rwc"
fi

# Client dependencies (as run-tus-tests.sh and run-sync-tests.sh install them).
cd "$here/tus"
[[ -d node_modules/tus-js-client ]] || npm ci --no-audit --no-fund || die "npm ci (tus) failed"
venv="$here/tus/.venv"
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [[ ! -x $venv/bin/python || $(cat "$venv/.requirements.sha256" 2>/dev/null) != "$want" ]]; then
  [[ -x $venv/bin/python ]] || "$python" -m venv "$venv" || die "could not create $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt ||
    die "pip install -r requirements.txt failed"
  echo "$want" >"$venv/.requirements.sha256"
fi
cd "$here/watermelondb"
[[ -d node_modules/@nozbe/watermelondb && -d node_modules/tus-js-client ]] ||
  npm ci --no-audit --no-fund || die "npm ci (watermelondb) failed"
s3venv="$here/tus/.venv-s3"
if [[ ! -x $s3venv/bin/moto_server ]]; then
  "$python" -m venv "$s3venv" || die "could not create $s3venv"
  "$s3venv/bin/pip" install -q "moto[server]==5.*" "boto3==1.*" || die "pip install moto failed"
fi

# Shared photo storage: moto's S3 server and a fresh bucket.
moto_port=$(free_port)
"$s3venv/bin/moto_server" -p "$moto_port" >"$data_dir/moto.log" 2>&1 &
pids+=($!)
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export AWS_ENDPOINT="http://127.0.0.1:$moto_port" AWS_ALLOW_HTTP=true
bucket="fc-multi-$$"
for _ in $(seq 1 50); do
  "$s3venv/bin/python" -c "import boto3; boto3.client('s3', endpoint_url='$AWS_ENDPOINT').create_bucket(Bucket='$bucket')" 2>/dev/null && break
  sleep 0.2
done
export FOODCHECK_STORAGE_URL="s3://$bucket/photos"

# What the instances share besides the database: the JWT secret and the audit signing key.
export FOODCHECK_JWT_SECRET
FOODCHECK_JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
"$bin" audit key --generate "$data_dir/audit.key" >/dev/null || die "could not generate the audit key"
export FOODCHECK_AUDIT_SIGNING_KEY_FILE="$data_dir/audit.key"

fc_admin "$admin_user" "$admin_password" "Multi-instance harness admin"

# Two instances, each with its own data directory.
upstreams=()
for name in a b; do
  dir="$data_dir/instance-$name"
  mkdir -p "$dir"
  port=$(free_port)
  (cd "$dir" && NO_COLOR=1 exec "$bin" --data-dir "$dir" serve --listen "127.0.0.1:$port") >"$dir/server.log" 2>&1 &
  pids+=($!)
  wait_ready "http://127.0.0.1:$port" "${pids[-1]}" "$dir/server.log"
  upstreams+=("http://127.0.0.1:$port")
  echo "$fc_name: instance $name on http://127.0.0.1:$port (data dir $dir)"
done

proxy_port=$(free_port)
node "$here/multi/proxy.js" "$proxy_port" "${upstreams[@]}" >"$data_dir/proxy.log" 2>&1 &
pids+=($!)
url="http://127.0.0.1:$proxy_port"
for _ in $(seq 1 50); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' "$url/readyz" || true) == 200 ]] && break
  sleep 0.1
done
echo "$fc_name: round-robin proxy on $url"

export FOODCHECK_URL=$url FOODCHECK_ADMIN_USERNAME=$admin_user FOODCHECK_ADMIN_PASSWORD=$admin_password
export FOODCHECK_TUS_PYTHON="$venv/bin/python"
failed=()
set +e
echo "$fc_name: tus-js-client through the proxy"
(cd "$here/tus" && node --test --test-concurrency=1 tus.test.js) || failed+=(tus-js-client)
echo "$fc_name: tuspy through the proxy"
(cd "$here/tus" && "$venv/bin/python" -m pytest -q -rxXs -p no:cacheprovider) || failed+=(tuspy)
echo "$fc_name: WatermelonDB through the proxy"
(cd "$here/watermelondb" && FOODCHECK_TEST_BIN=$bin FOODCHECK_TEST_DATA_DIR="$data_dir/instance-a" npm test --silent) ||
  failed+=(watermelondb)
set -e

# The uploads really went to both instances: for each upload, which instances answered its
# HEAD and PATCH requests, and how many resumes (a HEAD) came to another instance than the
# PATCH before it.
curl -s "$url/__proxy/log" >"$data_dir/proxy-requests.json"
node -e '
  const log = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))
  const byUpload = new Map()
  for (const r of log) {
    const m = /^\/api\/v1\/uploads\/([^/?]+)/.exec(r.path)
    if (!m || !["HEAD", "PATCH"].includes(r.method)) continue
    if (!byUpload.has(m[1])) byUpload.set(m[1], [])
    byUpload.get(m[1]).push(r)
  }
  let both = 0, crossResumes = 0, patchesOk = { 0: 0, 1: 0 }
  for (const reqs of byUpload.values()) {
    if (new Set(reqs.map((r) => r.upstream)).size === 2) both++
    for (let i = 1; i < reqs.length; i++) {
      if (reqs[i].method === "HEAD" && reqs[i - 1].method === "PATCH" && reqs[i].upstream !== reqs[i - 1].upstream) crossResumes++
    }
    for (const r of reqs) if (r.method === "PATCH" && r.status === 204) patchesOk[r.upstream]++
  }
  console.log(`multi-instance-tests: ${log.length} requests; ${byUpload.size} uploads, ${both} served by both instances, ` +
    `${crossResumes} resumes (HEAD after a PATCH) on the other instance; PATCH 204s per instance: ${JSON.stringify(patchesOk)}`)
  if (both < 3 || crossResumes < 1 || !patchesOk[0] || !patchesOk[1]) {
    console.error("multi-instance-tests: uploads did not go through both instances")
    process.exit(1)
  }
' "$data_dir/proxy-requests.json" || failed+=(proxy-log)

status=0
if [[ ${#failed[@]} -gt 0 ]]; then
  status=1
  echo "$fc_name: FAILED: ${failed[*]}; last lines of each instance's log:" >&2
  for name in a b; do
    echo "--- instance $name" >&2
    tail -n 20 "$data_dir/instance-$name/server.log" >&2
  done
else
  echo "$fc_name: all passed ($mode, two instances behind a round-robin proxy)"
fi
exit "$status"
