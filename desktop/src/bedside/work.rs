//! The bedside's work, run on a worker thread ([`crate::jobs::Job`]): read the image, find the
//! one QR code in it, hand the text to the library's audited scan
//! ([`reader::bedside::Bedside::scan_text`]), and prepare what the view draws (rendered
//! documents, decoded images). Every check is the library's; this module only turns results into
//! screens, and every failure into a calm message that says what to do.

use std::io::Read;
use std::path::{Path, PathBuf};

use reader::bedside::{Bedside, BedsideError, Reader};
use reader::db::{CacheRow, ClinicDb};
use reader::records::fetch::FetchError;
use reader::scan_flow::{ImageError, ScanError, Verdict};
use zeroize::Zeroizing;

use super::checks::{self, CheckLine};
use crate::context::AppContext;
use crate::document::{self, BinaryKind, Rendered};
use crate::held_card::CardSigner;

/// The largest image file read (bytes); larger files are refused before reading them whole.
pub const MAX_IMAGE_FILE: u64 = 25 * 1024 * 1024;
/// Inline pictures of image records are scaled down to at most this many pixels per side.
pub const MAX_PICTURE_SIDE: u32 = 1024;

/// What to scan.
pub enum Input {
    /// An image file on disk.
    File(PathBuf),
    /// A file dropped on the window (path, or bytes when the system gave no path).
    Dropped(egui::DroppedFileHandle),
    /// QR text (pasted, or read by the camera).
    Text(Zeroizing<String>),
}

impl Input {
    /// Where it came from, for the result's heading ("qr.png", "pasted text").
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Input::File(p) => p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned()),
            Input::Dropped(f) => {
                let p = f.path();
                p.file_name().map_or_else(|| "dropped file".to_owned(), |n| n.to_string_lossy().into_owned())
            }
            Input::Text(_) => "pasted text".to_owned(),
        }
    }
}

/// One record ready to draw.
pub struct ShownRecord {
    /// The cache id (to open it again from the Cached list).
    pub cache_id: String,
    /// Its category as this clinic catalogued it, when this device knows it.
    pub category: Option<String>,
    /// Declared media type.
    pub media_type: String,
    /// The document (dropped when the record hides).
    pub bytes: Zeroizing<Vec<u8>>,
    /// What the view draws.
    pub rendered: Rendered,
    /// A picture of an image record, decoded and scaled down (turned into a texture by the view).
    pub picture: Option<egui::ColorImage>,
    /// Why an image record has no picture.
    pub picture_note: Option<String>,
}

/// A verified scan or an opened cached record, ready to draw.
pub struct Shown {
    /// Issuer label (clinic id), or the kid in hex for a cached record.
    pub issuer: String,
    /// Patient id.
    pub patient_id: String,
    /// Categories the code covers.
    pub categories: Vec<String>,
    /// The code's expiry (Unix seconds): the cache keeps the record until then.
    pub valid_until: i64,
    /// The records, in the code's order.
    pub records: Vec<ShownRecord>,
    /// The panel (all passed for a fresh scan; empty for a cached record).
    pub checks: Vec<CheckLine>,
    /// Opened from this device's cache (verified at this time), not from a fresh scan.
    pub cached_at: Option<i64>,
}

/// What a piece of bedside work ended with.
pub enum Outcome {
    /// Verified: show it.
    Shown(Box<Shown>),
    /// The library refused the code (and audited the refusal).
    Refused {
        /// Issuer unknown or invalid.
        verdict: Verdict,
        /// The library's message.
        reason: String,
        /// What to do ([`reader::scan_flow::ScanError::advice`]).
        advice: String,
        /// The panel.
        checks: Vec<CheckLine>,
    },
    /// The device failed part-way (its database, e.g. a full disk while caching): the code was
    /// not refused, but nothing may be shown.
    DeviceFailed {
        /// The library's message.
        reason: String,
        /// The panel (the checks the library had passed, the rest not checked).
        checks: Vec<CheckLine>,
    },
    /// Nothing to verify, or the device could not do it: a calm message.
    Problem {
        /// One line.
        title: String,
        /// What happened and what to do.
        message: String,
    },
}

/// The title of the problem shown when the clinic requires a staff sign-in and there was none.
pub const STAFF_REQUIRED: &str = "Staff sign-in needed";

