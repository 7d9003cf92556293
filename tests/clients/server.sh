# Shared by the run-*-tests.sh scripts (sourced, not run): a temporary data directory, an optional
# fresh PostgreSQL database, an admin made with the CLI, and a REAL foodcheck server on a free
# port, all removed again on exit. The caller sets `fc_name` (for messages and file names) and
# `bin` (the server binary) before sourcing, and `status` (its exit status) before exiting.
#
#   fc_database MODE               sqlite: SQLite in the data dir; postgres: a fresh database from
#                                  FOODCHECK_TEST_POSTGRES_URL, dropped on exit (sets and exports
#                                  FOODCHECK_DATABASE_URL). With fc_allow_existing=1, sqlite mode
#                                  with FOODCHECK_DATABASE_URL set runs against that database as is
#                                  (not emptied), and admin_user gets a unique name.
#   fc_admin USER PASSWORD NAME    creates an admin account with the CLI
#   fc_start_server                starts the server and waits for /readyz (sets url, server_pid)

die() {
  echo "$fc_name: $*" >&2
  exit 2
}

[[ -x $bin ]] || die "no server binary at $bin (run \`cargo build\` first, or set FOODCHECK_BIN)"
command -v curl >/dev/null || die "curl is required"

data_dir=$(mktemp -d "${TMPDIR:-/tmp}/foodcheck-$fc_name.XXXXXX")
server_pid=
pg_db=
status=2

fc_cleanup() {
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
    echo "$fc_name: kept $data_dir (server log: $data_dir/server.log)" >&2
  else
    rm -rf "$data_dir"
  fi
}
trap 'fc_cleanup' EXIT
trap 'exit 130' INT TERM

fc_database() {
  if [[ $1 == postgres ]]; then
    [[ -n ${FOODCHECK_TEST_POSTGRES_URL:-} ]] || die "postgres mode needs FOODCHECK_TEST_POSTGRES_URL (an admin URL)"
    command -v psql >/dev/null || die "psql is required for postgres mode"
    pg_db="fc_${fc_name//-/_}_$$_$RANDOM"
    psql "$FOODCHECK_TEST_POSTGRES_URL" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $pg_db" ||
      { pg_db=; die "could not create database from FOODCHECK_TEST_POSTGRES_URL"; }
    # Same URL, other database (the last path segment; a query string is kept).
    local base=${FOODCHECK_TEST_POSTGRES_URL%%\?*} query=
    [[ $FOODCHECK_TEST_POSTGRES_URL == *\?* ]] && query="?${FOODCHECK_TEST_POSTGRES_URL#*\?}"
    export FOODCHECK_DATABASE_URL="${base%/*}/$pg_db$query"
    echo "$fc_name: PostgreSQL database $pg_db"
  elif [[ ${fc_allow_existing:-} == 1 && -n ${FOODCHECK_DATABASE_URL:-} ]]; then
    export FOODCHECK_DATABASE_URL
    admin_user="$fc_name-admin-$(date +%s)-$$"
    echo "$fc_name: using FOODCHECK_DATABASE_URL as is (admin $admin_user)"
  else
    unset FOODCHECK_DATABASE_URL
    echo "$fc_name: SQLite in $data_dir"
  fi
}

fc_admin() {
  printf '%s\n' "$2" |
    (cd "$data_dir" && "$bin" --data-dir "$data_dir" user add --username "$1" --role admin --name "$3") \
      >"$data_dir/user-add.log" 2>&1 ||
    { cat "$data_dir/user-add.log" >&2; die "could not create the admin with the CLI"; }
}

fc_start_server() {
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  url="http://127.0.0.1:$port"
  # From the data dir: a config file in the caller's working directory must not leak in.
  (cd "$data_dir" && NO_COLOR=1 exec "$bin" --data-dir "$data_dir" serve --listen "127.0.0.1:$port") \
    >"$data_dir/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 300); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      tail -n 40 "$data_dir/server.log" >&2
      die "the server exited during start-up"
    fi
    if [[ $(curl -s -o /dev/null -w '%{http_code}' "$url/readyz" || true) == 200 ]]; then
      echo "$fc_name: server $("$bin" --version 2>/dev/null || echo "$bin") on $url (pid $server_pid)"
      return 0
    fi
    sleep 0.2
  done
  tail -n 40 "$data_dir/server.log" >&2
  die "no 200 from $url/readyz within 60 s"
}
