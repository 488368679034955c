//! What the pcscd tests share: the two vpcd readers of the machine's pcscd ([`READER_00`], port
//! 35963, used by the simulator's and the end-to-end tests; [`READER_01`], port 35964, used by
//! the reader's tests), the lock that serializes each reader's users (a mutex inside the test
//! binary plus an exclusive lock on `$TMPDIR/medcard-pcscd-vpcd<N>.lock` against other
//! processes), finding the workspace's binaries (`card-sim`, `medcard`), serving a card ([`ServedCard`]: stopping it waits until
//! pcscd has seen the card go), and waiting for pcscd to see a card come or go.
//!
//! The reader's tests include it as `mod pcscd_support;`, the end-to-end tests (`medcard-e2e`) as
//! `#[path = "../../reader/tests/pcscd_support/mod.rs"] mod pcscd_support;` (the desktop's
//! `kiosk_pcsc` test likewise). The unqualified
//! [`READER`], [`VPCD`], [`lock`], [`context`], [`wait_for_presence`] and [`assert_reader_free`]
//! are reader 00 01.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use reader::PcscContext;

/// One vpcd reader of the machine's pcscd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualReader {
    /// The PC/SC reader name.
    pub name: &'static str,
    /// Where `card-sim serve --vpcd` connects.
    pub vpcd: &'static str,
    /// The lock file in `$TMPDIR` that every user of this reader takes.
    pub lock_file: &'static str,
    /// Index of the in-process mutex.
    slot: usize,
}

/// `Virtual PCD 00 00` (the simulator's and the end-to-end tests).
pub const READER_00: VirtualReader =
    VirtualReader { name: "Virtual PCD 00 00", vpcd: "127.0.0.1:35963", lock_file: "medcard-pcscd-vpcd0.lock", slot: 0 };
/// `Virtual PCD 00 01` (the reader's tests).
pub const READER_01: VirtualReader =
    VirtualReader { name: "Virtual PCD 00 01", vpcd: "127.0.0.1:35964", lock_file: "medcard-pcscd-vpcd1.lock", slot: 1 };

/// The reader's tests' reader name (00 01).
pub const READER: &str = READER_01.name;
/// The reader's tests' vpcd address (00 01).
pub const VPCD: &str = READER_01.vpcd;
pub const CARD_EVENT_TIMEOUT: Duration = Duration::from_secs(20);
pub const SETUP_HINT: &str = "run `bash scripts/setup.sh` (pcscd with the vsmartcard-vpcd readers)";

static IN_PROCESS: [Mutex<()>; 2] = [Mutex::new(()), Mutex::new(())];

/// Held for as long as a test uses the reader.
pub struct Lock {
    _file: File,
    _guard: MutexGuard<'static, ()>,
}

/// Takes `r`'s lock (in this process, then against other processes).
pub fn lock_reader(r: &VirtualReader) -> Lock {
    let guard = IN_PROCESS.get(r.slot).expect("a reader of this module").lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let path = std::env::temp_dir().join(r.lock_file);
    let file = File::options().create(true).truncate(false).write(true).open(&path).unwrap();
    file.lock().unwrap_or_else(|e| panic!("cannot lock {}: {e}", path.display()));
    Lock { _file: file, _guard: guard }
}

/// [`lock_reader`] for reader 00 01.
pub fn lock() -> Lock {
    lock_reader(&READER_01)
}

