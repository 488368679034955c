//! The tamper-evident audit log: every security event is a leaf of an RFC 9162 Merkle tree
//! whose heads are signed as checkpoints (COSE_Sign1 by the clinic issuer key, through
//! `qr::cose`). See `docs/audit-log.md`.
//!
//! ```text
//! entry      = CBOR [seq, time, kind, actor, subject, outcome, detail]   ; leaf = H(0x00 ‖ entry)
//! checkpoint = COSE_Sign1(CBOR { 1: origin (clinic id), 2: tree size, 3: root (bstr 32), 4: time })
//! ```
//! Entries hold ids and outcomes, never PINs, keys or record contents.

pub mod alerts;
pub mod detail;
pub mod merkle;
pub mod queue;
mod vocab;

use std::fmt;

pub use vocab::{EventKind, Outcome, UnknownKind, UnknownOutcome};

use p256::ecdsa::VerifyingKey;
use rusqlite::{OptionalExtension, params};

use crate::cbor::{self, Cursor};
use crate::db::{ClinicDb, DbError};
use merkle::{Frontier, Hash};

/// Checkpoint payload map keys.
const CP_ORIGIN: i64 = 1;
const CP_SIZE: i64 = 2;
const CP_ROOT: i64 = 3;
const CP_TIME: i64 = 4;

/// The login name of the user running this process, for the actor of audit entries (the CLI
/// writes `cli:<name>`): the process's user id looked up in `/etc/passwd`, else `$USER` or
/// `$LOGNAME`, else `uid:<n>`. Not an authentication.
#[must_use]
pub fn os_user() -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let from_passwd = uid.and_then(|u| std::fs::read_to_string("/etc/passwd").ok().and_then(|p| user_in_passwd(&p, u)));
    from_passwd
        .or_else(|| std::env::var("USER").ok().filter(|v| !v.is_empty()))
        .or_else(|| std::env::var("LOGNAME").ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| uid.map_or_else(|| "unknown".into(), |u| format!("uid:{u}")))
}

/// The name of user `uid` in the text of an `/etc/passwd` file. Pure; malformed lines are skipped.
#[must_use]
pub fn user_in_passwd(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty() && !name.starts_with('#')).then(|| name.to_owned())
    })
}

/// An event to append (the log assigns `seq`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unix seconds.
    pub time: i64,
    /// What happened.
    pub kind: EventKind,
    /// Who or what did it (device, clinician id, `medcard`).
    pub actor: String,
    /// What it concerns (card serial, patient id, record id, QR id).
    pub subject: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Ids and counts only: never PINs, keys or record contents.
    pub detail: String,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the log (leaf index), from 0.
    pub seq: u64,
    /// The event, as stored text: verification is over these bytes, and a verifier must be able
    /// to show an altered row or a kind or outcome this version does not know. [`Entry::kind`]
    /// and [`Entry::outcome`] read them as the vocabulary.
    pub time: i64,
    pub kind: String,
    pub actor: String,
    pub subject: String,
    pub outcome: String,
    pub detail: String,
    /// The stored leaf hash.
    pub leaf_hash: Vec<u8>,
}

/// The canonical bytes of an entry (the leaf input).
#[must_use]
pub fn encode_entry(seq: u64, time: i64, kind: &str, actor: &str, subject: &str, outcome: &str, detail: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + kind.len() + actor.len() + subject.len() + outcome.len() + detail.len());
    cbor::write_head(&mut out, cbor::ARRAY, 7);
    cbor::write_head(&mut out, cbor::UINT, seq);
    cbor::write_int(&mut out, time);
    for s in [kind, actor, subject, outcome, detail] {
        cbor::write_text(&mut out, s);
    }
    out
}

impl Entry {
    /// The stored kind, if this version knows it (`None`: a newer writer's or an edited row;
    /// the text stays in the `kind` field).
    #[must_use]
    pub fn kind(&self) -> Option<EventKind> {
        self.kind.parse().ok()
    }

    /// The stored outcome, if this version knows it (`None`: a newer writer's or an edited row;
    /// the text stays in the `outcome` field).
    #[must_use]
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome.parse().ok()
    }

    /// The canonical bytes of this row.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        encode_entry(self.seq, self.time, &self.kind, &self.actor, &self.subject, &self.outcome, &self.detail)
    }
}

/// A checkpoint's signed content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The clinic id.
    pub origin: String,
    /// Number of leaves.
    pub tree_size: u64,
    /// MTH of those leaves.
    pub root: Hash,
    /// When it was made (Unix s).
    pub time: i64,
}

