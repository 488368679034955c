//! Finding and decoding every QR code in an image (camera photos, camera frames, screenshots,
//! PNG renders). docs/scanner.md has the measurements behind the choices made here.
//!
//! # How
//! Two detectors and decoders, each driven by a list of attempts; an attempt is a *view* of the
//! image (scale, rotation), a *method* and a polarity:
//!
//! 1. the image is converted to 8-bit luma and, if larger than [`ScanOptions::max_side`],
//!    downscaled by area averaging (this bounds time and memory whatever the input);
//! 2. the first attempt is ZXing's detector (`rxing`, the pure-Rust port; [`Method::Zxing`]): it
//!    reads most photos in a few milliseconds and finds every code of a picture with several;
//!    for a photo larger than the working size it is tried second on a view of up to
//!    [`HIRES_MAX_SIDE`] px taken from the input (a small code in a big photo);
//! 3. then rqrr (a port of quirc; [`Method::Rqrr`]), which reads some blurred and damaged codes
//!    ZXing does not, in tiers, cheapest and most likely first (see [`Scanner::plan`]): rqrr's own
//!    row threshold, Otsu, local mean, Sauvola, then the inverted bitmaps (light-on-dark codes,
//!    with ZXing too), then a scale pyramid (½ for large photos: less noise and blur per pixel;
//!    ×2 and ×3 for small images: rqrr needs a few pixels per module), then rotations (90°
//!    changes rqrr's row thresholding; 45° and 22.5° help its grid fitting on skewed codes), and
//!    last the full-resolution view again;
//! 4. every decoder call is inside [`quiet::quietly`]: a panic counts as "nothing from this
//!    attempt", is reported in [`ScanReport::panics`] and prints nothing (a panic hook that is
//!    silent only for a thread inside a scan; this needs the default `panic = "unwind"`);
//! 5. every decoded code is kept once, in the order found: a text already found, or a reading at
//!    the place of a code already found (ZXing and rqrr may disagree on the character set), is
//!    not a new code.
//!
//! # When to stop
//! * **Found**: after each tier, the scan stops if at least one code was decoded **and** every
//!   grid that rqrr detected so far lies inside a decoded code. A detected but undecodable grid
//!   elsewhere (a second code that resisted the first tiers) keeps the scan going, unless
//!   [`ScanOptions::exhaustive`] asks for every tier.
//! * **Time budget** ([`ScanOptions::budget`]): an attempt starts only if the time spent plus the
//!   cost of the attempt before it fits the budget: 80 ms for an image file, 30 ms for a camera
//!   frame ([`ScanOptions::camera`]), where the next frame comes anyway. The first attempt
//!   always runs. So what a budgeted scan finds on a hard image depends on the machine's speed
//!   and load; tests that must not depend on it use [`ScanOptions::unbudgeted`].
//! * **Safety limit** per attempt ([`ScanOptions::attempt_timeout`], 3 s by default), which only
//!   pathological inputs reach.
//!
//! # Live camera
//! [`live::LiveScanner`] scans the newest frame of a camera, never a queue (see its docs).
//!
//! # Text
//! rqrr yields the payload bytes: valid UTF-8 is returned as is; anything else is read as
//! ISO-8859-1 (the QR default character set, ISO/IEC 18004 §7.4.4 without ECI). ZXing decodes
//! the character set itself (ECI, or its UTF-8 / Shift_JIS guess).

mod binarize;
pub mod live;
pub mod quiet;
mod transform;
mod zxing;

pub use binarize::Bitmap;
pub use transform::View;

use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// Largest image (in pixels) [`scan_bytes`] agrees to decode, and the per-side limit.
pub const MAX_INPUT_PIXELS: u64 = 100_000_000;
/// Largest width or height [`scan_bytes`] agrees to decode.
pub const MAX_INPUT_SIDE: u32 = 30_000;
/// Largest side of the full-resolution view used for big photos (see [`Scanner::plan`]).
pub const HIRES_MAX_SIDE: u32 = 4096;

