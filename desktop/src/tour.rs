//! `--tour DIR` (demo mode): plays the kiosk → bedside flow in the real window by itself, saves
//! a screenshot of each screen into DIR (what the window really drew, read back from OpenGL),
//! prints the start-up time and memory figures, and closes the window. `scripts/screenshots.sh`
//! runs it under Xvfb to refresh docs/screenshots/; CI runs it to prove the window works on a
//! machine without a display.
//!
//! [`Toured`] wraps the app and plays the tour on it from outside, so the app knows nothing of
//! the tour (it owned one before, and the two modules needed each other).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use egui::Ui;

use crate::app::{MedcardApp, View};

/// The app with a tour playing on it (`--tour`): each frame the tour acts first, then the app
/// runs as it would without it.
pub struct Toured {
    /// The app the tour drives.
    pub app: MedcardApp,
    /// The tour.
    pub tour: Tour,
}

impl eframe::App for Toured {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.tour.drive(&mut self.app, ctx);
        self.app.logic(ctx);
    }

    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.app.ui(ui);
    }
}

/// One thing the tour does.
#[derive(Debug, Clone)]
pub enum Act {
    /// Put the demo card into the reader.
    InsertCard,
    /// Press PIN pad keys.
    Digits(&'static str),
    /// Press OK.
    SubmitPin,
    /// Wait until the kiosk is at this step.
    WaitKiosk(&'static str),
    /// Press Check in.
    CheckIn,
    /// Put the shown QR into a 12-megapixel JPEG (like a phone photo of the kiosk screen), so
    /// the bedside scan that follows measures memory on a large image.
    SaveQr,
    /// Switch view.
    Show(View),
    /// Open the saved photo of the QR in the bedside view.
    OpenQrAtBedside,
    /// Wait until the bedside shows a result.
    WaitBedside,
    /// Unlock the admin view with this admin PIN.
    UnlockAdmin(&'static str),
    /// Show this admin sub-tab.
    AdminTab(crate::admin::Tab),
    /// Press Verify log.
    VerifyLog,
    /// Wait until the admin view is unlocked and its work done.
    WaitAdmin,
    /// Wait until the kiosk's access report is on screen.
    WaitReport,
    /// Take the demo card out of the reader.
    RemoveCard,
    /// Wait until the bedside knows the clinic requires staff sign-ins.
    WaitStaffRequired,
    /// Put the demo staff card into the staff card reader.
    InsertStaffCard,
    /// Type the staff card's PIN at the bedside.
    StaffPin(&'static str),
    /// Press Sign in at the bedside.
    StaffSignIn,
    /// Wait until the bedside is signed in.
    WaitSignedIn,
    /// Open the emergency data set of a patient for a reason, at the bedside.
    Emergency(&'static str, &'static str),
    /// Wait until emergency records are on screen.
    WaitEmergency,
    /// Save a screenshot under this name.
    Shot(&'static str),
    /// Close the window.
    Exit,
}

/// The tour's progress.
pub struct Tour {
    dir: PathBuf,
    acts: VecDeque<Act>,
    settle: u32,
    waiting_shot: Option<String>,
    shot: std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<egui::ColorImage>>>>,
    waited: u32,
    qr_file: PathBuf,
    peak_rss_kb: u64,
    /// Files written.
    pub written: Vec<PathBuf>,
    /// A failure (the tour stops and says so).
    pub failed: Option<String>,
    /// Set when the tour ends: Ok, or what failed (read by main after the window closed).
    pub outcome: std::sync::Arc<std::sync::Mutex<Option<Result<(), String>>>>,
}

impl Tour {
    /// The standard tour, saving into `dir`.
    #[must_use]
    pub fn standard(dir: &Path) -> Self {
        use Act::*;
        let acts = vec![
            Shot("kiosk-insert"),
            InsertCard,
            WaitKiosk("pin"),
            Digits("1234"),
            Shot("kiosk-pin"),
            Digits("56"),
            SubmitPin,
            WaitKiosk("welcome"),
            Shot("kiosk-consent"),
            CheckIn,
            WaitKiosk("qr"),
            WaitReport,
            Shot("kiosk-qr"),
            SaveQr,
            Show(View::Bedside),
            OpenQrAtBedside,
            WaitBedside,
            Shot("bedside-verified"),
            Show(View::Admin),
            Shot("admin"),
            UnlockAdmin(crate::demo::ADMIN_PIN),
            WaitAdmin,
            Shot("admin-cards"),
            AdminTab(crate::admin::Tab::Audit),
            VerifyLog,
            WaitAdmin,
            Shot("admin-audit"),
            Exit,
        ];
        Self::of(dir, acts)
    }

    /// The staff tour (`--demo --demo-staff`), saving into `dir`: a check-in; the bedside's staff
    /// sign-in; the clinician's emergency access; a scan of the code; the next check-in with the
    /// patient's access report.
    #[must_use]
    pub fn staff(dir: &Path) -> Self {
        use Act::*;
        let clinician_pin = crate::demo::StaffCards::pin(reader::staff::Role::Clinician);
        let check_in = [InsertCard, WaitKiosk("pin"), Digits(crate::demo::PIN), SubmitPin, WaitKiosk("welcome"), CheckIn, WaitKiosk("qr")];
        let mut acts: Vec<Act> = check_in.to_vec();
        acts.extend([
            SaveQr,
            RemoveCard,
            WaitKiosk("insert"),
            Show(View::Bedside),
            WaitStaffRequired,
            InsertStaffCard,
            StaffPin(clinician_pin),
            Shot("bedside-staff-sign-in"),
            StaffSignIn,
            WaitSignedIn,
            Emergency(crate::demo::PATIENT_ID, "unconscious on arrival, no code"),
            WaitEmergency,
            Shot("bedside-emergency"),
            OpenQrAtBedside,
            WaitBedside,
            Show(View::Kiosk),
        ]);
        acts.extend(check_in);
        acts.extend([WaitReport, Shot("kiosk-report"), Exit]);
        Self::of(dir, acts)
    }

    fn of(dir: &Path, acts: Vec<Act>) -> Self {
        Tour {
            dir: dir.to_owned(),
            acts: acts.into(),
            settle: 0,
            waiting_shot: None,
            shot: std::sync::Arc::default(),
            waited: 0,
            qr_file: dir.join("kiosk-qr-photo.jpg"),
            peak_rss_kb: 0,
            written: Vec::new(),
            failed: None,
            outcome: std::sync::Arc::default(),
        }
    }

    /// Advances the tour by at most one act; call at the start of every frame.
    pub fn drive(&mut self, app: &mut MedcardApp, ctx: &egui::Context) {
        let ctx = ctx.clone();
        ctx.request_repaint();
        self.peak_rss_kb = self.peak_rss_kb.max(rss_kb("VmRSS:"));
        // A requested screenshot arrives as an event a frame or two later.
        if let Some(name) = self.waiting_shot.clone() {
            let shot = self.shot.lock().ok().and_then(|mut g| g.take());
            if let Some(image) = shot {
                let path = self.dir.join(format!("{name}.png"));
                match save_png(&path, &image) {
                    Ok(()) => {
                        eprintln!("tour: saved {} ({}x{})", path.display(), image.size[0], image.size[1]);
                        self.written.push(path);
                    }
                    Err(e) => self.fail(&ctx, format!("saving {}: {e}", path.display())),
                }
                self.waiting_shot = None;
            }
            return;
        }
        if self.settle > 0 {
            self.settle -= 1;
            return;
        }
        let Some(act) = self.acts.front().cloned() else { return };
        let done = match act {
            Act::InsertCard => {
                if let crate::card_source::CardSource::Sim(slot) = &app.env.source {
                    slot.insert();
                    true
                } else {
                    self.fail(&ctx, "the tour needs --demo (the in-process card)".into());
                    return;
                }
            }
            Act::WaitReport => {
                let ready = app.kiosk.shown_qr().is_some_and(|q| q.report.is_some());
                self.wait(&ctx, ready, "the kiosk's access report")
            }
            Act::RemoveCard => {
                if let crate::card_source::CardSource::Sim(slot) = &app.env.source {
                    slot.remove();
                }
                true
            }
            Act::WaitStaffRequired => self.wait(&ctx, app.bedside.staff.required() == Some(true), "the bedside's staff sign-in"),
            Act::InsertStaffCard => match app.env.staff_readers.first() {
                Some(crate::card_source::CardSource::Sim(slot)) => {
                    slot.insert();
                    true
                }
                _ => {
                    self.fail(&ctx, "the staff tour needs --demo --demo-staff (the in-process staff card)".into());
                    return;
                }
            },
            Act::StaffPin(pin) => {
                app.bedside.staff.type_pin(pin);
                true
            }
            Act::StaffSignIn => {
                app.bedside.staff.submit(&ctx, &app.env);
                true
            }
            Act::WaitSignedIn => {
                if let Some(e) = app.bedside.staff.error() {
                    self.fail(&ctx, format!("the staff sign-in failed: {e}"));
                    return;
                }
                self.wait(&ctx, app.bedside.staff.session().is_some(), "the staff sign-in")
            }
            Act::Emergency(patient, reason) => match app.bedside.staff.signer() {
                Some(signer) => {
                    app.bedside.emergency.start(&ctx, &app.env, signer, patient, reason);
                    true
                }
                None => {
                    self.fail(&ctx, "not signed in for emergency access".into());
                    return;
                }
            },
            Act::WaitEmergency => {
                self.wait(&ctx, app.bedside.emergency.records_shown() > 0 && !app.bedside.emergency.busy(), "the emergency records")
            }
            Act::Digits(d) => {
                d.chars().for_each(|c| app.kiosk.push_digit(c));
                true
            }
            Act::SubmitPin => {
                app.kiosk.submit_pin(&ctx, &app.env);
                true
            }
            Act::WaitKiosk(step) => self.wait(&ctx, app.kiosk.step_name() == step, &format!("the kiosk's {step} screen")),
            Act::CheckIn => {
                app.kiosk.check_in(&ctx, &app.env);
                true
            }
            Act::SaveQr => match app.kiosk.shown_qr() {
                Some(q) => match photo_of(q.png.as_slice()).and_then(|jpg| std::fs::write(&self.qr_file, jpg).map_err(|e| e.to_string())) {
                    Ok(()) => true,
                    Err(e) => {
                        self.fail(&ctx, format!("writing {}: {e}", self.qr_file.display()));
                        return;
                    }
                },
                None => {
                    self.fail(&ctx, "no QR on screen".into());
                    return;
                }
            },
            Act::Show(v) => {
                app.view = v;
                true
            }
            Act::OpenQrAtBedside => {
                eprintln!("tour: RSS before the bedside scan {:.1} MB", rss_kb("VmRSS:") as f64 / 1024.0);
                app.bedside.open_file(self.qr_file.clone(), &ctx, &app.env);
                true
            }
            Act::WaitBedside => {
                let done = self.wait(&ctx, app.bedside.has_result(), "the bedside result");
                if done {
                    eprintln!(
                        "tour: bedside scan of a {}x{} photo done; RSS now {:.1} MB, peak so far (VmHWM) {:.1} MB",
                        PHOTO.0,
                        PHOTO.1,
                        rss_kb("VmRSS:") as f64 / 1024.0,
                        rss_kb("VmHWM:") as f64 / 1024.0
                    );
                }
                done
            }
            Act::UnlockAdmin(pin) => {
                app.admin.submit_pin(&ctx, &app.env, zeroize::Zeroizing::new(pin.to_owned()));
                true
            }
            Act::AdminTab(t) => {
                app.admin.show_tab(t);
                true
            }
            Act::VerifyLog => {
                app.admin.audit.verify(&ctx, &app.env);
                true
            }
            Act::WaitAdmin => self.wait(&ctx, app.admin.is_unlocked() && !app.admin.busy(), "the admin view"),
            Act::Shot(name) => {
                let slot = self.shot.clone();
                let c = ctx.clone();
                ctx.request_screenshot(move |image| {
                    if let Ok(mut g) = slot.lock() {
                        *g = Some(image);
                    }
                    c.request_repaint();
                });
                self.waiting_shot = Some(name.to_owned());
                true
            }
            Act::Exit => {
                let _ = std::fs::remove_file(&self.qr_file);
                eprintln!(
                    "tour: done; peak RSS during the tour {:.1} MB (VmHWM {:.1} MB)",
                    self.peak_rss_kb as f64 / 1024.0,
                    rss_kb("VmHWM:") as f64 / 1024.0
                );
                self.finish(Ok(()));
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                true
            }
        };
        if done {
            self.acts.pop_front();
            self.waited = 0;
            // Let the screen settle (layout, textures) before the next act.
            self.settle = 6;
        }
    }

    fn wait(&mut self, ctx: &egui::Context, ready: bool, what: &str) -> bool {
        if ready {
            return true;
        }
        self.waited += 1;
        std::thread::sleep(std::time::Duration::from_millis(10));
        if self.waited > 3000 {
            self.fail(ctx, format!("gave up waiting for {what}"));
        }
        false
    }

    fn fail(&mut self, ctx: &egui::Context, msg: String) {
        eprintln!("tour: FAILED: {msg}");
        self.finish(Err(msg.clone()));
        self.failed = Some(msg);
        self.acts.clear();
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
    }

    fn finish(&self, r: Result<(), String>) {
        if let Ok(mut g) = self.outcome.lock() {
            *g = Some(r);
        }
    }

    /// Whether the tour finished every act without failing.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.failed.is_none() && self.acts.is_empty()
    }
}

/// Width and height of the tour's photo of the QR code.
const PHOTO: (u32, u32) = (4000, 3000);

/// The QR code PNG `png` enlarged 3x onto a 4000×3000 grey gradient, as JPEG.
fn photo_of(png: &[u8]) -> Result<Vec<u8>, String> {
    let code = image::load_from_memory(png).map_err(|e| e.to_string())?.to_luma8();
    let code = image::imageops::resize(&code, code.width() * 3, code.height() * 3, image::imageops::FilterType::Nearest);
    let (w, h) = PHOTO;
    #[allow(clippy::cast_possible_truncation)]
    let mut photo = image::GrayImage::from_fn(w, h, |x, y| image::Luma([(150 + (x + y) * 60 / (w + h)) as u8]));
    let (x, y) = (i64::from(w.saturating_sub(code.width()) / 2), i64::from(h.saturating_sub(code.height()) / 2));
    image::imageops::overlay(&mut photo, &code, x, y);
    let mut jpg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, 90).encode_image(&photo).map_err(|e| e.to_string())?;
    Ok(jpg)
}

fn save_png(path: &Path, image: &egui::ColorImage) -> Result<(), String> {
    let [w, h] = image.size;
    let rgba: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_array()).collect();
    let img = image::RgbaImage::from_raw(u32::try_from(w).map_err(|e| e.to_string())?, u32::try_from(h).map_err(|e| e.to_string())?, rgba)
        .ok_or("screenshot size does not match its pixels")?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).map_err(|e| e.to_string())?;
    reader::fsutil::write_atomic(path, &png).map_err(|e| e.to_string())
}

/// A memory figure of this process from /proc/self/status, in kB (0 when unavailable).
#[must_use]
pub fn rss_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}
