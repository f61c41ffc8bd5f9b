#!/usr/bin/env bash
# instructions.sh - compare trailhound builds by the instructions a whole-pack hunt executes,
# counted by valgrind's cachegrind. Timings on shared 2-core machines move by a quarter from run
# to run; instruction counts of the same binary on the same files agree to 0.01 %, so a change
# of 1 % is visible. They are not time (cache misses, branch mispredictions and contention are
# not counted): confirm a change with scripts/bench.sh before claiming speed.
#
#   scripts/instructions.sh BIN [BIN...]
#
# Each BIN hunts the same files with the built-in pack (`hunt FILES --format jsonl`), under
# cachegrind without cache simulation; the script prints each build's instruction count, its
# ratio to the first, and whether its findings are those of the first, byte for byte.
#
# Environment:
#   INSTRUCTIONS_FILES  how many files (default 500): the first ones, in path order, of the
#                       CloudTrail (not digest) files under INSTRUCTIONS_CORPUS
#   INSTRUCTIONS_CORPUS default target/bench-corpus/large (scripts/bench.sh generates it)
#   TRAILHOUND_ARGS     extra arguments for `trailhound hunt` (word-split)

set -euo pipefail

die() { echo "instructions.sh: $*" >&2; exit 2; }

[[ $# -ge 1 ]] || die "usage: scripts/instructions.sh BIN [BIN...]"
command -v valgrind >/dev/null 2>&1 || die "valgrind is not installed (apt-get install valgrind)"
CORPUS="${INSTRUCTIONS_CORPUS:-target/bench-corpus/large}"
COUNT="${INSTRUCTIONS_FILES:-500}"
[[ -d "$CORPUS" ]] || die "$CORPUS not found: run scripts/bench.sh once to generate it"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
mkdir "$TMP/files"
# (Process substitution: `head` stopping early must not fail the script under pipefail.)
mapfile -t files < <(find "$CORPUS" -path '*/CloudTrail/*' -name '*.json.gz' | sort | head -n "$COUNT")
[[ ${#files[@]} -gt 0 ]] || die "no CloudTrail files under $CORPUS"
cp "${files[@]}" "$TMP/files/"
echo "$(ls "$TMP/files" | wc -l) files, $(du -sh "$TMP/files" | cut -f1) of gzip, from $CORPUS" >&2

first=""
n=0
for bin in "$@"; do
    [[ -x "$bin" ]] || die "$bin is not an executable"
    n=$((n + 1))
    # Exit 1 is findings at or above --fail-on: a successful hunt.
    status=0
    # shellcheck disable=SC2086
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
        "$bin" hunt "$TMP/files" --format jsonl -o "$TMP/findings.$n" ${TRAILHOUND_ARGS:-} \
        2> "$TMP/valgrind.$n" || status=$?
    [[ $status -le 1 ]] || die "$bin exited $status under valgrind: $(tail -3 "$TMP/valgrind.$n")"
    count=$(grep -E 'I +refs:' "$TMP/valgrind.$n" | sed -E 's/.*I +refs: +//; s/,//g')
    [[ -n "$count" ]] || die "no instruction count for $bin"
    if [[ -z "$first" ]]; then
        first=$count
        same="(reference)"
    elif cmp -s "$TMP/findings.1" "$TMP/findings.$n"; then
        same="same findings"
    else
        same="FINDINGS DIFFER from the first build"
    fi
    awk -v bin="$bin" -v c="$count" -v f="$first" -v same="$same" \
        'BEGIN { printf "%-50s %15.0f instructions  %.4f of the first  %s\n", bin, c, c / f, same }'
done
