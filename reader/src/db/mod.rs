//! The clinic database: SQLite with SQLCipher (whole-file encryption, including the WAL), WAL
//! journal, a busy timeout, and schema migrations keyed by `PRAGMA user_version`.
//! See `docs/database.md` for the schema.
//!
//! The key is 32 raw bytes (from the clinic keystore, `KeyPurpose::Database`), given to
//! SQLCipher as a raw hex key (`PRAGMA key = "x'…'"`), so no passphrase KDF runs on open.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use zeroize::Zeroizing;

use crate::category::{self, Category};
use crate::sealed::{RecordMeta, keywrap};
use crate::store::Locator;

/// Busy timeout: how long a writer waits for another process's transaction.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The migrations, in order; the schema version is the number applied.
const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    "CREATE TABLE cards (
        serial      INTEGER PRIMARY KEY,
        patient_id  TEXT NOT NULL,
        status      TEXT NOT NULL,
        credential  BLOB,
        issued_at   INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
    );
    CREATE INDEX cards_patient ON cards(patient_id);
    CREATE TABLE consent_versions (
        patient_id    TEXT NOT NULL,
        version       INTEGER NOT NULL,
        token         BLOB NOT NULL,
        token_sha256  BLOB NOT NULL,
        scope         TEXT NOT NULL,
        iat           INTEGER NOT NULL,
        exp           INTEGER NOT NULL,
        revoked_at    INTEGER,
        PRIMARY KEY (patient_id, version)
    );
    CREATE TABLE records (
        record_id    TEXT PRIMARY KEY,
        patient_id   TEXT NOT NULL,
        category     TEXT NOT NULL,
        media_type   TEXT NOT NULL,
        created      INTEGER NOT NULL,
        author       TEXT NOT NULL,
        locator      TEXT NOT NULL,
        size         INTEGER NOT NULL,
        wrapped_key  BLOB NOT NULL
    );
    CREATE INDEX records_patient ON records(patient_id);
    CREATE TABLE cache (
        qr_id          TEXT PRIMARY KEY,
        issuer_kid     BLOB NOT NULL,
        patient_id     TEXT NOT NULL,
        locator        TEXT NOT NULL,
        categories     TEXT NOT NULL,
        consent_sha256 BLOB NOT NULL,
        verified_at    INTEGER NOT NULL,
        expires_at     INTEGER NOT NULL,
        media_type     TEXT NOT NULL,
        document       BLOB NOT NULL
    );
    CREATE INDEX cache_patient ON cache(patient_id, expires_at);
    CREATE INDEX cache_expiry ON cache(expires_at);
    CREATE TABLE audit_entries (
        seq        INTEGER PRIMARY KEY,
        time       INTEGER NOT NULL,
        kind       TEXT NOT NULL,
        actor      TEXT NOT NULL,
        subject    TEXT NOT NULL,
        outcome    TEXT NOT NULL,
        detail     TEXT NOT NULL,
        leaf_hash  BLOB NOT NULL
    );
    CREATE TABLE audit_checkpoints (
        tree_size  INTEGER PRIMARY KEY,
        root       BLOB NOT NULL,
        time       INTEGER NOT NULL,
        signed     BLOB NOT NULL
    );",
    // 2: the card side's clinic state (docs/database.md): what the clinic remembers of an issued
    // card, and revocations (also of serials this database never saw issued).
    "ALTER TABLE cards ADD COLUMN name TEXT NOT NULL DEFAULT '';
    ALTER TABLE cards ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE cards ADD COLUMN kid_9e TEXT NOT NULL DEFAULT '';
    ALTER TABLE cards ADD COLUMN kid_9c TEXT NOT NULL DEFAULT '';
    CREATE TABLE card_revocations (
        serial      INTEGER PRIMARY KEY,
        revoked_at  INTEGER NOT NULL,
        reason      TEXT NOT NULL
    );",
    // 3: one-time QR ids already used at this device (reader/src/scan_flow.rs, docs/checkin-scan.md).
    "CREATE TABLE qr_used (
        cti      TEXT PRIMARY KEY,
        used_at  INTEGER NOT NULL,
        exp      INTEGER NOT NULL
    );",
    // 4: per-disclosure copies of records sealed at check-in under a one-time key (docs/threat-model.md):
    // each is removed from the store once the code that points at it has expired.
    "CREATE TABLE disclosures (
        locator  TEXT PRIMARY KEY,
        qr_id    TEXT NOT NULL,
        exp      INTEGER NOT NULL
    );
    CREATE INDEX disclosures_exp ON disclosures(exp);",
    // 5: clinic mode (docs/deployment.md): audit entries written while the clinic database was
    // unreachable, waiting to be sent (each keeps its entry id, so a resend is not counted twice).
    "CREATE TABLE audit_queue (
        entry_id   TEXT PRIMARY KEY,
        queued_at  INTEGER NOT NULL,
        time       INTEGER NOT NULL,
        kind       TEXT NOT NULL,
        actor      TEXT NOT NULL,
        subject    TEXT NOT NULL,
        outcome    TEXT NOT NULL,
        detail     TEXT NOT NULL
    );",
    // 6: clinic mode: this device's copy of the clinic's revocation list and trust list, and when
    // it was last refreshed from the clinic database (shown when the database does not answer).
    "CREATE TABLE copy_revocations (
        serial      INTEGER PRIMARY KEY,
        revoked_at  INTEGER NOT NULL,
        reason      TEXT NOT NULL
    );
    CREATE TABLE copy_trust_files (
        name   TEXT PRIMARY KEY,
        bytes  BLOB NOT NULL
    );
    CREATE TABLE copy_refreshed (
        list  TEXT PRIMARY KEY,
        at    INTEGER NOT NULL
    );",
];

