//! Long work off the UI thread: card sessions, issuance, scanning big images, audit
//! verification. A [`Job`] runs a closure on its own thread and wakes the UI when it is done;
//! the view polls it once per frame and shows a spinner meanwhile. A panic in the work becomes
//! a readable error instead of taking the app down.

use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::Instant;

/// The state of a job seen from the UI.
#[derive(Debug)]
pub enum Poll<T> {
    /// Still running.
    Pending,
    /// Finished with this result.
    Ready(T),
    /// The work died (panicked): a message for the user.
    Lost(String),
}

/// Work running on another thread.
pub struct Job<T> {
    rx: Receiver<std::thread::Result<T>>,
    started: Instant,
    what: String,
}

impl<T> std::fmt::Debug for Job<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({:?})", self.what)
    }
}

impl<T: Send + 'static> Job<T> {
    /// Starts `work` on a new thread; `wake` (e.g. `ctx.request_repaint`) runs when it finishes.
    pub fn spawn(what: &str, wake: impl Fn() + Send + 'static, work: impl FnOnce() -> T + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new().name(format!("job: {what}")).spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            let _ = tx.send(r);
            wake();
        });
        if let Err(e) = spawned {
            // No thread: report it as a lost job through the same channel.
            let (tx2, rx2) = mpsc::channel();
            let _ = tx2.send(Err(Box::new(format!("could not start a worker thread: {e}")) as Box<dyn std::any::Any + Send>));
            return Job { rx: rx2, started: Instant::now(), what: what.to_owned() };
        }
        Job { rx, started: Instant::now(), what: what.to_owned() }
    }

    /// Whether it finished (call once per frame).
    pub fn poll(&mut self) -> Poll<T> {
        match self.rx.try_recv() {
            Ok(Ok(v)) => Poll::Ready(v),
            Ok(Err(panic)) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "unknown error".to_owned());
                Poll::Lost(format!("{} failed unexpectedly ({msg}); nothing was changed on screen, try again", self.what))
            }
            Err(TryRecvError::Empty) => Poll::Pending,
            Err(TryRecvError::Disconnected) => Poll::Lost(format!("{} stopped unexpectedly; try again", self.what)),
        }
    }

    /// What the job does, for the spinner's label.
    #[must_use]
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Seconds since it started.
    #[must_use]
    pub fn elapsed_secs(&self) -> f32 {
        self.started.elapsed().as_secs_f32()
    }
}

/// Polls the job in `slot` (once per frame); when it has finished, empties the slot and returns
/// what it gave: `Ok` its result, `Err` the message of a lost (panicked) job.
pub fn finished<T: Send + 'static>(slot: &mut Option<Job<T>>) -> Option<Result<T, String>> {
    let r = match slot.as_mut()?.poll() {
        Poll::Pending => return None,
        Poll::Ready(v) => Ok(v),
        Poll::Lost(m) => Err(m),
    };
    *slot = None;
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_empties_the_slot_once_the_job_is_done() {
        let mut slot: Option<Job<u8>> = None;
        assert!(finished(&mut slot).is_none());
        slot = Some(Job::spawn("adding", || {}, || 7));
        let mut got = None;
        for _ in 0..2000 {
            got = finished(&mut slot);
            if got.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(got, Some(Ok(7)));
        assert!(slot.is_none());
        #[allow(clippy::panic)]
        let mut lost: Option<Job<u8>> = Some(Job::spawn("scanning", || {}, || panic!("boom")));
        let mut got = None;
        for _ in 0..2000 {
            got = finished(&mut lost);
            if got.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(matches!(got, Some(Err(m)) if m.contains("scanning failed unexpectedly (boom)")));
        assert!(lost.is_none());
    }

    fn wait<T: Send + 'static>(mut j: Job<T>) -> Poll<T> {
        for _ in 0..2000 {
            match j.poll() {
                Poll::Pending => std::thread::sleep(std::time::Duration::from_millis(5)),
                other => return other,
            }
        }
        Poll::Pending
    }

    #[test]
    fn a_finished_job_gives_its_result_and_wakes_the_ui() {
        let woke = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let w = woke.clone();
        let j = Job::spawn("adding", move || w.store(true, std::sync::atomic::Ordering::SeqCst), || 2 + 2);
        assert!(matches!(wait(j), Poll::Ready(4)));
        assert!(woke.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[test]
    fn a_panicking_job_is_a_readable_error_not_a_crash() {
        #[allow(clippy::panic)]
        let j: Job<()> = Job::spawn("scanning", || {}, || panic!("boom"));
        match wait(j) {
            Poll::Lost(m) => assert!(m.contains("scanning failed unexpectedly (boom)"), "{m}"),
            other => unreachable!("{other:?}"),
        }
    }
}
