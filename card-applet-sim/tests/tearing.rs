//! Tearing at the card level (issue 2 item 3): every state-changing command is cut at every
//! persistence step of every save it makes (the `FileStore` failure injection simulates a crash
//! there: the save stops, nothing is cleaned up). The "process" then dies: the state is reloaded
//! from the card file, and must be exactly the state before that save or the state it was
//! writing, never a mix; a PIN or PUK try is never gained; and the PIN is never accepted before
//! its decremented counter is durable.
#![allow(clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use card_applet_sim::persist::{self, FailPoint, FailSwitch, FileStore, Step};
use card_applet_sim::{Card, DEFAULT_MANAGEMENT_KEY, Persist, PersistError, PersistentState};
use cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};

const PIN: &[u8] = b"123456\xFF\xFF";
const PUK: &[u8] = b"12345678";
const WRONG_PIN: &[u8] = b"000000\xFF\xFF";
const WRONG_PUK: &[u8] = b"00000000";
const NEW_PIN: &[u8] = b"7777777\xFF";
const NEW_PUK: &[u8] = b"99999999";

/// Records every state the card asks to save (the attempted one, saved or not).
struct Recorder {
    inner: FileStore,
    log: Arc<Mutex<Vec<PersistentState>>>,
}

impl Persist for Recorder {
    fn save(&mut self, state: &PersistentState) -> Result<(), PersistError> {
        self.log.lock().expect("log").push(state.clone());
        self.inner.save(state)
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    path: PathBuf,
    card: Card,
    switch: FailSwitch,
    log: Arc<Mutex<Vec<PersistentState>>>,
}

fn rig(initial: &PersistentState) -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("patient.card");
    persist::create_new(&path, initial).expect("create card file");
    let store = FileStore::new(&path);
    let switch = store.fail_switch();
    let log = Arc::new(Mutex::new(Vec::new()));
    let card = Card::new(initial.clone(), Box::new(Recorder { inner: store, log: Arc::clone(&log) }));
    Rig { _dir: dir, path, card, switch, log }
}

fn sw(resp: &[u8]) -> u16 {
    assert!(resp.len() >= 2, "no status word");
    u16::from_be_bytes([resp[resp.len() - 2], resp[resp.len() - 1]])
}

fn apdu(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![cla, ins, p1, p2, data.len() as u8];
    v.extend_from_slice(data);
    v.push(0x00);
    v
}

/// The host side of 3DES mutual authentication with the default key (no state change).
fn authenticate(card: &mut Card) {
    let r = card.process(&[0x00, 0x87, 0x03, 0x9B, 0x04, 0x7C, 0x02, 0x80, 0x00, 0x00]);
    assert_eq!(sw(&r), 0x9000);
    let c = des::TdesEde3::new_from_slice(&DEFAULT_MANAGEMENT_KEY).expect("key");
    let mut w = cipher::Block::<des::TdesEde3>::try_from(&r[4..12]).expect("block");
    c.decrypt_block(&mut w);
    let challenge = [0x3Cu8; 8];
    let mut body = vec![0x7C, 0x14, 0x80, 0x08];
    body.extend_from_slice(&w);
    body.extend_from_slice(&[0x81, 0x08]);
    body.extend_from_slice(&challenge);
    let r = card.process(&apdu(0x00, 0x87, 0x03, 0x9B, &body));
    assert_eq!(sw(&r), 0x9000);
    let mut expect = cipher::Block::<des::TdesEde3>::from(challenge);
    c.encrypt_block(&mut expect);
    assert_eq!(&r[4..12], expect.as_slice());
}

/// One state-changing operation under test.
struct Scenario {
    name: &'static str,
    initial: PersistentState,
    /// Whether the management key must be authenticated first (volatile: no save).
    needs_mgmt: bool,
    apdus: Vec<Vec<u8>>,
    /// What the operation does to the counters when it is a wrong attempt.
    wrong_attempt: Option<Counter>,
}

#[derive(Clone, Copy, Debug)]
enum Counter {
    Pin,
    Puk,
}

fn tries(s: &PersistentState, c: Counter) -> u8 {
    match c {
        Counter::Pin => s.pin.tries_left,
        Counter::Puk => s.puk.tries_left,
    }
}

