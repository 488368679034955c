//! Loading the trust list with many entries (issue 13 item 7: 4.95 s per scan at 40k entries,
//! because adding each entry compared it with every entry before it).
//!
//! `MEDCARD_BENCH_TRUST` trust files (default 40,000 COSE_Keys) in a fresh
//! clinic's `trust/`; prints the median of 5 loads of `clinic::trust_list` and, as the reference
//! measured in the same run, the median time to read the same files' bytes.
//! Run: `cargo bench -p reader --bench trust_list`.
#![allow(clippy::panic)]

use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn main() {
    let n: usize = std::env::var("MEDCARD_BENCH_TRUST").ok().and_then(|v| v.parse().ok()).unwrap_or(40_000);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ks = reader::Keystore::init(dir.path(), "clinic-a", 1_700_000_000).unwrap_or_else(|e| panic!("{e}"));
    let trust = dir.path().join("trust");
    std::fs::create_dir(&trust).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&trust, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap_or_else(|e| panic!("{e}"));
    for i in 0..n {
        let mut scalar = [1u8; 32];
        scalar[..8].copy_from_slice(&(i as u64 + 2).to_be_bytes());
        let key = p256::ecdsa::SigningKey::from_slice(&scalar).unwrap_or_else(|e| panic!("{e}"));
        let path = trust.join(format!("clinic-{i}.cose"));
        std::fs::write(&path, qr::trust::cose_key_bytes(key.verifying_key())).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap_or_else(|e| panic!("{e}"));
    }
    let (mut load, mut read) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = Instant::now();
        let list = reader::clinic::trust_list(&ks).unwrap_or_else(|e| panic!("{e}"));
        load.push(t.elapsed());
        assert!(list.len() > n, "every file is in the list");
        let t = Instant::now();
        let mut bytes = 0;
        for e in std::fs::read_dir(&trust).unwrap_or_else(|e| panic!("{e}")) {
            bytes += std::fs::read(e.unwrap_or_else(|e| panic!("{e}")).path()).unwrap_or_else(|e| panic!("{e}")).len();
        }
        read.push(t.elapsed());
        assert!(bytes > 0);
    }
    let (l, r) = (median(load), median(read));
    println!("trust list of {n} files: load {l:.2?}, reading the files {r:.2?} ({:.1}x)", l.as_secs_f64() / r.as_secs_f64().max(1e-9));
}