impl Checkpoint {
    /// The CBOR payload.
    #[must_use]
    pub fn payload(&self) -> Vec<u8> {
        let mut out = Vec::new();
        cbor::write_head(&mut out, cbor::MAP, 4);
        cbor::write_int(&mut out, CP_ORIGIN);
        cbor::write_text(&mut out, &self.origin);
        cbor::write_int(&mut out, CP_SIZE);
        cbor::write_head(&mut out, cbor::UINT, self.tree_size);
        cbor::write_int(&mut out, CP_ROOT);
        cbor::write_bytes(&mut out, &self.root);
        cbor::write_int(&mut out, CP_TIME);
        cbor::write_int(&mut out, self.time);
        out
    }

    fn from_payload(p: &[u8]) -> Result<Self, String> {
        let mut c = Cursor::new(p);
        let e = |x: cbor::CborError| x.to_string();
        if c.expect(cbor::MAP, "checkpoint map").map_err(e)? != 4 {
            return Err("checkpoint payload: expected a map of 4 entries".into());
        }
        let key = |want: i64, c: &mut Cursor<'_>| -> Result<(), String> {
            let got = c.int("checkpoint key").map_err(e)?;
            if got == want { Ok(()) } else { Err(format!("checkpoint payload: expected key {want}, got {got}")) }
        };
        key(CP_ORIGIN, &mut c)?;
        let origin = c.text("origin").map_err(e)?.to_owned();
        key(CP_SIZE, &mut c)?;
        let tree_size = c.expect(cbor::UINT, "tree size").map_err(e)?;
        key(CP_ROOT, &mut c)?;
        let root: Hash = c.bytes("root").map_err(e)?.try_into().map_err(|_| "checkpoint root: expected 32 bytes")?;
        key(CP_TIME, &mut c)?;
        let time = c.int("time").map_err(e)?;
        c.finish().map_err(e)?;
        Ok(Checkpoint { origin, tree_size, root, time })
    }
}

