//! A full disk at the bedside: the demo clinic's data directory copied onto a small tmpfs that
//! is then filled to the last byte. The scan must end in a calm message that says what to do,
//! show and cache nothing, and the app must go on working once space is freed.
//!
//! Mounting a tmpfs needs root (CI and `scripts/test.sh` run as root). Where mounting is not
//! permitted the test says so on stderr and does not pretend to have run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use medcard_desktop::{AppContext, CardSource, View, demo};
use support::{checkin_qr, harness, paste, wait_for_any, wait_until};

/// A tmpfs mounted on a fresh directory, unmounted on drop.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<Self> {
        let dir = std::env::temp_dir().join(format!("medcard-full-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"]).arg(&dir).status();
        match st {
            Ok(s) if s.success() => Some(SmallDisk { dir }),
            _ => {
                let _ = std::fs::remove_dir(&dir);
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp").arg("-a").arg(format!("{}/.", from.display())).arg(to).status().unwrap();
    assert!(st.success(), "copying the demo data directory");
}

/// Writes zeros into `path` until the file system refuses (ENOSPC).
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 4096];
    let mut n = 0u64;
    loop {
        match f.write(&block) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    // Whatever is left in the page cache must be refused too.
    let _ = f.sync_all();
    n
}

#[test]
fn bedside_on_a_full_disk_shows_nothing_says_to_free_space_and_works_again_once_freed() {
    let Some(disk) = SmallDisk::mount("24m") else {
        eprintln!("full_disk: NOT RUN: mounting a tmpfs is not permitted here (needs root)");
        return;
    };
    let d = demo::create(None, medcard_desktop::context::system_now()).unwrap();
    // Two codes made at the kiosk (on the demo's own directory) before the bedside copy.
    let (first, _) = checkin_qr(&d);
    let (second, _) = checkin_qr(&d);
    let data = disk.dir.join("clinic");
    std::fs::create_dir(&data).unwrap();
    copy_dir(&d.data_dir, &data);

    let env = AppContext::new(&data, CardSource::Sim(d.slot.clone()));
    let mut h = harness(env, View::Bedside);
    // The window is up before the disk fills (a device that filled up while running).
    for _ in 0..20 {
        h.step();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let filler = disk.dir.join("filler");
    let filled = fill(&filler);
    assert!(filled > 0, "the filler took the free space");

    paste(&mut h, &first);
    let seen = wait_for_any(&mut h, &["Free disk space", "NOT FINISHED", "VERIFIED"]);
    assert_ne!(seen, "VERIFIED", "nothing may be shown when the access cannot be logged");
    let screen = support::on_screen(&h);
    assert!(screen.iter().any(|l| l.contains("Free disk space")), "says what to do: {screen:?}");
    assert!(!screen.iter().any(|l| l.contains("panicked")), "{screen:?}");
    assert_eq!(h.state().bedside.records_shown(), 0);
    assert!(h.state().bedside.cached_ids().is_empty(), "nothing cached on a full disk");

    // Space freed: the app (the same window) verifies the next code.
    std::fs::remove_file(&filler).unwrap();
    paste(&mut h, &second);
    wait_until(&mut h, "the second code's result", |a| a.bedside.has_result());
    assert_eq!(h.state().bedside.verdict(), Some("VERIFIED"), "{:?}", support::on_screen(&h));
    let shown = h.state().bedside.records_shown();
    assert!(shown > 0);
    // Only the second code's records were cached: the first left nothing behind on the full disk.
    wait_until(&mut h, "the Cached list to show the second code", |a| !a.bedside.cached_ids().is_empty());
    assert_eq!(h.state().bedside.cached_ids().len(), shown, "{:?}", h.state().bedside.cached_ids());
    let st = Command::new(support::medcard_bin()).args(["audit", "verify", "--data"]).arg(&data).output().unwrap();
    assert!(st.status.success(), "the audit log on the once-full disk verifies: {}", String::from_utf8_lossy(&st.stdout));
    drop(h);
    drop(disk);
}
