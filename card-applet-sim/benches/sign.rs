//! ECDSA P-256 signatures with the simulated card (issue 2, "Criterion bench"):
//!
//! - `in_process/general_authenticate_9e`: one GENERAL AUTHENTICATE (slot 9E, no PIN) through
//!   `Card::process`, after SELECT, management-key authentication (default 3DES key) and
//!   GENERATE in the setup: signatures per second of the applet itself (parse, P-256 sign, DER,
//!   response TLV) with an in-memory store.
//! - `pcscd_vpcd/general_authenticate_9e`: the same APDU sent with the `pcsc` crate through pcscd
//!   and vpcd to a `card-sim serve` process: the wall time of one sign round trip on the real
//!   smart-card stack. Skipped, with a message, when pcscd has no vpcd reader or the reader is
//!   busy.
//!
//! Reference printed in the same run: `openssl speed -seconds 3 ecdsap256` (OpenSSL's P-256
//! signatures per second on this machine, one core).
//!
//! `cargo bench -p card-applet-sim --bench sign -- --warm-up-time 1 --measurement-time 5`
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::ffi::CString;
use std::fs::File;
use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use card_applet_sim::{Card, DEFAULT_MANAGEMENT_KEY, MemoryStore, PersistentState};
use cipher::{Array, BlockCipherEncrypt, KeyInit};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const SELECT_PIV: [u8; 15] = [0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00];
/// GENERATE ASYMMETRIC KEY PAIR, slot 9E, algorithm 11 (P-256).
const GENERATE_9E: [u8; 10] = [0x00, 0x47, 0x00, 0x9E, 0x05, 0xAC, 0x03, 0x80, 0x01, 0x11];
/// GENERAL AUTHENTICATE external step 1: ask the card for a 3DES challenge (9B).
const MGMT_CHALLENGE: [u8; 9] = [0x00, 0x87, 0x03, 0x9B, 0x04, 0x7C, 0x02, 0x81, 0x00];
const READER: &str = "Virtual PCD 00 00";
const VPCD: &str = "127.0.0.1:35963";

/// GENERAL AUTHENTICATE 9E with a 32-byte digest: `7C { 82 00, 81 digest }`, Le 00.
fn sign_apdu(digest: &[u8; 32]) -> Vec<u8> {
    let mut apdu = vec![0x00, 0x87, 0x11, 0x9E, 0x26, 0x7C, 0x24, 0x82, 0x00, 0x81, 0x20];
    apdu.extend_from_slice(digest);
    apdu.push(0x00);
    apdu
}

fn sw(resp: &[u8]) -> u16 {
    resp.split_last_chunk::<2>().map_or(0, |(_, sw)| u16::from_be_bytes(*sw))
}

/// Management-key authentication with the default 3DES key (external authenticate: the card
/// sends a challenge `7C { 81 C }`, the host answers `7C { 82 E(K, C) }`), then GENERATE 9E.
fn prepare(mut transmit: impl FnMut(&[u8]) -> Vec<u8>) {
    assert_eq!(sw(&transmit(&SELECT_PIV)), 0x9000, "SELECT");
    let resp = transmit(&MGMT_CHALLENGE);
    assert_eq!(sw(&resp), 0x9000, "management challenge");
    // 7C 0A 81 08 <challenge>
    let challenge: [u8; 8] = resp.get(4..12).and_then(|c| c.try_into().ok()).expect("8-byte challenge");
    let tdes = des::TdesEde3::new_from_slice(&DEFAULT_MANAGEMENT_KEY).expect("24-byte key");
    let mut block = Array::from(challenge);
    tdes.encrypt_block(&mut block);
    let mut answer = vec![0x00, 0x87, 0x03, 0x9B, 0x0C, 0x7C, 0x0A, 0x82, 0x08];
    answer.extend_from_slice(&block);
    assert_eq!(sw(&transmit(&answer)), 0x9000, "management key response");
    let mut generate = GENERATE_9E.to_vec();
    generate.push(0x00);
    assert_eq!(sw(&transmit(&generate)), 0x9000, "GENERATE 9E");
}

fn in_process(c: &mut Criterion) {
    let mut card = Card::new(PersistentState::blank(1), Box::new(MemoryStore::default()));
    prepare(|apdu| card.process(apdu));
    let apdu = sign_apdu(&[0x42; 32]);
    let first = card.process(&apdu);
    assert_eq!(sw(&first), 0x9000, "sign with 9E: {first:02X?}");

    let mut group = c.benchmark_group("in_process");
    group.throughput(Throughput::Elements(1));
    group.bench_function("general_authenticate_9e", |b| b.iter(|| black_box(card.process(black_box(&apdu)))));
    group.finish();
    let last = card.process(&apdu);
    assert!(sw(&last) == 0x9000 && last.len() > 70, "sign after the bench: {last:02X?}");
}