fn problem(title: &str, message: impl Into<String>) -> Outcome {
    Outcome::Problem { title: title.to_owned(), message: message.into() }
}

/// Reads an image file, capped at [`MAX_IMAGE_FILE`].
fn read_image_file(path: &Path) -> Result<Vec<u8>, Outcome> {
    let cant = |e: std::io::Error| {
        problem("Cannot open the file", format!("{} could not be read ({e}). Check the path, or choose the file again.", path.display()))
    };
    let f = std::fs::File::open(path).map_err(cant)?;
    let meta = f.metadata().map_err(cant)?;
    if !meta.is_file() {
        return Err(problem("Not a file", format!("{} is a folder, not an image file. Choose a PNG or JPEG file.", path.display())));
    }
    read_capped(f, meta.len()).map_err(|e| match e {
        Capped::TooLarge => too_large(),
        Capped::Io(e) => cant(e),
    })
}

enum Capped {
    TooLarge,
    Io(std::io::Error),
}

fn read_capped(r: impl Read, hint: u64) -> Result<Vec<u8>, Capped> {
    if hint > MAX_IMAGE_FILE {
        return Err(Capped::TooLarge);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    r.take(MAX_IMAGE_FILE + 1).read_to_end(&mut bytes).map_err(Capped::Io)?;
    if bytes.len() as u64 > MAX_IMAGE_FILE {
        return Err(Capped::TooLarge);
    }
    Ok(bytes)
}

fn too_large() -> Outcome {
    problem(
        "The file is too large",
        format!("Image files up to {} MB are read. Take a smaller photo or screenshot of the QR code.", MAX_IMAGE_FILE / (1024 * 1024)),
    )
}

/// The QR text in image bytes, or a calm message.
fn text_from_image(bytes: &[u8]) -> Result<Zeroizing<String>, Outcome> {
    reader::scan_flow::qr_text_from_image(bytes).map(Zeroizing::new).map_err(|e| match e {
        ImageError::NoCode => problem(
            "No QR code found",
            "No QR code could be read in this image. Use a sharper, well-lit picture that shows the whole code, or paste the code's text.",
        ),
        ImageError::Several { count } => problem(
            "Several QR codes",
            format!("The image holds {count} QR codes. Use a picture that shows only the patient's check-in code."),
        ),
        other => problem(
            "Not an image MedCard can read",
            format!("This file could not be read as a PNG or JPEG image ({other}). Choose the check-in code's PNG or a photo of it."),
        ),
    })
}

/// The QR text of `input`, or a calm message.
fn text_of(input: Input) -> Result<Zeroizing<String>, Outcome> {
    match input {
        Input::Text(t) => {
            if t.trim().is_empty() {
                return Err(problem("Nothing to verify", "Paste the text of the QR code (it starts with MC1:) first."));
            }
            Ok(t)
        }
        Input::File(p) => text_from_image(&read_image_file(&p)?),
        Input::Dropped(f) => {
            let p = f.path();
            let bytes = if p.as_os_str().is_empty() {
                let b =
                    f.bytes().map_err(|e| problem("Cannot read the dropped file", format!("{e}. Try opening it by its path instead.")))?;
                if b.len() as u64 > MAX_IMAGE_FILE {
                    return Err(too_large());
                }
                b
            } else {
                read_image_file(p)?
            };
            text_from_image(&bytes)
        }
    }
}

fn open(env: &AppContext) -> Result<Bedside, Outcome> {
    Bedside::open(Some(&env.data_dir), env.store_dir.as_deref()).map_err(|e| device_problem(env, &e))
}

/// The message when the disk holding the data directory is full (whatever failed on it).
fn disk_full(env: &AppContext) -> Outcome {
    problem(
        "Nothing shown: this device's disk is full",
        format!(
            "The disk holding {} has no space left, so the scan could not be logged and nothing is shown. Free disk space or report it to IT, then scan again (if the code was used up, the patient checks in again).",
            env.data_dir.display()
        ),
    )
}

fn device_problem(env: &AppContext, e: &BedsideError) -> Outcome {
    if !matches!(e, BedsideError::Refused(_)) && env.disk_full() {
        return disk_full(env);
    }
    match e {
        BedsideError::Audit(_) => problem(
            "Nothing shown: the audit log could not be written",
            format!("{e}. Records are only shown when the access is logged. Free disk space or report it to IT, then scan again."),
        ),
        BedsideError::Refused(_) => problem("Refused", e.to_string()),
        BedsideError::StaffSessionRequired => problem(
            STAFF_REQUIRED,
            "This clinic requires a clinician's staff card to read records: insert your staff card, enter its PIN and press Sign in above, then scan again.",
        ),
        BedsideError::NotPermitted(_) => problem("Not permitted", format!("{e}. Nothing was read; the refusal is in the audit log.")),
        BedsideError::Signing(_) => problem("Nothing shown: the staff card could not sign the access", e.to_string()),
        _ => problem(
            "This device cannot verify codes right now",
            format!("{e}. Check that the app was started on the clinic's data directory (or with --demo), or report it to IT."),
        ),
    }
}

/// Scans `input` with the library's audited bedside scan (one-time use), as the signed-in member
/// of staff behind `signer` (their card signs every entry), else as the device (refused by the
/// library once the clinic has staff cards). Runs on a worker.
#[must_use]
pub fn scan(env: &AppContext, input: Input, signer: Option<CardSigner>) -> Outcome {
    let text = match text_of(input) {
        Ok(t) => t,
        Err(o) => return o,
    };
    let mut b = match open(env) {
        Ok(b) => b,
        Err(o) => return o,
    };
    let now = env.now();
    let scanned = match signer {
        Some(mut s) => b.scan_as(&text, now, false, Reader::Staff(&mut s)),
        None => b.scan_text(&text, now, false, &env.actor),
    };
    match scanned {
        Ok(s) => {
            drop(text);
            let c = s.verified.claims();
            let records = s.rows.into_iter().map(|r| shown_record(&b.db, r)).collect();
            Outcome::Shown(Box::new(Shown {
                issuer: c.iss.clone(),
                patient_id: c.pointer.patient_id.clone(),
                categories: c.pointer.categories.clone(),
                valid_until: c.exp,
                records,
                checks: checks::all_passed(),
                cached_at: None,
            }))
        }
        Err(BedsideError::Refused(ScanError::Db(_) | ScanError::Fetch(FetchError::Db(_)))) if env.disk_full() => disk_full(env),
        Err(BedsideError::Refused(e @ (ScanError::Db(_) | ScanError::Fetch(FetchError::Db(_))))) => {
            Outcome::DeviceFailed { reason: e.to_string(), checks: checks::from_error(&e) }
        }
        Err(BedsideError::Refused(e)) => {
            Outcome::Refused { verdict: e.verdict(), reason: e.to_string(), advice: e.advice().to_owned(), checks: checks::from_error(&e) }
        }
        Err(e) => device_problem(env, &e),
    }
}

/// Opens cached record `id` with the library's audited cache read (only while still valid), as
/// [`scan`] reads: by the member of staff behind `signer`, else the device.
#[must_use]
pub fn open_cached(env: &AppContext, id: &str, signer: Option<CardSigner>) -> Outcome {
    let mut b = match open(env) {
        Ok(b) => b,
        Err(o) => return o,
    };
    let opened = match signer {
        Some(mut s) => b.open_cached_as(id, env.now(), Reader::Staff(&mut s)),
        None => b.open_cached(id, env.now(), &env.actor),
    };
    match opened {
        Ok(Some(row)) => {
            let (issuer, patient_id, valid_until, verified_at) =
                (hex::encode(&row.issuer_kid), row.patient_id.clone(), row.expires_at, row.verified_at);
            let categories = row.categories.iter().map(|c| c.as_str().to_owned()).collect();
            let record = shown_record(&b.db, row);
            Outcome::Shown(Box::new(Shown {
                issuer,
                patient_id,
                categories,
                valid_until,
                records: vec![record],
                checks: Vec::new(),
                cached_at: Some(verified_at),
            }))
        }
        Ok(None) => problem(
            "No longer available",
            "This cached record has expired, its consent was withdrawn, or it was never cached here, so it was removed. Scan a fresh check-in code.",
        ),
        Err(e) => device_problem(env, &e),
    }
}

/// One entry of the Cached list (no document: it is read again, audited, when opened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedItem {
    /// Cache id.
    pub id: String,
    /// Patient id.
    pub patient_id: String,
    /// Category, when this device knows it.
    pub category: Option<String>,
    /// Media type.
    pub media_type: String,
    /// Document size in bytes.
    pub size: usize,
    /// When it leaves the cache (Unix seconds).
    pub expires_at: i64,
}

