//! A live scan of camera frames: the newest frame is scanned, never a queue.
//!
//! A camera delivers 30 frames a second whether or not the scanner keeps up. Scanning every
//! frame in order builds a queue, so the scanner would read what the camera saw seconds ago and
//! the clinician would hold the code still for nothing. Here the capture side only
//! [`LiveScanner::offer`]s each frame: it replaces the frame waiting in a one-frame slot (the
//! replaced one is counted as skipped) and returns at once; a worker thread takes the newest
//! frame whenever it is free, scans it with the camera budget ([`ScanOptions::camera`]), and
//! reports a [`Scanned`] for each frame it scanned.
//!
//! The slot is a pure core ([`Newest`]) with tests of its own; the thread around it is thin. The
//! same loop runs in the desktop app (frames from V4L2) and in the tests (recorded or generated
//! frame sequences), so the tests measure the code that runs at the bedside.

use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use image::GrayImage;

use super::{ScanOptions, ScanReport, Scanner};

/// The one-frame slot: the newest frame not yet scanned, and how many were replaced unscanned.
#[derive(Debug, Default)]
pub struct Newest<T> {
    waiting: Option<(u64, T)>,
    skipped: u64,
    closed: bool,
}

impl<T> Newest<T> {
    /// Puts frame number `seq` in the slot; a frame still waiting there is dropped and counted.
    pub fn put(&mut self, seq: u64, frame: T) {
        if self.waiting.replace((seq, frame)).is_some() {
            self.skipped += 1;
        }
    }

    /// Takes the waiting frame, if any.
    pub fn take(&mut self) -> Option<(u64, T)> {
        self.waiting.take()
    }

    /// Frames replaced before they were scanned.
    #[must_use]
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// One scanned frame.
#[derive(Debug, Clone)]
pub struct Scanned {
    /// The frame's number, as given to [`LiveScanner::offer`].
    pub seq: u64,
    /// What the scan found and what it cost.
    pub report: ScanReport,
}

type Shared = Arc<(Mutex<Newest<GrayImage>>, Condvar)>;

/// The live scan: offer frames, collect [`Scanned`] results; dropping it stops the worker.
pub struct LiveScanner {
    shared: Shared,
    results: Receiver<Scanned>,
    next_seq: u64,
}

impl LiveScanner {
    /// Starts the worker with `options` (normally [`ScanOptions::camera`]). `wake` is called
    /// after each scanned frame (the app repaints); pass `|| {}` if nothing needs waking.
    ///
    /// # Errors
    /// The worker thread could not be started.
    pub fn start(options: ScanOptions, wake: impl Fn() + Send + 'static) -> std::io::Result<Self> {
        let shared: Shared = Arc::new((Mutex::new(Newest::default()), Condvar::new()));
        let (tx, results) = mpsc::channel();
        let theirs = Arc::clone(&shared);
        let scanner = Scanner::new(options);
        // The worker is detached: it ends after its current scan (bounded by the budget) once the
        // slot is closed, and dropping the scanner never blocks the UI thread on a join.
        std::thread::Builder::new().name("qr-live-scan".into()).spawn(move || {
            let (lock, ready) = &*theirs;
            loop {
                let (seq, frame) = {
                    let mut slot = lock.lock().unwrap_or_else(PoisonError::into_inner);
                    loop {
                        if slot.closed {
                            return;
                        }
                        if let Some(frame) = slot.take() {
                            break frame;
                        }
                        slot = ready.wait(slot).unwrap_or_else(PoisonError::into_inner);
                    }
                };
                let report = scanner.scan_gray(frame);
                if tx.send(Scanned { seq, report }).is_err() {
                    return;
                }
                wake();
            }
        })?;
        Ok(LiveScanner { shared, results, next_seq: 0 })
    }

    /// Hands the newest camera frame to the scanner and returns at once; the frame number it
    /// was given. A frame the worker has not taken yet is replaced (and counted as skipped).
    pub fn offer(&mut self, frame: GrayImage) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let (lock, ready) = &*self.shared;
        lock.lock().unwrap_or_else(PoisonError::into_inner).put(seq, frame);
        ready.notify_one();
        seq
    }

    /// The frames scanned since the last call, oldest first.
    pub fn poll(&self) -> Vec<Scanned> {
        self.results.try_iter().collect()
    }

    /// Waits up to `timeout` for the next scanned frame.
    #[must_use]
    pub fn wait(&self, timeout: Duration) -> Option<Scanned> {
        self.results.recv_timeout(timeout).ok()
    }

    /// Frames replaced unscanned so far.
    #[must_use]
    pub fn skipped(&self) -> u64 {
        self.shared.0.lock().unwrap_or_else(PoisonError::into_inner).skipped()
    }
}

impl Drop for LiveScanner {
    fn drop(&mut self) {
        let (lock, ready) = &*self.shared;
        lock.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
        ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_keeps_only_the_newest_frame_and_counts_the_replaced_ones() {
        let mut slot = Newest::default();
        assert!(slot.take().is_none());
        slot.put(1, "a");
        slot.put(2, "b");
        slot.put(3, "c");
        assert_eq!(slot.take(), Some((3, "c")));
        assert_eq!(slot.skipped(), 2);
        assert!(slot.take().is_none(), "a frame is scanned once");
        slot.put(4, "d");
        assert_eq!(slot.take(), Some((4, "d")));
        assert_eq!(slot.skipped(), 2, "a frame taken in time is not skipped");
    }

    #[test]
    fn a_frame_offered_to_an_idle_worker_is_scanned_and_reported_with_its_number() {
        let text = "MC1:LIVE 0123456789";
        let code = crate::render::render_image(text, 6).unwrap_or_else(|e| unreachable!("{e}"));
        let mut frame = GrayImage::from_pixel(640, 480, image::Luma([210]));
        image::imageops::overlay(&mut frame, &code, 120, 80);
        let mut live = LiveScanner::start(ScanOptions::unbudgeted(), || {}).unwrap_or_else(|e| unreachable!("{e}"));
        let seq = live.offer(frame);
        let scanned = live.wait(Duration::from_secs(30)).unwrap_or_else(|| unreachable!("no result within 30 s"));
        assert_eq!(scanned.seq, seq);
        assert_eq!(scanned.report.texts(), vec![text.to_owned()]);
    }
}
