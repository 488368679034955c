//! The audit log verifier over a corrupted database (reader/src/audit/). A small real log is
//! built once in a temp SQLCipher database through `audit::append` and `audit::checkpoint`
//! (11 entries, checkpoints at 6 and 9). Then for each input:
//!
//! - first byte even: **row corruption**, inside a transaction that is rolled back afterwards.
//!   The rest is a list of operations (delete / update any column to any SQLite value /
//!   insert / renumber / flip a byte, on entries and checkpoints; see `apply`).
//! - first byte odd: **byte corruption** of a copy of the database file (xor bytes at offsets,
//!   optionally truncate), then `ClinicDb::open`.
//!
//! Then `audit::verify`, `audit::prove`, `audit::consistency` and `audit::entries` run; each
//! must return `Ok` or a typed error, never panic. An untouched log must verify.
#![no_main]

use std::cell::RefCell;
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use p256::ecdsa::VerifyingKey;
use reader::audit::{self, Event, EventKind, Outcome};
use reader::db::ClinicDb;
use rusqlite::types::Value;
use zeroize::Zeroizing;

const KEY: [u8; 32] = [4; 32];
const ENTRIES: u64 = 11;

struct Fixture {
    dir: PathBuf,
    template: Vec<u8>,
    db: ClinicDb,
    issuer: VerifyingKey,
    first_checkpoint: Vec<u8>,
}

fn build() -> Fixture {
    let dir = tempfile::Builder::new().prefix("audit-fuzz-").tempdir().expect("tempdir").keep();
    let path = dir.join("template.db");
    let signer = qr::SoftwareSigner::from_scalar(&[3; 32]).expect("signer");
    let issuer = qr::Signer::public_key(&signer);
    let mut first_checkpoint = Vec::new();
    {
        let mut db = ClinicDb::open(&path, &Zeroizing::new(KEY)).expect("open");
        for i in 0..ENTRIES {
            let ev = Event {
                time: 1_800_000_000 + i as i64,
                kind: EventKind::ALL[(i as usize) % EventKind::ALL.len()],
                actor: "kiosk-1".into(),
                subject: format!("P-{}", 1000 + i),
                outcome: if i % 3 == 0 { Outcome::WrongPin } else { Outcome::Ok },
                detail: format!("card=71000{i} tries_left=2"),
            };
            audit::append(&mut db, &ev).expect("append");
            if i == 5 || i == 8 {
                let (_, signed) = audit::checkpoint(&mut db, "fuzz-clinic", 1_800_000_100 + i as i64, &signer).expect("checkpoint");
                if first_checkpoint.is_empty() {
                    first_checkpoint = signed;
                }
            }
        }
        assert!(matches!(audit::verify(&db, &issuer), Ok(Ok(_))), "the untouched log verifies");
    }
    // Closing the only connection folds the WAL into the file.
    let template = std::fs::read(&path).expect("read template");
    let db = ClinicDb::open(&path, &Zeroizing::new(KEY)).expect("reopen");
    Fixture { dir, template, db, issuer, first_checkpoint }
}

thread_local! {
    static FIXTURE: RefCell<Option<Fixture>> = const { RefCell::new(None) };
}