/// Why an image could not be scanned at all (finding no code is not an error: empty result).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The bytes are not an image format we read.
    #[error("not a readable image: {0}")]
    Image(String),
    /// The image is larger than we agree to decode.
    #[error("image of {width}x{height} pixels is larger than the limit of {max_side} px per side and {max_pixels} pixels")]
    TooLarge { width: u32, height: u32, max_side: u32, max_pixels: u64 },
}

/// How an attempt turns the view into a dark/light bitmap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Binarizer {
    /// rqrr's own row-wise moving-average threshold.
    Rqrr,
    /// Otsu's global threshold.
    Otsu,
    /// Local mean over a window of `1/div` of the shorter side, dark below mean − offset.
    LocalMean { div: u32, offset: u8 },
    /// Sauvola over a window of `1/div` of the shorter side, with k in hundredths.
    Sauvola { div: u32, k_percent: u8 },
}

/// Which detector and decoder an attempt runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// ZXing's hybrid binarizer, finder search and decoder (through `rxing`), every code found.
    Zxing,
    /// rqrr's detector and decoder on a bitmap made by the binarizer.
    Rqrr(Binarizer),
}

/// One attempt: a view of the working image, a method and a polarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attempt {
    /// Scale and rotation.
    pub view: View,
    /// Detector, decoder and binarization.
    pub method: Method,
    /// Look for light-on-dark codes.
    pub inverted: bool,
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.method {
            Method::Zxing => write!(f, "zxing")?,
            Method::Rqrr(Binarizer::Rqrr) => write!(f, "rqrr")?,
            Method::Rqrr(Binarizer::Otsu) => write!(f, "otsu")?,
            Method::Rqrr(Binarizer::LocalMean { div, offset }) => write!(f, "mean(1/{div},-{offset})")?,
            Method::Rqrr(Binarizer::Sauvola { div, k_percent }) => write!(f, "sauvola(1/{div},k=0.{k_percent:02})")?,
        }
        write!(f, " x{}", self.view.scale)?;
        if self.view.degrees != 0.0 {
            write!(f, " rot{}", self.view.degrees)?;
        }
        if self.inverted {
            write!(f, " inverted")?;
        }
        Ok(())
    }
}

/// Scanner settings.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// The working image is downscaled so that neither side exceeds this (pixels).
    pub max_side: u32,
    /// Run every tier even after every detected code decoded.
    pub exhaustive: bool,
    /// Upper bound on attempts per image.
    pub max_attempts: usize,
    /// Wall-time limit of one attempt; `None` runs attempts inline without a limit. rqrr's grid
    /// grouping is quadratic in the number of finder-pattern candidates, and rare inputs
    /// (periodic textures, crafted images) make one attempt run for minutes. With a limit, each
    /// attempt runs on its own thread; when one overruns, the scan stops, returns what it has
    /// and sets [`ScanReport::timed_out`] (the overrunning thread is left to finish on its own:
    /// safe Rust cannot cancel it).
    pub attempt_timeout: Option<Duration>,
    /// Time budget of one scan (`None`: no budget). The first attempt always runs; a further
    /// attempt starts only if the time spent so far plus the duration of the attempt before it
    /// (the estimate of its cost) stays within the budget, so a scan ends close to the budget
    /// and seldom beyond it. Stopping for the budget sets [`ScanReport::over_budget`].
    pub budget: Option<Duration>,
}

impl ScanOptions {
    /// The camera budget per frame: what a live preview on a 2-core machine can spend on one
    /// 1280x720 frame and keep up (docs/scanner.md).
    pub const CAMERA_BUDGET: Duration = Duration::from_millis(30);
    /// The budget of one image file or pasted picture (`medcard qr decode`, the bedside's
    /// "open image"): ZXing's passes and the first rqrr tiers on a hard photo, and a picture
    /// without a code answers "no code found" at once. Chosen by measurement (docs/scanner.md):
    /// on 98 unseen photos, 80 ms reads 87 and 300 ms 89, at 0.93 and 1.71 times zbar's time.
    pub const FILE_BUDGET: Duration = Duration::from_millis(Self::FILE_BUDGET_MS);
    /// [`ScanOptions::FILE_BUDGET`] in milliseconds.
    pub const FILE_BUDGET_MS: u64 = 80;