/// An audit failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Signing a checkpoint failed.
    #[error("signing the audit checkpoint failed: {0}")]
    Sign(#[source] qr::cose::CoseError),
    /// A signed checkpoint that is not a well-formed COSE_Sign1.
    #[error("checkpoint: {0}")]
    CheckpointStructure(#[source] qr::cose::CoseError),
    /// A signed checkpoint whose algorithm is not ES256 in the protected header.
    #[error("checkpoint: {0}")]
    CheckpointAlgorithm(#[source] qr::cose::AlgorithmError),
    /// A checkpoint whose signature does not verify with the clinic issuer key.
    #[error("checkpoint: the signature does not verify with the clinic issuer key")]
    CheckpointSignature,
    /// A checkpoint whose signed payload is not a checkpoint (the text says what is wrong).
    #[error("checkpoint: {0}")]
    BadCheckpoint(String),
    /// A proof request is out of range.
    #[error("{0}")]
    Range(String),
    /// A computed proof does not verify (internal inconsistency: a bug or a changed log).
    #[error("the {what} proof does not verify against the checkpoint: the log changed or is corrupt")]
    ProofFailed { what: &'static str },
}

/// Appends `event` as the next leaf and returns its `seq`. Serialized across processes by an
/// immediate transaction (and the busy timeout).
pub fn append(db: &mut ClinicDb, event: &Event) -> Result<u64, AuditError> {
    let err = db.err("append audit entry");
    let path = db.path().to_path_buf();
    let tx = db.conn_mut().transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
    let seq = append_in(&tx, &path, event)?;
    tx.commit().map_err(|source| DbError::Sqlite { path, operation: "commit audit entry", source })?;
    Ok(seq)
}

/// Appends `event` inside the caller's transaction (begun IMMEDIATE, so `seq` cannot race), so a
/// state change and its audit entry commit together or not at all. Returns its `seq`.
pub fn append_in(tx: &rusqlite::Connection, path: &std::path::Path, event: &Event) -> Result<u64, AuditError> {
    let e = |op| {
        let path = path.to_path_buf();
        move |source| DbError::Sqlite { path, operation: op, source }
    };
    let next: i64 =
        tx.query_row("SELECT COALESCE(MAX(seq) + 1, 0) FROM audit_entries", [], |r| r.get(0)).map_err(e("append audit entry"))?;
    let seq = u64::try_from(next).unwrap_or(0);
    let entry = encode_entry(seq, event.time, event.kind.as_str(), &event.actor, &event.subject, event.outcome.as_str(), &event.detail);
    let leaf = merkle::leaf_hash(&entry);
    tx.execute(
        "INSERT INTO audit_entries (seq, time, kind, actor, subject, outcome, detail, leaf_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![next, event.time, event.kind.as_str(), event.actor, event.subject, event.outcome.as_str(), event.detail, leaf.as_slice()],
    )
    .map_err(e("append audit entry"))?;
    Ok(seq)
}

/// Number of entries.
pub fn size(db: &ClinicDb) -> Result<u64, AuditError> {
    let n: i64 = db.conn().query_row("SELECT count(*) FROM audit_entries", [], |r| r.get(0)).map_err(db.err("count audit entries"))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Entries with `seq >= from`, optionally only those at or after `since` (Unix s).
pub fn entries(db: &ClinicDb, from: u64, since: Option<i64>) -> Result<Vec<Entry>, AuditError> {
    let mut st = db
        .conn()
        .prepare_cached(
            "SELECT seq, time, kind, actor, subject, outcome, detail, leaf_hash FROM audit_entries
             WHERE seq >= ?1 AND (?2 IS NULL OR time >= ?2) ORDER BY seq",
        )
        .map_err(db.err("read audit entries"))?;
    let mut rows = st.query(params![i64::try_from(from).unwrap_or(i64::MAX), since]).map_err(db.err("read audit entries"))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db.err("read audit entries"))? {
        out.push(entry_from_row(db, r)?);
    }
    Ok(out)
}

fn entry_from_row(db: &ClinicDb, r: &rusqlite::Row<'_>) -> Result<Entry, AuditError> {
    let e = || db.err("read audit entry");
    let seq: i64 = r.get(0).map_err(e())?;
    Ok(Entry {
        seq: u64::try_from(seq).map_err(|_| DbError::BadRow {
            path: db.path().to_path_buf(),
            table: "audit_entries",
            row: seq.to_string(),
            what: "negative seq".into(),
        })?,
        time: r.get(1).map_err(e())?,
        kind: r.get(2).map_err(e())?,
        actor: r.get(3).map_err(e())?,
        subject: r.get(4).map_err(e())?,
        outcome: r.get(5).map_err(e())?,
        detail: r.get(6).map_err(e())?,
        leaf_hash: r.get(7).map_err(e())?,
    })
}

/// The leaf hashes of entries `0..n`, recomputed from the rows (not the stored hashes).
pub fn leaf_hashes(db: &ClinicDb, n: u64) -> Result<Vec<Hash>, AuditError> {
    let mut st = db
        .conn()
        .prepare_cached("SELECT seq, time, kind, actor, subject, outcome, detail, leaf_hash FROM audit_entries WHERE seq < ?1 ORDER BY seq")
        .map_err(db.err("read audit entries"))?;
    let mut rows = st.query([i64::try_from(n).unwrap_or(i64::MAX)]).map_err(db.err("read audit entries"))?;
    let entries = std::iter::from_fn(|| match rows.next() {
        Ok(Some(r)) => Some(entry_from_row(db, r)),
        Ok(None) => None,
        Err(e) => Some(Err(AuditError::from(db.err("read audit entries")(e)))),
    });
    leaf_hashes_in_order(entries, n)
}

/// Signs a checkpoint of the whole log now, stores it and returns its COSE_Sign1 bytes.
pub fn checkpoint(db: &mut ClinicDb, origin: &str, now: i64, signer: &dyn qr::Signer) -> Result<(Checkpoint, Vec<u8>), AuditError> {
    // Read and store in one immediate transaction so no entry slips in between.
    let err = db.err("checkpoint");
    db.conn().execute_batch("BEGIN IMMEDIATE").map_err(err)?;
    let result = (|| {
        let n = size(db)?;
        let leaves = leaf_hashes(db, n)?;
        let cp = Checkpoint { origin: origin.to_owned(), tree_size: n, root: merkle::root(&leaves), time: now };
        let signed = qr::cose::sign(&cp.payload(), signer).map_err(AuditError::Sign)?;
        db.conn()
            .execute(
                "INSERT OR REPLACE INTO audit_checkpoints (tree_size, root, time, signed) VALUES (?1, ?2, ?3, ?4)",
                params![i64::try_from(n).unwrap_or(i64::MAX), cp.root.as_slice(), now, signed],
            )
            .map_err(db.err("store checkpoint"))?;
        Ok((cp, signed))
    })();
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    db.conn().execute_batch(end).map_err(db.err("commit checkpoint"))?;
    result
}

/// Parses and verifies a signed checkpoint with the issuer key.
pub fn open_checkpoint(signed: &[u8], issuer: &VerifyingKey) -> Result<Checkpoint, AuditError> {
    let (msg, _) = qr::cose::parse(signed).map_err(AuditError::CheckpointStructure)?;
    qr::cose::check_algorithm(&msg, true).map_err(AuditError::CheckpointAlgorithm)?;
    if !qr::cose::signature_verifies(&msg, b"", issuer) {
        return Err(AuditError::CheckpointSignature);
    }
    Checkpoint::from_payload(msg.payload.as_deref().unwrap_or_default()).map_err(AuditError::BadCheckpoint)
}

/// A stored checkpoint row: (tree size, root column, signed COSE_Sign1).
pub type StoredCheckpoint = (u64, Vec<u8>, Vec<u8>);

/// Stored checkpoints (signed bytes), by size.
pub fn stored_checkpoints(db: &ClinicDb) -> Result<Vec<StoredCheckpoint>, AuditError> {
    let mut st = db
        .conn()
        .prepare_cached("SELECT tree_size, root, signed FROM audit_checkpoints ORDER BY tree_size")
        .map_err(db.err("read checkpoints"))?;
    let mut rows = st.query([]).map_err(db.err("read checkpoints"))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db.err("read checkpoints"))? {
        let n: i64 = r.get(0).map_err(db.err("read checkpoints"))?;
        out.push((
            u64::try_from(n).unwrap_or(u64::MAX),
            r.get(1).map_err(db.err("read checkpoints"))?,
            r.get(2).map_err(db.err("read checkpoints"))?,
        ));
    }
    Ok(out)
}

/// The latest stored checkpoint, verified.
pub fn latest_checkpoint(db: &ClinicDb, issuer: &VerifyingKey) -> Result<Option<(Checkpoint, Vec<u8>)>, AuditError> {
    let row: Option<Vec<u8>> = db
        .conn()
        .query_row("SELECT signed FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1", [], |r| r.get(0))
        .optional()
        .map_err(db.err("read checkpoints"))?;
    row.map(|signed| open_checkpoint(&signed, issuer).map(|cp| (cp, signed))).transpose()
}

/// Why verification failed, naming the first bad entry (or the checkpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Entry `seq` is missing: the row at its place has a later seq (deleted row).
    Missing { seq: u64, found: i64 },
    /// A row is out of order or duplicated (inserted/reordered rows).
    OutOfOrder { position: u64, found: i64 },
    /// Entry `seq`'s content does not hash to its stored leaf hash (edited row).
    Altered { seq: u64 },
    /// A checkpoint does not match the tree rebuilt from the rows: some entry in
    /// `first_suspect..tree_size` was changed with its stored hash recomputed.
    RootMismatch { tree_size: u64, first_suspect: u64 },
    /// A checkpoint covers more entries than the log has (entries deleted from the end).
    Truncated { tree_size: u64, entries: u64 },
    /// A checkpoint's signature, encoding or stored columns are wrong.
    BadCheckpoint { tree_size: u64, why: String },
    /// An entry in a staff card's name whose signature is missing or wrong, or a staff card
    /// issuance whose credential the clinic key did not sign (`docs/staff.md`).
    StaffSignature { seq: u64, why: String },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Missing { seq, found } => {
                write!(f, "first bad entry: #{seq} is missing (the next row is #{found}): rows were deleted")
            }
            Finding::OutOfOrder { position, found } => {
                write!(f, "first bad entry: #{position} (a row with seq {found} is in its place): rows were inserted or reordered")
            }
            Finding::Altered { seq } => write!(f, "first bad entry: #{seq} was altered (its content no longer matches its leaf hash)"),
            Finding::RootMismatch { tree_size, first_suspect } => write!(
                f,
                "checkpoint at size {tree_size} does not match the log: an entry in #{first_suspect}..#{} was altered with its hash recomputed",
                tree_size.saturating_sub(1)
            ),
            Finding::Truncated { tree_size, entries } => write!(
                f,
                "first bad entry: #{entries} is missing: the log has {entries} entries but a signed checkpoint covers {tree_size}"
            ),
            Finding::BadCheckpoint { tree_size, why } => write!(f, "checkpoint at size {tree_size} is invalid: {why}"),
            Finding::StaffSignature { seq, why } => write!(f, "first bad entry: #{seq}: {why}"),
        }
    }
}

