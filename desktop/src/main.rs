//! `medcard-desktop`: the MedCard app window. See `--help` and the README.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use medcard_desktop::{AppContext, CardSource, MedcardApp, View, demo, style};

#[derive(Parser)]
#[command(
    name = "medcard-desktop",
    version,
    about = "MedCard desktop: reception kiosk, bedside scanner and clinic admin",
    after_help = "Examples:\n  medcard-desktop --demo                                  # everything, on a simulated card and sample records\n  \
    medcard-desktop --view kiosk --lock --fullscreen --reader 'Virtual PCD 00 00' --data /var/lib/medcard\n  \
    medcard-desktop --view bedside --data ~/ward\n  medcard-desktop --view admin --data /var/lib/medcard\n\n\
    The data directory is a clinic made with `medcard init` (default: $MEDCARD_HOME, else\n\
    $XDG_DATA_HOME/medcard, else ~/.local/share/medcard). Without --reader the kiosk uses the first\n\
    PC/SC reader. --demo makes a fresh clinic in a temporary directory (or in --data, which must be new)."
)]
struct Args {
    /// A fresh demo clinic with a simulated card (in process, no pcscd needed) and sample records.
    #[arg(long)]
    demo: bool,
    /// The clinic data directory.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// The PC/SC reader for the kiosk and admin (name as `medcard readers` prints it). With
    /// --demo: the demo card is issued on the blank card in this reader (through pcscd).
    #[arg(long, value_name = "READER")]
    reader: Option<String>,
    /// The view to start in.
    #[arg(long, value_enum, default_value = "kiosk")]
    view: View,
    /// Show only that view, without the tabs (a kiosk for patients).
    #[arg(long)]
    lock: bool,
    /// Start full screen.
    #[arg(long)]
    fullscreen: bool,
    /// Seconds without a touch before the kiosk ends a session.
    #[arg(long, value_name = "SECS", default_value_t = 90)]
    kiosk_idle: u64,
    /// Minutes a check-in QR code stays valid (1 to 1440).
    #[arg(long, value_name = "MIN", default_value_t = 10)]
    qr_minutes: i64,
    /// Seconds without activity before a staff session (bedside, admin) ends and the view
    /// forgets what it showed (at least 10).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    staff_idle: u64,
    /// A PC/SC reader for staff cards, offered at the staff sign-in (repeat for several).
    /// Default: the readers found on this computer.
    #[arg(long, value_name = "READER")]
    staff_reader: Vec<String>,
    /// With --demo: also issue the demo staff cards (an administrator, a clinician and a
    /// reception card, in-process, in their own staff card reader), so the bedside and admin
    /// views ask for a staff sign-in. With --tour: the staff tour.
    #[arg(long, requires = "demo")]
    demo_staff: bool,
    /// Seconds before the bedside hides a shown record.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    hide_after: u64,
    /// Set or change the clinic admin PIN that unlocks the admin view, then exit. On a terminal:
    /// the current PIN (when one is set), then the new one twice, without echo. From standard
    /// input: line 1 the current PIN (only when one is set), next line the new PIN. Audited
    /// (admin.pin_set); a wrong current PIN changes nothing.
    #[arg(long)]
    set_admin_pin: bool,
    /// The record store (default: <data>/records).
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// Where Save PNG (kiosk), Save as… (bedside) and Export certificate (admin) write, under
    /// names the app chooses; never inside the data directory; the app's files there are removed
    /// after 24 h, a saved record when it leaves the cache. Default: $MEDCARD_EXPORT_DIR, else
    /// $XDG_RUNTIME_DIR/medcard-exports, else ~/.cache/medcard/exports.
    #[arg(long, value_name = "DIR")]
    export_dir: Option<PathBuf>,
    /// With --demo: play the kiosk → bedside flow by itself, save a screenshot of each screen
    /// into DIR, print start-up and memory figures, and exit (non-zero if a step failed).
    #[arg(long, value_name = "DIR", requires = "demo")]
    tour: Option<PathBuf>,
}