    /// For a camera loop, where the next frame comes anyway: a budget of
    /// [`ScanOptions::CAMERA_BUDGET`] per frame.
    #[must_use]
    pub fn camera() -> Self {
        ScanOptions { budget: Some(Self::CAMERA_BUDGET), ..ScanOptions::default() }
    }

    /// No time budget: every attempt of the plan (up to [`ScanOptions::max_attempts`]) may run.
    /// For tests and measurements that must not depend on the machine's load.
    #[must_use]
    pub fn unbudgeted() -> Self {
        ScanOptions { budget: None, ..ScanOptions::default() }
    }
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            max_side: 1600,
            exhaustive: false,
            max_attempts: 64,
            attempt_timeout: Some(Duration::from_secs(3)),
            budget: Some(Self::FILE_BUDGET),
        }
    }
}

/// One decoded code.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The text.
    pub text: String,
    /// The first attempt that decoded it.
    pub attempt: Attempt,
    /// Its outline in the coordinates of the image passed in: four points in order around the
    /// symbol. From rqrr: the symbol's corners (top-left, top-right, bottom-right, bottom-left);
    /// from ZXing: a quadrilateral through the points it reports, widened to cover the symbol
    /// (see `scan/zxing.rs`).
    pub corners: [(f64, f64); 4],
}

/// Everything a scan found, and how.
#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    /// Every distinct code, in the order found.
    pub codes: Vec<Found>,
    /// Attempts run.
    pub attempts: usize,
    /// Attempts in which rqrr panicked (treated as "nothing found").
    pub panics: usize,
    /// Grids rqrr detected but could not decode, outside every decoded code.
    pub undecoded_grids: usize,
    /// An attempt overran [`ScanOptions::attempt_timeout`] and the scan stopped early.
    pub timed_out: bool,
    /// The scan stopped because of [`ScanOptions::budget`] with attempts left.
    pub over_budget: bool,
    /// Wall time of the scan (the working image, the views and the attempts).
    pub elapsed: Duration,
}

impl std::fmt::Display for ScanReport {
    /// One line for a debug log: what was found, how, and what it cost.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} code(s) in {:.1} ms, {} attempt(s)", self.codes.len(), self.elapsed.as_secs_f64() * 1e3, self.attempts)?;
        if let Some(first) = self.codes.first() {
            write!(f, ", first by {first_attempt}", first_attempt = first.attempt)?;
        }
        write!(f, ", {} decoder panic(s) caught", self.panics)?;
        if self.undecoded_grids > 0 {
            write!(f, ", {} grid(s) seen but not decoded", self.undecoded_grids)?;
        }
        if self.over_budget {
            write!(f, ", stopped at the time budget")?;
        }
        if self.timed_out {
            write!(f, ", stopped: one attempt overran its time limit")?;
        }
        Ok(())
    }
}

impl ScanReport {
    /// The texts, in the order found.
    #[must_use]
    pub fn texts(&self) -> Vec<String> {
        self.codes.iter().map(|f| f.text.clone()).collect()
    }
}

/// A QR scanner with its options.
#[derive(Debug, Clone, Default)]
pub struct Scanner {
    /// Settings.
    pub options: ScanOptions,
}

/// A grid found in one attempt: its outline in the view's coordinates, and its text.
struct Hit {
    corners: [(f64, f64); 4],
    text: Option<String>,
}

impl Scanner {
    /// A scanner with the given options.
    #[must_use]
    pub fn new(options: ScanOptions) -> Self {
        Scanner { options }
    }