/// What a successful verification saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries checked.
    pub entries: u64,
    /// Checkpoints checked.
    pub checkpoints: u64,
    /// The root of the whole log.
    pub root: Hash,
    /// Entries in a staff card's name whose card signature was checked.
    pub staff_signatures: u64,
}

/// Recomputes the tree from the rows and checks every row and every stored checkpoint.
/// `Ok(Err(finding))` names the first problem.
pub fn verify(db: &ClinicDb, issuer: &VerifyingKey) -> Result<Result<VerifyReport, Finding>, AuditError> {
    verify_rows(stored_checkpoints(db)?, issuer, |sink| read_stage(db, sink))
}

/// [`verify`] over rows from any storage (this device's database, or the clinic's shared one):
/// `read` feeds every row, in `seq` order, to the sink and stops early when
/// [`RowSink::push`] returns false. `checkpoints` are the stored (size, root, signed) rows.
pub fn verify_rows(
    checkpoints: Vec<StoredCheckpoint>,
    issuer: &VerifyingKey,
    read: impl FnOnce(&mut RowSink) -> Result<(), AuditError>,
) -> Result<Result<VerifyReport, Finding>, AuditError> {
    let mut opened = Vec::with_capacity(checkpoints.len());
    for (size, root, signed) in checkpoints {
        let cp = match open_checkpoint(&signed, issuer) {
            Ok(cp) => cp,
            Err(e) => return Ok(Err(Finding::BadCheckpoint { tree_size: size, why: e.to_string() })),
        };
        if cp.tree_size != size || cp.root.as_slice() != root.as_slice() {
            return Ok(Err(Finding::BadCheckpoint {
                tree_size: size,
                why: "stored size/root columns differ from the signed content".into(),
            }));
        }
        opened.push(cp);
    }
    let checkpoints = opened;
    // Two stages on two threads: this thread reads the storage (the connection stays here) and
    // re-encodes each row into a batch; the other hashes, compares and builds the tree.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(8);
    let checkpoints_ref = &checkpoints;
    let (produced, consumed) = std::thread::scope(|scope| {
        let consumer = scope.spawn(move || hash_stage(rx, checkpoints_ref));
        let mut sink =
            RowSink { tx, position: 0, batch: Batch::new(), stop: None, closed: false, staff: StaffKeys::new(issuer), signed: 0 };
        let produced = read(&mut sink).map(|()| sink.finish());
        let consumed = consumer.join().unwrap_or(Err(Finding::BadCheckpoint { tree_size: 0, why: "verifier thread failed".into() }));
        (produced, consumed)
    });
    // The hashing stage saw the rows before any stop of the reading stage: its finding is earlier.
    let (position, root) = match consumed {
        Err(f) => return Ok(Err(f)),
        Ok(x) => x,
    };
    let (stop, staff_signatures) = produced?;
    if let Some(stop) = stop {
        return Ok(Err(stop));
    }
    if let Some(cp) = checkpoints.iter().find(|cp| cp.tree_size > position) {
        return Ok(Err(Finding::Truncated { tree_size: cp.tree_size, entries: position }));
    }
    Ok(Ok(VerifyReport { entries: position, checkpoints: checkpoints.len() as u64, root, staff_signatures }))
}

