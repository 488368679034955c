use super::*;
use zeroize::Zeroizing;

#[test]
fn the_actor_name_comes_from_the_passwd_entry_of_the_process_uid() {
    let passwd = "root:x:0:0:root:/root:/bin/bash\n# comment\nbroken line\nnurse:x:1001:1001::/home/nurse:/bin/sh\n";
    assert_eq!(user_in_passwd(passwd, 0).as_deref(), Some("root"));
    assert_eq!(user_in_passwd(passwd, 1001).as_deref(), Some("nurse"));
    assert_eq!(user_in_passwd(passwd, 7), None);
    assert_eq!(user_in_passwd("::0:0\n:x:notanumber", 0), None);
    // This process: a name, never empty, even without $USER (as under xvfb-run or systemd).
    assert!(!os_user().is_empty());
}

struct Fixture {
    _dir: tempfile::TempDir,
    db: ClinicDb,
    signer: qr::SoftwareSigner,
}

fn fixture(n: u64) -> Fixture {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let db = match ClinicDb::open(&dir.path().join("clinic.db"), &Zeroizing::new([4; 32])) {
        Ok(db) => db,
        Err(e) => panic!("open: {e}"),
    };
    let signer = match qr::SoftwareSigner::from_scalar(&[3; 32]) {
        Ok(s) => s,
        Err(e) => panic!("signer: {e}"),
    };
    let mut f = Fixture { _dir: dir, db, signer };
    for i in 0..n {
        add(&mut f, i);
    }
    f
}

fn add(f: &mut Fixture, i: u64) -> u64 {
    let ev = Event {
        time: 1_000 + i as i64,
        kind: EventKind::ALL[(i as usize) % EventKind::ALL.len()],
        actor: "kiosk-1".into(),
        subject: format!("P-{i}"),
        outcome: Outcome::Ok,
        detail: format!("n={i}"),
    };
    append(&mut f.db, &ev).unwrap_or(u64::MAX)
}

fn issuer(f: &Fixture) -> VerifyingKey {
    qr::Signer::public_key(&f.signer)
}

fn verify_f(f: &Fixture) -> Result<VerifyReport, Finding> {
    match verify(&f.db, &issuer(f)) {
        Ok(r) => r,
        Err(e) => panic!("verify: {e}"),
    }
}

fn cp(f: &mut Fixture, now: i64) -> Vec<u8> {
    let signer = qr::SoftwareSigner::from_scalar(&[3; 32]).unwrap_or_else(|e| panic!("{e}"));
    checkpoint(&mut f.db, "clinic-a", now, &signer).map(|(_, s)| s).unwrap_or_default()
}

fn sql(f: &Fixture, q: &str) {
    if let Err(e) = f.db.conn().execute_batch(q) {
        panic!("{q}: {e}");
    }
}

#[test]
fn appended_entries_get_consecutive_seqs_and_verify() {
    let mut f = fixture(0);
    for i in 0..10 {
        assert_eq!(add(&mut f, i), i);
    }
    cp(&mut f, 5);
    let r = verify_f(&f);
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(r.map(|r| (r.entries, r.checkpoints)).ok(), Some((10, 1)));
}

#[test]
fn root_in_the_checkpoint_is_the_independent_rfc_root_of_the_entries() {
    let mut f = fixture(13);
    let signed = cp(&mut f, 5);
    let opened = open_checkpoint(&signed, &issuer(&f));
    assert!(opened.is_ok());
    let entries: Vec<Vec<u8>> = entries(&f.db, 0, None).unwrap_or_default().iter().map(Entry::encode).collect();
    // Literal RFC 9162 recursion over the entries.
    fn mth(e: &[Vec<u8>]) -> Hash {
        use sha2::{Digest, Sha256};
        match e {
            [] => Sha256::digest([]).into(),
            [one] => Sha256::digest([&[0u8][..], one].concat()).into(),
            _ => {
                let mut k = 1;
                while k * 2 < e.len() {
                    k *= 2;
                }
                let (l, r) = e.split_at(k);
                Sha256::digest([&[1u8][..], &mth(l), &mth(r)].concat()).into()
            }
        }
    }
    assert_eq!(opened.map(|c| c.root).ok(), Some(mth(&entries)));
}

#[test]
fn edited_row_is_named() {
    for target in [0u64, 5, 9] {
        let mut f = fixture(10);
        cp(&mut f, 5);
        sql(&f, &format!("UPDATE audit_entries SET outcome = 'refused' WHERE seq = {target}"));
        assert_eq!(verify_f(&f), Err(Finding::Altered { seq: target }));
    }
}

