#!/usr/bin/env bash
# Renders the printable result record (监督检查结果记录表) of a REAL foodcheck server in headless
# Chromium (tests/clients/record: playwright-core driving Debian's /usr/bin/chromium, no browser
# download): checks the text, prints an A4 PDF and a screenshot into target/record/. Builds
# nothing.
#
# Usage:
#   tests/clients/run-record-tests.sh              # SQLite in a fresh temporary data dir
#   tests/clients/run-record-tests.sh postgres     # a fresh PostgreSQL database created from
#                                                  #   FOODCHECK_TEST_POSTGRES_URL (admin URL), dropped afterwards
#
# Environment:
#   FOODCHECK_BIN                 server binary (default: <repo>/target/debug/foodcheck)
#   FOODCHECK_TEST_POSTGRES_URL   admin URL for `postgres` mode
#   CHROMIUM_BIN                  the browser (default /usr/bin/chromium; Debian: apt-get install -y chromium
#                                 fonts-wqy-microhei, the font for the Chinese text)
#   FOODCHECK_KEEP=1              keep the temporary data dir afterwards
#
# Exit status: the test run's (2 for a set-up problem).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
harness="$here/record"
bin=${FOODCHECK_BIN:-$root/target/debug/foodcheck}

mode=${1:-sqlite}
case "$mode" in
  sqlite | postgres) ;;
  *)
    echo "usage: $0 [sqlite|postgres]" >&2
    exit 2
    ;;
esac

command -v node >/dev/null || { echo "run-record-tests: node (>= 20) is required" >&2; exit 2; }
chromium_bin=${CHROMIUM_BIN:-/usr/bin/chromium}
[[ -x $chromium_bin ]] || { echo "run-record-tests: no Chromium at $chromium_bin (apt-get install -y chromium)" >&2; exit 2; }
# Without a CJK font the page renders as boxes and the screenshot shows nothing readable.
if command -v fc-list >/dev/null && [[ -z $(fc-list :lang=zh family 2>/dev/null) ]]; then
  echo "run-record-tests: no Chinese font (apt-get install -y fonts-wqy-microhei or fonts-noto-cjk)" >&2
  exit 2
fi
command -v python3 >/dev/null || { echo "run-record-tests: python3 is required" >&2; exit 2; }
fc_name=record-tests
# shellcheck source=server.sh
. "$here/server.sh"

admin_user=admin
admin_password=admin-password-123
fc_database "$mode"
fc_admin "$admin_user" "$admin_password" "Record harness admin"
# The QR code's public page: a base URL with a path, to see it printed whole.
export FOODCHECK_PUBLIC_BASE_URL=https://scjg.example.gov.cn/baodi
fc_start_server

cd "$harness"
if [[ ! -d node_modules/playwright-core ]]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund || die "npm ci failed"
fi

export FOODCHECK_URL=$url FOODCHECK_ADMIN_USERNAME=$admin_user FOODCHECK_ADMIN_PASSWORD=$admin_password
export FOODCHECK_TEST_DATA_DIR=$data_dir CHROMIUM_BIN=$chromium_bin FOODCHECK_RECORD_OUT=$root/target/record/$mode
set +e
npm test --silent
status=$?
set -e

if [[ $status -ne 0 ]]; then
  echo "run-record-tests: FAILED (exit $status); last server log lines:" >&2
  tail -n 30 "$data_dir/server.log" >&2
fi
exit "$status"