const BATCH: usize = 4096;

/// Re-encoded rows for the hashing stage.
struct Batch {
    /// Concatenated canonical entries.
    bytes: Vec<u8>,
    /// End offset of each entry in `bytes`.
    ends: Vec<usize>,
    /// Stored leaf hashes (all zero when the column is not 32 bytes: never a SHA-256 output).
    stored: Vec<Hash>,
}

impl Batch {
    fn new() -> Self {
        Batch { bytes: Vec::with_capacity(BATCH * 96), ends: Vec::with_capacity(BATCH), stored: Vec::with_capacity(BATCH) }
    }
}

/// One stored audit row as a verifier reads it. A column that is NULL or of the wrong type is
/// `None`: an edited row.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawRow<'a> {
    /// `seq`.
    pub seq: Option<i64>,
    /// `time`.
    pub time: Option<i64>,
    /// `kind`, `actor`, `subject`, `outcome`, `detail`.
    pub text: [Option<&'a str>; 5],
    /// The stored `leaf_hash`.
    pub leaf: Option<&'a [u8]>,
}

/// Where a storage's reader puts the rows for [`verify_rows`]: checks `seq` = position and
/// re-encodes each row from its columns (borrowed, no allocation) for the hashing stage.
pub struct RowSink {
    tx: std::sync::mpsc::SyncSender<Batch>,
    position: u64,
    batch: Batch,
    stop: Option<Finding>,
    closed: bool,
    staff: StaffKeys,
    /// Entries whose staff-card signature was checked.
    signed: u64,
}