/// The records cached on this device that may still be shown: the cache is purged first
/// (expired codes, withdrawn consent); returns them and how many were removed.
///
/// # Errors
/// A message that says what to do.
pub fn list_cached(env: &AppContext) -> Result<(Vec<CachedItem>, usize), String> {
    let full = |m: String| {
        if env.disk_full() {
            format!("The cache cannot be used: this device's disk is full. Free disk space or report it to IT. ({m})")
        } else {
            m
        }
    };
    let Bedside { mut db, .. } = Bedside::open(Some(&env.data_dir), env.store_dir.as_deref())
        .map_err(|e| full(format!("The cache cannot be read ({e}). Check the data directory or report it to IT.")))?;
    let now = env.now();
    let purged = db.cache_purge(now).map_err(|e| full(format!("The cache could not be cleaned up ({e}). Report it to IT.")))?;
    let rows = db.cache_list().map_err(|e| format!("The cache cannot be read ({e}). Report it to IT."))?;
    // Saved copies go with their cache entries (best effort: an unreadable folder is left alone).
    if !env.export_dir.as_os_str().is_empty() {
        let ids: Vec<String> = rows.iter().map(|r| r.qr_id.clone()).collect();
        let _ = reader::export::purge_saved_records(&env.export_dir, &ids);
        env.purge_exports();
    }
    let mut items: Vec<CachedItem> = rows
        .into_iter()
        .filter(|r| r.expires_at > now)
        .map(|r| CachedItem {
            category: category_of(&db, &r),
            id: r.qr_id,
            patient_id: r.patient_id,
            media_type: r.media_type,
            size: r.document.len(),
            expires_at: r.expires_at,
        })
        .collect();
    items.sort_by(|a, b| (&a.patient_id, &a.category, a.expires_at, &a.id).cmp(&(&b.patient_id, &b.category, b.expires_at, &b.id)));
    Ok((items, purged))
}

