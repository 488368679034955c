//! `medcard checkin`: the reception kiosk (docs/checkin-scan.md). Card + PIN + consent on the
//! card become one signed QR pointer, written as PNG and printed as text.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use reader::Piv;
use reader::category;
use reader::checkin;
use reader::issue::Counting;

use crate::cli::{self, CliError, DataArg, Output, ReaderArg, print_json};

#[derive(Args)]
#[command(after_help = "Examples:\n  medcard checkin --reader 'Virtual PCD 00 00' --out qr.png\n  \
    medcard checkin --reader R --categories labs,allergies --valid-for 10m --out qr.png --pin 482913 --json\n\n\
    The QR code shares the patient's records in the categories the consent token on the card covers\n\
    (narrowed by --categories; asking for a category outside the consent is refused).\n\
    Test hook: MEDCARD_NOW=<Unix seconds> replaces the clock (docs/checkin-scan.md).")]
pub struct CheckinArgs {
    #[command(flatten)]
    reader: ReaderArg,
    /// Comma-separated categories to share (default: everything the consent covers).
    #[arg(long, value_name = "LIST")]
    categories: Option<String>,
    /// How long the QR code is valid: 90s, 10m, 2h (a bare number is minutes; 1m to 24h).
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    valid_for: String,
    /// Where to write the QR code as PNG: a new file (mode 0600: it carries the records' key),
    /// never over an existing file, never inside the data directory (both checked before the card
    /// session). Default: the export folder ($MEDCARD_EXPORT_DIR, else
    /// $XDG_RUNTIME_DIR/medcard-exports, else ~/.cache/medcard/exports) as medcard-checkin-<QR id>.png.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The patient's PIN (asked for when absent).
    #[arg(long, value_name = "PIN")]
    pin: Option<String>,
    #[command(flatten)]
    data: DataArg,
    #[command(flatten)]
    format: Output,
}

/// Parses `90s`, `10m`, `2h` or a bare number of minutes into seconds.
pub fn parse_duration(s: &str) -> Result<i64, CliError> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (s.get(..i), 1),
        Some((i, 'm')) => (s.get(..i), 60),
        Some((i, 'h')) => (s.get(..i), 3600),
        _ => (Some(s), 60),
    };
    num.and_then(|n| n.parse::<i64>().ok())
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| CliError::Invalid(format!("--valid-for {s:?}: expected e.g. 90s, 10m or 2h")))
}

/// Writes the PNG to `out` (a new private file outside the data directory) or, without
/// `--out`, into the export folder `export_dir` under the QR id; returns where it went.
fn write_png(data_dir: &Path, out: Option<&Path>, export_dir: Option<&Path>, qr_id: &str, text: &str) -> Result<PathBuf, CliError> {
    let png = qr::render::render_png(text, 4)?;
    match (out, export_dir) {
        (Some(p), _) => {
            reader::export::write_new_export(data_dir, p, &png)?;
            Ok(p.to_path_buf())
        }
        (None, dir) => {
            let dir = match dir {
                Some(d) => d.to_path_buf(),
                None => reader::export::resolve_dir(None)?,
            };
            let id: String = qr_id.chars().filter(char::is_ascii_alphanumeric).take(8).collect();
            Ok(reader::export::save_new(data_dir, &dir, &format!("medcard-checkin-{id}"), "png", &png)?)
        }
    }
}

pub fn run(args: &CheckinArgs) -> Result<(), CliError> {
    let now = cli::now()?;
    let valid_for = parse_duration(&args.valid_for)?;
    let asked = args.categories.as_deref().map(category::parse_list).transpose()?;
    let ks = args.data.keystore()?;
    // A refused --out (or export folder) must not cost the patient a card session.
    let export_dir = match &args.out {
        Some(out) => {
            reader::export::check_new(ks.data_dir(), out)?;
            None
        }
        None => Some(reader::export::prepare_dir(ks.data_dir(), &reader::export::resolve_dir(None)?)?),
    };
    let (_, state) = args.data.state()?;
    let store = cli::record_store(&state, ks.data_dir())?;
    let pin = cli::pin(args.pin.as_deref(), "patient PIN")?;
    let started = Instant::now();
    let (card, apdus) = cli::with_card(&args.reader, |piv| {
        let mut counting = Piv::new(Counting::new(piv.transport_mut()));
        let r = checkin::card_step(&mut counting, &ks, &state, &pin, now);
        let n = counting.into_inner().count();
        r.map(|c| (c, n))
    })?;
    let card_ms = started.elapsed().as_secs_f64() * 1000.0;
    let issued = checkin::issue_qr(&ks, &state, &store, &card, asked.as_deref(), valid_for, now)?;
    let png_path = write_png(ks.data_dir(), args.out.as_deref(), export_dir.as_deref(), &issued.qr_id, &issued.text)?;
    let total_ms = started.elapsed().as_secs_f64() * 1000.0;
    // The patient's access report since their last visit, from the verified log. The code is
    // made: a report that cannot be built is said, not a failed check-in.
    let report =
        reader::access_report::verified_report(&state, &ks.issuer_public(), &issued.patient_id, reader::access_report::Since::LastVisit);
    if args.format.json {
        print_json(&serde_json::json!({
            "qr_id": issued.qr_id,
            "patient_id": issued.patient_id,
            "issued_at": issued.iat,
            "expires_at": issued.exp,
            "categories": issued.categories.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            "records": issued.records.iter().map(|(id, c)| serde_json::json!({"record_id": id, "category": c.as_str()})).collect::<Vec<_>>(),
            "index": issued.index,
            "locator": issued.locator,
            "text": issued.text,
            "png": png_path.display().to_string(),
            "apdus": apdus,
            "card_ms": card_ms,
            "elapsed_ms": total_ms,
            "access_report": match &report {
                Ok(r) => serde_json::json!(r),
                Err(e) => serde_json::json!({"error": e.to_string()}),
            },
        }));
    } else {
        println!("checked in: patient {}", issued.patient_id);
        println!("  QR id:      {}", issued.qr_id);
        println!("  valid to:   {}", qr::time::format_rfc3339(issued.exp));
        println!("  categories: {}", category::join(&issued.categories));
        println!("  records:    {}{}", issued.records.len(), if issued.index { " (via a record index)" } else { "" });
        println!("  PNG:        {}", png_path.display());
        println!("{}", issued.text);
        match &report {
            Ok(r) if r.is_empty() => println!("since your last visit: no one read your records"),
            Ok(r) => {
                println!("since your last visit:");
                for a in r {
                    println!("  {}", reader::access_report::describe(a));
                }
            }
            Err(e) => println!("since your last visit: the access report is not available ({e}); ask reception"),
        }
    }
    Ok(())
}