/// The staff cards' keys, learnt from the `staff.issued` entries as the rows go by.
struct StaffKeys {
    issuer: VerifyingKey,
    keys: std::collections::HashMap<u32, crate::staff::signed::CardKey>,
}

impl StaffKeys {
    fn new(issuer: &VerifyingKey) -> Self {
        StaffKeys { issuer: *issuer, keys: std::collections::HashMap::new() }
    }

    /// Checks the staff side of one row: a `staff.issued` entry's credential (signed by the
    /// clinic key, for the serial it names), and the signature of an entry in a staff card's
    /// name. `Ok(true)`: a signature was checked.
    fn check(&mut self, time: i64, text: [&str; 5]) -> Result<bool, String> {
        use crate::staff::signed;
        let [kind, actor, subject, outcome, detail] = text;
        if kind == EventKind::StaffIssued.as_str() && outcome == Outcome::Ok.as_str() {
            let staff = detail::issued_staff(subject, detail, &self.issuer)?;
            let c = staff.credential();
            self.keys.insert(c.card_serial, signed::CardKey::new(&c.key_9a));
            return Ok(false);
        }
        // In the clinic log the actor is `<device>/<actor>`; the card signed the actor it wrote.
        let Some(card) = signed::card_actor(actor) else { return Ok(false) };
        let Some((_, serial)) = signed::parse_actor(card) else { return Err(format!("its actor {actor:?} is not a staff card")) };
        signed::check(time, kind, card, subject, outcome, detail, self.keys.get(&serial)).map_err(|e| e.to_string())?;
        Ok(true)
    }
}

impl RowSink {
    /// Takes the next row; false: stop reading (a finding, or the hashing stage stopped).
    pub fn push(&mut self, r: &RawRow<'_>) -> bool {
        if self.stop.is_some() || self.closed {
            return false;
        }
        let position = self.position;
        if r.seq.and_then(|v| u64::try_from(v).ok()) != Some(position) {
            let found = r.seq.unwrap_or(-1);
            self.stop = Some(if found > 0 && found.unsigned_abs() > position {
                Finding::Missing { seq: position, found }
            } else {
                Finding::OutOfOrder { position, found }
            });
            return false;
        }
        if let (Some(time), [Some(k), Some(a), Some(s), Some(o), Some(d)]) = (r.time, r.text) {
            match self.staff.check(time, [k, a, s, o, d]) {
                Ok(checked) => self.signed += u64::from(checked),
                Err(why) => {
                    self.stop = Some(Finding::StaffSignature { seq: position, why });
                    return false;
                }
            }
        }
        let batch = &mut self.batch;
        let start = batch.bytes.len();
        let ok = (|| -> Option<()> {
            let time = r.time?;
            let stored = r.leaf?;
            cbor::write_head(&mut batch.bytes, cbor::ARRAY, 7);
            cbor::write_head(&mut batch.bytes, cbor::UINT, position);
            cbor::write_int(&mut batch.bytes, time);
            for text in r.text {
                cbor::write_text(&mut batch.bytes, text?);
            }
            batch.stored.push(stored.try_into().unwrap_or([0; 32]));
            Some(())
        })();
        if ok.is_none() {
            // A column of the wrong type: an edited row.
            batch.bytes.truncate(start);
            self.stop = Some(Finding::Altered { seq: position });
            return false;
        }
        batch.ends.push(batch.bytes.len());
        self.position += 1;
        if batch.ends.len() == BATCH && self.tx.send(std::mem::replace(&mut self.batch, Batch::new())).is_err() {
            self.closed = true; // the hashing stage stopped with a finding
            return false;
        }
        true
    }

    fn finish(self) -> (Option<Finding>, u64) {
        if !self.batch.ends.is_empty() && !self.closed {
            let _ = self.tx.send(self.batch);
        }
        (self.stop, self.signed)
    }
}