#[test]
fn deleted_row_is_named() {
    let mut f = fixture(10);
    cp(&mut f, 5);
    sql(&f, "DELETE FROM audit_entries WHERE seq = 4");
    assert_eq!(verify_f(&f), Err(Finding::Missing { seq: 4, found: 5 }));
}

#[test]
fn deleted_last_rows_are_named_against_the_checkpoint() {
    let mut f = fixture(10);
    cp(&mut f, 5);
    sql(&f, "DELETE FROM audit_entries WHERE seq >= 8");
    assert_eq!(verify_f(&f), Err(Finding::Truncated { tree_size: 10, entries: 8 }));
}

#[test]
fn inserted_row_is_named() {
    let mut f = fixture(10);
    cp(&mut f, 5);
    // Make room at 3 and insert a forged row there (renumbering the rest).
    sql(
        &f,
        "UPDATE audit_entries SET seq = -seq - 1 WHERE seq >= 3; UPDATE audit_entries SET seq = -seq WHERE seq < 0;
         INSERT INTO audit_entries (seq, time, kind, actor, subject, outcome, detail, leaf_hash)
           VALUES (3, 1003, 'record.read', 'mallory', 'P-3', 'ok', '', x'00');",
    );
    assert_eq!(verify_f(&f), Err(Finding::Altered { seq: 3 }));
    // A row with a seq out of the sequence.
    let mut g = fixture(4);
    cp(&mut g, 5);
    sql(
        &g,
        "INSERT INTO audit_entries (seq, time, kind, actor, subject, outcome, detail, leaf_hash) VALUES (-5, 0, 'x', '', '', '', '', x'00')",
    );
    assert_eq!(verify_f(&g), Err(Finding::OutOfOrder { position: 0, found: -5 }));
}

#[test]
fn reordered_rows_are_named() {
    let mut f = fixture(10);
    cp(&mut f, 5);
    // Swap the contents of rows 6 and 2 (keeping their stored hashes with them).
    sql(
        &f,
        "UPDATE audit_entries SET seq = 100 WHERE seq = 2; UPDATE audit_entries SET seq = 2 WHERE seq = 6;
         UPDATE audit_entries SET seq = 6 WHERE seq = 100;",
    );
    assert_eq!(verify_f(&f), Err(Finding::Altered { seq: 2 }));
}

#[test]
fn edit_with_recomputed_leaf_hash_is_caught_by_the_signed_checkpoint() {
    let mut f = fixture(10);
    cp(&mut f, 5);
    add(&mut f, 10);
    add(&mut f, 11);
    cp(&mut f, 6);
    let mut e = entries(&f.db, 11, None).unwrap_or_default().remove(0);
    e.outcome = "refused".into();
    let leaf = merkle::leaf_hash(&e.encode());
    assert!(f.db.conn().execute("UPDATE audit_entries SET outcome = 'refused', leaf_hash = ?1 WHERE seq = 11", [leaf.as_slice()]).is_ok());
    assert_eq!(verify_f(&f), Err(Finding::RootMismatch { tree_size: 12, first_suspect: 10 }));
}

#[test]
fn forged_checkpoint_is_refused() {
    let mut f = fixture(3);
    cp(&mut f, 5);
    let other = qr::SoftwareSigner::from_scalar(&[9; 32]).unwrap_or_else(|e| panic!("{e}"));
    let fake = Checkpoint { origin: "clinic-a".into(), tree_size: 3, root: [0; 32], time: 1 };
    let signed = qr::cose::sign(&fake.payload(), &other).unwrap_or_default();
    assert!(
        f.db.conn().execute("UPDATE audit_checkpoints SET signed = ?1, root = ?2", rusqlite::params![signed, [0u8; 32].as_slice()]).is_ok()
    );
    assert!(matches!(verify_f(&f), Err(Finding::BadCheckpoint { tree_size: 3, .. })));
}

#[test]
fn inclusion_proof_for_every_entry_verifies_and_fails_when_tampered() {
    let mut f = fixture(21);
    cp(&mut f, 5);
    for seq in 0..21 {
        let p = prove(&f.db, &issuer(&f), seq);
        assert!(p.is_ok(), "{p:?}");
        let Ok(p) = p else { continue };
        assert!(merkle::verify_inclusion(p.seq, p.tree_size, &p.leaf_hash, &p.path, &p.root));
        let mut bad = p.path.clone();
        if let Some(h) = bad.first_mut() {
            h[0] ^= 1;
        }
        assert!(!merkle::verify_inclusion(p.seq, p.tree_size, &p.leaf_hash, &bad, &p.root));
    }
    assert!(matches!(prove(&f.db, &issuer(&f), 21), Err(AuditError::Range(_))));
}

