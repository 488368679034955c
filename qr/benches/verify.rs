//! Verify throughput: QR text → verified claims, against OpenSSL's ECDSA P-256 verify rate
//! measured in the same run (`openssl speed -seconds 3 ecdsap256`). Goal: ≥ 50 % of OpenSSL.
//! Set `MEDCARD_BENCH_NO_OPENSSL=1` to skip the reference.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use qr::claims::{ContentKey, Pointer};
use qr::verify::{Profile, Verifier};
use qr::{Claims, Clock, Signer, SoftwareSigner, TrustList};

const NOW: i64 = 1_795_428_000;

fn fixture() -> Option<(String, TrustList)> {
    let signer = SoftwareSigner::from_scalar(&[7; 32]).ok()?;
    let claims = Claims {
        iss: "clinic-0042".into(),
        iat: NOW,
        exp: NOW + 1800,
        nbf: None,
        cti: vec![1; 16],
        pointer: Pointer {
            patient_id: "PAT-7c1f2a".into(),
            locator: "https://records.clinic-0042.example/r/3b6d9f0a2c41".into(),
            record_sha256: [0xAB; 32],
            content_key: Some(ContentKey::new([0x5C; 32])),
            categories: vec!["allergies".into(), "medication".into()],
            consent_sha256: [0xCD; 32],
        },
    };
    let text = qr::encode(&claims, &signer).ok()?.text;
    let mut trust = TrustList::new();
    trust.add_key("clinic-0042", signer.public_key());
    Some((text, trust))
}

/// `openssl speed` ecdsap256 verify/s, parsed from its summary line.
fn openssl_verify_per_s() -> Option<f64> {
    let out = std::process::Command::new("openssl").args(["speed", "-seconds", "3", "ecdsap256"]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // " 256 bits ecdsa (nistp256)   0.0000s   0.0001s  40000.0  12000.0"
    let line = text.lines().rev().find(|l| l.contains("ecdsa (nistp256)"))?;
    line.split_whitespace().last()?.parse().ok()
}

fn bench(c: &mut Criterion) {
    let Some((text, trust)) = fixture() else {
        eprintln!("fixture failed");
        return;
    };
    let verifier = Verifier::new(Profile::medcard(), &trust);
    let clock = Clock::new(NOW + 60, 0);
    c.bench_function("verify text -> claims", |b| b.iter(|| verifier.verify(black_box(&text), clock).is_ok()));

    // Our own rate over a fixed count, for the ratio printed below.
    let n = 3000;
    let start = Instant::now();
    let mut ok = 0;
    for _ in 0..n {
        ok += usize::from(verifier.verify(black_box(&text), clock).is_ok());
    }
    let ours = f64::from(n) / start.elapsed().as_secs_f64();
    println!("medcard verify: {ours:.0} codes/s ({ok}/{n} verified)");
    // The ECDSA verification alone (ring, as the verifier uses it), to show how much of the time is the curve.
    let (msg, key) = match (verifier.unwrap_text(&text).ok().and_then(|c| qr::cose::parse(&c).ok()), trust.entries().first()) {
        (Some((msg, _)), Some(k)) => (msg, k.key),
        _ => return,
    };
    let start = Instant::now();
    let mut ok = 0;
    for _ in 0..n {
        ok += usize::from(qr::cose::signature_verifies(black_box(&msg), b"", &key));
    }
    let raw = f64::from(n) / start.elapsed().as_secs_f64();
    println!(
        "ECDSA verify alone (Sig_structure + SHA-256 + ring P-256 verify): {raw:.0}/s ({ok}/{n}); codec overhead {:.1} %",
        100.0 * (raw / ours - 1.0)
    );
    if std::env::var_os("MEDCARD_BENCH_NO_OPENSSL").is_none() {
        match openssl_verify_per_s() {
            Some(ossl) => {
                println!("openssl speed -seconds 3 ecdsap256: {ossl:.0} verify/s; ratio {:.1} % (goal >= 50 %)", 100.0 * ours / ossl)
            }
            None => println!("openssl speed unavailable: no reference"),
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(5)).sample_size(50);
    targets = bench
}
criterion_main!(benches);
