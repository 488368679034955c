//! The clinic's shared state in PostgreSQL (clinic mode, `docs/deployment.md`): issued cards,
//! revocations, consent versions, spent one-time codes, the records index and the clinic-wide
//! audit log. Every rule that must hold across devices is enforced by the database:
//!
//! - a one-time code is spent by inserting its id into `qr_used` (primary key): of several
//!   devices scanning it at once, one insert wins and the others wait for it, then see the row;
//! - a consent version is checked and remembered under a per-patient advisory lock, so two
//!   kiosks cannot both accept an older version;
//! - revocations are rows every kiosk reads at each check-in;
//! - audit entries get their `seq` under one advisory lock, in the same transaction as the change
//!   they record, and are idempotent by `entry_id` (a device's queued entries can be sent again).

pub mod schema;

use std::time::Duration;

use postgres::error::SqlState;
use postgres::{Client, Transaction};
use sha2::{Digest, Sha256};

use super::{ConsentNote, ConsentVersion, IssuedCard, Revocation};
use crate::audit::{self, Checkpoint, Entry, Event, EventKind, Outcome, RawRow, RowSink, StoredCheckpoint, merkle};
use crate::category::{self, Category};
use crate::db::RecordRow;
use crate::deployment::{PgConfig, Tls};
use crate::sealed::RecordMeta;
use crate::store::Locator;

/// Advisory lock key that serializes audit appends and checkpoints (`seq` has no gaps).
pub const AUDIT_LOCK: i64 = 0x4d43_4155_4449_5400; // "MCAUDIT\0"
/// Advisory lock key of `medcard device setup-db`.
pub const SETUP_LOCK: i64 = 0x4d43_5345_5455_5000; // "MCSETUP\0"
/// The largest trust file accepted from the database (as from a file: 1 MiB).
pub const MAX_TRUST_FILE: usize = 1024 * 1024;

/// The oldest server version we run on (`server_version_num`).
pub const MIN_SERVER_VERSION: i32 = 130_000;
/// How long a connection attempt may take before the database counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The clinic database failed. Every message names the database and what to check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The server cannot be reached, or the connection broke.
    #[error("clinic database unreachable ({target}): {message}; check that PostgreSQL runs and this device's network reaches it")]
    Unavailable { target: String, message: String },
    /// Wrong user or password.
    #[error(
        "clinic database ({target}) refused the login: {message}; check the user in device.json and the password (join again with --db-password-file)"
    )]
    Login { target: String, message: String },
    /// The database does not exist.
    #[error("clinic database ({target}) does not exist: {message}; check the database name in the URL, or create it (docs/deployment.md)")]
    NoDatabase { target: String, message: String },
    /// The tables are missing.
    #[error("clinic database ({target}) has no MedCard tables: run `medcard device setup-db` once for the clinic (docs/deployment.md)")]
    NoSchema { target: String },
    /// A schema version this build does not know.
    #[error(
        "clinic database ({target}) has schema version {got}, this program knows {}: {}",
        schema::VERSION,
        if *got < schema::VERSION { "upgrade the clinic database with `medcard device setup-db` (as its owner)" } else { "upgrade MedCard on this device" }
    )]
    SchemaVersion { target: String, got: i32 },
    /// The server is too old.
    #[error("clinic database ({target}) runs PostgreSQL {got}, MedCard needs 13 or newer: upgrade the server")]
    ServerVersion { target: String, got: String },
    /// The device's role lacks the right (least privilege: docs/deployment.md).
    #[error(
        "clinic database refused {operation}: {message}; this device's database role may not do that (see docs/deployment.md, database roles)"
    )]
    Denied { operation: &'static str, message: String },
    /// TLS could not be set up (the CA file, the library).
    #[error("clinic database TLS: {message}; check the CA file (--db-ca at join, postgres.ca_file in device.json)")]
    Tls { message: String },
    /// The server's TLS certificate is not trusted: the connection is not made.
    #[error(
        "clinic database ({target}): its TLS certificate is not trusted ({reason}); check the CA file (--db-ca at join, \
         postgres.ca_file in device.json) and that the server's certificate names the host in the URL"
    )]
    TlsUntrusted { target: String, reason: String },
    /// The server takes encrypted connections only and this device connected without TLS.
    #[error("clinic database ({target}) accepts only encrypted connections: use --db-tls require (the default) with --db-ca")]
    TlsRequired { target: String },
    /// Any other server error.
    #[error("clinic database: {operation}: {message}")]
    Query { operation: &'static str, message: String },
    /// A row holds a value this program cannot use.
    #[error("clinic database: table {table}, row {row}: {what}")]
    BadRow { table: &'static str, row: String, what: String },
}

impl PgError {
    /// Whether the database could not be reached (the device may work offline where it can).
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        // An untrusted certificate (expired, say) keeps the device from the database like a
        // network fault: it works offline and queues its audit entries.
        matches!(self, PgError::Unavailable { .. } | PgError::TlsUntrusted { .. })
    }

    fn from_pg(operation: &'static str, target: &str, e: &postgres::Error) -> PgError {
        let target = target.to_owned();
        if let Some(db) = e.as_db_error() {
            let message = db.message().to_owned();
            let code = db.code();
            return if code == &SqlState::INVALID_AUTHORIZATION_SPECIFICATION && message.contains("no encryption") {
                PgError::TlsRequired { target }
            } else if code == &SqlState::INVALID_PASSWORD || code == &SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
                PgError::Login { target, message }
            } else if code == &SqlState::INVALID_CATALOG_NAME {
                PgError::NoDatabase { target, message }
            } else if code == &SqlState::UNDEFINED_TABLE {
                PgError::NoSchema { target }
            } else if code == &SqlState::INSUFFICIENT_PRIVILEGE {
                PgError::Denied { operation, message }
            } else if code.code().starts_with("08") || code == &SqlState::ADMIN_SHUTDOWN || code == &SqlState::CANNOT_CONNECT_NOW {
                PgError::Unavailable { target, message }
            } else {
                PgError::Query { operation, message: format!("{message} (SQLSTATE {})", code.code()) }
            };
        }
        // No server error: the connection (closed, refused, timed out, TLS handshake).
        let mut message = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message = format!("{message}: {s}");
            source = s.source();
        }
        if message.contains("certificate verify failed") {
            const REASONS: [&str; 5] = [
                "unable to get local issuer certificate",
                "certificate has expired",
                "hostname mismatch",
                "self-signed certificate",
                "certificate is not yet valid",
            ];
            let reason = REASONS.iter().find(|r| message.contains(*r)).unwrap_or(&"certificate verify failed");
            return PgError::TlsUntrusted { target, reason: (*reason).to_owned() };
        }
        PgError::Unavailable { target, message }
    }
}

