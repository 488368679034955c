#!/usr/bin/env bash
# Runs MedCard on a simulated patient card: sets up pcscd + vpcd, makes a fresh simulated card,
# inserts it into the virtual reader "Virtual PCD 00 00" and shows it with the standard
# smart-card tools. The card stays inserted until Ctrl-C.
#
#   bash scripts/demo.sh            # interactive: keeps the card inserted until Ctrl-C
#   bash scripts/demo.sh --check    # shows the card, checks it is seen as a PIV card, exits
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
[ "${1:-}" = "--check" ] && check=1
reader='Virtual PCD 00 00'

bash scripts/setup.sh
cargo build --quiet --locked -p card-applet-sim --bin card-sim
sim="${CARGO_TARGET_DIR:-target}/debug/card-sim"

card_in_reader() { opensc-tool -l 2>/dev/null | grep -E "^[0-9]+ +Yes .*$reader\$" >/dev/null; }

# vpcd serves one card per reader: a card already in the reader means another card-sim (or
# another vpcd client) is connected to port 35963, and ours would never be seen.
for _ in $(seq 1 30); do card_in_reader || break; sleep 0.1; done
if card_in_reader; then
    echo "demo: '$reader' already holds a card: another card-sim is serving 127.0.0.1:35963." >&2
    echo "demo: stop it first (e.g. \`pgrep -a card-sim\`, then kill that process id)." >&2
    exit 1
fi

if [ -n "${MEDCARD_DEMO_DIR:-}" ]; then
    dir="$MEDCARD_DEMO_DIR"
    mkdir -p "$dir"
else
    dir=$(mktemp -d -t medcard-demo.XXXXXX)
fi
card="$dir/patient.card"
[ -e "$card" ] || "$sim" new --out "$card" --serial 10000001
echo "demo: card file $card"

"$sim" serve --card "$card" --vpcd 127.0.0.1:35963 &
sim_pid=$!
stop() {
    kill -TERM "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
    # A demo card in a directory we made is thrown away; MEDCARD_DEMO_DIR keeps it.
    [ -n "${MEDCARD_DEMO_DIR:-}" ] || rm -rf "$dir"
}
trap stop EXIT

present=0
for _ in $(seq 1 100); do
    if card_in_reader; then present=1; break; fi
    if ! kill -0 "$sim_pid" 2>/dev/null; then
        echo "demo: card-sim serve exited early (see its message above)" >&2
        exit 1
    fi
    sleep 0.1
done
if [ "$present" -ne 1 ]; then
    echo "demo: the simulated card did not appear in '$reader' within 10 s" >&2
    opensc-tool -l >&2 || true
    exit 1
fi

echo "== opensc-tool -n: what OpenSC says the card is"
name=$(opensc-tool -r "$reader" -n)
echo "$name"
echo "== yubico-piv-tool -a status"
yubico-piv-tool -r "$reader" -a status

if ! grep -q "Personal Identity Verification Card" <<<"$name"; then
    echo "demo: OpenSC did not recognise the simulated card as a PIV card" >&2
    exit 1
fi
if [ "$check" -eq 1 ]; then
    echo "demo: ok"
    exit 0
fi
echo
echo "The simulated patient card is inserted in '$reader' (PIN 123456, PUK 12345678)."
echo "Try: opensc-tool -r '$reader' -n ; pkcs15-tool -D ; yubico-piv-tool -r '$reader' -a status"
echo "Press Ctrl-C to remove the card."
wait "$sim_pid"
