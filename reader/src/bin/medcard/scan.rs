//! `medcard scan`: the bedside (docs/checkin-scan.md). A QR image or text → verified pointer →
//! one-time check → record(s) fetched, checked, cached → document on stdout (or --out).
//! Exit status: 0 verified, 3 invalid (refused), 4 issuer unknown, 1 any other error.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use reader::bedside::{Bedside, BedsideError, Reader};
use reader::db::CacheRow;
use reader::scan_flow;
use reader::staff::Action;

use crate::cli::{self, CliError, DataArg, Output, StaffArg, print_json};

#[derive(Args)]
#[command(after_help = "Examples:\n  medcard scan qr.png\n  medcard scan --text 'MC1:...' --json\n  \
    medcard scan qr.png --out record.json\n  medcard scan --cached <ID> --out record.json\n\n\
    --json prints the metadata instead of the document (use --out for the document).\n\
    Exit status: 0 verified, 3 refused (invalid), 4 issuer unknown (not in the trust list), 1 other errors.\n\
    Test hook: MEDCARD_NOW=<Unix seconds> replaces the clock (docs/checkin-scan.md).")]
pub struct ScanArgs {
    /// A PNG or JPEG holding the QR code.
    #[arg(value_name = "IMAGE", conflicts_with_all = ["text", "cached"])]
    image: Option<PathBuf>,
    /// The QR text (MC1:...) instead of an image.
    #[arg(long, value_name = "TEXT", conflicts_with = "cached")]
    text: Option<String>,
    /// Open a cached record by its cache id (`medcard cache list`), only while still valid.
    #[arg(long, value_name = "ID")]
    cached: Option<String>,
    /// Write the document here instead of stdout: a new file (mode 0600); with several records,
    /// a new directory (0700) with one file per record, named by cache id. Never over an
    /// existing file or directory, never inside the data directory (checked before the scan).
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    #[command(flatten)]
    format: Output,
    /// The record store (default: <data>/records).
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// Accept a code already used here (reusable until it expires) instead of one-time use.
    #[arg(long)]
    reusable: bool,
    #[command(flatten)]
    data: DataArg,
}

fn open(args: &ScanArgs) -> Result<Bedside, CliError> {
    Ok(Bedside::open(args.data.data.as_deref(), args.store.as_deref())?)
}

fn output(args: &ScanArgs, rows: &[CacheRow]) -> Result<(), CliError> {
    let (out, json) = (args.out.as_deref(), args.format.json);
    let data_dir = args.data.dir()?;
    let write = |p: &Path, bytes: &[u8]| -> Result<(), CliError> {
        reader::export::write_new_export(&data_dir, p, bytes)?;
        Ok(())
    };
    match (out, rows) {
        (Some(p), [one]) => write(p, &one.document)?,
        (Some(p), many) => {
            let dir = reader::export::create_new_dir(&data_dir, p)?;
            for r in many {
                write(&dir.join(&r.qr_id), &r.document)?;
            }
        }
        (None, _) if json => {}
        (None, rows) => {
            let mut so = std::io::stdout().lock();
            for r in rows {
                if rows.len() > 1 {
                    eprintln!("== record {} ({}, {} bytes) ==", r.qr_id, r.media_type, r.document.len());
                }
                so.write_all(&r.document).map_err(CliError::Stdout)?;
            }
            so.flush().map_err(CliError::Stdout)?;
        }
    }
    Ok(())
}

fn row_json(r: &CacheRow) -> serde_json::Value {
    use sha2::Digest;
    serde_json::json!({
        "cache_id": r.qr_id,
        "locator": r.locator,
        "media_type": r.media_type,
        "bytes": r.document.len(),
        "sha256": hex::encode(sha2::Sha256::digest(&r.document)),
        "expires_at": r.expires_at,
    })
}

fn read_text(args: &ScanArgs) -> Result<String, CliError> {
    if let Some(t) = &args.text {
        return Ok(t.clone());
    }
    let Some(path) = &args.image else { return Err(CliError::Invalid("give a QR image, --text TEXT or --cached ID".into())) };
    let bytes = cli::read_file(path)?;
    scan_flow::qr_text_from_image(&bytes).map_err(|source| CliError::Image { path: path.clone(), source })
}

fn cached(b: &mut Bedside, id: &str, args: &ScanArgs, now: i64, who: Reader<'_>) -> Result<(), CliError> {
    match b.open_cached_as(id, now, who)? {
        Some(row) => {
            if args.format.json {
                print_json(&row_json(&row));
            }
            output(args, std::slice::from_ref(&row))
        }
        None => Err(CliError::NotCached { id: id.to_owned() }),
    }
}

fn scan(b: &mut Bedside, args: &ScanArgs, now: i64, who: Reader<'_>) -> Result<(), CliError> {
    let text = read_text(args)?;
    match b.scan_as(&text, now, args.reusable, who) {
        Ok(s) => {
            let c = s.verified.claims();
            let qr_id = hex::encode(&c.cti);
            eprintln!(
                "VERIFIED: issued by {} (kid {}) for patient {}, {} record(s), valid until {}",
                c.iss,
                hex::encode(&s.verified.by().kid),
                c.pointer.patient_id,
                s.rows.len(),
                qr::time::format_rfc3339(c.exp)
            );
            if args.format.json {
                print_json(&serde_json::json!({
                    "verdict": "verified",
                    "issuer": c.iss,
                    "kid": hex::encode(&s.verified.by().kid),
                    "qr_id": qr_id,
                    "patient_id": c.pointer.patient_id,
                    "categories": c.pointer.categories,
                    "expires_at": c.exp,
                    "index": s.index,
                    "records": s.rows.iter().map(row_json).collect::<Vec<_>>(),
                }));
            }
            output(args, &s.rows)
        }
        // Already audited; `main` prints the verdict and what to do, and exits 3 or 4.
        Err(BedsideError::Refused(e)) => Err(CliError::CodeRefused(e)),
        Err(e) => Err(e.into()),
    }
}

pub fn run(args: &ScanArgs, staff: &StaffArg) -> Result<(), CliError> {
    let now = cli::now()?;
    // A refused --out must not spend the one-time code.
    if let Some(out) = &args.out {
        reader::export::check_new(&args.data.dir()?, out)?;
    }
    let mut b = open(args)?;
    let state = b.state.clone();
    // Without --staff-reader the device user reads (refused by the bedside, audited, once the
    // clinic has staff cards); with it, the clinician signs in and their card signs each entry.
    if staff.staff_reader.is_none() {
        let actor = cli::actor();
        return match &args.cached {
            Some(id) => cached(&mut b, id, args, now, Reader::Device(&actor)),
            None => scan(&mut b, args, now, Reader::Device(&actor)),
        };
    }
    cli::as_staff(staff, &args.data, &state, Action::ScanAndRead, "read records", |signer| {
        let Some(signer) = signer else { return Err(CliError::StaffRequired { what: "read records" }) };
        match &args.cached {
            Some(id) => cached(&mut b, id, args, now, Reader::Staff(signer)),
            None => scan(&mut b, args, now, Reader::Staff(signer)),
        }
    })
}