/// Steps this device's rows in rowid (= seq) order into `sink`.
fn read_stage(db: &ClinicDb, sink: &mut RowSink) -> Result<(), AuditError> {
    let mut st = db
        .conn()
        .prepare("SELECT seq, time, kind, actor, subject, outcome, detail, leaf_hash FROM audit_entries ORDER BY rowid")
        .map_err(db.err("read audit entries"))?;
    let mut rows = st.query([]).map_err(db.err("read audit entries"))?;
    while let Some(r) = rows.next().map_err(db.err("read audit entries"))? {
        let int = |i: usize| r.get_ref(i).ok().and_then(|v| v.as_i64().ok());
        let text = |i: usize| r.get_ref(i).ok().and_then(|v| v.as_str().ok());
        let raw = RawRow {
            seq: int(0),
            time: int(1),
            text: [text(2), text(3), text(4), text(5), text(6)],
            leaf: r.get_ref(7).ok().and_then(|v| v.as_blob().ok()),
        };
        if !sink.push(&raw) {
            break;
        }
    }
    Ok(())
}

/// Hashes each entry, compares the stored hash, builds the tree and checks each checkpoint as its
/// size is reached. Returns (entries seen, root) or the first finding.
fn hash_stage(rx: std::sync::mpsc::Receiver<Batch>, checkpoints: &[Checkpoint]) -> Result<(u64, Hash), Finding> {
    let mut next_cp = checkpoints.iter().peekable();
    let mut prev_cp_size = 0u64;
    let mut frontier = Frontier::new();
    while let Some(cp) = next_cp.next_if(|cp| cp.tree_size == 0) {
        if cp.root != merkle::empty_root() {
            return Err(Finding::RootMismatch { tree_size: 0, first_suspect: 0 });
        }
    }
    let mut position = 0u64;
    for batch in rx {
        let mut start = 0usize;
        for (end, stored) in batch.ends.iter().zip(&batch.stored) {
            let entry = batch.bytes.get(start..*end).unwrap_or_default();
            start = *end;
            let leaf = merkle::leaf_hash(entry);
            if &leaf != stored {
                return Err(Finding::Altered { seq: position });
            }
            frontier.push(leaf);
            position += 1;
            while let Some(cp) = next_cp.next_if(|cp| cp.tree_size == position) {
                if cp.root != frontier.root() {
                    return Err(Finding::RootMismatch { tree_size: cp.tree_size, first_suspect: prev_cp_size });
                }
                prev_cp_size = cp.tree_size;
            }
        }
    }
    Ok((position, frontier.root()))
}

/// An inclusion proof of entry `seq` in the tree of `tree_size` entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub seq: u64,
    pub tree_size: u64,
    pub leaf_hash: Hash,
    pub root: Hash,
    pub path: Vec<Hash>,
}

/// Proves entry `seq` is in the latest checkpoint (checked before returning).
pub fn prove(db: &ClinicDb, issuer: &VerifyingKey, seq: u64) -> Result<InclusionProof, AuditError> {
    let (cp, _) = latest_checkpoint(db, issuer)?
        .ok_or_else(|| AuditError::Range("no checkpoint yet: run `medcard audit checkpoint` first".into()))?;
    if seq >= cp.tree_size {
        return Err(AuditError::Range(format!(
            "entry #{seq} is not covered by the latest checkpoint (size {}): make a new checkpoint",
            cp.tree_size
        )));
    }
    let leaves = leaf_hashes(db, cp.tree_size)?;
    prove_over(&leaves, &cp, seq)
}

/// The leaf hashes of the first `n` of `entries` (by seq, from 0), recomputed from their fields.
/// A gap or reorder is an error (run `audit verify`); so are fewer than `n` entries.
pub fn leaf_hashes_of(entries: &[Entry], n: u64) -> Result<Vec<Hash>, AuditError> {
    leaf_hashes_in_order(entries.iter().map(Ok), n)
}

/// The leaf hashes of the first `n` of `entries`, which must be entries `0, 1, 2, …` in order:
/// a gap or reorder is an error (run `audit verify`); so are fewer than `n` entries. The one
/// check behind [`leaf_hashes`] (rows of this device's log) and [`leaf_hashes_of`] (entries read
/// from the clinic database).
fn leaf_hashes_in_order<E: std::borrow::Borrow<Entry>>(
    entries: impl IntoIterator<Item = Result<E, AuditError>>,
    n: u64,
) -> Result<Vec<Hash>, AuditError> {
    let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(1 << 20));
    for e in entries {
        if out.len() as u64 == n {
            break;
        }
        let e = e?;
        let e = e.borrow();
        if e.seq != out.len() as u64 {
            return Err(AuditError::Range(format!("audit log has a gap or reorder at entry {}: run `medcard audit verify`", out.len())));
        }
        out.push(merkle::leaf_hash(&e.encode()));
    }
    if (out.len() as u64) < n {
        return Err(AuditError::Range(format!("audit log has {} entries, fewer than {n}", out.len())));
    }
    Ok(out)
}

