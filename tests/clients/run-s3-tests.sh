#!/usr/bin/env bash
# Runs the real tus clients against the server with photo storage on S3-compatible object
# storage: moto's S3 server (PyPI `moto[server]`) on a local port, a fresh bucket, and
# FOODCHECK_STORAGE_URL=s3://<bucket>/<prefix>. Checks afterwards that the originals and the
# renditions are in the bucket under the prefix.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/tests/clients/tus/.venv-s3"
if [ ! -x "$venv/bin/moto_server" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "moto[server]==5.*" "boto3==1.*"
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/moto_server" -p "$port" > /tmp/foodcheck-moto-$$.log 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null || true' EXIT
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export AWS_ENDPOINT="http://127.0.0.1:$port" AWS_ALLOW_HTTP=true
bucket="fc-photos-$$"
for _ in $(seq 1 50); do
  "$venv/bin/python" -c "import boto3; boto3.client('s3', endpoint_url='$AWS_ENDPOINT').create_bucket(Bucket='$bucket')" 2>/dev/null && break
  sleep 0.2
done
FOODCHECK_STORAGE_URL="s3://$bucket/district/photos" bash "$root/tests/clients/run-tus-tests.sh" "$@"
"$venv/bin/python" - <<PY
import boto3
r = boto3.client("s3", endpoint_url="$AWS_ENDPOINT").list_objects_v2(Bucket="$bucket")
kinds = sorted({o["Key"].split("/")[2] for o in r.get("Contents", []) if o["Key"].startswith("district/photos/")})
assert kinds == ["blobs", "renditions"], f"unexpected objects in the bucket: {kinds}"
print(f"run-s3-tests: {r['KeyCount']} objects in s3://$bucket/district/photos (blobs and renditions)")
PY