fn main() -> ExitCode {
    let t0 = Instant::now();
    let args = Args::parse();
    match run(args, t0) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("medcard-desktop: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args, t0: Instant) -> Result<(), String> {
    if !(1..=1440).contains(&args.qr_minutes) {
        return Err(format!("--qr-minutes {}: expected 1 to 1440", args.qr_minutes));
    }
    if args.set_admin_pin {
        let dir = reader::keystore::data_dir(args.data.as_deref()).map_err(|e| e.to_string())?;
        return set_admin_pin(&dir);
    }
    let now = medcard_desktop::context::system_now();
    if args.demo_staff && args.reader.is_some() {
        return Err("--demo-staff issues the staff cards in process: leave out --reader".into());
    }
    let (data_dir, source, banner, _keep) = if args.demo {
        match &args.reader {
            None => {
                let d = demo::create(args.data.as_deref(), now).map_err(|e| e.to_string())?;
                let banner = format!(
                    "Demo clinic in {} — patient {} ({}), card PIN {}, admin PIN {}. Use \"Insert the demo card\" at the bottom of the kiosk.",
                    d.data_dir.display(),
                    demo::PATIENT_NAME,
                    demo::PATIENT_ID,
                    demo::PIN,
                    demo::ADMIN_PIN
                );
                (d.data_dir.clone(), CardSource::Sim(d.slot.clone()), Some(banner), Some(Keep::Demo(d)))
            }
            Some(r) => {
                let (dir, temp) = demo::create_on_reader(args.data.as_deref(), r, now).map_err(|e| e.to_string())?;
                let banner = format!(
                    "Demo clinic in {} — the card in {r:?} was issued to {} ({}), PIN {}, admin PIN {}. Take it out and put it back to start.",
                    dir.display(),
                    demo::PATIENT_NAME,
                    demo::PATIENT_ID,
                    demo::PIN,
                    demo::ADMIN_PIN
                );
                (dir, CardSource::Pcsc { reader: r.clone() }, Some(banner), temp.map(Keep::Dir))
            }
        }
    } else {
        let dir = reader::keystore::data_dir(args.data.as_deref()).map_err(|e| e.to_string())?;
        let reader = match args.reader.clone() {
            Some(r) => r,
            None => first_reader().unwrap_or_else(|| "(no reader found)".into()),
        };
        (dir, CardSource::Pcsc { reader }, None, None)
    };
    let mut env = AppContext::new(&data_dir, source);
    env.staff_readers = args.staff_reader.iter().map(|r| CardSource::Pcsc { reader: r.clone() }).collect();
    let mut banner = banner;
    if args.demo_staff {
        let staff = demo::create_staff(&data_dir, now).map_err(|e| e.to_string())?;
        env.staff_readers = vec![CardSource::Sim(staff.slot.clone())];
        let pins: Vec<String> = demo::STAFF.iter().map(|(id, name, role, pin)| format!("{name} ({role}, {id}) PIN {pin}")).collect();
        // The shared admin PIN opens nothing once the clinic has staff cards: not in the banner.
        let no_admin_pin = format!(", admin PIN {}", demo::ADMIN_PIN);
        banner = banner.map(|b| {
            format!(
                "{} Staff cards: {}; the clinician's card is in the staff reader's tray.",
                b.replace(&no_admin_pin, ""),
                pins.join(", ")
            )
        });
    }
    if let Some(s) = args.store {
        env.store_dir = Some(s);
    }
    env.export_dir = reader::export::resolve_dir(args.export_dir.as_deref()).unwrap_or_default();
    if !env.export_dir.as_os_str().is_empty() {
        // Made now (0700) and refused when it lies inside the data directory.
        env.export_dir = reader::export::prepare_dir(&env.data_dir, &env.export_dir)
            .map_err(|e| format!("the export folder (--export-dir, MEDCARD_EXPORT_DIR): {e}"))?;
    }
    env.purge_exports();
    env.settings.kiosk_idle = Duration::from_secs(args.kiosk_idle.max(5));
    env.settings.qr_valid_for = args.qr_minutes * 60;
    env.settings.record_hide = Duration::from_secs(args.hide_after.max(5));
    env.settings.staff_idle = Duration::from_secs(args.staff_idle.max(10));
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("MedCard")
            .with_inner_size([1100.0, 820.0])
            .with_min_inner_size([640.0, 480.0])
            .with_fullscreen(args.fullscreen),
        renderer: eframe::Renderer::Glow,
        ..Default::default()
    };
    let view = args.view;
    let lock = args.lock;
    let tour = match &args.tour {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            Some(if args.demo_staff { medcard_desktop::tour::Tour::staff(dir) } else { medcard_desktop::tour::Tour::standard(dir) })
        }
        None => None,
    };
    let outcome = tour.as_ref().map(|t| t.outcome.clone());
    eframe::run_native(
        "MedCard",
        options,
        Box::new(move |cc| {
            style::apply(&cc.egui_ctx);
            let ctx = cc.egui_ctx.clone();
            let mut app = MedcardApp::new(env, view, move || ctx.request_repaint());
            app.locked = lock;
            app.banner = banner;
            app.started_at(t0);
            let app: Box<dyn eframe::App> = match tour {
                Some(tour) => Box::new(medcard_desktop::tour::Toured { app, tour }),
                None => Box::new(app),
            };
            Ok(app)
        }),
    )
    .map_err(|e| format!("cannot open the window: {e} (is a display available? on a server run it under xvfb-run)"))?;
    match outcome {
        None => Ok(()),
        Some(o) => match o.lock().map(|g| g.clone()) {
            Ok(Some(Ok(()))) => Ok(()),
            Ok(Some(Err(e))) => Err(format!("tour failed: {e}")),
            _ => Err("tour did not finish (window closed early)".into()),
        },
    }
}