/// `card-sim serve` for the pcscd bench; stopped with SIGTERM on drop.
struct Served {
    child: Child,
    _dir: tempfile::TempDir,
    _lock: File,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-s", "TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn card_present(ctx: &pcsc::Context, reader: &CString) -> Option<bool> {
    let readers = ctx.list_readers_owned().ok()?;
    if !readers.iter().any(|r| r == reader) {
        return None;
    }
    let mut states = [pcsc::ReaderState::new(reader.clone(), pcsc::State::UNAWARE)];
    ctx.get_status_change(Duration::from_millis(0), &mut states).ok()?;
    Some(states[0].event_state().contains(pcsc::State::PRESENT))
}

/// Insert a fresh simulated card into [`READER`], or say why not.
fn serve_card(ctx: &pcsc::Context, reader: &CString) -> Result<Served, String> {
    // The same lock as tests/pcsc_stack.rs: one user of pcscd's reader 00 00 at a time.
    let lock_path = std::env::temp_dir().join("medcard-pcscd-vpcd0.lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    lock.lock().map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    match card_present(ctx, reader) {
        None => return Err(format!("pcscd has no reader '{READER}' (run scripts/setup.sh)")),
        Some(true) => {
            return Err(format!("'{READER}' already holds a card (another card-sim serving {VPCD}?)"));
        }
        Some(false) => {}
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let card = dir.path().join("bench.card");
    let sim = env!("CARGO_BIN_EXE_card-sim");
    let made = Command::new(sim)
        .args(["new", "--out"])
        .arg(&card)
        .args(["--serial", "424242"])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    if !made.success() {
        return Err(format!("card-sim new failed: {made}"));
    }
    let child = Command::new(sim)
        .args(["serve", "--vpcd", VPCD, "--card"])
        .arg(&card)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let served = Served { child, _dir: dir, _lock: lock };
    let deadline = Instant::now() + Duration::from_secs(20);
    while card_present(ctx, reader) != Some(true) {
        if Instant::now() > deadline {
            return Err(format!("the simulated card did not appear in '{READER}'"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(served)
}

fn through_pcscd(c: &mut Criterion) {
    let Ok(ctx) = pcsc::Context::establish(pcsc::Scope::User) else {
        println!("pcscd_vpcd/general_authenticate_9e: SKIPPED: pcscd is not running (run scripts/setup.sh)");
        return;
    };
    let reader = CString::new(READER).expect("no NUL");
    let _served = match serve_card(&ctx, &reader) {
        Ok(s) => s,
        Err(why) => {
            println!("pcscd_vpcd/general_authenticate_9e: SKIPPED: {why}");
            return;
        }
    };
    let card = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match ctx.connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY) {
                Ok(card) => break card,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("connect: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("cannot connect to the simulated card: {e}"),
            }
        }
    };
    let mut buf = vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
    let mut transmit =
        |apdu: &[u8]| -> Vec<u8> { card.transmit(apdu, &mut buf).unwrap_or_else(|e| panic!("transmit {apdu:02X?}: {e}")).to_vec() };
    prepare(&mut transmit);
    let apdu = sign_apdu(&[0x42; 32]);
    assert_eq!(sw(&transmit(&apdu)), 0x9000, "sign with 9E through pcscd");

    let mut group = c.benchmark_group("pcscd_vpcd");
    group.throughput(Throughput::Elements(1));
    group.bench_function("general_authenticate_9e", |b| b.iter(|| black_box(transmit(black_box(&apdu)))));
    group.finish();
    // Every measured round trip was a real signature: the card still signs afterwards.
    let last = transmit(&apdu);
    assert!(sw(&last) == 0x9000 && last.len() > 70, "sign after the bench: {last:02X?}");
}

/// The reference: OpenSSL's ECDSA P-256 sign rate on this machine, printed with the results.
fn openssl_reference(_: &mut Criterion) {
    let out = Command::new("openssl").args(["speed", "-seconds", "3", "ecdsap256"]).stderr(Stdio::null()).output();
    let Ok(out) = out else {
        println!("reference: openssl not found (run scripts/setup.sh)");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    // " 256 bits ecdsa (nistp256)   0.0000s   0.0001s  34567.8  12345.6"
    let line = text.lines().find(|l| l.contains("ecdsa (nistp256)"));
    match line.map(|l| l.split_whitespace().collect::<Vec<_>>()) {
        Some(f) if f.len() >= 2 => {
            let sign = f[f.len() - 2];
            let verify = f[f.len() - 1];
            println!("reference: openssl speed -seconds 3 ecdsap256: {sign} sign/s, {verify} verify/s");
        }
        _ => println!("reference: could not parse `openssl speed` output:\n{text}"),
    }
}

criterion_group!(benches, in_process, through_pcscd, openssl_reference);
criterion_main!(benches);