    /// The attempts, in tiers, for a working image of `w`×`h` pixels. `detail` is how many
    /// times larger the input was than the working image (1.0 if it was not downscaled): above
    /// 1.3 a last tier looks at a larger view taken from the input itself, so that a small code
    /// in a big photo keeps its pixels per module.
    #[must_use]
    pub fn plan(&self, w: u32, h: u32, detail: f64) -> Vec<Vec<Attempt>> {
        let plain =
            |binarizer, scale, degrees, inverted| Attempt { view: View { scale, degrees }, method: Method::Rqrr(binarizer), inverted };
        let zxing = |scale, inverted| Attempt { view: View { scale, degrees: 0.0 }, method: Method::Zxing, inverted };
        let mean = Binarizer::LocalMean { div: 8, offset: 6 };
        let mean_small = Binarizer::LocalMean { div: 24, offset: 4 };
        let sauvola = Binarizer::Sauvola { div: 10, k_percent: 20 };
        let short = w.min(h);
        let long = f64::from(w.max(h).max(1));
        let hires = detail.min(f64::from(HIRES_MAX_SIDE) / long);
        let mut tiers = vec![vec![zxing(1.0, false)]];
        if hires > 1.3 {
            // ZXing is fast enough on the full-resolution view to try it second: a small code in
            // a big photo has too few pixels per module once downscaled
            tiers.push(vec![zxing(hires, false)]);
        }
        tiers.extend([
            vec![plain(Binarizer::Rqrr, 1.0, 0.0, false)],
            vec![
                plain(Binarizer::Otsu, 1.0, 0.0, false),
                plain(mean, 1.0, 0.0, false),
                plain(sauvola, 1.0, 0.0, false),
                plain(mean_small, 1.0, 0.0, false),
            ],
            vec![
                zxing(1.0, true),
                plain(Binarizer::Rqrr, 1.0, 0.0, true),
                plain(Binarizer::Otsu, 1.0, 0.0, true),
                plain(mean, 1.0, 0.0, true),
            ],
        ]);
        let mut scales = Vec::new();
        if short >= 600 {
            scales.push(0.5);
        }
        if short < 1000 {
            scales.push(2.0);
        }
        if short < 250 {
            scales.push(3.0);
        }
        if short >= 1200 {
            scales.push(0.25);
        }
        for s in scales {
            tiers.push(vec![
                zxing(s, false),
                plain(Binarizer::Rqrr, s, 0.0, false),
                plain(Binarizer::Otsu, s, 0.0, false),
                plain(mean, s, 0.0, false),
                plain(sauvola, s, 0.0, false),
                plain(Binarizer::Rqrr, s, 0.0, true),
                plain(mean, s, 0.0, true),
            ]);
        }
        tiers.push(vec![plain(Binarizer::Rqrr, 1.0, 90.0, false), plain(mean, 1.0, 45.0, false), plain(Binarizer::Rqrr, 1.0, 45.0, false)]);
        tiers.push(vec![plain(mean, 1.0, 22.5, false), plain(Binarizer::Otsu, 1.0, 22.5, false), plain(mean, 1.0, 67.5, false)]);
        if hires > 1.3 {
            tiers.push(vec![
                plain(Binarizer::Rqrr, hires, 0.0, false),
                plain(mean, hires, 0.0, false),
                plain(Binarizer::Otsu, hires, 0.0, false),
            ]);
        }
        tiers
    }

    /// Scans `image` and tells which attempt found each code.
    #[must_use]
    pub fn scan_report(&self, image: &image::DynamicImage) -> ScanReport {
        if image.width() < 21 || image.height() < 21 {
            return ScanReport::default(); // smaller than a version-1 symbol at one pixel per module
        }
        self.scan_gray(image.to_luma8())
    }

    /// [`Scanner::scan_report`] of a grey image, taken by value so a large photo is not held
    /// twice (see [`decode_gray`]).
    pub fn scan_gray(&self, full: image::GrayImage) -> ScanReport {
        let started = Instant::now();
        let mut report = self.scan_gray_inner(full, started);
        report.elapsed = started.elapsed();
        report
    }