/// Whether `server_version_num` (as the server sends it) is older than [`MIN_SERVER_VERSION`];
/// an answer that is not a number counts as too old (fail closed).
fn server_too_old(version_num: &str) -> bool {
    version_num.trim().parse::<i32>().map_or(true, |v| v < MIN_SERVER_VERSION)
}

/// Where the database is, for messages: `host:port/dbname` (never the password).
fn target_of(url: &str) -> String {
    let rest = url.strip_prefix("postgresql://").or_else(|| url.strip_prefix("postgres://")).unwrap_or(url);
    let rest = rest.split('?').next().unwrap_or_default();
    rest.rsplit_once('@').map_or(rest, |(_, h)| h).to_owned()
}

/// A one-time code that was spent before: when and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spent {
    /// Unix seconds.
    pub used_at: i64,
    /// The device that spent it.
    pub device: String,
}

/// What [`PgClinic::spend_code`] decided.
#[derive(Debug)]
pub enum SpendOutcome<T, E> {
    /// This device spent the code now; `f`'s result (an error `f` had was final: the code stays spent).
    Spent(Result<T, E>),
    /// `f` failed in a way worth retrying: the code was not spent.
    NotSpent(E),
    /// Spent before.
    Before(Spent),
}

/// A connection to the clinic database, as one device.
pub struct PgClinic {
    client: Client,
    device: String,
    target: String,
}

impl std::fmt::Debug for PgClinic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgClinic").field("device", &self.device).field("target", &self.target).finish()
    }
}

