#!/usr/bin/env bash
# Fuzz trailhound's untrusted-input parsers with libFuzzer (cargo-fuzz), on the STABLE toolchain.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Installs cargo-fuzz (pinned) if it is missing, builds every target in fuzz/ without a sanitizer
# (`-s none`: only stable codegen flags, no nightly needed), then runs each target for
# SECONDS_PER_TARGET seconds (default 60), one after the other. Exits non-zero if any target
# crashed, panicked, ran out of memory or hung (an input slower than FUZZ_TIMEOUT seconds), and
# prints the crashing input's path and bytes. The other targets still run.
#
# Targets (fuzz/fuzz_targets/): json_records, gzip_decode, archives, rules_parse, rules_eval, rules_state, reasons,
# where_condition. Seeds: fuzz/seeds/TARGET (committed) and fuzz/regressions/TARGET (inputs that
# once crashed, kept as seeds); dictionaries of JSON and YAML/Sigma tokens in fuzz/dicts/. New inputs found go to fuzz/corpus/TARGET (git-ignored), crashes to
# fuzz/artifacts/TARGET/.
#
# Longer runs: give more seconds, one target, or call cargo fuzz directly, e.g.
#   scripts/fuzz.sh 3600                       # an hour per target
#   scripts/fuzz.sh 0 rules_parse              # 0 = no time limit (until a crash or Ctrl-C)
#   cargo fuzz run -s none rules_parse fuzz/corpus/rules_parse fuzz/seeds/rules_parse -- -jobs=2 -workers=2
# The corpus in fuzz/corpus/ is kept between runs, so each run continues where the last one ended.
# Reproduce a crash: cargo fuzz run -s none TARGET fuzz/artifacts/TARGET/crash-...
#
# Environment: FUZZ_TIMEOUT (seconds per input before it counts as a hang, default 20),
# FUZZ_RSS_LIMIT_MB (default 2048), FUZZ_TARGET_DIR (build folder; default $CARGO_TARGET_DIR/fuzz
# or fuzz/target: never the workspace's own, whose artifacts have other flags).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
SECONDS_PER_TARGET="${1:-60}"
shift $(( $# > 0 ? 1 : 0 ))
ALL_TARGETS=(json_records gzip_decode archives rules_parse rules_eval rules_state reasons where_condition)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")
TIMEOUT="${FUZZ_TIMEOUT:-20}"
RSS_LIMIT_MB="${FUZZ_RSS_LIMIT_MB:-2048}"
if [ -n "${FUZZ_TARGET_DIR:-}" ]; then
    target_dir="$FUZZ_TARGET_DIR"
elif [ -n "${CARGO_TARGET_DIR:-}" ]; then
    target_dir="$CARGO_TARGET_DIR/fuzz"
else
    target_dir="$PWD/fuzz/target"
fi
# cargo fuzz runs inside fuzz/: make the folder absolute.
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac

case "$SECONDS_PER_TARGET" in
    '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2 ;;
esac

say() { printf '\n--- %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

say "cargo-fuzz $CARGO_FUZZ_VERSION"
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi
cargo fuzz --version
rustc --version

say "build (no sanitizer, stable toolchain) into $target_dir"
cargo fuzz build -s none --target-dir "$target_dir"

# Prints an input's path and its bytes as an escaped string (the first 2,000 bytes).
show_input() {
    echo "crashing input: $1 ($(wc -c < "$1") bytes)"
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); print("bytes:", repr(d[:2000]) + (" ..." if len(d) > 2000 else ""))' "$1"
    else
        head -c 2000 "$1" | od -An -c
    fi
}

failed=()
summary=()
for target in "${TARGETS[@]}"; do
    say "fuzz $target for ${SECONDS_PER_TARGET}s"
    corpus="fuzz/corpus/$target"
    artifacts="fuzz/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    seeds=("$PWD/fuzz/seeds/$target")
    [ -d "fuzz/regressions/$target" ] && seeds+=("$PWD/fuzz/regressions/$target")
    case "$target" in
        rules_parse | reasons) dict=(-dict="$PWD/fuzz/dicts/yaml.dict") ;;
        json_records | rules_eval | rules_state | where_condition) dict=(-dict="$PWD/fuzz/dicts/json.dict") ;;
        *) dict=() ;;
    esac
    log="$target_dir/fuzz-$target.log"
    mkdir -p "$target_dir"
    before="$(ls -A "$artifacts")"
    status=0
    cargo fuzz run -s none --target-dir "$target_dir" "$target" "$PWD/$corpus" "${seeds[@]}" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_LIMIT_MB" \
        -artifact_prefix="$PWD/$artifacts/" -print_final_stats=1 "${dict[@]}" > "$log" 2>&1 || status=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
    line="$target: ${execs:-?} runs, ${rate:-?} exec/s, corpus $(ls -A "$corpus" | wc -l) inputs"
    if [ "$status" -ne 0 ]; then
        line="$line: FAILED (exit $status)"
        failed+=("$target")
        # What libFuzzer said: the panic message and its location, the stack, the input's path.
        # (cargo fuzz's own report, with the input as a list of numbers, is left out: see the log.)
        awk '/Output of `std::fmt::Debug`/ { exit } /panicked at|ERROR: libFuzzer|deadly signal|SUMMARY: libFuzzer|Test unit written/ { shown = 1 } shown' "$log" | head -n 60
        for input in $(ls -A "$artifacts"); do
            case "$before" in *"$input"*) continue ;; esac
            show_input "$PWD/$artifacts/$input"
        done
        echo "full log: $log"
    fi
    echo "$line"
    summary+=("$line")
done

say "summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzzing found crashes in: ${failed[*]} (inputs above, in fuzz/artifacts/)"
    exit 1
fi
echo "no crash in ${#TARGETS[@]} targets"
