//! The card side's clinic state in the clinic database: issued cards (`cards`), revocations
//! (`card_revocations`) and consent versions (`consent_versions`). Every change commits together
//! with its audit entry in one IMMEDIATE transaction ([`crate::audit::append_in`]): a state
//! change is never left without its trail, and a trail never claims a change that did not happen.
//! See `docs/database.md`.

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use sha2::{Digest, Sha256};

use super::{IssuedCard, Revocation};
use crate::audit::{self, AuditError, Event, EventKind, Outcome};
use crate::category::{self, Category};
use crate::db::{ClinicDb, DbError};

/// A consent token to remember (the bytes as written to / read from the card).
#[derive(Debug, Clone, Copy)]
pub struct ConsentVersion<'a> {
    /// Patient id.
    pub patient_id: &'a str,
    /// Token version.
    pub version: u64,
    /// The COSE_Sign1 bytes (their SHA-256 is what QR pointers and the cache name).
    pub token: &'a [u8],
    /// Consented categories (empty: consent revoked).
    pub scope: &'a [Category],
    /// Issued at.
    pub iat: i64,
    /// Expires at.
    pub exp: i64,
}

/// What [`ClinicDb::note_consent_version`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentNote {
    /// Not older than the highest seen; remembered. `highest_before`: the highest before.
    Accepted { highest_before: Option<u64> },
    /// Older than `highest`: refused (and the refusal audited).
    Refused { highest: u64 },
    /// The same version as one already seen, but another token (digest differs): refused (and
    /// audited). Two tokens may never share a version, or the older could pass as the newer.
    Conflict { version: u64 },
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl ClinicDb {
    fn immediate(&mut self, operation: &'static str) -> Result<Transaction<'_>, DbError> {
        let err = self.err(operation);
        self.conn_mut().transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)
    }

    fn card_from_row(&self, r: &rusqlite::Row<'_>) -> Result<IssuedCard, DbError> {
        let e = || self.err("read card row");
        let serial: i64 = r.get(0).map_err(e())?;
        Ok(IssuedCard {
            serial: u32::try_from(serial).map_err(|_| DbError::BadRow {
                path: self.path().to_path_buf(),
                table: "cards",
                row: serial.to_string(),
                what: format!("serial {serial} is not a 32-bit card serial"),
            })?,
            patient_id: r.get(1).map_err(e())?,
            name: r.get(2).map_err(e())?,
            issued_at: r.get(3).map_err(e())?,
            expires_at: r.get(4).map_err(e())?,
            kid_9e: r.get(5).map_err(e())?,
            kid_9c: r.get(6).map_err(e())?,
        })
    }

    const CARD_COLS: &str = "serial, patient_id, name, issued_at, expires_at, kid_9e, kid_9c";

    /// Every card this clinic issued (the latest issuance per serial), by serial.
    pub fn issued_cards(&self) -> Result<Vec<IssuedCard>, DbError> {
        let mut st = self
            .conn()
            .prepare_cached(&format!("SELECT {} FROM cards ORDER BY serial", Self::CARD_COLS))
            .map_err(self.err("list cards"))?;
        let mut rows = st.query([]).map_err(self.err("list cards"))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(self.err("list cards"))? {
            out.push(self.card_from_row(r)?);
        }
        Ok(out)
    }

    /// Whether any staff card was ever issued (the cards table holds `staff:` rows).
    pub fn has_staff_cards(&self) -> Result<bool, DbError> {
        self.conn()
            .query_row("SELECT EXISTS (SELECT 1 FROM cards WHERE patient_id LIKE 'staff:%')", [], |r| r.get(0))
            .map_err(self.err("query staff cards"))
    }

    /// The issued card with `serial`, if any.
    pub fn issued_card(&self, serial: u32) -> Result<Option<IssuedCard>, DbError> {
        let mut st = self
            .conn()
            .prepare_cached(&format!("SELECT {} FROM cards WHERE serial = ?1", Self::CARD_COLS))
            .map_err(self.err("query card"))?;
        let mut rows = st.query([serial]).map_err(self.err("query card"))?;
        match rows.next().map_err(self.err("query card"))? {
            Some(r) => Ok(Some(self.card_from_row(r)?)),
            None => Ok(None),
        }
    }

    /// Records an issuance (replacing an earlier one of the same serial; a revocation of the
    /// serial stays) together with its `card.issued` audit entry.
    pub fn record_card_issued(&mut self, card: &IssuedCard, credential: &[u8], actor: &str, now: i64) -> Result<u64, AuditError> {
        let path = self.path().to_path_buf();
        let tx = self.immediate("record card issuance")?;
        let e = |op| {
            let path = path.clone();
            move |source| DbError::Sqlite { path, operation: op, source }
        };
        let revoked: bool = tx
            .query_row("SELECT EXISTS (SELECT 1 FROM card_revocations WHERE serial = ?1)", [card.serial], |r| r.get(0))
            .map_err(e("record card issuance"))?;
        let reissue: bool = tx
            .query_row("SELECT EXISTS (SELECT 1 FROM cards WHERE serial = ?1)", [card.serial], |r| r.get(0))
            .map_err(e("record card issuance"))?;
        tx.execute(
            "INSERT OR REPLACE INTO cards (serial, patient_id, status, credential, issued_at, updated_at, name, expires_at, kid_9e, kid_9c)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                card.serial,
                card.patient_id,
                if revoked { "revoked" } else { "issued" },
                credential,
                card.issued_at,
                now,
                card.name,
                card.expires_at,
                card.kid_9e,
                card.kid_9c
            ],
        )
        .map_err(e("record card issuance"))?;
        let event = Event {
            time: now,
            kind: EventKind::CardIssued,
            actor: actor.to_owned(),
            subject: card.serial.to_string(),
            outcome: Outcome::Ok,
            detail: format!("patient={} reissue={reissue} expires_at={}", card.patient_id, card.expires_at),
        };
        let seq = audit::append_in(&tx, &path, &event)?;
        tx.commit().map_err(e("commit card issuance"))?;
        Ok(seq)
    }

    fn revocation_in(conn: &rusqlite::Connection, serial: u32) -> rusqlite::Result<Option<Revocation>> {
        conn.query_row("SELECT revoked_at, reason FROM card_revocations WHERE serial = ?1", [serial], |r| {
            Ok(Revocation { serial, revoked_at: r.get(0)?, reason: r.get(1)? })
        })
        .optional()
    }

    /// The revocation of `serial`, if any.
    pub fn card_revocation(&self, serial: u32) -> Result<Option<Revocation>, DbError> {
        Self::revocation_in(self.conn(), serial).map_err(self.err("query revocation"))
    }

    /// Every revocation, by serial.
    pub fn card_revocations(&self) -> Result<Vec<Revocation>, DbError> {
        let mut st = self
            .conn()
            .prepare_cached("SELECT serial, revoked_at, reason FROM card_revocations ORDER BY serial")
            .map_err(self.err("list revocations"))?;
        let mut rows = st.query([]).map_err(self.err("list revocations"))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(self.err("list revocations"))? {
            let serial: i64 = r.get(0).map_err(self.err("list revocations"))?;
            out.push(Revocation {
                serial: u32::try_from(serial).map_err(|_| DbError::BadRow {
                    path: self.path().to_path_buf(),
                    table: "card_revocations",
                    row: serial.to_string(),
                    what: format!("serial {serial} is not a 32-bit card serial"),
                })?,
                revoked_at: r.get(1).map_err(self.err("list revocations"))?,
                reason: r.get(2).map_err(self.err("list revocations"))?,
            });
        }
        Ok(out)
    }

    /// Revokes `serial` (idempotent: a second revocation keeps the first, and is audited as
    /// `already-revoked`), with its `card.revoked` audit entry. Returns the revocation in force.
    pub fn revoke_card(&mut self, serial: u32, now: i64, reason: &str, actor: &str) -> Result<Revocation, AuditError> {
        let path = self.path().to_path_buf();
        let tx = self.immediate("revoke card")?;
        let e = |op| {
            let path = path.clone();
            move |source| DbError::Sqlite { path, operation: op, source }
        };
        let existing = Self::revocation_in(&tx, serial).map_err(e("revoke card"))?;
        let (revocation, outcome) = match existing {
            Some(r) => (r, Outcome::AlreadyRevoked),
            None => {
                tx.execute("INSERT INTO card_revocations (serial, revoked_at, reason) VALUES (?1, ?2, ?3)", params![serial, now, reason])
                    .map_err(e("revoke card"))?;
                tx.execute("UPDATE cards SET status = 'revoked', updated_at = ?2 WHERE serial = ?1", params![serial, now])
                    .map_err(e("revoke card"))?;
                (Revocation { serial, revoked_at: now, reason: reason.to_owned() }, Outcome::Ok)
            }
        };
        // The reason is free text from clinic staff: not copied into the log (ids and outcomes only).
        let event = Event {
            time: now,
            kind: EventKind::CardRevoked,
            actor: actor.to_owned(),
            subject: serial.to_string(),
            outcome,
            detail: format!("revoked_at={}", revocation.revoked_at),
        };
        audit::append_in(&tx, &path, &event)?;
        tx.commit().map_err(e("commit revocation"))?;
        Ok(revocation)
    }

    /// The highest consent version this clinic has seen for `patient_id`.
    pub fn highest_consent_version(&self, patient_id: &str) -> Result<Option<u64>, DbError> {
        let v: Option<i64> = self
            .conn()
            .query_row("SELECT MAX(version) FROM consent_versions WHERE patient_id = ?1", [patient_id], |r| r.get(0))
            .map_err(self.err("query consent version"))?;
        Ok(v.map(|v| u64::try_from(v).unwrap_or(0)))
    }

    /// Accepts `c` if its version is not older than the highest seen for the patient, and
    /// remembers it (an equal version is the same token read again: nothing changes). In the
    /// same transaction: an older version appends `consent.refused` (outcome `older-version`)
    /// and is [`ConsentNote::Refused`]; a newly remembered version appends `event` (kind and
    /// outcome) and, for an empty scope (consent revoked), marks the earlier versions revoked.
    pub fn note_consent_version(
        &mut self,
        c: &ConsentVersion<'_>,
        event: (EventKind, Outcome),
        actor: &str,
        now: i64,
    ) -> Result<ConsentNote, AuditError> {
        let path = self.path().to_path_buf();
        let (kind, outcome) = event;
        let tx = self.immediate("note consent version")?;
        let e = |op| {
            let path = path.clone();
            move |source| DbError::Sqlite { path, operation: op, source }
        };
        let highest: Option<i64> = tx
            .query_row("SELECT MAX(version) FROM consent_versions WHERE patient_id = ?1", [c.patient_id], |r| r.get(0))
            .map_err(e("query consent version"))?;
        let highest = highest.map(|v| u64::try_from(v).unwrap_or(0));
        let version = to_i64(c.version);
        let entry = |kind: EventKind, outcome: Outcome, detail: String| Event {
            time: now,
            kind,
            actor: actor.to_owned(),
            subject: c.patient_id.to_owned(),
            outcome,
            detail,
        };
        if let Some(h) = highest.filter(|h| c.version < *h) {
            let refusal = entry(EventKind::ConsentRefused, Outcome::OlderVersion, format!("version={} highest={h}", c.version));
            audit::append_in(&tx, &path, &refusal)?;
            tx.commit().map_err(e("commit consent refusal"))?;
            return Ok(ConsentNote::Refused { highest: h });
        }
        let digest: [u8; 32] = Sha256::digest(c.token).into();
        let inserted = tx
            .execute(
                "INSERT OR IGNORE INTO consent_versions (patient_id, version, token, token_sha256, scope, iat, exp)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![c.patient_id, version, c.token, digest.as_slice(), category::join(c.scope), c.iat, c.exp],
            )
            .map_err(e("remember consent version"))?;
        if inserted == 0 {
            let known: Vec<u8> = tx
                .query_row(
                    "SELECT token_sha256 FROM consent_versions WHERE patient_id = ?1 AND version = ?2",
                    params![c.patient_id, version],
                    |r| r.get(0),
                )
                .map_err(e("query consent token digest"))?;
            if !bool::from(subtle::ConstantTimeEq::ct_eq(known.as_slice(), digest.as_slice())) {
                let detail = format!("version={} token_sha256={} known_sha256={}", c.version, hex::encode(digest), hex::encode(&known));
                audit::append_in(&tx, &path, &entry(EventKind::ConsentRefused, Outcome::ConflictingToken, detail))?;
                tx.commit().map_err(e("commit consent refusal"))?;
                return Ok(ConsentNote::Conflict { version: c.version });
            }
        } else {
            if c.scope.is_empty() {
                tx.execute(
                    "UPDATE consent_versions SET revoked_at = ?3 WHERE patient_id = ?1 AND version < ?2 AND revoked_at IS NULL",
                    params![c.patient_id, version, now],
                )
                .map_err(e("revoke earlier consent versions"))?;
            }
            let detail =
                format!("version={} scope={} exp={} token_sha256={}", c.version, category::join(c.scope), c.exp, hex::encode(digest));
            audit::append_in(&tx, &path, &entry(kind, outcome, detail))?;
        }
        tx.commit().map_err(e("commit consent version"))?;
        Ok(ConsentNote::Accepted { highest_before: highest })
    }
}
