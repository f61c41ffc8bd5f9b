#!/usr/bin/env bash
# bench-s3.sh - throughput of `trailhound hunt s3://` against moto's S3 on loopback, next to
# the same files hunted from disk; then `trailhound verify` of the same bucket (its digests signed
# with the tests' key, tests/fixtures/digest-signing) next to `verify` of the files on disk.
#
#   scripts/bench-s3.sh
#
# Environment:
#   BENCH_S3_EVENTS   events in the generated corpus          (default 200000)
#   BENCH_S3_DIR      where the corpus lives / is generated   (default target/bench-s3-corpus)
#   BENCH_NO_BUILD=1  use the existing target/release/trailhound
#   BENCH_CONCURRENCY --concurrency of the S3 read            (default 16)
#   TRAILHOUND_BIN    the binary to measure                   (default target/release/trailhound)
#
# Needs the virtualenv with moto (.venv, as .ci/run makes it). moto is a Python emulator: the
# figures are what trailhound gets from it here, a floor for real S3, not a measure of S3.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
EVENTS="${BENCH_S3_EVENTS:-200000}"
DIR="${BENCH_S3_DIR:-target/bench-s3-corpus}"
CONCURRENCY="${BENCH_CONCURRENCY:-16}"
BIN="${TRAILHOUND_BIN:-$ROOT/target/release/trailhound}"
[ -x .venv/bin/python ] || { echo "bench-s3: no .venv with moto (python3 -m venv .venv && .venv/bin/pip install 'moto[server]')" >&2; exit 2; }

if [ ! -f "$DIR/manifest.json" ]; then
    echo "bench-s3: generating $EVENTS events in $DIR" >&2
    python3 scripts/gen-corpus.py --out "$DIR" --events "$EVENTS" --seed 7 --accounts 3 --org o-bench12345 >&2
fi
if [ "${BENCH_NO_BUILD:-}" != 1 ]; then
    cargo build --release --locked -p trailhound-cli >&2
fi

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
WORK=$(mktemp -d)
trap 'kill "$MOTO" 2>/dev/null || true; rm -rf "$WORK"' EXIT
.venv/bin/python crates/trailhound-cli/tests/support/moto_server.py "$PORT" > "$WORK/moto.out" 2>/dev/null &
MOTO=$!
for _ in $(seq 100); do grep -q ready "$WORK/moto.out" 2>/dev/null && break; sleep 0.1; done
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
ENDPOINT="http://127.0.0.1:$PORT"

echo "bench-s3: uploading $DIR to moto" >&2
.venv/bin/python - "$DIR" "$ENDPOINT" tests/fixtures/digest-signing/test-key.pk8 "$WORK/keys.json" <<'PY'
import base64, concurrent.futures, gzip, hashlib, json, os, sys
import boto3
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
root, endpoint, key_file, keys_out = sys.argv[1:5]
key = serialization.load_der_private_key(open(key_file, "rb").read(), password=None)
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
s3.create_bucket(Bucket="bench-trail")
paths = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(root, "AWSLogs")) for f in fs]
fingerprints = set()
def put(path):
    with open(path, "rb") as f:
        body = f.read()
    extra = {}
    if "_CloudTrail-Digest_" in path:
        # Signed as CloudTrail signs a digest, with the tests' key in place of CloudTrail's.
        content = gzip.decompress(body)
        d = json.loads(content)
        fingerprints.add(d["digestPublicKeyFingerprint"])
        message = "%s\n%s/%s\n%s\n%s" % (d["digestEndTime"], d["digestS3Bucket"], d["digestS3Object"],
                                         hashlib.sha256(content).hexdigest(), d["previousDigestSignature"] or "null")
        signature = key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256()).hex()
        extra = {"Metadata": {"signature": signature, "signature-algorithm": "SHA256withRSA"}}
    s3.put_object(Bucket="bench-trail", Key=os.path.relpath(path, root), Body=body, **extra)
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    list(pool.map(put, paths))
public = base64.b64encode(key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)).decode()
with open(keys_out, "w") as f:
    json.dump({"PublicKeyList": [{"Value": public, "Fingerprint": fp} for fp in sorted(fingerprints)]}, f)
print(f"bench-s3: {len(paths)} objects uploaded", file=sys.stderr)
PY

run() { # label, then the hunt's arguments
    local label=$1; shift
    /usr/bin/time -f '%e %M' -o "$WORK/time" "$BIN" hunt "$@" --format jsonl > "$WORK/findings" 2> "$WORK/log"
    read -r elapsed rss < "$WORK/time"
    local records objects
    records=$(grep -o '[0-9,]* records' "$WORK/log" | head -1 | tr -d ', records')
    objects=$(grep -o '[0-9,]* files read' "$WORK/log" | head -1 | tr -d ', filesread')
    python3 - "$label" "$elapsed" "$rss" "$records" "$objects" "$(wc -l < "$WORK/findings")" <<'PY'
import sys
label, elapsed, rss, records, objects, findings = sys.argv[1:]
e = float(elapsed)
print(f"| {label} | {e:.2f} | {int(objects):,} | {int(objects)/e:,.0f} | {int(records):,} | {int(records)/e:,.0f} | {int(rss)//1024} MB | {findings} |")
PY
}
echo "| source | elapsed s | objects | objects/s | events | events/s | peak RSS | findings |"
echo "|---|---|---|---|---|---|---|---|"
run "disk ($DIR)" "$DIR"
run "s3:// on moto, --concurrency $CONCURRENCY" "s3://bench-trail" --endpoint-url "$ENDPOINT" --concurrency "$CONCURRENCY"
grep 's3://bench-trail/:' "$WORK/log" >&2 || true

verify() { # label, then verify's arguments
    local label=$1; shift
    /usr/bin/time -f '%e %M' -o "$WORK/time" "$BIN" verify "$@" --format json > "$WORK/verified" 2> "$WORK/log" || true
    read -r elapsed rss < "$WORK/time"
    python3 - "$label" "$elapsed" "$rss" "$WORK/verified" <<'PY'
import json, sys
label, elapsed, rss, path = sys.argv[1:]
v = json.load(open(path))
d, l = v["digests"], v["logs"]
print(f"| {label} | {float(elapsed):.2f} | {d['found']} | {d['signatures_valid']} | {l['listed']} | {l['valid']} | {l['local']} | {len(v['problems'])} | {int(rss)//1024} MB |")
PY
}
echo
echo "| verify | elapsed s | digests | signatures valid | logs listed | logs valid | log files seen | problems | peak RSS |"
echo "|---|---|---|---|---|---|---|---|---|"
verify "disk ($DIR)" "$DIR"
verify "s3:// on moto, --public-keys" "s3://bench-trail" --endpoint-url "$ENDPOINT" --public-keys "$WORK/keys.json"