/// Keeps the demo's temporary directory alive until the window closes.
#[allow(dead_code)]
enum Keep {
    Demo(demo::Demo),
    Dir(tempfile::TempDir),
}

fn first_reader() -> Option<String> {
    reader::PcscContext::establish().ok()?.reader_names().ok()?.into_iter().next()
}

/// `--set-admin-pin`: when a PIN is set, the current one first; then the new admin PIN twice
/// without echo on a terminal, else (standard input not a terminal) line 1 the current PIN
/// (only when one is set) and the next line the new PIN. Stored as a slow salted hash (never
/// printed); audited ([`medcard_desktop::admin_pin::change`]).
fn set_admin_pin(dir: &std::path::Path) -> Result<(), String> {
    use medcard_desktop::admin_pin::{self, PinChange};
    use std::io::{BufRead, IsTerminal};
    use zeroize::Zeroizing;
    let is_set = admin_pin::is_set(dir);
    let read_line = |what: &str| -> Result<Zeroizing<String>, String> {
        let mut line = Zeroizing::new(String::with_capacity(256));
        std::io::stdin().lock().read_line(&mut line).map_err(|e| format!("cannot read the {what} from standard input: {e}"))?;
        Ok(Zeroizing::new(line.trim_end_matches(['\n', '\r']).to_owned()))
    };
    let terminal = std::io::stdin().is_terminal();
    let old = match (is_set, terminal) {
        (false, _) => None,
        (true, true) => {
            Some(Zeroizing::new(rpassword::prompt_password("Current admin PIN: ").map_err(|e| format!("cannot read the PIN: {e}"))?))
        }
        (true, false) => Some(read_line("current admin PIN (line 1)")?),
    };
    let pin = if terminal {
        let rules = format!("{} to {} characters", medcard_desktop::admin_pin::MIN_LEN, medcard_desktop::admin_pin::MAX_LEN);
        let first = Zeroizing::new(
            rpassword::prompt_password(format!("New admin PIN ({rules}): ")).map_err(|e| format!("cannot read the PIN: {e}"))?,
        );
        medcard_desktop::admin_pin::check_new(&first).map_err(|e| e.to_string())?;
        let again = Zeroizing::new(rpassword::prompt_password("The same PIN again: ").map_err(|e| format!("cannot read the PIN: {e}"))?);
        if *first != *again {
            return Err("the two PINs differ; nothing was changed".into());
        }
        first
    } else {
        read_line(if is_set { "new admin PIN (line 2)" } else { "new admin PIN" })?
    };
    let actor = format!("desktop:{}", reader::audit::os_user());
    let now = medcard_desktop::context::system_now();
    let done = admin_pin::change(dir, old.as_ref().map(|o| o.as_str()), &pin, &actor, now).map_err(|e| e.to_string())?;
    let what = match done {
        PinChange::First => "set",
        PinChange::Changed => "changed",
        PinChange::ReplacedDamaged => "set (the damaged PIN file was replaced)",
    };
    eprintln!("medcard-desktop: admin PIN {what} for the clinic in {}", dir.display());
    Ok(())
}
