//! Catching a panic inside a decoder (rqrr, an image codec) without printing it.
//!
//! `catch_unwind` stops the unwinding, but the process's panic hook has already printed
//! "thread … panicked at …" to stderr: on a bedside device that is noise on every hard frame, and
//! for a user of `medcard qr decode` it reads like a crash although the scan recovered. So the
//! first call installs, once per process, a hook that stays silent for a thread while that thread
//! is inside [`quietly`] and hands every other panic to the hook that was there before (the
//! default one, or the application's). The silenced panics are counted ([`caught`]) so a scan
//! can report them ([`super::ScanReport::panics`]) and a debug log can show them.
//!
//! An application that replaces the hook after the first scan drops the silence, not the panic
//! handling: caught panics are then printed by its hook, and still caught.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

static INSTALL: Once = Once::new();
static CAUGHT: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// How deep this thread is inside `quietly` (nested calls allowed).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

fn install() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if DEPTH.with(Cell::get) > 0 {
                CAUGHT.fetch_add(1, Ordering::Relaxed);
                return;
            }
            previous(info);
        }));
    });
}

/// Runs `f`; a panic inside it is caught without a word on stderr and gives `None`.
pub fn quietly<R>(f: impl FnOnce() -> R) -> Option<R> {
    install();
    DEPTH.with(|d| d.set(d.get().saturating_add(1)));
    let result = catch_unwind(AssertUnwindSafe(f));
    DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    result.ok()
}

/// How many panics [`quietly`] caught in this process so far.
#[must_use]
pub fn caught() -> u64 {
    CAUGHT.load(Ordering::Relaxed)
}
