#!/usr/bin/env python3
"""Adds fuzz seeds from the public corpora (../shared/corpora, see its README) to the qr fuzz
corpora: EU DCC texts and their signer certificates, the COSE working group's COSE_Sign1 /
CWT messages (re-wrapped as MC1: base45 text) and keys (as COSE_Key), and small QR photos.
Run from the repository root: python3 qr/fuzz/seeds_from_corpora.py [corpora dir]."""
import base64, glob, hashlib, json, os, sys

src = sys.argv[1] if len(sys.argv) > 1 else "../shared/corpora"
out = "qr/fuzz"

def put(rel, name, data):
    d = os.path.join(out, rel)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
def b45(b):
    s = []
    for i in range(0, len(b) - 1, 2):
        n = b[i] * 256 + b[i + 1]
        s += [B45[n % 45], B45[n // 45 % 45], B45[n // 2025]]
    if len(b) % 2:
        s += [B45[b[-1] % 45], B45[b[-1] // 45]]
    return "".join(s)

def cbor_head(major, n):
    if n < 24: return bytes([major << 5 | n])
    if n < 256: return bytes([major << 5 | 24, n])
    return bytes([major << 5 | 25]) + n.to_bytes(2, "big")
def cbor_int(v):
    return cbor_head(0, v) if v >= 0 else cbor_head(1, -1 - v)
def cbor_bytes(b):
    return cbor_head(2, len(b)) + b
def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

# EU DCC: prefix texts (all countries) and distinct signer certificates.
certs = {}
for path in sorted(glob.glob(os.path.join(src, "dgc-testdata", "**", "*.json"), recursive=True)):
    try:
        d = json.load(open(path))
    except Exception:
        continue
    tag = os.path.relpath(path, os.path.join(src, "dgc-testdata")).replace("/", "_")[:-5]
    if isinstance(d.get("PREFIX"), str):
        put("corpus/qr_verify", "dgc-" + tag, d["PREFIX"].encode())
    cert = d.get("TESTCTX", {}).get("CERTIFICATE")
    if isinstance(cert, str) and cert:
        try:
            der = base64.b64decode(cert)
        except Exception:
            continue
        certs.setdefault(hashlib.sha256(der).hexdigest()[:12], (tag, der, d.get("PREFIX")))
for i, (h, (tag, der, _)) in enumerate(sorted(certs.items())):
    put("corpus/trust_file", f"dgc-{h}.der", der)
    if i < 3:
        pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(
            base64.b64encode(der).decode()[j:j + 64] for j in range(0, len(base64.b64encode(der)), 64)
        ) + "\n-----END CERTIFICATE-----\n"
        put("corpus/trust_file", f"dgc-{h}.pem", pem.encode())
# Two signers trusted by the qr_verify target: the DE and the common set's.
picked = [v for v in certs.values() if v[0].startswith("DE_")][:1] + [v for v in certs.values() if v[0].startswith("common_")][:1]
for i, (_, der, _) in enumerate(picked, 1):
    put("fixtures", f"dgc-{i}.der", der)

# COSE WG: COSE_Sign1 messages and CWTs as MC1: text (uncompressed), their keys as COSE_Key.
for path in sorted(glob.glob(os.path.join(src, "cose-wg", "*", "*.json"))):
    d = json.load(open(path))
    name = os.path.basename(os.path.dirname(path)) + "-" + os.path.basename(path)[:-5]
    cbor = d.get("output", {}).get("cbor")
    if cbor:
        put("corpus/qr_verify", "cosewg-" + name, ("MC1:" + b45(bytes.fromhex(cbor))).encode())
    key = d.get("input", {}).get("sign0", {}).get("key", {})
    if key.get("crv") == "P-256":
        x = bytes.fromhex(key["x_hex"]) if "x_hex" in key else b64url(key.get("x", ""))
        y = bytes.fromhex(key["y_hex"]) if "y_hex" in key else b64url(key.get("y", ""))
        m = cbor_head(5, 4 + ("kid" in key)) + cbor_int(1) + cbor_int(2) + cbor_int(-1) + cbor_int(1) \
            + cbor_int(-2) + cbor_bytes(x) + cbor_int(-3) + cbor_bytes(y)
        if "kid" in key:
            m += cbor_int(2) + cbor_bytes(key["kid"].encode())
        put("corpus/trust_file", "cosewg-" + name + ".cose_key", m)

# QR photos and renders: the smallest files only (the fuzzer mutates them; big ones are slow).
pngs = sorted(glob.glob(os.path.join(src, "zxing-qr", "*", "*.png")), key=os.path.getsize)[:6]
pngs += sorted(glob.glob(os.path.join(src, "dgc-testdata", "**", "*.png"), recursive=True), key=os.path.getsize)[:3]
jpgs = sorted(glob.glob(os.path.join(src, "zxing-qr", "*", "*.jpg")), key=os.path.getsize)[:3]
for p in pngs + jpgs:
    rel = os.path.relpath(p, src).replace("/", "_")
    put("corpus/scan_image", rel, open(p, "rb").read())