fn scenarios() -> Vec<Scenario> {
    let blank = PersistentState::blank(4242);
    let mut pin_at_2 = blank.clone();
    pin_at_2.pin.tries_left = 2;
    let mut pin_blocked = blank.clone();
    pin_blocked.pin.tries_left = 0;
    let cert = {
        let mut body = vec![0x5C, 0x03, 0x5F, 0xC1, 0x05, 0x53, 0x82, 0x01, 0x90];
        body.extend((0..400u32).map(|i| (i % 256) as u8));
        body
    };
    let (head, tail) = cert.split_at(200);
    vec![
        Scenario {
            name: "VERIFY wrong PIN",
            initial: blank.clone(),
            needs_mgmt: false,
            apdus: vec![apdu(0, 0x20, 0, 0x80, WRONG_PIN)],
            wrong_attempt: Some(Counter::Pin),
        },
        Scenario {
            name: "VERIFY wrong PIN, last try",
            initial: {
                let mut s = blank.clone();
                s.pin.tries_left = 1;
                s
            },
            needs_mgmt: false,
            apdus: vec![apdu(0, 0x20, 0, 0x80, WRONG_PIN)],
            wrong_attempt: Some(Counter::Pin),
        },
        Scenario {
            name: "VERIFY right PIN from 3 tries",
            initial: blank.clone(),
            needs_mgmt: false,
            apdus: vec![apdu(0, 0x20, 0, 0x80, PIN)],
            wrong_attempt: None,
        },
        Scenario {
            name: "VERIFY right PIN from 2 tries",
            initial: pin_at_2.clone(),
            needs_mgmt: false,
            apdus: vec![apdu(0, 0x20, 0, 0x80, PIN)],
            wrong_attempt: None,
        },
        Scenario {
            name: "CHANGE REFERENCE DATA PIN, right old PIN",
            initial: pin_at_2.clone(),
            needs_mgmt: false,
            apdus: vec![apdu(0, 0x24, 0, 0x80, &[PIN, NEW_PIN].concat())],
            wrong_attempt: None,
        },
        Scenario {
            name: "CHANGE REFERENCE DATA PIN, wrong old PIN",
            initial: blank.clone(),
            needs_mgmt: false,
            apdus: vec![apdu(0, 0x24, 0, 0x80, &[WRONG_PIN, NEW_PIN].concat())],
            wrong_attempt: Some(Counter::Pin),
        },
        Scenario {
            name: "CHANGE REFERENCE DATA PUK, right old PUK",
            initial: blank.clone(),
            needs_mgmt: false,
            apdus: vec![apdu(0, 0x24, 0, 0x81, &[PUK, NEW_PUK].concat())],
            wrong_attempt: None,
        },
        Scenario {
            name: "CHANGE REFERENCE DATA PUK, wrong old PUK",
            initial: blank.clone(),
            needs_mgmt: false,
            apdus: vec![apdu(0, 0x24, 0, 0x81, &[WRONG_PUK, NEW_PUK].concat())],
            wrong_attempt: Some(Counter::Puk),
        },
        Scenario {
            name: "RESET RETRY COUNTER, right PUK, blocked PIN",
            initial: pin_blocked.clone(),
            needs_mgmt: false,
            apdus: vec![apdu(0, 0x2C, 0, 0x80, &[PUK, NEW_PIN].concat())],
            wrong_attempt: None,
        },
        Scenario {
            name: "RESET RETRY COUNTER, wrong PUK",
            initial: pin_blocked,
            needs_mgmt: false,
            apdus: vec![apdu(0, 0x2C, 0, 0x80, &[WRONG_PUK, NEW_PIN].concat())],
            wrong_attempt: Some(Counter::Puk),
        },
        Scenario {
            name: "GENERATE 9C",
            initial: blank.clone(),
            needs_mgmt: true,
            apdus: vec![apdu(0, 0x47, 0, 0x9C, &[0xAC, 0x03, 0x80, 0x01, 0x11])],
            wrong_attempt: None,
        },
        Scenario {
            name: "PUT DATA chained certificate",
            initial: blank,
            needs_mgmt: true,
            apdus: vec![apdu(0x10, 0xDB, 0x3F, 0xFF, head), apdu(0x00, 0xDB, 0x3F, 0xFF, tail)],
            wrong_attempt: None,
        },
    ]
}

/// Run the scenario with `arm` applied after setup; returns the rig and the last status word.
fn run(s: &Scenario, arm: Option<(u32, FailPoint)>) -> (Rig, u16) {
    let mut r = rig(&s.initial);
    if s.needs_mgmt {
        authenticate(&mut r.card);
    }
    if let Some((skip, point)) = arm {
        r.switch.arm_nth(skip, point);
    }
    let mut last = 0;
    for a in &s.apdus {
        last = sw(&r.card.process(a));
    }
    (r, last)
}

fn after_rename(point: FailPoint) -> bool {
    matches!(point, FailPoint::After(Step::Rename) | FailPoint::Before(Step::SyncDir) | FailPoint::After(Step::SyncDir))
}

fn reload(path: &Path) -> PersistentState {
    persist::load(path).unwrap_or_else(|e| panic!("card file unusable after a crash: {e}"))
}

