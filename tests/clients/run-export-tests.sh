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
# openpyxl in a venv of its own (tests/clients/exports/.venv), unless the system has it.
python=python3
if ! python3 -c 'import openpyxl' 2>/dev/null; then
  venv="$here/exports/.venv"
  if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import openpyxl' 2>/dev/null; then
    python3 -m venv "$venv" || { echo "python3 -m venv failed (apt-get install -y python3-venv)" >&2; exit 2; }
    "$venv/bin/pip" install -q openpyxl || { echo "pip install openpyxl failed" >&2; exit 2; }
  fi
  python="$venv/bin/python"
fi

dir=${1:-$(mktemp -d)}
mkdir -p "$dir"
cd "$root"
FOODCHECK_EXPORT_FIXTURES_DIR="$dir" flock /tmp/cargo.lock \
  cargo test --quiet --test export_readers write_fixtures
"$python" "$here/exports/check.py" "$dir"
