//! The reader's PIV client through the real smart-card stack: `card-sim serve` → vpcd → pcscd →
//! `pcsc` crate → [`reader::PcscTransport`], and the `medcard` binary as a process.
//!
//! Serialization: there is one pcscd per machine and one card per vpcd reader, so every test here
//! holds [`lock`]: a mutex inside this binary plus an exclusive lock on
//! `$TMPDIR/medcard-pcscd-vpcd1.lock` (against other processes using the same reader). The
//! tests use reader `Virtual PCD 00 01` (vpcd port 35964); the simulator's own tests use 00 00.
//!
//! Finding `card-sim` (a binary of another package, so `CARGO_BIN_EXE_card-sim` does not exist
//! here), in order:
//! 1. `$CARD_SIM`, if set (path to a built `card-sim`);
//! 2. `card-sim` next to this test's profile directory (`target/<profile>/card-sim`), which
//!    `cargo test --workspace` always builds fresh;
//! 3. otherwise `cargo build -p card-applet-sim --bin card-sim` into a separate target directory
//!    `target/<profile>/../card-sim-for-reader-tests` (a separate directory, because the running
//!    `cargo test` holds the lock on the main one).
//!
//! pcscd or the reader missing makes the tests FAIL with a hint to run `scripts/setup.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::process::{Command, Stdio};
use std::time::Duration;

mod pcscd_support;
use pcscd_support::*;

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use reader::sw::Secret;
use reader::{CardError, CardEvent, ManagementKey, PcscContext, PinBlock, PinStatus, Piv, PivError as Error, Slot, TransportError};
use sha2::{Digest, Sha256};

const MEDCARD: &str = env!("CARGO_BIN_EXE_medcard");

/// A `card-sim serve` process with a fresh card file in reader 00 01 (stopped before the file
/// is removed: fields drop in order).
struct Sim {
    served: ServedCard,
    _dir: tempfile::TempDir,
}

impl Sim {
    fn start(ctx: &PcscContext, serial: u32) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let card = dir.path().join("patient.card");
        let sim = card_sim();
        let out = Command::new(&sim)
            .args(["new", "--serial", &serial.to_string(), "--out"])
            .arg(&card)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", sim.display()));
        assert!(out.status.success(), "card-sim new failed: {}", String::from_utf8_lossy(&out.stderr));
        Sim { served: ServedCard::serve(&sim, &READER_01, ctx, &card), _dir: dir }
    }

    /// Kill the simulator abruptly (the card vanishes from the reader).
    fn kill(&mut self, ctx: &PcscContext) {
        self.served.kill(ctx);
    }
}

#[test]
fn readers_are_listed_with_card_presence_and_insert_remove_events_arrive() {
    let _l = lock();
    let ctx = context();
    let before = ctx.readers().unwrap();
    let r = before.iter().find(|r| r.name == READER).unwrap();
    assert!(!r.card_present && r.atr.is_none(), "{r:?}");

    // Wait for the insert on another thread while the simulator starts.
    let waiter = std::thread::spawn(|| PcscContext::establish().unwrap().wait_for_change(READER, CARD_EVENT_TIMEOUT));
    std::thread::sleep(Duration::from_millis(300));
    let mut sim = Sim::start(&ctx, 11);
    assert_eq!(waiter.join().unwrap().unwrap(), CardEvent::Inserted);

    let r = ctx.readers().unwrap().into_iter().find(|r| r.name == READER).unwrap();
    assert!(r.card_present, "{r:?}");
    // docs/card.md "Transport": the ATR.
    assert_eq!(r.atr.as_deref(), Some("3BFD1300008131FE158073C021C0574D656443617264 48".replace(' ', "").as_str()));

    let waiter = std::thread::spawn(|| PcscContext::establish().unwrap().wait_for_change(READER, CARD_EVENT_TIMEOUT));
    std::thread::sleep(Duration::from_millis(300));
    sim.kill(&ctx);
    assert_eq!(waiter.join().unwrap().unwrap(), CardEvent::Removed);

    let timed_out = ctx.wait_for_change(READER, Duration::from_millis(300));
    assert!(matches!(timed_out, Err(TransportError::Timeout(_))), "{timed_out:?}");
}

#[test]
fn card_info_through_pcscd_reads_serial_guid_and_pin_tries() {
    let _l = lock();
    let ctx = context();
    let _sim = Sim::start(&ctx, 424_242);
    let mut t = ctx.connect(READER).unwrap();
    let info = t.transaction(|tx| Piv::new(tx).info()).unwrap().unwrap();
    assert_eq!(info.reader, READER);
    assert_eq!(info.serial, 424_242);
    assert_eq!(info.version, "5.4.3");
    assert_eq!(info.pin, PinStatus::NotVerified { tries_left: 3 });
    assert!(info.certificates.is_empty());
    assert!(info.chuid_guid.is_some());
    t.disconnect().unwrap();
}