/// The latest of `stored` checkpoints (by size), verified with the issuer key.
pub fn latest_of(stored: &[StoredCheckpoint], issuer: &VerifyingKey) -> Result<Option<Checkpoint>, AuditError> {
    stored.iter().max_by_key(|(size, _, _)| *size).map(|(_, _, signed)| open_checkpoint(signed, issuer)).transpose()
}

/// Proves entry `seq` is in the tree of checkpoint `cp` over `leaves` (its first `cp.tree_size`
/// leaf hashes); the proof is checked against the signed root before it is returned.
pub fn prove_over(leaves: &[Hash], cp: &Checkpoint, seq: u64) -> Result<InclusionProof, AuditError> {
    if seq >= cp.tree_size {
        return Err(AuditError::Range(format!(
            "entry #{seq} is not covered by the latest checkpoint (size {}): make a new checkpoint",
            cp.tree_size
        )));
    }
    let leaves = leaves.get(..usize::try_from(cp.tree_size).unwrap_or(usize::MAX)).unwrap_or(leaves);
    let idx = usize::try_from(seq).map_err(|_| AuditError::Range("entry index too large".into()))?;
    let path = merkle::inclusion_proof(leaves, idx).ok_or_else(|| AuditError::Range(format!("entry #{seq} out of range")))?;
    let leaf = *leaves.get(idx).ok_or_else(|| AuditError::Range(format!("entry #{seq} out of range")))?;
    if !merkle::verify_inclusion(seq, cp.tree_size, &leaf, &path, &cp.root) {
        return Err(AuditError::ProofFailed { what: "inclusion" });
    }
    Ok(InclusionProof { seq, tree_size: cp.tree_size, leaf_hash: leaf, root: cp.root, path })
}

/// A consistency proof from an old checkpoint to the latest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    pub old: Checkpoint,
    pub new: Checkpoint,
    pub path: Vec<Hash>,
}

/// Proves the log only grew since `old_signed` (a checkpoint a witness kept); checked before
/// returning, so an `Err(ProofFailed)` means the log was rewritten.
pub fn consistency(db: &ClinicDb, issuer: &VerifyingKey, old_signed: &[u8]) -> Result<ConsistencyProof, AuditError> {
    let old = open_checkpoint(old_signed, issuer)?;
    let (new, _) = latest_checkpoint(db, issuer)?
        .ok_or_else(|| AuditError::Range("no checkpoint yet: run `medcard audit checkpoint` first".into()))?;
    if old.tree_size > new.tree_size {
        return Err(AuditError::Range(format!(
            "the old checkpoint covers {} entries but the latest covers only {}: the log shrank",
            old.tree_size, new.tree_size
        )));
    }
    let leaves = leaf_hashes(db, new.tree_size)?;
    consistency_over(&leaves, old, new)
}

/// Proves the tree of checkpoint `old` is a prefix of the tree of `new` over `leaves` (the first
/// `new.tree_size` leaf hashes); checked before it is returned.
pub fn consistency_over(leaves: &[Hash], old: Checkpoint, new: Checkpoint) -> Result<ConsistencyProof, AuditError> {
    if old.tree_size > new.tree_size {
        return Err(AuditError::Range(format!(
            "the old checkpoint covers {} entries but the latest covers only {}: the log shrank",
            old.tree_size, new.tree_size
        )));
    }
    let leaves = leaves.get(..usize::try_from(new.tree_size).unwrap_or(usize::MAX)).unwrap_or(leaves);
    let path = if old.tree_size == 0 || old.tree_size == new.tree_size {
        Vec::new()
    } else {
        merkle::consistency_proof(leaves, usize::try_from(old.tree_size).unwrap_or(usize::MAX))
            .ok_or_else(|| AuditError::Range("old size out of range".into()))?
    };
    let ok = if old.tree_size == 0 {
        old.root == merkle::empty_root()
    } else {
        merkle::verify_consistency(old.tree_size, new.tree_size, &old.root, &new.root, &path)
    };
    if !ok {
        return Err(AuditError::ProofFailed { what: "consistency" });
    }
    Ok(ConsistencyProof { old, new, path })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic)]
mod tests;
