#!/usr/bin/env bash
# Plays the desktop app's demo tours in a REAL window under Xvfb (Mesa's software OpenGL): the
# app drives the kiosk → bedside flow by itself and saves what the window drew for each screen;
# then the staff tour (--demo-staff): staff sign-in, emergency access, the kiosk's access report.
#
#   bash scripts/screenshots.sh           refresh docs/screenshots/*.png
#   bash scripts/screenshots.sh --check   into a temporary directory, then check the result
#                                         (CI: the window opens, every screen is drawn, the QR
#                                         on screen decodes with zbarimg); keeps nothing
#
# Prints the app's own figures: time from process start to the first frame, peak memory.
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
[ "${1:-}" = "--check" ] && check=1

bash scripts/setup.sh
# The same build as scripts/test.sh (a no-op there): building one package alone would unify
# features differently and rebuild egui.
cargo build --workspace --all-targets --locked
bin="${CARGO_TARGET_DIR:-target}/debug/medcard-desktop"

if [ "$check" = 1 ]; then
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
else
    out=docs/screenshots
    mkdir -p "$out"
fi
log="$out/tour.log"

# -a: a free display number; 1280x900 leaves room around the 1100x820 window.
LIBGL_ALWAYS_SOFTWARE=1 xvfb-run -a -s "-screen 0 1280x900x24" "$bin" --demo --tour "$out" >"$log" 2>&1 || {
    cat "$log"
    echo "screenshots: the demo tour failed (log above)" >&2
    exit 1
}
grep -E "first frame|RSS" "$log"
rm -f "$log"

# The staff tour: a clinic with staff cards (--demo-staff): the bedside's staff sign-in, a
# clinician's emergency access, and the patient's access report at the next check-in.
LIBGL_ALWAYS_SOFTWARE=1 xvfb-run -a -s "-screen 0 1280x900x24" "$bin" --demo --demo-staff --tour "$out" >"$log" 2>&1 || {
    cat "$log"
    echo "screenshots: the staff tour failed (log above)" >&2
    exit 1
}
rm -f "$log"

for shot in kiosk-insert kiosk-pin kiosk-consent kiosk-qr bedside-verified admin bedside-staff-sign-in bedside-emergency kiosk-report; do
    f="$out/$shot.png"
    [ -s "$f" ] || { echo "screenshots: $shot.png missing" >&2; exit 1; }
done
# The QR the kiosk drew on screen is a real code: zbarimg reads it from the screenshot.
if ! zbarimg -q --raw "$out/kiosk-qr.png" | grep -q '^MC1:'; then
    echo "screenshots: zbarimg could not read the QR code in kiosk-qr.png" >&2
    exit 1
fi
echo "screenshots: ok ($(ls "$out"/*.png | wc -l) screens in $out; the on-screen QR decodes with zbarimg)"
