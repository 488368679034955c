//! The deployment line of the top bar (docs/deployment.md): single-device, or which clinic
//! device this is, whether the clinic database answers, and how old this device's copy of the
//! revocation and trust lists is — with an offline banner that says what still works. Probed off
//! the UI thread every [`PROBE_EVERY`]; each probe that reaches the database refreshes the copy.

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
        /// `Ok(())` when the database answered (and the copy was refreshed), else why not.
        database: Result<(), String>,
        /// This device's copy of the lists: (revoked cards, trusted clinics, refreshed at).
        copies: (usize, usize, Option<i64>),
        /// Audit entries waiting on this device.
        queued: u64,
    },
    /// `device.json` or the keystore is unusable.
    Broken(String),
}

/// Asks the data directory's deployment and, in clinic mode, the clinic database: reachable, the
/// device's copy of the revocation and trust lists is refreshed; not, the copy is read as it is.
#[must_use]
pub fn probe(data_dir: &Path, now: i64) -> Probe {
    let state = ClinicState::at(data_dir);
    let d = match state.deployment() {
        Ok(None) => return Probe::SingleDevice,
        Ok(Some(d)) => d,
        Err(e) => return Probe::Broken(e.to_string()),
    };
    let (database, copies) = match state.refresh_local_copies(now) {
        Ok(Some(c)) => (Ok(()), Some(c)),
        Ok(None) => (Err("not configured".into()), None),
        Err(e) => (Err(e.to_string()), None),
    };
    let copies = copies.or_else(|| state.local_copies().ok()).unwrap_or_default();
    let queued = state.queued_audit_entries().unwrap_or(0);
    Probe::Clinic {
        device: format!("{} ({})", d.device_id, d.role.as_str()),
        database,
        copies: (copies.revocations.len(), copies.trust_files.len(), copies.refreshed_at),
        queued,
    }
}

/// "10:02:13" on the day of `now`, else "2026-12-01 10:02".
fn when(t: Option<i64>, now: i64) -> String {
    let Some(t) = t else { return "never".into() };
    let (s, n) = (qr::time::format_rfc3339(t), qr::time::format_rfc3339(now));
    if s.get(..10) == n.get(..10) { s.get(11..19).unwrap_or(&s).to_owned() } else { s.get(..16).unwrap_or(&s).replace('T', " ") }
}

/// The top bar's line and the offline banner, from the latest probe and since when the database
/// has not answered. Pure.
#[must_use]
pub fn describe(p: &Probe, since: Option<&str>, now: i64) -> (String, Option<String>) {
    match p {
        Probe::SingleDevice => ("Single device".into(), None),
        Probe::Broken(e) => {
            ("Clinic device: configuration unusable".into(), Some(format!("This device's clinic configuration is unusable: {e}")))
        }
        Probe::Clinic { device, database: Ok(()), copies: (revoked, trusted, at), queued } => {
            let q = if *queued > 0 { format!(" · {queued} audit entries waiting to be sent") } else { String::new() };
            (
                format!(
                    "Clinic device {device} · clinic database: online · lists: {revoked} revoked, {trusted} trusted, refreshed {}{q}",
                    when(*at, now)
                ),
                None,
            )
        }
        Probe::Clinic { device, database: Err(e), copies: (revoked, trusted, at), queued } => (
            format!("Clinic device {device} · clinic database: OFFLINE · {queued} audit entries waiting to be sent"),
            Some(format!(
                "OFFLINE since {}: the clinic database does not answer. This device's revocation and trust lists are from {} \
                 ({revoked} revoked, {trusted} trusted). Check-in is refused; cached records can still be opened; new scans are \
                 refused. Tell IT. ({e})",
                since.unwrap_or("start"),
                when(*at, now)
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
    offline_since: Option<String>,
}

/// The same clock as the views (MEDCARD_NOW in tests), without reaching up into `context`.
fn now() -> i64 {
    reader::clock::now().unwrap_or_else(|_| reader::clock::system_now())
}

fn clock() -> String {
    when(Some(now()), now())
}

impl ModeWatch {
    /// A watcher of `data_dir`; the first probe starts at once.
    #[must_use]
    pub fn new(data_dir: &Path) -> Self {
        ModeWatch { data_dir: data_dir.to_owned(), running: None, next: Instant::now(), last: None, offline_since: None }
    }

    /// Starts a probe when one is due; takes a finished one.
    pub fn logic(&mut self, ctx: &egui::Context) {
        if let Some(rx) = &self.running {
            match rx.try_recv() {
                Ok(p) => {
                    match &p {
                        Probe::Clinic { database: Ok(()), .. } => self.offline_since = None,
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
                let _ = tx.send(probe(&dir, now()));
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
        self.last.as_ref().map(|p| describe(p, self.offline_since.as_deref(), now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_banner_says_what_still_works_and_since_when() {
        // 2026-12-03 10:02:00 UTC; the copy refreshed at 09:58:00 that day, or two days before.
        let now = 1_796_292_120;
        let p = Probe::Clinic {
            device: "bed-1 (bedside)".into(),
            database: Err("unreachable".into()),
            copies: (1, 2, Some(now - 240)),
            queued: 2,
        };
        let (line, banner) = describe(&p, Some("10:01:30"), now);
        assert!(line.contains("bed-1 (bedside)") && line.contains("OFFLINE") && line.contains("2 audit entries"), "{line}");
        let banner = banner.unwrap_or_default();
        assert!(banner.starts_with("OFFLINE since 10:01:30"), "{banner}");
        assert!(
            banner.contains("lists are from 09:58:00 (1 revoked, 2 trusted)") && banner.contains("cached records can still be opened"),
            "{banner}"
        );
        let p = Probe::Clinic {
            device: "bed-1 (bedside)".into(),
            database: Err("x".into()),
            copies: (0, 0, Some(now - 2 * 86_400)),
            queued: 0,
        };
        assert!(describe(&p, None, now).1.unwrap_or_default().contains("lists are from 2026-12-01 10:02"));
        let p = Probe::Clinic { device: "bed-1 (bedside)".into(), database: Err("x".into()), copies: (0, 0, None), queued: 0 };
        assert!(describe(&p, None, now).1.unwrap_or_default().contains("lists are from never"));
        let ok = Probe::Clinic { device: "kiosk-1 (kiosk)".into(), database: Ok(()), copies: (3, 1, Some(now)), queued: 0 };
        let (line, banner) = describe(&ok, None, now);
        assert!(line.contains("online") && line.contains("lists: 3 revoked, 1 trusted, refreshed 10:02:00"), "{line}");
        assert!(banner.is_none());
        assert_eq!(describe(&Probe::SingleDevice, None, now).0, "Single device");
    }
}
