#!/usr/bin/env bash
# Reads every export format with Python's own readers (csv, openpyxl, zipfile, json): the Rust
# test `write_fixtures` writes the files, tests/clients/exports/check.py checks them. Needs
# python3 with openpyxl (pip install openpyxl). Builds the test binary (under /tmp/cargo.lock).
#
# Usage: tests/clients/run-export-tests.sh [DIR]   (default: a fresh temporary directory)
# Exit status: the check's (2 for a set-up problem).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

command -v python3 >/dev/null || { echo "python3 is missing" >&2; exit 2; }
python3 -c 'import openpyxl' 2>/dev/null || { echo "openpyxl is missing: pip install openpyxl" >&2; exit 2; }

dir=${1:-$(mktemp -d)}
mkdir -p "$dir"
cd "$root"
FOODCHECK_EXPORT_FIXTURES_DIR="$dir" flock /tmp/cargo.lock \
  cargo test --quiet --test export_readers write_fixtures
python3 "$here/exports/check.py" "$dir"