    #[allow(clippy::too_many_lines)]
    fn scan_gray_inner(&self, full: image::GrayImage, started: Instant) -> ScanReport {
        let mut report = ScanReport::default();
        let (iw, ih) = (full.width(), full.height());
        if iw < 21 || ih < 21 {
            return report; // smaller than a version-1 symbol at one pixel per module
        }
        let max_side = self.options.max_side.max(64);
        let (gray, full) = if iw.max(ih) > max_side {
            let k = f64::from(max_side) / f64::from(iw.max(ih));
            let (nw, nh) = (((f64::from(iw) * k) as u32).max(1), ((f64::from(ih) * k) as u32).max(1));
            (image::imageops::thumbnail(&full, nw, nh), Some(full))
        } else {
            (full, None)
        };
        let (gw, gh) = (gray.width(), gray.height());
        let detail = f64::from(iw.max(ih)) / f64::from(gw.max(gh).max(1));
        let to_input = (f64::from(iw) / f64::from(gw), f64::from(ih) / f64::from(gh));
        let fill = binarize::otsu_level(&gray).saturating_add(1).max(128);

        let mut undecoded: Vec<[(f64, f64); 4]> = Vec::new();
        let mut views: Vec<(View, Arc<image::GrayImage>)> = Vec::new();
        let mut last_cost = Duration::ZERO;
        'tiers: for tier in self.plan(gw, gh, detail) {
            for attempt in tier {
                if report.attempts >= self.options.max_attempts {
                    break 'tiers;
                }
                if let Some(budget) = self.options.budget
                    && report.attempts > 0
                    && started.elapsed() + last_cost > budget
                {
                    report.over_budget = true;
                    break 'tiers;
                }
                let attempt_started = Instant::now();
                report.attempts += 1;
                let view_img = match views.iter().find(|(v, _)| *v == attempt.view) {
                    Some((_, img)) => img,
                    None => {
                        let scaled = match &full {
                            // more pixels wanted and the input has them: take them from the input
                            Some(full) if attempt.view.scale > 1.0 => {
                                let nw = ((f64::from(gw) * attempt.view.scale).round() as u32).clamp(1, full.width());
                                let nh = ((f64::from(gh) * attempt.view.scale).round() as u32).clamp(1, full.height());
                                image::imageops::thumbnail(full, nw, nh)
                            }
                            _ => transform::scale(&gray, attempt.view.scale),
                        };
                        let img = transform::rotate(&scaled, attempt.view.degrees, fill);
                        views.push((attempt.view, Arc::new(img)));
                        match views.last() {
                            Some((_, img)) => img,
                            None => continue,
                        }
                    }
                };
                let outcome = run_guarded(view_img, attempt, self.options.attempt_timeout);
                last_cost = attempt_started.elapsed();
                let hits = match outcome {
                    Outcome::Done(Some(hits)) => hits,
                    Outcome::Done(None) => {
                        report.panics += 1;
                        continue;
                    }
                    Outcome::TimedOut => {
                        report.timed_out = true;
                        break 'tiers;
                    }
                };
                for hit in hits {
                    let corners = hit.corners.map(|(x, y)| {
                        let (wx, wy) = attempt.view.to_working(x, y, f64::from(gw), f64::from(gh));
                        (wx * to_input.0, wy * to_input.1)
                    });
                    match hit.text {
                        // A second decoder's reading of a code already found (the same place;
                        // rqrr and ZXing may differ in the character set) is not a second code.
                        Some(text) if !report.codes.iter().any(|f| f.text == text || inside(&f.corners, centre(&corners))) => {
                            report.codes.push(Found { text, attempt, corners });
                        }
                        Some(_) => {}
                        None => undecoded.push(corners),
                    }
                }
            }
            undecoded.retain(|q| {
                let c = centre(q);
                !report.codes.iter().any(|f| inside(&f.corners, c))
            });
            if !self.options.exhaustive && !report.codes.is_empty() && undecoded.is_empty() {
                break;
            }
        }
        report.undecoded_grids = count_distinct(&undecoded);
        report
    }

    /// Every distinct QR text in `image` (see [`Scanner::scan_report`]).
    #[must_use]
    pub fn scan_image(&self, image: &image::DynamicImage) -> Vec<String> {
        self.scan_report(image).texts()
    }
}

/// Detects and decodes every grid of a prepared rqrr image (a macro: rqrr does not export the
/// buffer trait its `PreparedImage` is generic over).
macro_rules! detect {
    ($prepared:expr) => {
        $prepared
            .detect_grids()
            .into_iter()
            .map(|grid| {
                let corners = grid.bounds.map(|p| (f64::from(p.x), f64::from(p.y)));
                let mut bytes = Vec::new();
                let text = grid.decode_to(&mut bytes).ok().map(|_| bytes_to_text(bytes));
                Hit { corners, text }
            })
            .collect::<Vec<Hit>>()
    };
}