/// A workspace binary for tests of another package (where `CARGO_BIN_EXE_<name>` does not
/// exist): `$<env>`, else `name` beside this test binary's profile directory (`cargo test
/// --workspace` built it), else built into a target directory of its own. The one place every
/// test crate finds `medcard` and `card-sim`.
pub fn workspace_binary(name: &'static str, env: &'static str, package: &'static str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test>-HASH → target/<profile>
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    let sibling = profile_dir.join(name);
    if sibling.is_file() {
        return sibling;
    }
    let own_target = profile_dir.parent().unwrap().join(format!("{name}-for-tests"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", package, "--bin", name, "--target-dir"])
        .arg(&own_target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {name}: {e}"));
    assert!(status.success(), "building {name} failed; set {env} to a built {name}");
    own_target.join("debug").join(name)
}

/// `card-sim` ([`workspace_binary`], `$CARD_SIM`).
pub fn card_sim() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| workspace_binary("card-sim", "CARD_SIM", "card-applet-sim")).clone()
}

/// `medcard` for tests outside the `reader` package ([`workspace_binary`], `$MEDCARD`).
pub fn medcard_bin() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| workspace_binary("medcard", "MEDCARD", "reader"))
}

/// A PC/SC context on a pcscd that has reader `r`.
pub fn context_for(r: &VirtualReader) -> PcscContext {
    let ctx = PcscContext::establish().unwrap_or_else(|e| panic!("{e}: {SETUP_HINT}"));
    let names = ctx.reader_names().unwrap();
    assert!(names.iter().any(|n| n == r.name), "pcscd has no reader '{}' ({names:?}): {SETUP_HINT}", r.name);
    ctx
}

/// [`context_for`] reader 00 01.
pub fn context() -> PcscContext {
    context_for(&READER_01)
}

/// Waits until pcscd reports a card in `reader` present (`true`) or absent (`false`).
pub fn wait_for_presence_in(ctx: &PcscContext, reader: &str, want: bool) {
    let deadline = Instant::now() + CARD_EVENT_TIMEOUT;
    while ctx.card_present(reader).unwrap() != want {
        assert!(Instant::now() < deadline, "reader '{reader}' did not become present={want} in time");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`wait_for_presence_in`] reader 00 01.
pub fn wait_for_presence(ctx: &PcscContext, want: bool) {
    wait_for_presence_in(ctx, READER, want);
}

/// Before serving a card: reader `r` must be empty. A card-sim the previous lock holder just
/// stopped is only seen gone at pcscd's next poll, so this waits a few seconds before concluding
/// that another card-sim is really serving the reader.
pub fn assert_free(ctx: &PcscContext, r: &VirtualReader) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while ctx.card_present(r.name).unwrap() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!ctx.card_present(r.name).unwrap(), "reader '{}' already has a card: another card-sim on {}?", r.name, r.vpcd);
}

/// [`assert_free`] reader 00 01.
pub fn assert_reader_free(ctx: &PcscContext) {
    assert_free(ctx, &READER_01);
}

/// A `card-sim serve` process serving one card file in a reader. [`ServedCard::kill`] and
/// dropping it stop the process and wait until pcscd sees the card go, so the next user of the
/// reader starts with it empty.
pub struct ServedCard {
    child: Option<Child>,
    reader: &'static str,
}

impl ServedCard {
    /// Checks that `r` is free, runs `<card_sim> serve --vpcd <r> --card <card>` and waits until
    /// pcscd sees the card.
    pub fn serve(card_sim: &Path, r: &VirtualReader, ctx: &PcscContext, card: &Path) -> ServedCard {
        assert_free(ctx, r);
        let child = Command::new(card_sim)
            .args(["serve", "--vpcd", r.vpcd, "--card"])
            .arg(card)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", card_sim.display()));
        let served = ServedCard { child: Some(child), reader: r.name };
        wait_for_presence_in(ctx, r.name, true);
        served
    }

    /// Kills the simulator abruptly (the card vanishes from the reader) and waits until pcscd
    /// sees it gone.
    pub fn kill(&mut self, ctx: &PcscContext) {
        self.stop();
        wait_for_presence_in(ctx, self.reader, false);
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ServedCard {
    fn drop(&mut self) {
        let was_running = self.child.is_some();
        self.stop();
        // Let pcscd see the card go before the next user starts its own (no panic in drop).
        if was_running && let Ok(ctx) = PcscContext::establish() {
            let deadline = Instant::now() + CARD_EVENT_TIMEOUT;
            while ctx.card_present(self.reader).unwrap_or(false) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
