#!/usr/bin/env bash
# Runs MedCard on a simulated patient card, end to end: sets up pcscd + vpcd, makes a fresh
# simulated card, inserts it into the virtual reader "Virtual PCD 00 00", shows it with the standard
# smart-card tools, then plays a clinic day with the `medcard` CLI: a clinic is created, the card
# is issued to a patient, three records are added, the patient consents to two categories, the
# kiosk checks the patient in (card proof + PIN + consent -> signed QR PNG) and a bedside device
# (its own data directory, trusting the clinic) scans the PNG and shows the consented records.
# The card stays inserted until Ctrl-C.
#
#   bash scripts/demo.sh            # interactive: keeps the card inserted until Ctrl-C
#   bash scripts/demo.sh --check    # the same flow, checked step by step, then exits
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
[ "${1:-}" = "--check" ] && check=1
reader='Virtual PCD 00 00'

bash scripts/setup.sh
cargo build --quiet --locked -p card-applet-sim --bin card-sim -p reader --bin medcard
sim="${CARGO_TARGET_DIR:-target}/debug/card-sim"
medcard="${CARGO_TARGET_DIR:-target}/debug/medcard"

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

# ---- A clinic day on this card -------------------------------------------------------------
pin=123456
puk=12345678
kiosk="$dir/kiosk"
bedside="$dir/bedside"
step() { echo; echo "== $*"; }
fail() { echo "demo: $*" >&2; exit 1; }

step "medcard init: the clinic (issuer key, clinic CA, master secret)"
"$medcard" init --clinic-id demo-clinic --data "$kiosk"

step "medcard card issue: the blank card becomes patient P-1001's card"
"$medcard" card issue --reader "$reader" --patient-id P-1001 --name "Ada Lovelace" \
    --pin "$pin" --puk "$puk" --data "$kiosk" 2>/dev/null
"$medcard" card verify --reader "$reader" --pin "$pin" --data "$kiosk"

step "medcard record add: three encrypted records"
cat > "$dir/summary.json" <<'JSON'
{"resourceType": "Patient", "id": "P-1001", "name": [{"family": "Lovelace", "given": ["Ada"]}], "birthDate": "1815-12-10"}
JSON
printf 'Haemoglobin 13.9 g/dL (ref 12.0-15.5)\nCRP 2 mg/L (ref < 5)\n' > "$dir/labs.txt"
printf 'Private note: not shared with the ward.\n' > "$dir/notes.txt"
for r in summary:summary.json labs:labs.txt notes:notes.txt; do
    "$medcard" record add --patient-id P-1001 --category "${r%%:*}" "$dir/${r#*:}" --data "$kiosk"
done

step "medcard consent set: the patient shares summary and labs (signed on the card with the PIN)"
"$medcard" consent set --reader "$reader" --scope summary,labs --days 30 --pin "$pin" --data "$kiosk"

step "medcard checkin: the kiosk proves the card, checks PIN and consent, prints a signed QR"
"$medcard" checkin --reader "$reader" --valid-for 10m --out "$dir/checkin-qr.png" --pin "$pin" --data "$kiosk"
[ -s "$dir/checkin-qr.png" ] || fail "check-in wrote no QR code"

step "medcard scan (bedside device, its own data directory, trusting the clinic)"
"$medcard" init --clinic-id demo-ward --data "$bedside" >/dev/null
"$medcard" trust export --out "$dir/demo-clinic.pem" --data "$kiosk"
# The clinic reads its CA fingerprint to the ward over the phone; the ward's add requires it.
fingerprint=$("$medcard" trust fingerprint --json --data "$kiosk" | sed -n 's/.*"fingerprint": "\([0-9a-f]*\)".*/\1/p')
"$medcard" trust add "$dir/demo-clinic.pem" --fingerprint "$fingerprint" --data "$bedside"
"$medcard" scan "$dir/checkin-qr.png" --store "$kiosk/records" --out "$dir/ward" --data "$bedside"
ls "$dir/ward"
[ "$(ls "$dir/ward" | wc -l)" -eq 2 ] || fail "the bedside did not get exactly two records"
for original in summary.json labs.txt; do
    found=0
    for got in "$dir"/ward/*; do cmp -s "$got" "$dir/$original" && found=1; done
    [ "$found" -eq 1 ] || fail "the bedside copy of $original is missing or differs"
done
if grep -rq "Private note" "$dir/ward"; then fail "the unconsented note reached the bedside"; fi
echo "bedside: exactly the consented records (summary, labs), byte-identical; the note stayed private"

step "medcard audit checkpoint + verify on both devices (signed Merkle tree heads)"
"$medcard" audit checkpoint --data "$kiosk"
"$medcard" audit checkpoint --data "$bedside"
"$medcard" audit verify --data "$kiosk"
"$medcard" audit verify --data "$bedside"

if [ "$check" -eq 1 ]; then
    echo "demo: ok"
    exit 0
fi
echo
echo "The patient card is inserted in '$reader' (PIN $pin, PUK $puk); the QR code is $dir/checkin-qr.png."
echo "Try: MEDCARD_HOME=$kiosk $medcard --help ; $medcard qr inspect --trust $dir/demo-clinic.pem $dir/checkin-qr.png"
echo "Press Ctrl-C to remove the card."
wait "$sim_pid"