enum Outcome {
    /// The attempt finished: its hits, or `None` if rqrr panicked.
    Done(Option<Vec<Hit>>),
    /// The attempt overran its time limit.
    TimedOut,
}

/// Runs one attempt, on its own thread when there is a time limit (see
/// [`ScanOptions::attempt_timeout`]); inline if the thread cannot be started.
fn run_guarded(img: &Arc<image::GrayImage>, attempt: Attempt, timeout: Option<Duration>) -> Outcome {
    let Some(timeout) = timeout else { return Outcome::Done(run_attempt(img, attempt)) };
    let (tx, rx) = mpsc::channel();
    let shared = Arc::clone(img);
    let spawned = std::thread::Builder::new().name("qr-scan-attempt".into()).spawn(move || {
        let _ = tx.send(run_attempt(&shared, attempt));
    });
    if spawned.is_err() {
        return Outcome::Done(run_attempt(img, attempt));
    }
    match rx.recv_timeout(timeout) {
        Ok(result) => Outcome::Done(result),
        Err(mpsc::RecvTimeoutError::Timeout) => Outcome::TimedOut,
        Err(mpsc::RecvTimeoutError::Disconnected) => Outcome::Done(None),
    }
}

/// Runs one attempt under [`quiet::quietly`]; `None` if rqrr panicked (nothing printed).
fn run_attempt(img: &image::GrayImage, attempt: Attempt) -> Option<Vec<Hit>> {
    let short = img.width().min(img.height()) as usize;
    let window = |div: u32| (short / (div.max(1) as usize)).max(9) | 1;
    let binarizer = match attempt.method {
        Method::Zxing => return quiet::quietly(|| zxing::detect(img, attempt.inverted)),
        Method::Rqrr(b) => b,
    };
    quiet::quietly(|| {
        let bitmap = match binarizer {
            Binarizer::Rqrr => {
                let mut prepared = if attempt.inverted {
                    let mut inv = img.clone();
                    image::imageops::invert(&mut inv);
                    rqrr::PreparedImage::prepare(inv)
                } else {
                    rqrr::PreparedImage::prepare(img.clone())
                };
                return detect!(prepared);
            }
            Binarizer::Otsu => binarize::otsu(img),
            Binarizer::LocalMean { div, offset } => binarize::local_mean(img, window(div), offset),
            Binarizer::Sauvola { div, k_percent } => binarize::sauvola(img, window(div), f64::from(k_percent) / 100.0),
        };
        let bitmap = if attempt.inverted { bitmap.inverted() } else { bitmap };
        let mut prepared = rqrr::PreparedImage::prepare_from_bitmap(bitmap.width, bitmap.height, |x, y| bitmap.is_dark(x, y));
        detect!(prepared)
    })
}

/// UTF-8 as is, otherwise ISO-8859-1 (see the module docs).
fn bytes_to_text(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => e.into_bytes().into_iter().map(char::from).collect(),
    }
}

fn centre(q: &[(f64, f64); 4]) -> (f64, f64) {
    let (sx, sy) = q.iter().fold((0.0, 0.0), |(ax, ay), (x, y)| (ax + x, ay + y));
    (sx / 4.0, sy / 4.0)
}

/// Whether `p` is inside the quadrilateral `q` (corners in order, either orientation).
fn inside(q: &[(f64, f64); 4], p: (f64, f64)) -> bool {
    let mut sign = 0i8;
    for (a, b) in q.iter().zip(q.iter().cycle().skip(1)) {
        let cross = (b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0);
        let s = if cross > 0.0 {
            1
        } else if cross < 0.0 {
            -1
        } else {
            0
        };
        if s != 0 {
            if sign != 0 && s != sign {
                return false;
            }
            sign = s;
        }
    }
    true
}

