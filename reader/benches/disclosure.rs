//! What re-sealing per disclosure costs a check-in (docs/threat-model.md, issue 13 item 8).
//!
//! Per record size (2 KB FHIR summary, 200 KB PDF, 5 MB image): `checkin::disclose` (read the
//! sealed record from the directory store, decrypt it with its permanent key, seal a copy under
//! a fresh one-time key, remember it, store it durably) against the reference measured in the
//! same run: storing the same sealed record once (`DirStore::put`, what adding a record costs),
//! and the check-in before issue 13 (unwrapping the permanent key only: no store I/O).
//!
//! Run: `cargo bench -p reader --bench disclosure`.
#![allow(clippy::panic)]

use std::time::{Duration, Instant};

use reader::category::Category;
use reader::checkin;
use reader::db::{ClinicDb, RecordRow};
use reader::records::{self, RecordMeta};
use reader::store::{DirStore, RecordStore};
use zeroize::Zeroizing;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn main() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = ClinicDb::open(&dir.path().join("clinic.db"), &Zeroizing::new([0x11; 32])).unwrap_or_else(|e| panic!("{e}"));
    let store = DirStore::open(&dir.path().join("records")).unwrap_or_else(|e| panic!("{e}"));
    let runs: usize = std::env::var("MEDCARD_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(31);
    println!("size        disclose(median)  put-once(median)  ratio   (runs {runs})");
    for (label, size) in [("2 KB", 2_000usize), ("200 KB", 200_000), ("5 MB", 5_000_000)] {
        let meta = RecordMeta {
            record_id: records::new_record_id().unwrap_or_else(|e| panic!("{e}")),
            patient_id: "P-1001".into(),
            category: Category::Labs,
            media_type: "application/octet-stream".into(),
            created: 1,
            author: "bench".into(),
        };
        let key = records::new_content_key().unwrap_or_else(|e| panic!("{e}"));
        let doc: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let sealed = records::seal(&meta, &doc, &key).unwrap_or_else(|e| panic!("{e}"));
        let locator = store.put(&sealed).unwrap_or_else(|e| panic!("{e}"));
        let row = RecordRow { meta: meta.clone(), locator, size: sealed.len() as u64, wrapped_key: Vec::new() };
        let mut disclose = Vec::with_capacity(runs);
        let mut put_once = Vec::with_capacity(runs);
        for i in 0..runs {
            let t = Instant::now();
            let (copy, _) = checkin::disclose(&db, &store, &row, &key, &format!("qr{i}"), 10).unwrap_or_else(|e| panic!("{e}"));
            disclose.push(t.elapsed());
            // The reference: a fresh sealed record (other nonce, so a real write) stored once.
            let other = records::seal(&meta, &doc, &key).unwrap_or_else(|e| panic!("{e}"));
            let t = Instant::now();
            store.put(&other).unwrap_or_else(|e| panic!("{e}"));
            put_once.push(t.elapsed());
            let _ = store.delete(&copy);
        }
        let (d, p) = (median(disclose), median(put_once));
        println!("{label:<10}  {d:>16.2?}  {p:>16.2?}  {:.2}x", d.as_secs_f64() / p.as_secs_f64().max(1e-9));
    }
    let purged = checkin::purge_disclosures(&db, &store, 10 + checkin::DISCLOSURE_GRACE + 1).unwrap_or_else(|e| panic!("{e}"));
    println!("purged {purged} remembered copies");
}
