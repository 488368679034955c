//! The deployment line of the top bar (docs/deployment.md): single-device, or which clinic
//! device this is, whether the clinic database answers, and when it last did — with an offline
//! banner that says what still works. Probed off the UI thread every [`PROBE_EVERY`].

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use reader::clinic::ClinicState;

/// How often the clinic database is asked whether it answers.
pub const PROBE_EVERY: Duration = Duration::from_secs(30);

/// What one probe found. Pure data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// No `device.json`: everything is in the data directory.
    SingleDevice,
    /// A device of a clinic.
    Clinic {
        /// `device_id (role)`.
        device: String,
        /// `Ok(number of revocations)` when the database answered, else why not.
        database: Result<usize, String>,
        /// Audit entries waiting on this device.
        queued: u64,
    },
    /// `device.json` or the keystore is unusable.
    Broken(String),
}

/// Asks the data directory's deployment and, in clinic mode, the clinic database (the revocation
/// list is read, as a kiosk does at every check-in).
#[must_use]
pub fn probe(data_dir: &Path) -> Probe {
    let state = ClinicState::at(data_dir);
    let d = match state.deployment() {
        Ok(None) => return Probe::SingleDevice,
        Ok(Some(d)) => d,
        Err(e) => return Probe::Broken(e.to_string()),
    };
    let database = match state.with_clinic_db(|pg| pg.revocations()) {
        Ok(Some(r)) => Ok(r.len()),
        Ok(None) => Err("not configured".into()),
        Err(e) => Err(e.to_string()),
    };
    let queued = state.queued_audit_entries().unwrap_or(0);
    Probe::Clinic { device: format!("{} ({})", d.device_id, d.role.as_str()), database, queued }
}

/// The top bar's line and the offline banner, from the latest probe and when the database last
/// answered. Pure.
#[must_use]
pub fn describe(p: &Probe, last_ok: Option<&str>, since: Option<&str>) -> (String, Option<String>) {
    match p {
        Probe::SingleDevice => ("Single device".into(), None),
        Probe::Broken(e) => {
            ("Clinic device: configuration unusable".into(), Some(format!("This device's clinic configuration is unusable: {e}")))
        }
        Probe::Clinic { device, database: Ok(n), queued } => {
            let q = if *queued > 0 { format!(" · {queued} audit entries waiting to be sent") } else { String::new() };
            (
                format!(
                    "Clinic device {device} · clinic database: online · revocation list: {n} revoked, read at {}{q}",
                    last_ok.unwrap_or("-")
                ),
                None,
            )
        }
        Probe::Clinic { device, database: Err(e), queued } => (
            format!("Clinic device {device} · clinic database: OFFLINE · {queued} audit entries waiting to be sent"),
            Some(format!(
                "OFFLINE since {}: the clinic database does not answer (last reached {}; revocation list last read then). \
                 Check-in is refused; cached records can still be opened; new scans are refused. Tell IT. ({e})",
                since.unwrap_or("start"),
                last_ok.unwrap_or("never")
            )),
        ),
    }
}

/// The watcher the app runs every frame.
pub struct ModeWatch {
    data_dir: PathBuf,
    running: Option<Receiver<Probe>>,
    next: Instant,
    last: Option<Probe>,
    last_ok: Option<String>,
    offline_since: Option<String>,
}

fn clock() -> String {
    // The same clock as the views (MEDCARD_NOW in tests), without reaching up into `context`.
    let t = reader::clock::now().unwrap_or_else(|_| reader::clock::system_now());
    let s = qr::time::format_rfc3339(t);
    s.get(11..19).unwrap_or(&s).to_owned()
}

impl ModeWatch {
    /// A watcher of `data_dir`; the first probe starts at once.
    #[must_use]
    pub fn new(data_dir: &Path) -> Self {
        ModeWatch { data_dir: data_dir.to_owned(), running: None, next: Instant::now(), last: None, last_ok: None, offline_since: None }
    }

    /// Starts a probe when one is due; takes a finished one.
    pub fn logic(&mut self, ctx: &egui::Context) {
        if let Some(rx) = &self.running {
            match rx.try_recv() {
                Ok(p) => {
                    match &p {
                        Probe::Clinic { database: Ok(_), .. } => {
                            self.last_ok = Some(clock());
                            self.offline_since = None;
                        }
                        Probe::Clinic { database: Err(_), .. } if self.offline_since.is_none() => self.offline_since = Some(clock()),
                        _ => {}
                    }
                    self.last = Some(p);
                    self.running = None;
                    ctx.request_repaint();
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => self.running = None,
            }
        }
        if self.running.is_none() && Instant::now() >= self.next {
            let (tx, rx) = std::sync::mpsc::channel();
            let dir = self.data_dir.clone();
            let repaint = ctx.clone();
            std::thread::spawn(move || {
                let _ = tx.send(probe(&dir));
                repaint.request_repaint();
            });
            self.running = Some(rx);
            self.next = Instant::now() + PROBE_EVERY;
        }
        ctx.request_repaint_after(PROBE_EVERY);
    }

    /// The line and the banner, once the first probe is in.
    #[must_use]
    pub fn shown(&self) -> Option<(String, Option<String>)> {
        self.last.as_ref().map(|p| describe(p, self.last_ok.as_deref(), self.offline_since.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_banner_says_what_still_works_and_since_when() {
        let p = Probe::Clinic { device: "bed-1 (bedside)".into(), database: Err("unreachable".into()), queued: 2 };
        let (line, banner) = describe(&p, Some("09:58:00"), Some("10:01:30"));
        assert!(line.contains("bed-1 (bedside)") && line.contains("OFFLINE") && line.contains("2 audit entries"), "{line}");
        let banner = banner.unwrap_or_default();
        assert!(banner.starts_with("OFFLINE since 10:01:30"), "{banner}");
        assert!(banner.contains("last reached 09:58:00") && banner.contains("cached records can still be opened"), "{banner}");
        let ok = Probe::Clinic { device: "kiosk-1 (kiosk)".into(), database: Ok(3), queued: 0 };
        let (line, banner) = describe(&ok, Some("10:02:00"), None);
        assert!(line.contains("online") && line.contains("3 revoked, read at 10:02:00"), "{line}");
        assert!(banner.is_none());
        assert_eq!(describe(&Probe::SingleDevice, None, None).0, "Single device");
    }
}