/// A little reader over the fuzz bytes; runs dry as zeros.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn i64(&mut self) -> i64 {
        let mut v = [0u8; 8];
        for b in &mut v {
            *b = self.u8();
        }
        i64::from_be_bytes(v)
    }
    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a.to_vec()
    }
    fn small_int(&mut self) -> i64 {
        // Mostly near the real seqs and tree sizes, sometimes anything.
        match self.u8() {
            b @ 0..=239 => i64::from(b % 16) - 2,
            _ => self.i64(),
        }
    }
    fn value(&mut self) -> Value {
        match self.u8() % 6 {
            0 => Value::Null,
            1 => Value::Integer(self.small_int()),
            2 => Value::Real(f64::from_bits(self.i64() as u64)),
            3 => {
                let n = usize::from(self.u8());
                Value::Text(String::from_utf8_lossy(&self.take(n)).into_owned())
            }
            4 => {
                let n = usize::from(self.u8());
                Value::Blob(self.take(n))
            }
            _ => Value::Integer(self.i64()),
        }
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

const ENTRY_COLS: [&str; 8] = ["seq", "time", "kind", "actor", "subject", "outcome", "detail", "leaf_hash"];
const CP_COLS: [&str; 4] = ["tree_size", "root", "time", "signed"];

/// Flips one byte of a text or blob cell (a subtle edit, unlike a whole new value).
fn flip(conn: &rusqlite::Connection, table: &str, col: &str, key_col: &str, key: i64, at: u8, mask: u8) {
    let q = format!("SELECT {col} FROM {table} WHERE {key_col} = ?1");
    let Ok(v) = conn.query_row(&q, [key], |r| r.get::<_, Value>(0)) else { return };
    let new = match v {
        Value::Text(t) => {
            let mut b = t.into_bytes();
            let n = b.len().max(1);
            if let Some(x) = b.get_mut(usize::from(at) % n) {
                *x ^= mask;
            }
            Value::Text(String::from_utf8_lossy(&b).into_owned())
        }
        Value::Blob(mut b) => {
            let n = b.len().max(1);
            if let Some(x) = b.get_mut(usize::from(at) % n) {
                *x ^= mask;
            }
            Value::Blob(b)
        }
        other => other,
    };
    let _ = conn.execute(&format!("UPDATE {table} SET {col} = ?1 WHERE {key_col} = ?2"), rusqlite::params![new, key]);
}

fn apply(conn: &rusqlite::Connection, b: &mut Bytes<'_>) {
    let mut n = 0;
    while !b.is_empty() && n < 16 {
        n += 1;
        let op = b.u8();
        let key = b.small_int();
        let _ = match op % 10 {
            0 => conn.execute("DELETE FROM audit_entries WHERE seq = ?1", [key]),
            1 => {
                let col = ENTRY_COLS[usize::from(b.u8()) % ENTRY_COLS.len()];
                let v = b.value();
                conn.execute(&format!("UPDATE audit_entries SET {col} = ?1 WHERE seq = ?2"), rusqlite::params![v, key])
            }
            2 => {
                let vals: Vec<Value> = (0..7).map(|_| b.value()).collect();
                conn.execute(
                    "INSERT INTO audit_entries (seq, time, kind, actor, subject, outcome, detail, leaf_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    rusqlite::params![key, vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], vals[6]],
                )
            }
            3 => {
                let to = b.small_int();
                conn.execute("UPDATE audit_entries SET seq = ?1 WHERE seq = ?2", [to, key])
            }
            4 => {
                let col = CP_COLS[usize::from(b.u8()) % CP_COLS.len()];
                let v = b.value();
                conn.execute(&format!("UPDATE audit_checkpoints SET {col} = ?1 WHERE tree_size = ?2"), rusqlite::params![v, key])
            }
            5 => conn.execute("DELETE FROM audit_checkpoints WHERE tree_size = ?1", [key]),
            6 => {
                let vals: Vec<Value> = (0..3).map(|_| b.value()).collect();
                conn.execute(
                    "INSERT INTO audit_checkpoints (tree_size, root, time, signed) VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![key, vals[0], vals[1], vals[2]],
                )
            }
            7 => {
                let col = ENTRY_COLS[2 + usize::from(b.u8()) % 6];
                let (at, mask) = (b.u8(), b.u8() | 1);
                flip(conn, "audit_entries", col, "seq", key, at, mask);
                Ok(0)
            }
            8 => {
                let col = CP_COLS[1 + usize::from(b.u8()) % 3];
                let (at, mask) = (b.u8(), b.u8() | 1);
                flip(conn, "audit_checkpoints", col, "tree_size", key, at, mask);
                Ok(0)
            }
            _ => {
                // Copy a checkpoint's signed bytes onto another size (a replayed checkpoint).
                let to = b.small_int();
                conn.execute(
                    "INSERT OR REPLACE INTO audit_checkpoints (tree_size, root, time, signed) SELECT ?1, root, time, signed FROM audit_checkpoints WHERE tree_size = ?2",
                    [to, key],
                )
            }
        };
    }
}

fn check(db: &ClinicDb, issuer: &VerifyingKey, first_checkpoint: &[u8], seq: u64) {
    let _ = audit::verify(db, issuer);
    let _ = audit::prove(db, issuer, seq);
    let _ = audit::consistency(db, issuer, first_checkpoint);
    if let Ok(entries) = audit::entries(db, 0, None) {
        let _ = audit::alerts::alerts(&entries, &audit::alerts::Rules::default());
    }
    let _ = audit::latest_checkpoint(db, issuer);
}

fuzz_target!(|data: &[u8]| {
    FIXTURE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let f = slot.get_or_insert_with(build);
        let Some((mode, rest)) = data.split_first() else { return };
        let mut b = Bytes(rest);
        if mode % 2 == 0 {
            let seq = u64::from(b.u8() % 12);
            let Ok(()) = f.db.conn().execute_batch("BEGIN") else { return };
            apply(f.db.conn(), &mut b);
            check(&f.db, &f.issuer, &f.first_checkpoint, seq);
            f.db.conn().execute_batch("ROLLBACK").expect("rollback");
        } else {
            let mut bytes = f.template.clone();
            let truncate = b.u8();
            while !b.is_empty() {
                let at = (usize::from(b.u8()) << 16 | usize::from(b.u8()) << 8 | usize::from(b.u8())) % bytes.len().max(1);
                let mask = b.u8() | 1;
                if let Some(x) = bytes.get_mut(at) {
                    *x ^= mask;
                }
            }
            if truncate < 16 {
                bytes.truncate(bytes.len() * usize::from(truncate) / 16);
            }
            let path = f.dir.join("corrupt.db");
            for ext in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(f.dir.join(format!("corrupt.db{ext}")));
            }
            std::fs::write(&path, &bytes).expect("write corrupt copy");
            if let Ok(db) = ClinicDb::open(&path, &Zeroizing::new(KEY)) {
                check(&db, &f.issuer, &f.first_checkpoint, 3);
            }
        }
    });
});
