//! Benches for issue 5, each against a stated baseline:
//! - cache lookup with `MEDCARD_BENCH_ROWS` (default 1,000,000) cached rows: p50/p99 over
//!   10,000 random lookups (goal p99 <= 1 ms) and a criterion bench;
//! - audit append rate (one durable transaction per event, synchronous=FULL);
//! - `audit verify` of `MEDCARD_BENCH_ENTRIES` (default 1,000,000) entries against
//!   `sha256sum` over the same entry bytes, in the same run (goal <= 3x);
//! - an inclusion proof at that size.
//!
//! Run: `cargo bench -p reader --bench records_audit`.
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::io::Write;
use std::time::{Duration, Instant};

use criterion::Criterion;
use reader::audit::{self, Event, EventKind, Outcome, merkle};
use reader::category::Category;
use reader::db::ClinicDb;
use zeroize::Zeroizing;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn open(path: &std::path::Path) -> ClinicDb {
    ClinicDb::open(path, &Zeroizing::new([0x11; 32])).unwrap_or_else(|e| panic!("{e}"))
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn main() {
    let mut c = Criterion::default().configure_from_args().sample_size(20);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));

    // ---- cache lookup at N rows ----
    let rows = env_usize("MEDCARD_BENCH_ROWS", 1_000_000);
    let patients = (rows / 10).max(1);
    let mut db = open(&dir.path().join("cache.db"));
    let t = Instant::now();
    {
        let tx = db.conn_mut().transaction().unwrap_or_else(|e| panic!("{e}"));
        {
            let mut st = tx
                .prepare("INSERT INTO cache (qr_id, issuer_kid, patient_id, locator, categories, consent_sha256, verified_at, expires_at, media_type, document) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
                .unwrap_or_else(|e| panic!("{e}"));
            for i in 0..rows {
                st.execute(rusqlite::params![
                    format!("{i:032x}"),
                    [1u8; 8].as_slice(),
                    format!("P-{}", i % patients),
                    format!("medcard-store:sha256/{i:064x}"),
                    "labs",
                    [0u8; 32].as_slice(),
                    1_000i64,
                    if i % 3 == 0 { 500i64 } else { i64::MAX },
                    "text/plain",
                    [7u8; 256].as_slice()
                ])
                .unwrap_or_else(|e| panic!("{e}"));
            }
        }
        tx.commit().unwrap_or_else(|e| panic!("{e}"));
    }
    println!("cache: {rows} rows for {patients} patients inserted in {:.1?}", t.elapsed());
    let _ = Category::Labs;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut times = Vec::with_capacity(10_000);
    let mut found = 0usize;
    for _ in 0..10_000 {
        let p = format!("P-{}", rng.next() as usize % patients);
        let t = Instant::now();
        let r = db.cache_lookup(&p, 1_000).unwrap_or_default();
        times.push(t.elapsed());
        found += r.len();
    }
    times.sort();
    println!(
        "cache lookup at {rows} rows (10,000 random patients, {:.1} valid rows each): p50 {:?}, p99 {:?}, max {:?} (goal p99 <= 1 ms)",
        found as f64 / 10_000.0,
        percentile(&times, 0.50),
        percentile(&times, 0.99),
        times.last().copied().unwrap_or_default()
    );
    c.bench_function(&format!("cache_lookup_{rows}_rows"), |b| {
        b.iter(|| {
            let p = format!("P-{}", rng.next() as usize % patients);
            db.cache_lookup(&p, 1_000).unwrap_or_default()
        })
    });
    drop(db);

    // ---- audit append rate ----
    let mut adb = open(&dir.path().join("append.db"));
    let ev = Event {
        time: 1,
        kind: EventKind::RecordRead,
        actor: "bench".into(),
        subject: "0123456789abcdef0123456789abcdef".into(),
        outcome: Outcome::Ok,
        detail: "patient=P-1".into(),
    };
    let n = 500;
    let t = Instant::now();
    for _ in 0..n {
        audit::append(&mut adb, &ev).unwrap_or_else(|e| panic!("{e}"));
    }
    let el = t.elapsed();
    println!("audit append: {n} durable appends in {el:.2?} = {:.0}/s", n as f64 / el.as_secs_f64());
    c.bench_function("audit_append", |b| b.iter(|| audit::append(&mut adb, &ev).unwrap_or_else(|e| panic!("{e}"))));
    drop(adb);

    // ---- audit verify at N entries vs sha256sum ----
    let entries = env_usize("MEDCARD_BENCH_ENTRIES", 1_000_000);
    let signer = qr::SoftwareSigner::from_scalar(&[0x22; 32]).unwrap_or_else(|e| panic!("{e}"));
    let issuer = qr::Signer::public_key(&signer);
    let mut vdb = open(&dir.path().join("audit.db"));
    let bytes_path = dir.path().join("entries.bin");
    let t = Instant::now();
    {
        let mut bytes = std::io::BufWriter::new(std::fs::File::create(&bytes_path).unwrap_or_else(|e| panic!("{e}")));
        let tx = vdb.conn_mut().transaction().unwrap_or_else(|e| panic!("{e}"));
        {
            let mut st = tx
                .prepare("INSERT INTO audit_entries (seq, time, kind, actor, subject, outcome, detail, leaf_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
                .unwrap_or_else(|e| panic!("{e}"));
            for i in 0..entries {
                let subject = format!("{i:032x}");
                let detail = format!("patient=P-{}", i % 100_000);
                let kind = EventKind::ALL[i % EventKind::ALL.len()].as_str();
                let e = audit::encode_entry(i as u64, 1_790_000_000 + i as i64, kind, "kiosk-1", &subject, "ok", &detail);
                bytes.write_all(&e).unwrap_or_else(|e| panic!("{e}"));
                let leaf = merkle::leaf_hash(&e);
                st.execute(rusqlite::params![i as i64, 1_790_000_000 + i as i64, kind, "kiosk-1", subject, "ok", detail, leaf.as_slice()])
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        }
        tx.commit().unwrap_or_else(|e| panic!("{e}"));
        bytes.flush().unwrap_or_else(|e| panic!("{e}"));
    }
    println!("audit: {entries} entries written in {:.1?}", t.elapsed());
    audit::checkpoint(&mut vdb, "bench", 2, &signer).unwrap_or_else(|e| panic!("{e}"));
    let size = std::fs::metadata(&bytes_path).map(|m| m.len()).unwrap_or(0);
    let mut best_sum = Duration::MAX;
    let mut best_verify = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let out = std::process::Command::new("sha256sum").arg(&bytes_path).output();
        let el = t.elapsed();
        assert!(out.map(|o| o.status.success()).unwrap_or(false), "sha256sum failed");
        best_sum = best_sum.min(el);
        let t = Instant::now();
        let r = audit::verify(&vdb, &issuer).unwrap_or_else(|e| panic!("{e}"));
        let el = t.elapsed();
        assert!(r.is_ok(), "{r:?}");
        best_verify = best_verify.min(el);
    }
    println!(
        "audit verify of {entries} entries: {best_verify:.2?}; sha256sum over the same {size} entry bytes: {best_sum:.2?}; ratio {:.2}x (goal <= 3x; best of 3 each)",
        best_verify.as_secs_f64() / best_sum.as_secs_f64()
    );

    // ---- inclusion proof at N ----
    let mut rng = Rng(42);
    let mut pt = Vec::new();
    for _ in 0..5 {
        let seq = rng.next() % entries as u64;
        let t = Instant::now();
        let p = audit::prove(&vdb, &issuer, seq).unwrap_or_else(|e| panic!("{e}"));
        pt.push(t.elapsed());
        assert!(merkle::verify_inclusion(p.seq, p.tree_size, &p.leaf_hash, &p.path, &p.root));
    }
    pt.sort();
    println!("inclusion proof at {entries} entries (reads and rehashes every row): median {:.2?} of 5", percentile(&pt, 0.5));
    let leaves = audit::leaf_hashes(&vdb, entries as u64).unwrap_or_else(|e| panic!("{e}"));
    c.bench_function(&format!("inclusion_proof_from_{entries}_leaf_hashes"), |b| {
        b.iter(|| merkle::inclusion_proof(&leaves, (rng.next() % entries as u64) as usize))
    });
    c.final_summary();
}
