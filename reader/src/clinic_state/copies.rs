//! Clinic mode: this device's copy of the clinic's revocation list and trust list, in its own
//! database (`copy_revocations`, `copy_trust_files`, `copy_refreshed`; docs/database.md), with
//! the time it was last refreshed from the clinic database. The copy is what a device shows and
//! verifies codes with when the clinic database does not answer; a kiosk still refuses check-in
//! then (a revocation made since the copy could be missed), see docs/deployment.md.
//!
//! A refresh replaces the whole copy in one transaction: a crash leaves the old copy or the new
//! one, never half of each.

use rusqlite::{TransactionBehavior, params};

use super::Revocation;
use crate::db::{ClinicDb, DbError};

/// The `copy_refreshed` row of the lists (both are refreshed together).
const LISTS: &str = "revocations+trust";

/// The `copy_refreshed` row that notes this clinic requires staff sign-ins (once seen, kept:
/// a device that cannot reach the clinic database still requires them).
const STAFF_REQUIRED: &str = "staff-required";

/// This device's copy of the clinic's lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalCopies {
    /// Revoked cards, by serial.
    pub revocations: Vec<Revocation>,
    /// Other clinics' trust files (name, bytes), by name.
    pub trust_files: Vec<(String, Vec<u8>)>,
    /// When the copy was last refreshed (Unix s); `None`: never (nothing copied yet).
    pub refreshed_at: Option<i64>,
}

impl ClinicDb {
    /// Notes, for good, that the clinic has staff cards (so sign-ins are required) as seen `at`.
    pub fn note_staff_required(&self, at: i64) -> Result<(), DbError> {
        self.conn()
            .execute("INSERT INTO copy_refreshed (list, at) VALUES (?1, ?2) ON CONFLICT (list) DO NOTHING", params![STAFF_REQUIRED, at])
            .map_err(self.err("note that staff sign-ins are required"))?;
        Ok(())
    }

    /// Whether [`ClinicDb::note_staff_required`] was ever called here.
    pub fn staff_required_noted(&self) -> Result<bool, DbError> {
        self.conn()
            .query_row("SELECT EXISTS (SELECT 1 FROM copy_refreshed WHERE list = ?1)", params![STAFF_REQUIRED], |r| r.get(0))
            .map_err(self.err("read whether staff sign-ins are required"))
    }

    /// Replaces the copy with `revocations` and `trust_files`, refreshed `at`, in one transaction.
    pub fn replace_copies(&mut self, revocations: &[Revocation], trust_files: &[(String, Vec<u8>)], at: i64) -> Result<(), DbError> {
        let err = |op| self.err(op);
        let (e1, e2, e3, e4, e5) = (
            err("refresh the revocation copy"),
            err("refresh the trust copy"),
            err("note the refresh"),
            err("begin the refresh"),
            err("commit the refresh"),
        );
        let tx = self.conn_mut().transaction_with_behavior(TransactionBehavior::Immediate).map_err(e4)?;
        let step = (|| {
            tx.execute("DELETE FROM copy_revocations", [])?;
            for r in revocations {
                tx.execute(
                    "INSERT INTO copy_revocations (serial, revoked_at, reason) VALUES (?1, ?2, ?3)",
                    params![r.serial, r.revoked_at, r.reason],
                )?;
            }
            Ok::<_, rusqlite::Error>(())
        })();
        step.map_err(e1)?;
        let step = (|| {
            tx.execute("DELETE FROM copy_trust_files", [])?;
            for (name, bytes) in trust_files {
                tx.execute("INSERT INTO copy_trust_files (name, bytes) VALUES (?1, ?2)", params![name, bytes])?;
            }
            Ok::<_, rusqlite::Error>(())
        })();
        step.map_err(e2)?;
        tx.execute(
            "INSERT INTO copy_refreshed (list, at) VALUES (?1, ?2) ON CONFLICT (list) DO UPDATE SET at = excluded.at",
            params![LISTS, at],
        )
        .map_err(e3)?;
        tx.commit().map_err(e5)
    }

