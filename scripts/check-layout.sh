#!/usr/bin/env bash
# The layout's invariants (ARCHITECTURE.md, "Invariants"), checked with `cargo tree`:
# - the pure crates, and the AWS-capable ones without their `aws` feature, pull in neither tokio
#   nor any aws-* crate;
# - the Lambda carries neither clap nor indicatif.
# Prints what breaks an invariant and exits 1; cheap (no compilation).
set -euo pipefail
cd "$(dirname "$0")/.."

failed=0
deps() { cargo tree --locked -e normal --prefix none --no-dedupe "$@" | awk '{print $1}' | sort -u; }

for crate in trailhound-event trailhound-context trailhound-finding trailhound-rules trailhound-store trailhound-output \
             trailhound-source trailhound-inventory trailhound-hunt; do
    found=$(deps -p "$crate" | grep -E '^(tokio|aws-)' || true)
    if [ -n "$found" ]; then
        echo "$crate (without aws) depends on: $(echo $found)"
        failed=1
    else
        echo "ok: $crate has no tokio and no aws-* crate"
    fi
done

found=$(deps -p trailhound-lambda | grep -E '^(clap|indicatif)$' || true)
if [ -n "$found" ]; then
    echo "trailhound-lambda depends on: $(echo $found)"
    failed=1
else
    echo "ok: trailhound-lambda has neither clap nor indicatif"
fi

found=$(deps -p trailhound-cli --no-default-features | grep -E '^aws-' || true)
if [ -n "$found" ]; then
    echo "trailhound-cli --no-default-features depends on: $(echo $found)"
    failed=1
else
    echo "ok: trailhound-cli --no-default-features has no aws-* crate"
fi
exit "$failed"