fn u32_serial(table: &'static str, serial: i64) -> Result<u32, PgError> {
    u32::try_from(serial).map_err(|_| PgError::BadRow {
        table,
        row: serial.to_string(),
        what: format!("serial {serial} is not a 32-bit card serial"),
    })
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl PgClinic {
    /// Connects as `device` and checks the server version and the schema version.
    pub fn connect(cfg: &PgConfig, password: &str, device: &str) -> Result<Self, PgError> {
        let mut c = Self::connect_unchecked(cfg, password, device)?;
        c.check_schema()?;
        Ok(c)
    }

    /// Connects without looking at the schema (`setup-db`).
    pub fn connect_unchecked(cfg: &PgConfig, password: &str, device: &str) -> Result<Self, PgError> {
        let target = target_of(&cfg.url);
        let mut config: postgres::Config =
            cfg.url.parse().map_err(|e: postgres::Error| PgError::Query { operation: "parse the database URL", message: e.to_string() })?;
        config.password(password.as_bytes());
        config.connect_timeout(CONNECT_TIMEOUT);
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        config.application_name(&format!("medcard/{device}"));
        let client = match cfg.tls {
            Tls::Disable => {
                config.ssl_mode(postgres::config::SslMode::Disable);
                config.connect(postgres::NoTls)
            }
            Tls::Require => {
                config.ssl_mode(postgres::config::SslMode::Require);
                let mut b = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls())
                    .map_err(|e| PgError::Tls { message: e.to_string() })?;
                if let Some(ca) = &cfg.ca_file {
                    b.set_ca_file(ca).map_err(|e| PgError::Tls { message: format!("{}: {e}", ca.display()) })?;
                }
                config.connect(postgres_openssl::MakeTlsConnector::new(b.build()))
            }
        }
        .map_err(|e| PgError::from_pg("connect", &target, &e))?;
        let mut c = PgClinic { client, device: device.to_owned(), target };
        let v: String = c.one("read the server version", "SHOW server_version_num", &[])?.get(0);
        if server_too_old(&v) {
            let human: String = c.one("read the server version", "SHOW server_version", &[])?.get(0);
            return Err(PgError::ServerVersion { target: c.target.clone(), got: human });
        }
        // A scan waits for another device's scan of the same code; never forever.
        c.client.batch_execute("SET lock_timeout = '60s'; SET statement_timeout = '120s'").map_err(|e| c.err("set timeouts", &e))?;
        Ok(c)
    }

    fn err(&self, operation: &'static str, e: &postgres::Error) -> PgError {
        PgError::from_pg(operation, &self.target, e)
    }

    fn one(
        &mut self,
        operation: &'static str,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<postgres::Row, PgError> {
        self.client.query_one(sql, params).map_err(|e| self.err(operation, &e))
    }

    /// Runs a query; an error names the operation and the server.
    fn rows(
        &mut self,
        operation: &'static str,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, PgError> {
        self.client.query(sql, params).map_err(|e| self.err(operation, &e))
    }

    /// Runs a statement; the rows it changed. An error names the operation and the server.
    fn exec(&mut self, operation: &'static str, sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)]) -> Result<u64, PgError> {
        self.client.execute(sql, params).map_err(|e| self.err(operation, &e))
    }

    fn check_schema(&mut self) -> Result<(), PgError> {
        let row = self.one("read the schema version", "SELECT max(version) FROM medcard_schema", &[])?;
        let got: Option<i32> = row.get(0);
        match got {
            Some(schema::VERSION) => Ok(()),
            Some(v) => Err(PgError::SchemaVersion { target: self.target.clone(), got: v }),
            None => Err(PgError::NoSchema { target: self.target.clone() }),
        }
    }

    /// The device this connection writes as.
    #[must_use]
    pub fn device(&self) -> &str {
        &self.device
    }

    /// `host:port/dbname`.
    #[must_use]
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Whether the connection broke (the next operation reconnects).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Creates the tables and roles (idempotent; one transaction); returns the schema version.
    pub fn setup(&mut self) -> Result<i32, PgError> {
        let target = self.target.clone();
        let e = |op| {
            let target = target.clone();
            move |x: postgres::Error| PgError::from_pg(op, &target, &x)
        };
        let mut tx = self.client.transaction().map_err(e("begin setup"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SETUP_LOCK]).map_err(e("lock setup"))?;
        tx.batch_execute(schema::TABLES).map_err(e("create the tables"))?;
        let v: Option<i32> = tx.query_one("SELECT max(version) FROM medcard_schema", &[]).map_err(e("read the schema version"))?.get(0);
        match v {
            None => {
                tx.execute("INSERT INTO medcard_schema (version) VALUES ($1)", &[&schema::VERSION]).map_err(e("set the schema version"))?;
            }
            Some(schema::VERSION) => {}
            // An older clinic database: the tables above added what was missing.
            Some(v) if v < schema::VERSION => {
                tx.execute("UPDATE medcard_schema SET version = $1", &[&schema::VERSION]).map_err(e("upgrade the schema version"))?;
            }
            Some(v) => return Err(PgError::SchemaVersion { target, got: v }),
        }
        tx.batch_execute(schema::ROLES).map_err(e("create the device roles and grant their rights"))?;
        tx.commit().map_err(e("commit setup"))?;
        Ok(schema::VERSION)
    }

    fn tx(&mut self, operation: &'static str) -> Result<(Transaction<'_>, Ctx), PgError> {
        let ctx = Ctx { target: self.target.clone(), device: self.device.clone() };
        let tx = self.client.transaction().map_err(|e| PgError::from_pg(operation, &ctx.target, &e))?;
        Ok((tx, ctx))
    }

    // ---- cards and revocations ----

    const CARD_COLS: &'static str = "serial, patient_id, name, issued_at, expires_at, kid_9e, kid_9c";

    fn card_from(r: &postgres::Row) -> Result<IssuedCard, PgError> {
        Ok(IssuedCard {
            serial: u32_serial("cards", r.get(0))?,
            patient_id: r.get(1),
            name: r.get(2),
            issued_at: r.get(3),
            expires_at: r.get(4),
            kid_9e: r.get(5),
            kid_9c: r.get(6),
        })
    }

    /// Every issued card, by serial.
    pub fn cards(&mut self) -> Result<Vec<IssuedCard>, PgError> {
        let rows = self.rows("list cards", &format!("SELECT {} FROM cards ORDER BY serial", Self::CARD_COLS), &[])?;
        rows.iter().map(Self::card_from).collect()
    }

    /// Whether any staff card was ever issued (the cards table holds `staff:` rows).
    pub fn has_staff_cards(&mut self) -> Result<bool, PgError> {
        let row = self.one("query whether staff sign-ins are required", "SELECT required FROM staff_cards_exist", &[])?;
        Ok(row.get(0))
    }

    /// The card with `serial`.
    pub fn card(&mut self, serial: u32) -> Result<Option<IssuedCard>, PgError> {
        let rows = self.rows("query card", &format!("SELECT {} FROM cards WHERE serial = $1", Self::CARD_COLS), &[&i64::from(serial)])?;
        rows.first().map(Self::card_from).transpose()
    }

    /// Records an issuance (replacing one of the same serial; a revocation stays) and its
    /// `card.issued` entry, as `actor`.
    pub fn record_card_issued(&mut self, card: &IssuedCard, credential: &[u8], actor: &str, now: i64) -> Result<(), PgError> {
        let (mut tx, ctx) = self.tx("record card issuance")?;
        let s = i64::from(card.serial);
        let reissue =
            tx.query_opt("SELECT 1 FROM cards WHERE serial = $1", &[&s]).map_err(|e| ctx.err("record card issuance", &e))?.is_some();
        tx.execute(
            "INSERT INTO cards (serial, patient_id, status, credential, issued_at, updated_at, name, expires_at, kid_9e, kid_9c, device)
             VALUES ($1, $2, CASE WHEN EXISTS (SELECT 1 FROM card_revocations WHERE serial = $1) THEN 'revoked' ELSE 'issued' END,
                     $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (serial) DO UPDATE SET patient_id = EXCLUDED.patient_id, status = EXCLUDED.status,
                 credential = EXCLUDED.credential, issued_at = EXCLUDED.issued_at, updated_at = EXCLUDED.updated_at,
                 name = EXCLUDED.name, expires_at = EXCLUDED.expires_at, kid_9e = EXCLUDED.kid_9e, kid_9c = EXCLUDED.kid_9c,
                 device = EXCLUDED.device",
            &[
                &s,
                &card.patient_id,
                &credential,
                &card.issued_at,
                &now,
                &card.name,
                &card.expires_at,
                &card.kid_9e,
                &card.kid_9c,
                &ctx.device,
            ],
        )
        .map_err(|e| ctx.err("record card issuance", &e))?;
        let event = Event {
            time: now,
            kind: EventKind::CardIssued,
            actor: actor.to_owned(),
            subject: card.serial.to_string(),
            outcome: Outcome::Ok,
            detail: format!("patient={} reissue={reissue} expires_at={}", card.patient_id, card.expires_at),
        };
        append_in(&mut tx, &ctx, &[(new_entry_id(), event)], now)?;
        tx.commit().map_err(|e| ctx.err("commit card issuance", &e))
    }

    /// Every revocation, by serial.
    pub fn revocations(&mut self) -> Result<Vec<Revocation>, PgError> {
        let rows = self.rows("list revocations", "SELECT serial, revoked_at, reason FROM card_revocations ORDER BY serial", &[])?;
        rows.iter()
            .map(|r| Ok(Revocation { serial: u32_serial("card_revocations", r.get(0))?, revoked_at: r.get(1), reason: r.get(2) }))
            .collect()
    }

    /// The revocation of `serial`.
    pub fn revocation(&mut self, serial: u32) -> Result<Option<Revocation>, PgError> {
        let rows =
            self.rows("query revocation", "SELECT revoked_at, reason FROM card_revocations WHERE serial = $1", &[&i64::from(serial)])?;
        Ok(rows.first().map(|r| Revocation { serial, revoked_at: r.get(0), reason: r.get(1) }))
    }

    // ---- the trust list ----

    /// The clinic's trust files (name, bytes), by name. A row whose name is not a trust file
    /// name or whose bytes exceed [`MAX_TRUST_FILE`] is refused.
    pub fn trust_files(&mut self) -> Result<Vec<(String, Vec<u8>)>, PgError> {
        let rows = self.rows("list trust files", "SELECT name, bytes FROM trust_files ORDER BY name", &[])?;
        rows.iter()
            .map(|r| {
                let (name, bytes): (String, Vec<u8>) = (r.get(0), r.get(1));
                let bad = |what: String| PgError::BadRow { table: "trust_files", row: name.clone(), what };
                if !crate::clinic_state::is_trust_name(&name) {
                    return Err(bad("not a trust file name".into()));
                }
                if bytes.len() > MAX_TRUST_FILE {
                    return Err(bad(format!("{} bytes, at most {MAX_TRUST_FILE}", bytes.len())));
                }
                Ok((name, bytes))
            })
            .collect()
    }

    /// Adds a trust file; `Ok(false)`: one of that name is there already (nothing changed).
    pub fn add_trust_file(&mut self, name: &str, bytes: &[u8], now: i64) -> Result<bool, PgError> {
        let device = self.device.clone();
        let n = self.exec(
            "add trust file",
            "INSERT INTO trust_files (name, bytes, added_at, device) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
            &[&name, &bytes, &now, &device],
        )?;
        Ok(n == 1)
    }

    /// Removes a trust file; `Ok(false)`: there was none of that name.
    pub fn remove_trust_file(&mut self, name: &str) -> Result<bool, PgError> {
        let n = self.exec("remove trust file", "DELETE FROM trust_files WHERE name = $1", &[&name])?;
        Ok(n == 1)
    }

    /// Revokes `serial` (a second revocation keeps the first: outcome `already-revoked`),
    /// audited as `actor`. Returns the revocation in force.
    pub fn revoke(&mut self, serial: u32, now: i64, reason: &str, actor: &str) -> Result<Revocation, PgError> {
        let (mut tx, ctx) = self.tx("revoke card")?;
        let s = i64::from(serial);
        let inserted = tx
            .execute(
                "INSERT INTO card_revocations (serial, revoked_at, reason, device) VALUES ($1, $2, $3, $4) ON CONFLICT (serial) DO NOTHING",
                &[&s, &now, &reason, &ctx.device],
            )
            .map_err(|e| ctx.err("revoke card", &e))?;
        let outcome = if inserted == 1 {
            tx.execute("UPDATE cards SET status = 'revoked', updated_at = $2 WHERE serial = $1", &[&s, &now])
                .map_err(|e| ctx.err("revoke card", &e))?;
            Outcome::Ok
        } else {
            Outcome::AlreadyRevoked
        };
        let r = tx
            .query_one("SELECT revoked_at, reason FROM card_revocations WHERE serial = $1", &[&s])
            .map_err(|e| ctx.err("revoke card", &e))?;
        let revocation = Revocation { serial, revoked_at: r.get(0), reason: r.get(1) };
        let event = Event {
            time: now,
            kind: EventKind::CardRevoked,
            actor: actor.to_owned(),
            subject: serial.to_string(),
            outcome,
            detail: format!("revoked_at={}", revocation.revoked_at),
        };
        append_in(&mut tx, &ctx, &[(new_entry_id(), event)], now)?;
        tx.commit().map_err(|e| ctx.err("commit revocation", &e))?;
        Ok(revocation)
    }

    // ---- consent versions ----

    /// The highest consent version seen for `patient_id` anywhere in the clinic.
    pub fn highest_consent_version(&mut self, patient_id: &str) -> Result<Option<u64>, PgError> {
        let v: Option<i64> =
            self.one("query consent version", "SELECT max(version) FROM consent_versions WHERE patient_id = $1", &[&patient_id])?.get(0);
        Ok(v.map(|v| u64::try_from(v).unwrap_or(0)))
    }

    /// [`crate::db::ClinicDb::note_consent_version`] for the whole clinic: under a per-patient
    /// advisory lock, so two kiosks cannot both accept versions out of order.
    pub fn note_consent(
        &mut self,
        c: &ConsentVersion<'_>,
        event: (EventKind, Outcome),
        actor: &str,
        now: i64,
    ) -> Result<ConsentNote, PgError> {
        let (kind, outcome) = event;
        let (mut tx, ctx) = self.tx("note consent version")?;
        tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))", &[&c.patient_id]).map_err(|e| ctx.err("lock patient", &e))?;
        let highest: Option<i64> = tx
            .query_one("SELECT max(version) FROM consent_versions WHERE patient_id = $1", &[&c.patient_id])
            .map_err(|e| ctx.err("query consent version", &e))?
            .get(0);
        let highest = highest.map(|v| u64::try_from(v).unwrap_or(0));
        let entry =
            |kind, outcome, detail| Event { time: now, kind, actor: actor.to_owned(), subject: c.patient_id.to_owned(), outcome, detail };
        if let Some(h) = highest.filter(|h| c.version < *h) {
            let refusal = entry(EventKind::ConsentRefused, Outcome::OlderVersion, format!("version={} highest={h}", c.version));
            append_in(&mut tx, &ctx, &[(new_entry_id(), refusal)], now)?;
            tx.commit().map_err(|e| ctx.err("commit consent refusal", &e))?;
            return Ok(ConsentNote::Refused { highest: h });
        }
        let digest: [u8; 32] = Sha256::digest(c.token).into();
        let version = to_i64(c.version);
        let inserted = tx
            .execute(
                "INSERT INTO consent_versions (patient_id, version, token, token_sha256, scope, iat, exp, seen_at, device)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (patient_id, version) DO NOTHING",
                &[&c.patient_id, &version, &c.token, &digest.as_slice(), &category::join(c.scope), &c.iat, &c.exp, &now, &ctx.device],
            )
            .map_err(|e| ctx.err("remember consent version", &e))?;
        if inserted == 0 {
            let known: Vec<u8> = tx
                .query_one("SELECT token_sha256 FROM consent_versions WHERE patient_id = $1 AND version = $2", &[&c.patient_id, &version])
                .map_err(|e| ctx.err("query consent token digest", &e))?
                .get(0);
            if !bool::from(subtle::ConstantTimeEq::ct_eq(known.as_slice(), digest.as_slice())) {
                let detail = format!("version={} token_sha256={} known_sha256={}", c.version, hex::encode(digest), hex::encode(&known));
                append_in(&mut tx, &ctx, &[(new_entry_id(), entry(EventKind::ConsentRefused, Outcome::ConflictingToken, detail))], now)?;
                tx.commit().map_err(|e| ctx.err("commit consent refusal", &e))?;
                return Ok(ConsentNote::Conflict { version: c.version });
            }
        } else {
            if c.scope.is_empty() {
                tx.execute(
                    "UPDATE consent_versions SET revoked_at = $3 WHERE patient_id = $1 AND version < $2 AND revoked_at IS NULL",
                    &[&c.patient_id, &version, &now],
                )
                .map_err(|e| ctx.err("revoke earlier consent versions", &e))?;
            }
            let detail =
                format!("version={} scope={} exp={} token_sha256={}", c.version, category::join(c.scope), c.exp, hex::encode(digest));
            append_in(&mut tx, &ctx, &[(new_entry_id(), entry(kind, outcome, detail))], now)?;
        }
        tx.commit().map_err(|e| ctx.err("commit consent version", &e))?;
        Ok(ConsentNote::Accepted { highest_before: highest })
    }

    // ---- one-time codes ----

    /// Spends the one-time code `qr_id` for this device and runs `f` (the fetch) while the spend
    /// is uncommitted: another device scanning the same code waits on the row, then finds it
    /// spent. `f`'s success, or an error for which `retry` is false, commits the spend; an error
    /// worth retrying (the record store unreachable) rolls it back, so the code can be scanned
    /// again.
    pub fn spend_code<T, E>(
        &mut self,
        qr_id: &str,
        now: i64,
        exp: i64,
        f: impl FnOnce() -> Result<T, E>,
        retry: impl FnOnce(&E) -> bool,
    ) -> Result<SpendOutcome<T, E>, PgError> {
        let (mut tx, ctx) = self.tx("spend one-time code")?;
        let n = tx
            .execute(
                "INSERT INTO qr_used (cti, used_at, device, exp) VALUES ($1, $2, $3, $4) ON CONFLICT (cti) DO NOTHING",
                &[&qr_id, &now, &ctx.device, &exp],
            )
            .map_err(|e| ctx.err("spend one-time code", &e))?;
        if n == 0 {
            let r = tx
                .query_one("SELECT used_at, device FROM qr_used WHERE cti = $1", &[&qr_id])
                .map_err(|e| ctx.err("look up spent code", &e))?;
            let spent = Spent { used_at: r.get(0), device: r.get(1) };
            drop(tx);
            return Ok(SpendOutcome::Before(spent));
        }
        match f() {
            Ok(v) => {
                tx.commit().map_err(|e| ctx.err("commit spent code", &e))?;
                Ok(SpendOutcome::Spent(Ok(v)))
            }
            Err(e) if retry(&e) => {
                drop(tx); // rolls back: not spent
                Ok(SpendOutcome::NotSpent(e))
            }
            Err(e) => {
                tx.commit().map_err(|x| ctx.err("commit spent code", &x))?;
                Ok(SpendOutcome::Spent(Err(e)))
            }
        }
    }

    /// When and where `qr_id` was spent, if it was.
    pub fn spent(&mut self, qr_id: &str) -> Result<Option<Spent>, PgError> {
        let rows = self.rows("look up spent code", "SELECT used_at, device FROM qr_used WHERE cti = $1", &[&qr_id])?;
        Ok(rows.first().map(|r| Spent { used_at: r.get(0), device: r.get(1) }))
    }

    // ---- records index ----

    /// Adds a record's index row (content key already wrapped) and `event`, in one transaction.
    pub fn insert_record(
        &mut self,
        meta: &RecordMeta,
        locator: &Locator,
        size: u64,
        wrapped_key: &[u8],
        event: &Event,
        now: i64,
    ) -> Result<(), PgError> {
        let (mut tx, ctx) = self.tx("insert record")?;
        tx.execute(
            "INSERT INTO records (record_id, patient_id, category, media_type, created, author, locator, size, wrapped_key, device)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &meta.record_id,
                &meta.patient_id,
                &meta.category.as_str(),
                &meta.media_type,
                &meta.created,
                &meta.author,
                &locator.to_string(),
                &to_i64(size),
                &wrapped_key,
                &ctx.device,
            ],
        )
        .map_err(|e| ctx.err("insert record", &e))?;
        append_in(&mut tx, &ctx, &[(new_entry_id(), event.clone())], now)?;
        tx.commit().map_err(|e| ctx.err("commit the added record", &e))
    }

    fn record_from(r: &postgres::Row) -> Result<RecordRow, PgError> {
        let record_id: String = r.get(0);
        let bad = |what: String| PgError::BadRow { table: "records", row: record_id.clone(), what };
        let category = r.get::<_, String>(2).parse::<Category>().map_err(|e| bad(e.to_string()))?;
        let locator = r.get::<_, String>(6).parse::<Locator>().map_err(|e| bad(e.to_string()))?;
        let size: i64 = r.get(7);
        Ok(RecordRow {
            meta: RecordMeta {
                record_id: record_id.clone(),
                patient_id: r.get(1),
                category,
                media_type: r.get(3),
                created: r.get(4),
                author: r.get(5),
            },
            locator,
            size: u64::try_from(size).map_err(|_| bad(format!("negative size {size}")))?,
            wrapped_key: r.get(8),
        })
    }

    const RECORD_COLS: &'static str = "record_id, patient_id, category, media_type, created, author, locator, size, wrapped_key";

    /// Records, optionally of one patient, oldest first.
    pub fn records(&mut self, patient_id: Option<&str>) -> Result<Vec<RecordRow>, PgError> {
        let rows = self.rows(
            "list records",
            &format!("SELECT {} FROM records WHERE $1::TEXT IS NULL OR patient_id = $1 ORDER BY created, record_id", Self::RECORD_COLS),
            &[&patient_id],
        )?;
        rows.iter().map(Self::record_from).collect()
    }

    /// One record's row.
    pub fn record(&mut self, record_id: &str) -> Result<Option<RecordRow>, PgError> {
        let rows = self.rows("query record", &format!("SELECT {} FROM records WHERE record_id = $1", Self::RECORD_COLS), &[&record_id])?;
        rows.first().map(Self::record_from).transpose()
    }

    // ---- the clinic-wide audit log ----

    /// Appends `events` (each with its entry id) in one transaction; an entry id already in the
    /// log is skipped (a queued entry sent twice). Returns how many were new.
    pub fn append_audit(&mut self, events: &[(String, Event)], now: i64) -> Result<usize, PgError> {
        if events.is_empty() {
            return Ok(0);
        }
        let (mut tx, ctx) = self.tx("append audit entries")?;
        let n = append_in(&mut tx, &ctx, events, now)?;
        tx.commit().map_err(|e| ctx.err("commit audit entries", &e))?;
        Ok(n)
    }

    /// Entries at or after `since` (Unix s), by seq.
    pub fn audit_entries(&mut self, since: Option<i64>) -> Result<Vec<Entry>, PgError> {
        let rows = self.rows(
            "read audit entries",
            "SELECT seq, time, kind, actor, subject, outcome, detail, leaf_hash FROM audit_entries
                 WHERE $1::BIGINT IS NULL OR time >= $1 ORDER BY seq",
            &[&since],
        )?;
        rows.iter()
            .map(|r| {
                let seq: i64 = r.get(0);
                Ok(Entry {
                    seq: u64::try_from(seq).map_err(|_| PgError::BadRow {
                        table: "audit_entries",
                        row: seq.to_string(),
                        what: "negative seq".into(),
                    })?,
                    time: r.get(1),
                    kind: r.get(2),
                    actor: r.get(3),
                    subject: r.get(4),
                    outcome: r.get(5),
                    detail: r.get(6),
                    leaf_hash: r.get(7),
                })
            })
            .collect()
    }

    /// Stored checkpoints (size, root, signed), by size.
    pub fn audit_checkpoints(&mut self) -> Result<Vec<StoredCheckpoint>, PgError> {
        let rows = self.rows("read checkpoints", "SELECT tree_size, root, signed FROM audit_checkpoints ORDER BY tree_size", &[])?;
        Ok(rows.iter().map(|r| (u64::try_from(r.get::<_, i64>(0)).unwrap_or(u64::MAX), r.get(1), r.get(2))).collect())
    }

    /// Feeds every audit row, by seq, to `sink` ([`audit::verify_rows`]), fetched in batches
    /// through a cursor so the whole log is never in memory.
    pub fn audit_rows(&mut self, sink: &mut RowSink) -> Result<(), PgError> {
        let (mut tx, ctx) = self.tx("read audit entries")?;
        // REPEATABLE READ: one snapshot of the log while it is read in batches.
        tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY").map_err(|e| ctx.err("read audit entries", &e))?;
        let portal = tx
            .bind("SELECT seq, time, kind, actor, subject, outcome, detail, leaf_hash FROM audit_entries ORDER BY seq", &[])
            .map_err(|e| ctx.err("read audit entries", &e))?;
        loop {
            let rows = tx.query_portal(&portal, 20_000).map_err(|e| ctx.err("read audit entries", &e))?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let raw = RawRow {
                    seq: r.try_get(0).ok(),
                    time: r.try_get(1).ok(),
                    text: [r.try_get(2).ok(), r.try_get(3).ok(), r.try_get(4).ok(), r.try_get(5).ok(), r.try_get(6).ok()],
                    leaf: r.try_get(7).ok(),
                };
                if !sink.push(&raw) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Signs a checkpoint of the whole clinic log now and stores it.
    pub fn audit_checkpoint(
        &mut self,
        origin: &str,
        now: i64,
        signer: &dyn qr::Signer,
    ) -> Result<(Checkpoint, Vec<u8>), PgCheckpointError> {
        let (mut tx, ctx) = self.tx("checkpoint")?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK]).map_err(|e| ctx.err("lock the audit log", &e))?;
        let portal = tx
            .bind("SELECT seq, time, kind, actor, subject, outcome, detail FROM audit_entries ORDER BY seq", &[])
            .map_err(|e| ctx.err("read audit entries", &e))?;
        let mut frontier = merkle::Frontier::new();
        let mut n = 0u64;
        loop {
            let rows = tx.query_portal(&portal, 20_000).map_err(|e| ctx.err("read audit entries", &e))?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let seq: i64 = r.get(0);
                if u64::try_from(seq).ok() != Some(n) {
                    return Err(PgCheckpointError::Gap { at: n });
                }
                let e = audit::encode_entry(n, r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6));
                frontier.push(merkle::leaf_hash(&e));
                n += 1;
            }
        }
        let cp = Checkpoint { origin: origin.to_owned(), tree_size: n, root: frontier.root(), time: now };
        let signed = qr::cose::sign(&cp.payload(), signer).map_err(PgCheckpointError::Sign)?;
        tx.execute(
            // A checkpoint of this size exists: keep it (the same entries have the same root; a
            // different one means the log was edited, which `audit verify` reports).
            "INSERT INTO audit_checkpoints (tree_size, root, time, signed, device) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tree_size) DO NOTHING",
            &[&to_i64(n), &cp.root.as_slice(), &now, &signed, &ctx.device],
        )
        .map_err(|e| ctx.err("store checkpoint", &e))?;
        tx.commit().map_err(|e| ctx.err("commit checkpoint", &e))?;
        Ok((cp, signed))
    }
}