/// The database file name inside the data directory.
pub const DB_FILE: &str = "clinic.db";

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// A database failure, naming the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The key does not decrypt the file (or it is not a database at all).
    #[error("wrong database key for {}: the clinic database cannot be decrypted with this clinic's key (or the file is not a MedCard database)", path.display())]
    WrongKey { path: PathBuf },
    /// The file was written by a newer MedCard.
    #[error("clinic database {} has schema version {found}, newer than this program's {supported}: upgrade MedCard; the file was not changed", path.display())]
    NewerSchema { path: PathBuf, found: i64, supported: i64 },
    /// SQLite reported an error.
    #[error("clinic database {}: {operation}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        operation: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// A row holds a value this program cannot use.
    #[error("clinic database {}: table {table}, row {row}: {what}", path.display())]
    BadRow { path: PathBuf, table: &'static str, row: String, what: String },
    /// No such row.
    #[error("{what} {id} is not in the clinic database")]
    NotFound { what: &'static str, id: String },
    /// A content key could not be wrapped or unwrapped.
    #[error(transparent)]
    KeyWrap(#[from] keywrap::KeyWrapError),
}

/// An open clinic database.
pub struct ClinicDb {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for ClinicDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClinicDb({})", self.path.display())
    }
}

/// A record's row in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    /// Metadata (as sealed).
    pub meta: RecordMeta,
    /// Where the sealed record is.
    pub locator: Locator,
    /// Size of the sealed record in bytes.
    pub size: u64,
    /// The content key, wrapped (`records::keywrap`).
    pub wrapped_key: Vec<u8>,
}

/// A verified record held for offline use, with its provenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRow {
    /// The QR code's id (cti), hex.
    pub qr_id: String,
    /// kid of the issuer key that signed the QR code.
    pub issuer_kid: Vec<u8>,
    /// Patient id.
    pub patient_id: String,
    /// The record's locator.
    pub locator: String,
    /// Categories the QR code covers.
    pub categories: Vec<Category>,
    /// SHA-256 of the consent token the code was issued under.
    pub consent_sha256: Vec<u8>,
    /// When it was verified (Unix s).
    pub verified_at: i64,
    /// When it must be gone (Unix s): the QR code's exp.
    pub expires_at: i64,
    /// Media type of the document.
    pub media_type: String,
    /// The document.
    pub document: Vec<u8>,
}