#[test]
fn consistency_from_an_old_checkpoint_holds_after_appends_and_fails_after_a_rewrite() {
    let mut f = fixture(7);
    let old = cp(&mut f, 5);
    for i in 7..30 {
        add(&mut f, i);
    }
    cp(&mut f, 6);
    let c = consistency(&f.db, &issuer(&f), &old);
    assert!(c.is_ok(), "{c:?}");
    assert_eq!(c.map(|c| (c.old.tree_size, c.new.tree_size)).ok(), Some((7, 30)));
    // Rewrite history below the old checkpoint (hashes recomputed), then re-checkpoint.
    let mut e = entries(&f.db, 2, None).unwrap_or_default().remove(0);
    e.detail = "rewritten".into();
    let leaf = merkle::leaf_hash(&e.encode());
    assert!(f.db.conn().execute("UPDATE audit_entries SET detail = 'rewritten', leaf_hash = ?1 WHERE seq = 2", [leaf.as_slice()]).is_ok());
    sql(&f, "DELETE FROM audit_checkpoints");
    cp(&mut f, 7);
    assert!(matches!(consistency(&f.db, &issuer(&f), &old), Err(AuditError::ProofFailed { .. })));
}

#[test]
fn proofs_over_entries_read_elsewhere_match_the_database_proofs_and_name_a_gap() {
    // The clinic mode proves over entries read from PostgreSQL: same proofs as over the file.
    let mut f = fixture(13);
    let old_signed = cp(&mut f, 5);
    for i in 13..20 {
        add(&mut f, i);
    }
    let new_signed = cp(&mut f, 6);
    let all = entries(&f.db, 0, None).unwrap_or_default();
    let stored = vec![(13, Vec::new(), old_signed.clone()), (20, Vec::new(), new_signed)];
    let latest = latest_of(&stored, &issuer(&f)).ok().flatten();
    let Some(latest) = latest else { panic!("no latest checkpoint") };
    assert_eq!(latest.tree_size, 20);
    let leaves = leaf_hashes_of(&all, latest.tree_size).unwrap_or_default();
    assert_eq!(prove_over(&leaves, &latest, 9).ok(), prove(&f.db, &issuer(&f), 9).ok());
    let old = open_checkpoint(&old_signed, &issuer(&f)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(consistency_over(&leaves, old, latest.clone()).ok(), consistency(&f.db, &issuer(&f), &old_signed).ok());
    // An entry missing in the middle is a gap, not a proof over the wrong tree.
    let gapped: Vec<Entry> = all.iter().filter(|e| e.seq != 4).cloned().collect();
    assert!(matches!(leaf_hashes_of(&gapped, 20), Err(AuditError::Range(m)) if m.contains("gap or reorder at entry 4")));
    assert!(matches!(leaf_hashes_of(&all[..10], 20), Err(AuditError::Range(m)) if m.contains("fewer than 20")));
}

proptest::proptest! {
    #[test]
    fn checkpoint_parsing_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let key = qr::Signer::public_key(&qr::SoftwareSigner::from_scalar(&[3; 32]).unwrap_or_else(|e| panic!("{e}")));
        let _ = open_checkpoint(&bytes, &key);
        let _ = Checkpoint::from_payload(&bytes);
    }

    #[test]
    fn verify_never_panics_and_never_passes_a_row_with_arbitrary_values(
        seq in -3i64..12, time in proptest::prelude::any::<i64>(), text in ".{0,20}", hash in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)
    ) {
        let mut f = fixture(6);
        cp(&mut f, 5);
        let _ = f.db.conn().execute("DELETE FROM audit_entries WHERE seq = 3", []);
        let _ = f.db.conn().execute(
            "INSERT OR REPLACE INTO audit_entries (seq, time, kind, actor, subject, outcome, detail, leaf_hash) VALUES (?1, ?2, ?3, ?3, ?3, ?3, ?3, ?4)",
            rusqlite::params![seq, time, text, hash],
        );
        proptest::prop_assert!(verify_f(&f).is_err(), "a forged row passed verification");
    }
}