/// A checkpoint of the clinic log could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgCheckpointError {
    /// The database.
    #[error(transparent)]
    Pg(#[from] PgError),
    /// Signing.
    #[error("signing the audit checkpoint failed: {0}")]
    Sign(#[source] qr::cose::CoseError),
    /// A gap in `seq`: the log was edited.
    #[error("the clinic audit log has a gap at entry #{at}: run `medcard audit verify`; no checkpoint was made")]
    Gap { at: u64 },
}

/// What a transaction needs after it has borrowed the connection.
struct Ctx {
    target: String,
    device: String,
}

impl Ctx {
    fn err(&self, operation: &'static str, e: &postgres::Error) -> PgError {
        PgError::from_pg(operation, &self.target, e)
    }
}

/// A new random entry id (128 bits, hex): what makes a resent entry recognisable.
#[must_use]
pub fn new_entry_id() -> String {
    let mut b = [0u8; 16];
    // A failing system RNG leaves a time-based id: still unique per device in practice, and
    // duplicates would only merge two entries' idempotence, never corrupt the tree.
    if crate::random::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        b = t.to_be_bytes();
    }
    hex::encode(b)
}

/// Appends inside `tx` under [`AUDIT_LOCK`]: `seq` continues the clinic log without gaps; an
/// entry id already present is skipped. The actor is stored as `<device>/<actor>`, so the leaf
/// hash covers the device that wrote it. Returns how many were new.
fn append_in(tx: &mut Transaction<'_>, ctx: &Ctx, events: &[(String, Event)], now: i64) -> Result<usize, PgError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK]).map_err(|e| ctx.err("lock the audit log", &e))?;
    let mut next: i64 =
        tx.query_one("SELECT COALESCE(max(seq) + 1, 0) FROM audit_entries", &[]).map_err(|e| ctx.err("append audit entry", &e))?.get(0);
    let mut added = 0;
    for (id, ev) in events {
        let known =
            tx.query_opt("SELECT 1 FROM audit_entries WHERE entry_id = $1", &[id]).map_err(|e| ctx.err("append audit entry", &e))?;
        if known.is_some() {
            continue;
        }
        let actor = format!("{}/{}", ctx.device, ev.actor);
        let seq = u64::try_from(next).unwrap_or(0);
        let entry = audit::encode_entry(seq, ev.time, ev.kind.as_str(), &actor, &ev.subject, ev.outcome.as_str(), &ev.detail);
        let leaf = merkle::leaf_hash(&entry);
        tx.execute(
            "INSERT INTO audit_entries (seq, entry_id, device, received_at, time, kind, actor, subject, outcome, detail, leaf_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &next,
                id,
                &ctx.device,
                &now,
                &ev.time,
                &ev.kind.as_str(),
                &actor,
                &ev.subject,
                &ev.outcome.as_str(),
                &ev.detail,
                &leaf.as_slice(),
            ],
        )
        .map_err(|e| ctx.err("append audit entry", &e))?;
        next += 1;
        added += 1;
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_older_than_13_or_with_an_unreadable_version_are_refused() {
        for (num, old) in
            [("120015", true), ("90624", true), ("130000", false), ("150008", false), ("170002", false), ("", true), ("15beta", true)]
        {
            assert_eq!(server_too_old(num), old, "{num:?}");
        }
        let e = PgError::ServerVersion { target: "db:5432/medcard".into(), got: "12.15".into() };
        assert_eq!(e.to_string(), "clinic database (db:5432/medcard) runs PostgreSQL 12.15, MedCard needs 13 or newer: upgrade the server");
    }

    #[test]
    fn messages_name_the_server_but_never_the_password() {
        assert_eq!(target_of("postgresql://kiosk@db.clinic:5432/medcard?sslmode=require"), "db.clinic:5432/medcard");
        assert_eq!(target_of("postgres://u@h/db"), "h/db");
        let e = PgError::Login { target: target_of("postgresql://u@h:1/db"), message: "password authentication failed".into() };
        assert!(e.to_string().contains("h:1/db") && e.to_string().contains("--db-password-file"));
    }

    #[test]
    fn entry_ids_are_128_bit_hex_and_distinct() {
        let a = new_entry_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_entry_id());
    }
}
