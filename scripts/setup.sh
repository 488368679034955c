#!/usr/bin/env bash
# Installs what MedCard's demo and tests need on a fresh Debian machine and makes sure pcscd
# runs with the vpcd virtual readers. Safe to run again: it only installs what is missing.
set -euo pipefail

# libengine-pkcs11-openssl: OpenSSL's pkcs11 engine; the pcscd tests make the self-signed 9A
# certificate with the card's key through it, because Debian's yubico-piv-tool 2.2.0 cannot
# selfsign with OpenSSL 3 (Yubico/yubico-piv-tool#388).
# libssl-dev: rusqlite's bundled SQLCipher (the encrypted clinic database) links the system libcrypto.
# postgresql: the clinic database of clinic mode (docs/deployment.md); the tests start private
# servers from its binaries with scripts/postgres.sh (psql comes with it).
# The desktop app (egui, OpenGL): libwayland-dev and libxkbcommon-dev to build winit; the X11/GL
# runtime libraries, Mesa's software OpenGL and Xvfb (xvfb-run, xauth) for its real-window test
# and screenshots on a machine without a display.
APT_PACKAGES=(pcscd vsmartcard-vpcd libpcsclite-dev pkg-config opensc yubico-piv-tool libengine-pkcs11-openssl
              zbar-tools openssl libssl-dev python3 python3-pip postgresql
              libwayland-dev libxkbcommon-dev libxkbcommon-x11-0 libx11-xcb1 libxcursor1 libxi6 libxrandr2
              libgl1-mesa-dri libegl1 libgl1 xvfb xauth)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# pycose: the independent COSE implementation the QR tests check our signatures with.
if ! python3 -c 'import pycose' 2>/dev/null; then
    echo "setup: installing pycose (pip)"
    python3 -m pip install -q pycose 2>/dev/null \
        || python3 -m pip install -q --break-system-packages pycose
fi

# Garage: the S3-compatible object store of clinic mode's tests (scripts/garage.sh starts a
# three-node cluster). Built from crates.io once (~12 min on 2 cores), skipped when present.
# Only the features MedCard uses: LMDB metadata, bundled C libraries (no metrics, no K2V).
if ! command -v garage >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/garage" ]; then
    echo "setup: installing garage (cargo install garage --locked; once per machine)"
    cargo install garage --locked --no-default-features --features bundled-libs,lmdb --quiet
fi

# pcscd: one per machine. It must have loaded the vpcd driver (installed above), so restart a
# pcscd that was started before vpcd was installed.
have_vpcd_readers() { opensc-tool -l 2>/dev/null | grep -q 'Virtual PCD 00 00'; }
if pgrep -x pcscd >/dev/null && ! have_vpcd_readers; then
    echo "setup: restarting pcscd to load the vpcd driver"
    as_root pkill -x pcscd || true
    sleep 1
fi
if ! pgrep -x pcscd >/dev/null; then
    echo "setup: starting pcscd"
    as_root mkdir -p /run/pcscd
    as_root pcscd
fi
for _ in $(seq 1 50); do
    have_vpcd_readers && break
    sleep 0.2
done
if ! have_vpcd_readers; then
    echo "setup: pcscd is running but shows no 'Virtual PCD 00 00' reader; is vsmartcard-vpcd installed?" >&2
    opensc-tool -l >&2 || true
    exit 1
fi
echo "setup: pcscd is running with the vpcd readers"
