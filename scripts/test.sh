#!/usr/bin/env bash
# Runs every MedCard test: unit, property, in-process card, real pcscd + vpcd + OpenSC +
# yubico-piv-tool, QR corpora. Installs what it needs first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

# Hygiene first, so a formatting or lint slip fails before the long build and test run: one format
# (rustfmt.toml) and the workspace lints of Cargo.toml as errors.
cargo fmt --all -- --check
# One pass with the desktop's optional camera code turned on, so it is linted too.
cargo clippy --workspace --all-targets --features medcard-desktop/camera --locked -- -D warnings

# Tests that use pcscd share one pcscd per machine; they serialize themselves inside their test
# binary, and cargo runs test binaries one at a time.
cargo build --workspace --all-targets --locked
cargo test --workspace --locked
# The desktop's optional camera scanning (cargo feature `camera`) builds, and its frame decoding
# works; no camera on CI machines, so the device loop itself is not run here.
cargo test -p medcard-desktop --features camera --locked --lib camera

# Every cargo-fuzz target builds and runs 20 s on its committed corpus (docs/fuzzing.md).
bash scripts/fuzz-smoke.sh

# The command-line demo (card simulator through pcscd + vpcd, kiosk check-in, bedside scan).
bash scripts/demo.sh --check

# The desktop app in a real window under Xvfb: the demo tour through every screen.
bash scripts/screenshots.sh --check
