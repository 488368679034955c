//! What the reader's pcscd tests share: reader `Virtual PCD 00 01` (vpcd port 35964), the lock
//! that serializes its users (a mutex inside the test binary plus an exclusive lock on
//! `$TMPDIR/medcard-pcscd-vpcd1.lock` against other processes), finding `card-sim`, and waiting for
//! pcscd to see a card come or go.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use reader::PcscContext;

pub const READER: &str = "Virtual PCD 00 01";
pub const VPCD: &str = "127.0.0.1:35964";
pub const CARD_EVENT_TIMEOUT: Duration = Duration::from_secs(20);
pub const SETUP_HINT: &str = "run `bash scripts/setup.sh` (pcscd with the vsmartcard-vpcd readers)";

static PCSCD: Mutex<()> = Mutex::new(());

/// Held for as long as a test uses the reader.
pub struct Lock {
    _file: File,
    _guard: MutexGuard<'static, ()>,
}

pub fn lock() -> Lock {
    let guard = PCSCD.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let path = std::env::temp_dir().join("medcard-pcscd-vpcd1.lock");
    let file = File::options().create(true).truncate(false).write(true).open(&path).unwrap();
    file.lock().unwrap_or_else(|e| panic!("cannot lock {}: {e}", path.display()));
    Lock { _file: file, _guard: guard }
}

/// `$CARD_SIM`, else `card-sim` beside this test binary's profile directory, else built into a
/// target directory of its own.
pub fn card_sim() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(p) = std::env::var_os("CARD_SIM") {
            return PathBuf::from(p);
        }
        // target/<profile>/deps/<test>-HASH → target/<profile>
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
        let sibling = profile_dir.join("card-sim");
        if sibling.is_file() {
            return sibling;
        }
        let own_target = profile_dir.parent().unwrap().join("card-sim-for-reader-tests");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "card-applet-sim", "--bin", "card-sim", "--target-dir"])
            .arg(&own_target)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cannot run cargo to build card-sim");
        assert!(status.success(), "building card-sim failed; set CARD_SIM to a built card-sim");
        own_target.join("debug").join("card-sim")
    })
    .clone()
}

/// A PC/SC context on a pcscd that has the reader.
pub fn context() -> PcscContext {
    let ctx = PcscContext::establish().unwrap_or_else(|e| panic!("{e}: {SETUP_HINT}"));
    let names = ctx.reader_names().unwrap();
    assert!(names.iter().any(|n| n == READER), "pcscd has no reader '{READER}' ({names:?}): {SETUP_HINT}");
    ctx
}

/// Waits until pcscd reports the card present (`true`) or absent (`false`).
pub fn wait_for_presence(ctx: &PcscContext, want: bool) {
    let deadline = Instant::now() + CARD_EVENT_TIMEOUT;
    while ctx.card_present(READER).unwrap() != want {
        assert!(Instant::now() < deadline, "reader '{READER}' did not become present={want} in time");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Before serving a card: the reader must be empty. A card-sim the previous lock holder just
/// stopped is only seen gone at pcscd's next poll, so this waits a few seconds before concluding
/// that another card-sim is really serving the reader.
pub fn assert_reader_free(ctx: &PcscContext) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while ctx.card_present(READER).unwrap() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!ctx.card_present(READER).unwrap(), "reader '{READER}' already has a card: another card-sim on port 35964?");
}