/// Number of distinct grids among `quads` (centres inside each other count once).
fn count_distinct(quads: &[[(f64, f64); 4]]) -> usize {
    let mut kept: Vec<&[(f64, f64); 4]> = Vec::new();
    for q in quads {
        if !kept.iter().any(|k| inside(k, centre(q))) {
            kept.push(q);
        }
    }
    kept.len()
}

/// Every distinct QR text found in `image`, in a stable order. Never panics.
pub fn scan_image(image: &image::DynamicImage) -> Vec<String> {
    Scanner::default().scan_image(image)
}

/// Decodes image file bytes (PNG, JPEG, ...) and scans them (see [`scan_image`]).
///
/// Images larger than [`MAX_INPUT_SIDE`] per side or [`MAX_INPUT_PIXELS`] in total are refused
/// from their header, before any pixel buffer is allocated.
pub fn scan_bytes(bytes: &[u8]) -> Result<Vec<String>, ScanError> {
    Ok(Scanner::default().scan_gray(decode_gray(bytes)?).texts())
}

/// Decodes image file bytes straight to grey, with the size limits of [`scan_bytes`]. A JPEG
/// (the usual photo) is decoded to its luma channel only, so a 24-megapixel photo takes 24 MB
/// instead of 72 MB of colour and a grey copy; other formats are decoded and then converted.
pub fn decode_gray(bytes: &[u8]) -> Result<image::GrayImage, ScanError> {
    if image::guess_format(bytes).ok() != Some(image::ImageFormat::Jpeg) {
        return Ok(decode_image(bytes)?.into_luma8());
    }
    // The decoder's own limit at JPEG's largest (65535) so that our limits below name the size.
    let options = zune_core::options::DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX))
        .jpeg_set_out_colorspace(zune_core::colorspace::ColorSpace::Luma);
    let mut d = zune_jpeg::JpegDecoder::new_with_options(zune_core::bytestream::ZCursor::new(bytes), options);
    let jpeg = |e: zune_jpeg::errors::DecodeErrors| ScanError::Image(format!("JPEG: {e}"));
    d.decode_headers().map_err(jpeg)?;
    let (width, height) =
        d.dimensions().map(|(w, h)| (u32::try_from(w).unwrap_or(u32::MAX), u32::try_from(h).unwrap_or(u32::MAX))).unwrap_or((0, 0));
    within_limits(width, height)?;
    let luma = quiet::quietly(|| d.decode()).and_then(Result::ok);
    match luma.and_then(|l| image::GrayImage::from_raw(width, height, l)) {
        Some(g) => Ok(g),
        // Colour spaces the luma-only path does not take (CMYK, YCCK): the full decoder.
        None => Ok(decode_image(bytes)?.into_luma8()),
    }
}

/// Refuses an image larger than [`MAX_INPUT_SIDE`] per side or [`MAX_INPUT_PIXELS`] in total.
fn within_limits(width: u32, height: u32) -> Result<(), ScanError> {
    if width > MAX_INPUT_SIDE || height > MAX_INPUT_SIDE || u64::from(width) * u64::from(height) > MAX_INPUT_PIXELS {
        return Err(ScanError::TooLarge { width, height, max_side: MAX_INPUT_SIDE, max_pixels: MAX_INPUT_PIXELS });
    }
    Ok(())
}

/// Decodes image file bytes with the size limits of [`scan_bytes`].
pub fn decode_image(bytes: &[u8]) -> Result<image::DynamicImage, ScanError> {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| ScanError::Image(e.to_string()))?;
    let (width, height) = reader.into_dimensions().map_err(|e| ScanError::Image(e.to_string()))?;
    within_limits(width, height)?;
    let mut reader =
        image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| ScanError::Image(e.to_string()))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_INPUT_SIDE);
    limits.max_image_height = Some(MAX_INPUT_SIDE);
    limits.max_alloc = Some(MAX_INPUT_PIXELS * 8);
    reader.limits(limits);
    quiet::quietly(|| reader.decode())
        .ok_or_else(|| ScanError::Image("the image decoder panicked".into()))?
        .map_err(|e| ScanError::Image(e.to_string()))
}