/// The record's category (a label only; the library already checked the record against the
/// code's categories). A code shares per-disclosure copies (docs/threat-model.md, R8), so the
/// cached locator is never the catalogued record's: a code of one record has exactly its
/// category; a record of an index is named `<qr id>.<record id>`, looked up in this clinic's
/// records index. `None` when neither tells (an index entry on a device of another clinic).
fn category_of(db: &ClinicDb, row: &CacheRow) -> Option<String> {
    if let [only] = row.categories.as_slice() {
        return Some(only.as_str().to_owned());
    }
    let (_, record_id) = row.qr_id.split_once('.')?;
    db.record(record_id).ok().map(|r| r.meta.category.as_str().to_owned())
}

fn shown_record(db: &ClinicDb, row: CacheRow) -> ShownRecord {
    let category = category_of(db, &row);
    let bytes = Zeroizing::new(row.document);
    let rendered = document::render(&row.media_type, &bytes);
    let (picture, picture_note) = match &rendered {
        Rendered::Binary { kind: BinaryKind::Png | BinaryKind::Jpeg, .. } => match picture(&bytes) {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(format!("The image could not be shown ({e}); save it to open it."))),
        },
        _ => (None, None),
    };
    ShownRecord { cache_id: row.qr_id, category, media_type: row.media_type, bytes, rendered, picture, picture_note }
}

/// A PNG or JPEG record decoded (with the QR scanner's size limits) and scaled down to at most
/// [`MAX_PICTURE_SIDE`] per side.
///
/// # Errors
/// Undecodable or oversized images.
pub fn picture(bytes: &[u8]) -> Result<egui::ColorImage, String> {
    let img = qr::scan::decode_image(bytes).map_err(|e| e.to_string())?;
    let img = if img.width() > MAX_PICTURE_SIDE || img.height() > MAX_PICTURE_SIDE {
        img.thumbnail(MAX_PICTURE_SIDE, MAX_PICTURE_SIDE)
    } else {
        img
    };
    let rgba = img.to_rgba8();
    let size = [rgba.width() as usize, rgba.height() as usize];
    Ok(egui::ColorImage::from_rgba_unmultiplied(size, rgba.as_raw()))
}