#[test]
fn every_torn_save_of_every_state_changing_command_leaves_the_old_or_the_new_state() {
    let mut torn_runs = 0;
    for s in scenarios() {
        // The untorn run: how many saves the command makes, and its result.
        let (clean, clean_sw) = run(&s, None);
        let saves = clean.log.lock().expect("log").len();
        assert!(saves >= 1, "{}: no save at all", s.name);
        let final_state = reload(&clean.path);
        assert!(*clean.card.state() == final_state, "{}: memory and disk disagree", s.name);
        if s.wrong_attempt.is_some() {
            assert_eq!(clean_sw & 0xFFF0, 0x63C0, "{}: wrong attempt answers 63Cx", s.name);
        } else {
            assert_eq!(clean_sw, 0x9000, "{}", s.name);
        }

        for save in 0..saves {
            for point in FailPoint::all() {
                let (r, got_sw) = run(&s, Some((save as u32, point)));
                let ctx = format!("{} / save {save} / {point:?}", s.name);
                assert!(r.switch.disarm().is_none(), "{ctx}: the failure never fired");
                assert_eq!(got_sw, 0x6581, "{ctx}: a failed save answers 6581");
                let log = r.log.lock().expect("log").clone();
                assert_eq!(log.len(), save + 1, "{ctx}: the command went on saving after a failure");
                let old = if save == 0 { s.initial.clone() } else { log[save - 1].clone() };
                let new = log[save].clone();
                // The process dies here; the next one reads the card file.
                let disk = reload(&r.path);
                if after_rename(point) {
                    assert!(disk == new, "{ctx}: expected the new state on disk");
                } else {
                    assert!(disk == old, "{ctx}: expected the old state on disk");
                }
                // A try is never gained: neither on disk nor in the running card's memory.
                for c in [Counter::Pin, Counter::Puk] {
                    // Only the final save of a right value may raise a counter (back to 3).
                    let legit_restore = s.wrong_attempt.is_none() && save + 1 == saves && after_rename(point);
                    assert!(tries(&disk, c) <= tries(&s.initial, c) || legit_restore, "{ctx}: {c:?} try gained on disk");
                    assert!(tries(r.card.state(), c) <= tries(&disk, c), "{ctx}: {c:?} memory above disk");
                }
                if let Some(c) = s.wrong_attempt {
                    assert!(tries(&disk, c) + 1 >= tries(&s.initial, c), "{ctx}: more than one try spent");
                }
                // A PIN is never accepted when its counter could not be saved.
                assert!(!r.card.pin_verified(), "{ctx}: PIN verified although a save failed");
                // The reloaded card honours the counter on disk.
                let mut next = Card::new(disk.clone(), Box::new(FileStore::new(&r.path)));
                let status = sw(&next.process(&[0x00, 0x20, 0x00, 0x80, 0x00]));
                let expect = if disk.pin.tries_left == 0 { 0x6983 } else { 0x63C0 | u16::from(disk.pin.tries_left) };
                assert_eq!(status, expect, "{ctx}: reloaded card reports the disk counter");
                torn_runs += 1;
            }
        }
    }
    // 12 scenarios; 5 make two saves (the right-value ones), 11 failure points per save.
    assert!(torn_runs >= 12 * 11, "only {torn_runs} torn runs");
}

#[test]
fn counter_is_decremented_and_saved_before_the_pin_is_compared() {
    let initial = PersistentState::blank(1);
    // Untorn right PIN: the first save holds the decremented counter, the second restores it.
    let mut r = rig(&initial);
    assert_eq!(sw(&r.card.process(&apdu(0, 0x20, 0, 0x80, PIN))), 0x9000);
    let log = r.log.lock().expect("log").clone();
    assert_eq!(log.iter().map(|s| s.pin.tries_left).collect::<Vec<_>>(), vec![2, 3]);
    // The first save fails before the rename (the decrement is not durable): the right PIN is
    // refused and the disk still says 3. Had the card compared first, it would have said 9000.
    let mut r = rig(&initial);
    r.switch.arm(FailPoint::Before(Step::Rename));
    assert_eq!(sw(&r.card.process(&apdu(0, 0x20, 0, 0x80, PIN))), 0x6581);
    assert!(!r.card.pin_verified());
    assert_eq!(reload(&r.path).pin.tries_left, 3);
    // The restore save fails: the PIN is not verified and the disk keeps the spent try.
    let mut r = rig(&initial);
    r.switch.arm_nth(1, FailPoint::Before(Step::Rename));
    assert_eq!(sw(&r.card.process(&apdu(0, 0x20, 0, 0x80, PIN))), 0x6581);
    assert!(!r.card.pin_verified());
    assert_eq!(reload(&r.path).pin.tries_left, 2);
}

#[test]
fn repeated_torn_wrong_attempts_never_give_unlimited_tries() {
    // An attacker who can make every save fail right after the rename (the directory fsync)
    // still loses one try per attempt: the card keeps the lower counter in memory.
    let initial = PersistentState::blank(2);
    let mut r = rig(&initial);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        r.switch.arm(FailPoint::Before(Step::SyncDir));
        statuses.push(sw(&r.card.process(&apdu(0, 0x20, 0, 0x80, WRONG_PIN))));
    }
    assert_eq!(statuses, vec![0x6581, 0x6581, 0x6581, 0x6983]);
    assert_eq!(reload(&r.path).pin.tries_left, 0);
    assert_eq!(sw(&r.card.process(&apdu(0, 0x20, 0, 0x80, PIN))), 0x6983);
}
