#!/usr/bin/env bash
# Runs the product: the MedCard desktop app in demo mode — a fresh demo clinic, a simulated card
# in process (no card reader needed) and sample records. Kiosk, Bedside and Admin are tabs.
# Extra arguments go to the app (e.g. --view bedside, --fullscreen; see --help).
# Needs a display; on a machine without one: xvfb-run, or scripts/screenshots.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The dev profile (dependencies optimised) shares its build with the tests.
exec cargo run -p medcard-desktop --locked -- --demo "$@"