    /// The copy as last refreshed.
    pub fn copies(&self) -> Result<LocalCopies, DbError> {
        let bad = |table: &'static str, row: String, what: String| DbError::BadRow { path: self.path().to_path_buf(), table, row, what };
        let conn = self.conn();
        let read = |op: &'static str| self.err(op);
        let mut st = conn
            .prepare_cached("SELECT serial, revoked_at, reason FROM copy_revocations ORDER BY serial")
            .map_err(read("read the revocation copy"))?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?)))
            .map_err(read("read the revocation copy"))?;
        let mut revocations = Vec::new();
        for row in rows {
            let (serial, revoked_at, reason) = row.map_err(read("read the revocation copy"))?;
            let serial = u32::try_from(serial)
                .map_err(|_| bad("copy_revocations", serial.to_string(), format!("serial {serial} is not a 32-bit card serial")))?;
            revocations.push(Revocation { serial, revoked_at, reason });
        }
        let mut st = conn.prepare_cached("SELECT name, bytes FROM copy_trust_files ORDER BY name").map_err(read("read the trust copy"))?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))).map_err(read("read the trust copy"))?;
        let mut trust_files = Vec::new();
        for row in rows {
            let (name, bytes) = row.map_err(read("read the trust copy"))?;
            if !super::is_trust_name(&name) {
                return Err(bad("copy_trust_files", name, "not a trust file name".into()));
            }
            trust_files.push((name, bytes));
        }
        let refreshed_at = conn
            .query_row("SELECT at FROM copy_refreshed WHERE list = ?1", params![LISTS], |r| r.get::<_, i64>(0))
            .map(Some)
            .or_else(|e| if matches!(e, rusqlite::Error::QueryReturnedNoRows) { Ok(None) } else { Err(e) })
            .map_err(read("read when the copy was refreshed"))?;
        Ok(LocalCopies { revocations, trust_files, refreshed_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type R = Result<(), Box<dyn std::error::Error>>;

    fn db() -> Result<(tempfile::TempDir, ClinicDb), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = ClinicDb::open(&dir.path().join("clinic.db"), &zeroize::Zeroizing::new([7u8; 32]))?;
        Ok((dir, db))
    }

    fn rev(serial: u32) -> Revocation {
        Revocation { serial, revoked_at: 1_800_000_000 + i64::from(serial), reason: format!("lost {serial}") }
    }

    #[test]
    fn a_new_device_has_an_empty_copy_never_refreshed() -> R {
        let (_d, db) = db()?;
        assert_eq!(db.copies()?, LocalCopies::default());
        Ok(())
    }

    #[test]
    fn a_refresh_replaces_the_whole_copy_and_notes_its_time() -> R {
        let (_d, mut db) = db()?;
        db.replace_copies(&[rev(1), rev(2)], &[("clinic-b.pem".into(), b"B".to_vec()), ("clinic-c.pem".into(), b"C".to_vec())], 100)?;
        db.replace_copies(&[rev(3)], &[("clinic-c.pem".into(), b"C2".to_vec())], 200)?;
        let c = db.copies()?;
        assert_eq!(c.revocations, [rev(3)]);
        assert_eq!(c.trust_files, [("clinic-c.pem".to_owned(), b"C2".to_vec())]);
        assert_eq!(c.refreshed_at, Some(200));
        Ok(())
    }

    #[test]
    fn a_failed_refresh_keeps_the_old_copy() -> R {
        let (_d, mut db) = db()?;
        db.replace_copies(&[rev(1)], &[], 100)?;
        // Two revocations of one serial break the primary key mid-refresh: all of it rolls back.
        assert!(db.replace_copies(&[rev(5), rev(5)], &[], 200).is_err());
        let c = db.copies()?;
        assert_eq!((c.revocations, c.refreshed_at), (vec![rev(1)], Some(100)));
        Ok(())
    }

    #[test]
    fn a_copy_row_with_a_path_for_a_name_is_refused_not_used() -> R {
        let (_d, db) = db()?;
        db.conn().execute("INSERT INTO copy_trust_files (name, bytes) VALUES ('../evil', x'00')", [])?;
        let err = db.copies().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("not a trust file name"), "{err}");
        Ok(())
    }
}
