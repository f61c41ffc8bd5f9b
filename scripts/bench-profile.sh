#!/usr/bin/env bash
# bench-profile.sh - what the release profile's LTO and codegen-units buy at run time, against
# what they cost at build time. Builds the SDK-free `trailhound` (the hunt's hot path is the same
# with or without the `aws` feature) once per profile variant, each into an empty target
# directory, then hunts one generated corpus with every binary in turn (interleaved, so machine
# noise hits all variants alike) and prints each variant's build time and median hunt time, and
# its hunt time as a ratio to the reference (the profile in Cargo.toml).
#
#   scripts/bench-profile.sh
#
# Environment:
#   PROFILE_EVENTS   events in the corpus                   (default 1000000)
#   PROFILE_RUNS     timed hunts per variant; median shown  (default 5)
#   PROFILE_DIR      scratch folder for targets and corpus  (default target/bench-profile)
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS="${PROFILE_EVENTS:-1000000}"
RUNS="${PROFILE_RUNS:-5}"
DIR="${PROFILE_DIR:-target/bench-profile}"
mkdir -p "$DIR"

# name  lto  codegen-units ("reference" is what Cargo.toml sets)
VARIANTS=(
    "reference thin 4"
    "no-lto false 16"
    "fat-lto fat 1"
)

if [ ! -f "$DIR/corpus/manifest.json" ]; then
    echo "corpus: $EVENTS events" >&2
    python3 scripts/gen-corpus.py --out "$DIR/corpus" --events "$EVENTS" --seed 42 >&2
fi

declare -A BUILD_SECONDS
for variant in "${VARIANTS[@]}"; do
    read -r name lto units <<<"$variant"
    target="$DIR/target-$name"
    if [ ! -x "$target/release/trailhound" ]; then
        rm -rf "$target"
        start=$(date +%s.%N)
        CARGO_TARGET_DIR="$target" CARGO_PROFILE_RELEASE_LTO="$lto" CARGO_PROFILE_RELEASE_CODEGEN_UNITS="$units" \
            cargo build --release --locked -q -p trailhound-cli --no-default-features
        end=$(date +%s.%N)
        echo "$end - $start" | bc > "$target/build-seconds"
    fi
    BUILD_SECONDS[$name]=$(cat "$target/build-seconds")
done

# One untimed hunt per binary warms the page cache; then RUNS rounds, every variant once a round.
declare -A TIMES
for variant in "${VARIANTS[@]}"; do
    read -r name _ _ <<<"$variant"
    "$DIR/target-$name/release/trailhound" hunt "$DIR/corpus" -q --format jsonl > /dev/null
done
for _ in $(seq "$RUNS"); do
    for variant in "${VARIANTS[@]}"; do
        read -r name _ _ <<<"$variant"
        start=$(date +%s.%N)
        "$DIR/target-$name/release/trailhound" hunt "$DIR/corpus" -q --format jsonl > "$DIR/findings-$name.jsonl"
        end=$(date +%s.%N)
        TIMES[$name]="${TIMES[$name]:-} $(echo "$end - $start" | bc)"
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
reference=$(echo "${TIMES[reference]}" | median)
printf '%-10s %-6s %-4s %12s %12s %10s %10s\n' variant lto cgu "build (s)" "hunt (s)" "hunt/ref" "size (MB)"
for variant in "${VARIANTS[@]}"; do
    read -r name lto units <<<"$variant"
    hunt=$(echo "${TIMES[$name]}" | median)
    size=$(stat -c %s "$DIR/target-$name/release/trailhound")
    printf '%-10s %-6s %-4s %12.1f %12.3f %10.2f %10.1f\n' "$name" "$lto" "$units" "${BUILD_SECONDS[$name]}" \
        "$hunt" "$(echo "$hunt / $reference" | bc -l)" "$(echo "$size / 1000000" | bc -l)"
    cmp -s "$DIR/findings-reference.jsonl" "$DIR/findings-$name.jsonl" || echo "  $name: findings differ from the reference!"
done
echo "corpus: $(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["events"], "events,", m["files"], "files,", round(m["uncompressed_bytes"]/1e6), "MB of JSON")' "$DIR/corpus/manifest.json")"
