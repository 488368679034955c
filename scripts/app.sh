#!/usr/bin/env bash
# Runs the product: the MedCard desktop app in demo mode — a fresh demo clinic, a simulated card
# in process (no card reader needed) and sample records. Kiosk, Bedside and Admin are tabs.
# Extra arguments go to the app (e.g. --view bedside, --fullscreen; see --help).
# Needs a display; on a machine without one: xvfb-run, or scripts/screenshots.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
    echo "app: no display here (neither DISPLAY nor WAYLAND_DISPLAY is set)." >&2
    echo "app: run it from a desktop session, or see the whole flow played in a real window under" >&2
    echo "app: Xvfb with 'bash scripts/screenshots.sh' (it saves what the window drew into docs/screenshots/)." >&2
    exit 2
fi
# The dev profile (dependencies optimised) shares its build with the tests.
exec cargo run -p medcard-desktop --locked -- --demo "$@"
