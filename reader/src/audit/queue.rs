//! Clinic mode: audit entries a device wrote while the clinic database was unreachable, kept in
//! its own database (`audit_queue`, docs/database.md) until they are in the clinic log. Each
//! keeps the entry id it was given when it happened; the clinic log skips an id it already has,
//! so an entry sent twice (a crash between sending and forgetting) is counted once.

use rusqlite::params;

use super::Event;
use crate::db::{ClinicDb, DbError};

/// A queued row could not be turned back into an event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A row with a kind or outcome this version does not know (an edited row).
    #[error("queued audit entry {entry_id}: {what}")]
    BadRow { entry_id: String, what: String },
}

/// Queues `events` (with their entry ids) in one transaction.
pub fn enqueue(db: &mut ClinicDb, events: &[(String, Event)], now: i64) -> Result<(), DbError> {
    let path = db.path().to_path_buf();
    let e = |op| {
        let path = path.clone();
        move |source| DbError::Sqlite { path, operation: op, source }
    };
    let tx = db.conn_mut().transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(e("queue audit entries"))?;
    for (id, ev) in events {
        tx.execute(
            "INSERT OR IGNORE INTO audit_queue (entry_id, queued_at, time, kind, actor, subject, outcome, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![id, now, ev.time, ev.kind.as_str(), ev.actor, ev.subject, ev.outcome.as_str(), ev.detail],
        )
        .map_err(e("queue audit entries"))?;
    }
    tx.commit().map_err(e("commit queued audit entries"))
}

/// The queued entries, oldest first.
pub fn queued(db: &ClinicDb) -> Result<Vec<(String, Event)>, QueueError> {
    let mut st = db
        .conn()
        .prepare_cached("SELECT entry_id, time, kind, actor, subject, outcome, detail FROM audit_queue ORDER BY rowid")
        .map_err(db.err("read queued audit entries"))?;
    let mut rows = st.query([]).map_err(db.err("read queued audit entries"))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db.err("read queued audit entries"))? {
        let get = |i: usize| -> Result<String, QueueError> { Ok(r.get::<_, String>(i).map_err(db.err("read queued audit entry"))?) };
        let entry_id = get(0)?;
        let bad = |what: String| QueueError::BadRow { entry_id: entry_id.clone(), what };
        let kind = get(2)?.parse().map_err(|e: super::UnknownKind| bad(e.to_string()))?;
        let outcome = get(5)?.parse().map_err(|e: super::UnknownOutcome| bad(e.to_string()))?;
        let time: i64 = r.get(1).map_err(db.err("read queued audit entry"))?;
        out.push((entry_id.clone(), Event { time, kind, actor: get(3)?, subject: get(4)?, outcome, detail: get(6)? }));
    }
    Ok(out)
}

/// How many entries are queued.
pub fn len(db: &ClinicDb) -> Result<u64, DbError> {
    let n: i64 = db.conn().query_row("SELECT count(*) FROM audit_queue", [], |r| r.get(0)).map_err(db.err("count queued audit entries"))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Forgets the entries with these ids (they are in the clinic log).
pub fn forget(db: &mut ClinicDb, ids: &[&str]) -> Result<(), DbError> {
    let path = db.path().to_path_buf();
    let e = |op| {
        let path = path.clone();
        move |source| DbError::Sqlite { path, operation: op, source }
    };
    let tx = db.conn_mut().transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(e("forget sent audit entries"))?;
    for id in ids {
        tx.execute("DELETE FROM audit_queue WHERE entry_id = ?1", [id]).map_err(e("forget sent audit entries"))?;
    }
    tx.commit().map_err(e("commit forgotten audit entries"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{EventKind, Outcome};

    #[test]
    fn queued_entries_keep_their_ids_and_order_and_a_requeue_is_ignored() -> Result<(), Box<dyn std::error::Error>> {
        let d = tempfile::tempdir()?;
        let mut db = ClinicDb::open(&d.path().join("q.db"), &zeroize::Zeroizing::new([7u8; 32]))?;
        let ev = |s: &str| Event {
            time: 5,
            kind: EventKind::RecordRead,
            actor: "cli:x".into(),
            subject: s.into(),
            outcome: Outcome::Ok,
            detail: String::new(),
        };
        let batch = vec![("b".to_owned(), ev("one")), ("a".to_owned(), ev("two"))];
        enqueue(&mut db, &batch, 9)?;
        enqueue(&mut db, batch.get(..1).unwrap_or_default(), 10)?;
        assert_eq!(len(&db)?, 2);
        let back = queued(&db)?;
        assert_eq!(back, batch);
        forget(&mut db, &["b"])?;
        assert_eq!(queued(&db)?, vec![("a".to_owned(), ev("two"))]);
        Ok(())
    }
}