/// Saves a record into the export folder as `<stem>.<ext>` (a name the app chooses), a new
/// file, mode 0600 (it is health data), never inside the data directory; it is removed from
/// there when the record leaves the cache ([`list_cached`]).
///
/// # Errors
/// A message that says what to do.
pub fn save_record(env: &AppContext, stem: &str, ext: &str, bytes: &[u8]) -> Result<String, String> {
    env.export(stem, ext, bytes)
        .map(|p| format!("Saved to {} (readable only by you; removed when the record leaves this device's cache).", p.display()))
        .map_err(|e| format!("Could not save the record: {e}. Report it to IT (is the disk full?)."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_over_the_cap_is_refused_before_it_is_read_whole() {
        assert!(matches!(read_capped(std::io::repeat(0), MAX_IMAGE_FILE + 1), Err(Capped::TooLarge)));
        // A file that grows past its announced size is cut at the cap, not read to the end.
        assert!(matches!(read_capped(std::io::repeat(0), 10), Err(Capped::TooLarge)));
        assert!(matches!(read_capped(&b"abc"[..], 3), Ok(b) if b == b"abc"));
    }

    #[test]
    fn an_unreadable_image_a_blank_image_and_two_codes_are_calm_messages() {
        let Err(Outcome::Problem { title, .. }) = text_from_image(b"not an image") else { unreachable!() };
        assert_eq!(title, "Not an image MedCard can read");
        let blank = image::GrayImage::from_pixel(200, 200, image::Luma([255]));
        let mut png = Vec::new();
        image::DynamicImage::ImageLuma8(blank)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let Err(Outcome::Problem { title, .. }) = text_from_image(&png) else { unreachable!() };
        assert_eq!(title, "No QR code found");
        let a = qr::render::render_image("MC1:FIRST", 4).unwrap_or_else(|e| unreachable!("{e}"));
        let b = qr::render::render_image("MC1:SECOND", 4).unwrap_or_else(|e| unreachable!("{e}"));
        let mut both = image::GrayImage::from_pixel(a.width() + b.width() + 40, a.height().max(b.height()) + 20, image::Luma([255]));
        image::imageops::overlay(&mut both, &a, 0, 0);
        image::imageops::overlay(&mut both, &b, i64::from(a.width()) + 40, 0);
        let mut png = Vec::new();
        image::DynamicImage::ImageLuma8(both)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let Err(Outcome::Problem { title, .. }) = text_from_image(&png) else { unreachable!() };
        assert_eq!(title, "Several QR codes");
    }

    #[test]
    fn a_large_image_record_is_scaled_down_for_display() {
        let big = image::RgbImage::from_pixel(3000, 1500, image::Rgb([10, 20, 30]));
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(big)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let p = picture(&png).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(p.size, [1024, 512]);
        assert!(picture(b"\x89PNG\r\n\x1a\nbroken").is_err());
    }

    #[test]
    fn a_saved_record_is_private_to_its_owner_and_never_lands_in_the_data_directory() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let data = dir.path().join("clinic");
        std::fs::create_dir(&data).unwrap_or_else(|e| unreachable!("{e}"));
        let mut env = AppContext::new(&data, crate::CardSource::Pcsc { reader: "none".into() });
        env.export_dir = dir.path().join("exports");
        let m = save_record(&env, "medcard-record-ab12", "pdf", b"%PDF-1.4").unwrap_or_else(|e| unreachable!("{e}"));
        assert!(m.contains("Saved to"), "{m}");
        let p = dir.path().join("exports").join("medcard-record-ab12.pdf");
        let mode = std::fs::metadata(&p).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
        assert_eq!(mode, 0o600);
        env.export_dir = data.join("keys");
        let e = save_record(&env, "medcard-record-ab12", "pdf", b"x").err().unwrap_or_default();
        assert!(e.contains("Could not save") && e.contains("inside the clinic data directory"), "{e}");
        assert!(!data.join("keys").exists());
    }
}
