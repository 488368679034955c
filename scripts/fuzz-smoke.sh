#!/usr/bin/env bash
# Builds every cargo-fuzz target (card-applet-sim/fuzz, reader/fuzz, qr/fuzz) and runs each for a
# short time on its committed corpus (docs/fuzzing.md). Exits non-zero on a crash, leaving the
# crashing input in <crate>/fuzz/artifacts/<target>/. New inputs go to a temporary directory: the
# committed corpora are not changed.
#
#   bash scripts/fuzz-smoke.sh            # FUZZ_SMOKE_SECS=20 per target
#   FUZZ_SMOKE_SECS=5 bash scripts/fuzz-smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${FUZZ_SMOKE_SECS:-20}"
# One target dir for the three fuzz workspaces, so the shared crates build once.
target_dir="$PWD/target/fuzz"
# No sanitizer: the fuzzed code is safe Rust (`forbid(unsafe_code)`); debug assertions and overflow
# checks stay on (cargo-fuzz's default without -O).
flags=(--sanitizer none --target-dir "$target_dir")

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for crate in card-applet-sim reader qr; do
    (cd "$crate" && nice -n 19 cargo +nightly fuzz build "${flags[@]}")
    for target in $(cd "$crate" && cargo +nightly fuzz list); do
        echo "== fuzz smoke: $crate/$target for ${secs}s"
        mkdir -p "$scratch/$target"
        if ! (cd "$crate" && nice -n 19 cargo +nightly fuzz run "${flags[@]}" "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
                -max_total_time="$secs" -timeout=60 -rss_limit_mb=4096 -print_final_stats=1 2>"$scratch/$target.log"); then
            tail -n 60 "$scratch/$target.log"
            echo "fuzz smoke: $crate/$target crashed; the input is in $crate/fuzz/artifacts/$target/" >&2
            exit 1
        fi
        grep -E '^stat::number_of_executed_units' "$scratch/$target.log" || true
    done
done
echo "fuzz smoke: every target ran ${secs}s without a crash"
