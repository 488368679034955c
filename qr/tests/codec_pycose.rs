//! An independent implementation (Python pycose) verifies a code we signed with our public key,
//! and refuses one we tampered with. Fails (does not skip) when pycose is missing: run
//! `scripts/setup.sh`.

mod codec_support;
use codec_support::*;

use qr::Signer;

const SCRIPT: &str = r#"
import sys
try:
    from pycose.messages import Sign1Message
    from pycose.keys import EC2Key
    from pycose.keys.curves import P256
except ImportError as e:
    print("MISSING", e)
    sys.exit(4)
cose, x, y = (bytes.fromhex(a) for a in sys.argv[1:4])
import cbor2
# cbor2 >= 6 decodes arrays/maps inside a tag as tuple/frozendict, which pycose 1.1's
# Sign1Message.decode does not accept; hand pycose the same items as list/dict through its own
# from_cose_obj (pycose still parses the protected header and checks the signature itself).
outer = cbor2.loads(cose)
if not isinstance(outer, cbor2.CBORTag) or outer.tag != 18:
    print("REFUSED not tag 18")
    sys.exit(1)
arr = list(outer.value)
if len(arr) == 4:
    arr[1] = dict(arr[1])
msg = Sign1Message.from_cose_obj(arr, True)
msg.key = EC2Key(crv=P256, x=x, y=y)
try:
    ok = msg.verify_signature()
except Exception as e:
    print("REFUSED", type(e).__name__, e)
    sys.exit(1)
print("VERIFIED" if ok else "REFUSED")
sys.exit(0 if ok else 1)
"#;

fn pycose(cose: &[u8], key: &p256::ecdsa::VerifyingKey) -> Result<(bool, String), Box<dyn std::error::Error>> {
    let point = key.to_sec1_point(false);
    let p = point.as_bytes();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(hex::encode(cose))
        .arg(hex::encode(p.get(1..33).ok_or("x")?))
        .arg(hex::encode(p.get(33..65).ok_or("y")?))
        .output()
        .map_err(|e| format!("cannot run python3 ({e}); run scripts/setup.sh"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.code() == Some(4) {
        return Err(format!("pycose is not installed ({stdout}); run scripts/setup.sh").into());
    }
    Ok((out.status.success() && stdout.starts_with("VERIFIED"), format!("{stdout}{}", String::from_utf8_lossy(&out.stderr))))
}

#[test]
fn pycose_verifies_our_code_and_refuses_a_tampered_one() -> R {
    let s = signer(9);
    let enc = qr::encode(&claims(), &s)?;
    let (ok, out) = pycose(&enc.cose, &s.public_key())?;
    assert!(ok, "pycose refused our code: {out}");

    let mut msg = <coset::CoseSign1 as coset::TaggedCborSerializable>::from_tagged_slice(&enc.cose).map_err(|e| e.to_string())?;
    if let Some(b) = msg.payload.as_mut().and_then(|p| p.last_mut()) {
        *b ^= 0x01;
    }
    let tampered = coset::TaggedCborSerializable::to_tagged_vec(msg).map_err(|e| e.to_string())?;
    let (ok, out) = pycose(&tampered, &s.public_key())?;
    assert!(!ok, "pycose accepted a tampered code: {out}");
    // And with the wrong key.
    let (ok, _) = pycose(&enc.cose, &signer(10).public_key())?;
    assert!(!ok, "pycose accepted our code under another key");
    Ok(())
}