#[test]
fn verify_pin_wrong_then_right_reports_tries_left() {
    let _l = lock();
    let ctx = context();
    let _sim = Sim::start(&ctx, 5);
    let mut t = ctx.connect(READER).unwrap();
    t.transaction(|tx| {
        let mut piv = Piv::new(tx);
        piv.select().unwrap();
        let e = piv.verify_pin(&PinBlock::pin("999999").unwrap()).unwrap_err();
        assert!(matches!(e, Error::Card(CardError::WrongSecret { secret: Secret::Pin, tries_left: 2 })), "{e:?}");
        assert_eq!(e.to_string(), "wrong PIN, 2 tries left");
        assert_eq!(piv.pin_status().unwrap(), PinStatus::NotVerified { tries_left: 2 });
        piv.verify_pin(&PinBlock::pin("123456").unwrap()).unwrap();
        assert_eq!(piv.pin_status().unwrap(), PinStatus::Verified);
    })
    .unwrap();
    // A reset (here: disconnect with reset, reconnect) clears the verification; tries are back to 3.
    t.disconnect().unwrap();
    let mut t = ctx.connect(READER).unwrap();
    let status = t.transaction(|tx| Piv::new(tx).pin_status()).unwrap().unwrap();
    assert_eq!(status, PinStatus::NotVerified { tries_left: 3 });
}

#[test]
fn generate_sign_and_verify_through_pcscd() {
    let _l = lock();
    let ctx = context();
    let _sim = Sim::start(&ctx, 6);
    let mut t = ctx.connect(READER).unwrap();
    t.transaction(|tx| {
        let mut piv = Piv::new(tx);
        piv.select().unwrap();
        piv.authenticate_management(&ManagementKey::default_blank()).unwrap();
        let vk9e = piv.generate(Slot::CardAuth).unwrap();
        let vk9c = piv.generate(Slot::Signature).unwrap();
        let d: [u8; 32] = Sha256::digest(b"challenge through pcscd").into();
        vk9e.verify_prehash(&d, &piv.sign_digest(Slot::CardAuth, &d).unwrap()).unwrap();
        piv.verify_pin(&PinBlock::pin("123456").unwrap()).unwrap();
        vk9c.verify_prehash(&d, &piv.sign_digest(Slot::Signature, &d).unwrap()).unwrap();
        // A 2000-byte object crosses chaining and GET RESPONSE over the real stack.
        let obj: Vec<u8> = (0..2000u32).map(|i| (i % 253) as u8).collect();
        piv.put_data(reader::piv::tags::CARD_CREDENTIAL, &obj).unwrap();
        assert_eq!(piv.card_credential().unwrap(), Some(obj));
    })
    .unwrap();
}

#[test]
fn killing_the_card_mid_session_gives_card_removed_without_panic() {
    let _l = lock();
    let ctx = context();
    let mut sim = Sim::start(&ctx, 7);
    let mut t = ctx.connect(READER).unwrap();
    t.transaction(|tx| {
        let mut piv = Piv::new(tx);
        piv.select().unwrap();
        piv.authenticate_management(&ManagementKey::default_blank()).unwrap();
        piv.generate(Slot::CardAuth).unwrap();
    })
    .unwrap();
    sim.kill(&ctx);
    let mut piv = Piv::new(&mut t);
    let e = piv.sign_digest(Slot::CardAuth, &[1; 32]).unwrap_err();
    assert!(matches!(e, Error::Transport(TransportError::CardRemoved { .. })), "{e:?}");
    assert!(e.to_string().contains("card removed"), "{e}");
    // Beginning a transaction on the pulled card is also a typed error.
    let e = t.transaction(|_| ()).unwrap_err();
    assert!(matches!(e, TransportError::CardRemoved { .. }), "{e:?}");
}

fn medcard(args: &[&str]) -> std::process::Output {
    Command::new(MEDCARD).args(args).stdin(Stdio::null()).output().unwrap()
}

#[test]
fn medcard_readers_and_card_info_run_as_processes() {
    let _l = lock();
    let ctx = context();

    let out = medcard(&["readers", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = list.as_array().unwrap().iter().find(|r| r["name"] == READER).unwrap();
    assert_eq!(entry["card_present"], false);

    let out = medcard(&["card", "info", "--reader", READER]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no card in reader 'Virtual PCD 00 01'"), "{err}");

    let _sim = Sim::start(&ctx, 31_337);
    let out = medcard(&["readers"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l == format!("{READER}\tcard present")), "{text}");

    let out = medcard(&["card", "info", "--reader", READER, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["serial"], 31_337);
    assert_eq!(info["pin"]["tries_left"], 3);
    assert_eq!(info["card_credential_bytes"], serde_json::Value::Null);

    let out = medcard(&["card", "info", "--reader", READER]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("serial:           31337"));

    let out = medcard(&["card", "info", "--reader", "No Such Reader"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no reader named 'No Such Reader'"));

    let out = medcard(&["card", "info"]);
    assert!(!out.status.success(), "missing --reader must fail");
}