impl ClinicDb {
    /// Opens (creating if missing) the database at `path` with `key`, migrating it to
    /// [`SCHEMA_VERSION`]. A wrong key or a newer schema is refused without writing anything.
    pub fn open(path: &Path, key: &Zeroizing<[u8; 32]>) -> Result<Self, DbError> {
        let sql = |operation| {
            let path = path.to_path_buf();
            move |source| DbError::Sqlite { path, operation, source }
        };
        // Create the file 0600 ourselves (SQLite would use 0644; the WAL and shm files copy it).
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(path).map_err(|source| {
                DbError::Sqlite {
                    path: path.to_path_buf(),
                    operation: "create",
                    source: rusqlite::Error::ToSqlConversionFailure(Box::new(source)),
                }
            })?;
        }
        let conn = Connection::open(path).map_err(sql("open"))?;
        // SQLCipher would print decryption failures on stderr; we report them as typed errors.
        conn.execute_batch("PRAGMA cipher_log_level = NONE;").map_err(sql("set log level"))?;
        let pragma = Zeroizing::new(format!("PRAGMA key = \"x'{}'\";", hex::encode(key.as_slice())));
        conn.execute_batch(&pragma).map_err(sql("set key"))?;
        // Page format (fixed when the file is created, so part of the file format): 16 KiB pages
        // and HMAC-SHA256 page authentication (SHA-NI accelerated where SHA-512 is not); AES-256
        // stays the page cipher. Sequential scans (audit verify) run about 1.5x faster than with
        // SQLCipher's defaults (4 KiB, HMAC-SHA512).
        conn.execute_batch("PRAGMA cipher_hmac_algorithm = HMAC_SHA256;").map_err(sql("set page format"))?;
        // The first read decrypts page 1: a wrong key fails here with SQLITE_NOTADB.
        match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)) {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::NotADatabase => {
                return Err(DbError::WrongKey { path: path.to_path_buf() });
            }
            Err(e) => return Err(sql("read schema")(e)),
        }
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql("set busy timeout"))?;
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql("read schema version"))?;
        if found > SCHEMA_VERSION {
            return Err(DbError::NewerSchema { path: path.to_path_buf(), found, supported: SCHEMA_VERSION });
        }
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(sql("set WAL journal mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(DbError::BadRow {
                path: path.to_path_buf(),
                table: "pragma",
                row: "journal_mode".into(),
                what: format!("expected wal, got {mode}"),
            });
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;").map_err(sql("set pragmas"))?;
        let mut db = ClinicDb { conn, path: path.to_path_buf() };
        db.migrate()?;
        Ok(db)
    }

    fn migrate(&mut self) -> Result<(), DbError> {
        let path = self.path.clone();
        let sql = |operation| {
            let path = path.clone();
            move |source| DbError::Sqlite { path, operation, source }
        };
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql("begin migration"))?;
        let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql("read schema version"))?;
        if found > SCHEMA_VERSION {
            return Err(DbError::NewerSchema { path: self.path.clone(), found, supported: SCHEMA_VERSION });
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
            tx.execute_batch(m).map_err(sql("apply migration"))?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1)).map_err(sql("set schema version"))?;
        }
        tx.commit().map_err(sql("commit migration"))
    }

    /// Opens the clinic's database, `<data>/clinic.db`, with the key the keystore derives for it.
    pub fn open_clinic(ks: &crate::keystore::Keystore) -> Result<Self, DbError> {
        let key = ks.database_key();
        Self::open(&ks.data_dir().join(DB_FILE), &key)
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection (for the audit log and tests).
    #[must_use]
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The connection, mutably (transactions).
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    pub(crate) fn err(&self, operation: &'static str) -> impl FnOnce(rusqlite::Error) -> DbError + use<> {
        let path = self.path.clone();
        move |source| DbError::Sqlite { path, operation, source }
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64, DbError> {
        self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(self.err("read schema version"))
    }

    // ---- records index ----

    /// Adds a record's index row, wrapping `key` under `wrap_key`.
    pub fn insert_record(
        &self,
        meta: &RecordMeta,
        locator: &Locator,
        size: u64,
        key: &crate::sealed::ContentKey,
        wrap_key: &Zeroizing<[u8; 32]>,
    ) -> Result<(), DbError> {
        let wrapped = keywrap::wrap(wrap_key, &meta.record_id, key)?;
        self.conn
            .execute(
                "INSERT INTO records (record_id, patient_id, category, media_type, created, author, locator, size, wrapped_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    meta.record_id,
                    meta.patient_id,
                    meta.category.as_str(),
                    meta.media_type,
                    meta.created,
                    meta.author,
                    locator.to_string(),
                    i64::try_from(size).unwrap_or(i64::MAX),
                    wrapped
                ],
            )
            .map_err(self.err("insert record"))?;
        Ok(())
    }

    fn record_from_row(&self, r: &rusqlite::Row<'_>) -> Result<RecordRow, DbError> {
        let get = |i: usize| -> Result<String, DbError> { r.get(i).map_err(self.err("read record row")) };
        let record_id = get(0)?;
        let bad = |what: String| DbError::BadRow { path: self.path.clone(), table: "records", row: record_id.clone(), what };
        let category = get(2)?.parse::<Category>().map_err(|e| bad(e.to_string()))?;
        let locator = get(6)?.parse::<Locator>().map_err(|e| bad(e.to_string()))?;
        let created: i64 = r.get(4).map_err(self.err("read record row"))?;
        let size: i64 = r.get(7).map_err(self.err("read record row"))?;
        let wrapped_key: Vec<u8> = r.get(8).map_err(self.err("read record row"))?;
        Ok(RecordRow {
            meta: RecordMeta { record_id: record_id.clone(), patient_id: get(1)?, category, media_type: get(3)?, created, author: get(5)? },
            locator,
            size: u64::try_from(size).map_err(|_| bad(format!("negative size {size}")))?,
            wrapped_key,
        })
    }

    const RECORD_COLS: &str = "record_id, patient_id, category, media_type, created, author, locator, size, wrapped_key";

    /// One record's row.
    pub fn record(&self, record_id: &str) -> Result<RecordRow, DbError> {
        let mut st = self
            .conn
            .prepare_cached(&format!("SELECT {} FROM records WHERE record_id = ?1", Self::RECORD_COLS))
            .map_err(self.err("query record"))?;
        let mut rows = st.query([record_id]).map_err(self.err("query record"))?;
        match rows.next().map_err(self.err("query record"))? {
            Some(r) => self.record_from_row(r),
            None => Err(DbError::NotFound { what: "record", id: record_id.to_owned() }),
        }
    }

    /// Records, optionally of one patient, oldest first.
    pub fn records(&self, patient_id: Option<&str>) -> Result<Vec<RecordRow>, DbError> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {} FROM records WHERE ?1 IS NULL OR patient_id = ?1 ORDER BY created, record_id",
                Self::RECORD_COLS
            ))
            .map_err(self.err("list records"))?;
        let mut rows = st.query([patient_id]).map_err(self.err("list records"))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(self.err("list records"))? {
            out.push(self.record_from_row(r)?);
        }
        Ok(out)
    }

    // ---- per-disclosure record copies (written by check-in, docs/threat-model.md) ----

    /// Remembers a per-disclosure copy at `locator`, pointed at by code `qr_id` until `exp`.
    /// Written before the copy is stored, so no copy exists that the purge does not know.
    pub fn note_disclosure(&self, locator: &str, qr_id: &str, exp: i64) -> Result<(), DbError> {
        self.conn
            .execute("INSERT OR REPLACE INTO disclosures (locator, qr_id, exp) VALUES (?1, ?2, ?3)", rusqlite::params![locator, qr_id, exp])
            .map_err(self.err("remember disclosure copy"))?;
        Ok(())
    }

    /// The locators of copies whose code expired before `before`.
    pub fn expired_disclosures(&self, before: i64) -> Result<Vec<String>, DbError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT locator FROM disclosures WHERE exp < ?1 ORDER BY exp")
            .map_err(self.err("list expired disclosures"))?;
        let rows = st.query_map([before], |r| r.get(0)).map_err(self.err("list expired disclosures"))?;
        rows.collect::<Result<Vec<String>, _>>().map_err(self.err("list expired disclosures"))
    }

    /// Forgets a copy (after it was removed from the store).
    pub fn forget_disclosure(&self, locator: &str) -> Result<(), DbError> {
        self.conn.execute("DELETE FROM disclosures WHERE locator = ?1", [locator]).map_err(self.err("forget disclosure copy"))?;
        Ok(())
    }

    // ---- consent versions (written by the consent flow) ----

    /// Records a consent version.
    #[allow(clippy::too_many_arguments)]
    pub fn insert_consent(
        &self,
        patient_id: &str,
        version: i64,
        token: &[u8],
        token_sha256: &[u8; 32],
        scope: &[Category],
        iat: i64,
        exp: i64,
    ) -> Result<(), DbError> {
        self.conn
            .execute(
                "INSERT INTO consent_versions (patient_id, version, token, token_sha256, scope, iat, exp) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![patient_id, version, token, token_sha256.as_slice(), category::join(scope), iat, exp],
            )
            .map_err(self.err("insert consent version"))?;
        Ok(())
    }

    /// Marks every consent version of a patient revoked at `now`.
    pub fn revoke_consent(&self, patient_id: &str, now: i64) -> Result<usize, DbError> {
        self.conn
            .execute("UPDATE consent_versions SET revoked_at = ?2 WHERE patient_id = ?1 AND revoked_at IS NULL", params![patient_id, now])
            .map_err(self.err("revoke consent"))
    }

    // ---- cache ----

    /// Puts a verified record into the cache (replacing an entry for the same QR id).
    pub fn cache_put(&self, row: &CacheRow) -> Result<(), DbError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO cache (qr_id, issuer_kid, patient_id, locator, categories, consent_sha256, verified_at, expires_at, media_type, document)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    row.qr_id,
                    row.issuer_kid,
                    row.patient_id,
                    row.locator,
                    category::join(&row.categories),
                    row.consent_sha256,
                    row.verified_at,
                    row.expires_at,
                    row.media_type,
                    row.document
                ])
            })
            .map_err(self.err("insert cache row"))?;
        Ok(())
    }

    fn cache_from_row(&self, r: &rusqlite::Row<'_>) -> Result<CacheRow, DbError> {
        let e = || self.err("read cache row");
        let qr_id: String = r.get(0).map_err(e())?;
        let cats: String = r.get(4).map_err(e())?;
        let categories = category::parse_list(&cats).map_err(|x| DbError::BadRow {
            path: self.path.clone(),
            table: "cache",
            row: qr_id.clone(),
            what: x.to_string(),
        })?;
        Ok(CacheRow {
            issuer_kid: r.get(1).map_err(e())?,
            patient_id: r.get(2).map_err(e())?,
            locator: r.get(3).map_err(e())?,
            categories,
            consent_sha256: r.get(5).map_err(e())?,
            verified_at: r.get(6).map_err(e())?,
            expires_at: r.get(7).map_err(e())?,
            media_type: r.get(8).map_err(e())?,
            document: r.get(9).map_err(e())?,
            qr_id,
        })
    }

    const CACHE_COLS: &str =
        "qr_id, issuer_kid, patient_id, locator, categories, consent_sha256, verified_at, expires_at, media_type, document";

    /// The unexpired cached records of a patient (the bedside lookup).
    pub fn cache_lookup(&self, patient_id: &str, now: i64) -> Result<Vec<CacheRow>, DbError> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {} FROM cache WHERE patient_id = ?1 AND expires_at > ?2 ORDER BY verified_at",
                Self::CACHE_COLS
            ))
            .map_err(self.err("look up cache"))?;
        let mut rows = st.query(params![patient_id, now]).map_err(self.err("look up cache"))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(self.err("look up cache"))? {
            out.push(self.cache_from_row(r)?);
        }
        Ok(out)
    }

    /// Every cached record (expired ones too), by expiry.
    pub fn cache_list(&self) -> Result<Vec<CacheRow>, DbError> {
        let mut st = self
            .conn
            .prepare_cached(&format!("SELECT {} FROM cache ORDER BY expires_at, qr_id", Self::CACHE_COLS))
            .map_err(self.err("list cache"))?;
        let mut rows = st.query([]).map_err(self.err("list cache"))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(self.err("list cache"))? {
            out.push(self.cache_from_row(r)?);
        }
        Ok(out)
    }

    /// Removes every cached record that expired (`expires_at <= now`), whose consent token is
    /// revoked or expired here, or whose categories the patient's current consent no longer
    /// covers (only judged when this database knows consent versions for the patient).
    /// Returns how many rows were removed.
    pub fn cache_purge(&mut self, now: i64) -> Result<usize, DbError> {
        let err = self.err("purge cache");
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        let e = |op| {
            let path = self.path.clone();
            move |source| DbError::Sqlite { path, operation: op, source }
        };
        let mut removed = tx.execute("DELETE FROM cache WHERE expires_at <= ?1", [now]).map_err(e("purge expired"))?;
        removed += tx
            .execute(
                "DELETE FROM cache WHERE consent_sha256 IN
                   (SELECT token_sha256 FROM consent_versions WHERE revoked_at IS NOT NULL OR exp <= ?1)",
                [now],
            )
            .map_err(e("purge revoked"))?;
        // Category coverage against the newest current consent of each patient.
        let mut doomed = Vec::new();
        {
            let mut st = tx
                .prepare(
                    "SELECT c.qr_id, c.patient_id, c.categories,
                        (SELECT v.scope FROM consent_versions v WHERE v.patient_id = c.patient_id
                           AND v.revoked_at IS NULL AND v.exp > ?1 ORDER BY v.version DESC LIMIT 1),
                        EXISTS (SELECT 1 FROM consent_versions v WHERE v.patient_id = c.patient_id)
                     FROM cache c",
                )
                .map_err(e("purge uncovered"))?;
            let mut rows = st.query([now]).map_err(e("purge uncovered"))?;
            while let Some(r) = rows.next().map_err(e("purge uncovered"))? {
                let qr_id: String = r.get(0).map_err(e("purge uncovered"))?;
                let cats: String = r.get(2).map_err(e("purge uncovered"))?;
                let scope: Option<String> = r.get(3).map_err(e("purge uncovered"))?;
                let known: bool = r.get(4).map_err(e("purge uncovered"))?;
                if !known {
                    continue;
                }
                let covered = match scope {
                    None => false,
                    Some(scope) => {
                        let scope = category::parse_list(&scope).unwrap_or_default();
                        // An unreadable category list is not covered: fail closed.
                        category::parse_list(&cats).map(|c| c.iter().all(|x| scope.contains(x))).unwrap_or(false)
                    }
                };
                if !covered {
                    doomed.push(qr_id);
                }
            }
        }
        for id in doomed {
            removed += tx.execute("DELETE FROM cache WHERE qr_id = ?1", [id]).map_err(e("purge uncovered"))?;
        }
        tx.commit().map_err(e("commit purge"))?;
        Ok(removed)
    }

    /// Number of cache rows.
    pub fn cache_count(&self) -> Result<u64, DbError> {
        let n: i64 = self.conn.query_row("SELECT count(*) FROM cache", [], |r| r.get(0)).map_err(self.err("count cache"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Looks up a single value to check a row exists (tests, tools).
    pub fn record_exists(&self, record_id: &str) -> Result<bool, DbError> {
        self.conn
            .query_row("SELECT 1 FROM records WHERE record_id = ?1", [record_id], |_| Ok(()))
            .optional()
            .map(|o| o.is_some())
            .map_err(self.err("query record"))
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic)]
mod tests;
