//! Scan time per 1280x720 camera-like frame with one code, against `zbarimg` on the same PNG.
//!
//! The frame: a typical pointer ("MC1:" + 420 base45 characters, version 15-Q) at 4 px per
//! module, on a 1280x720 background with a light gradient, sensor noise (±12) and a slight blur,
//! saved as PNG in a temporary directory. Measured:
//! - criterion: `scan_image` on the decoded frame (what a camera loop calls), `scan_bytes` on
//!   the PNG (decode + scan, what zbarimg does), and a frame without a code (every attempt runs:
//!   the worst case per frame, bounded by the file budget), also with `ScanOptions::camera()`
//!   (the 30 ms camera budget);
//! - reference from the same run: wall time of `zbarimg --raw -q frame.png` over N invocations,
//!   of `zbarimg` on a blank 1280x720 PNG (no code: start-up, PNG decoding, full search), and on
//!   a 32x32 white PNG (process start-up);
//! - the zxing-qr photo corpus: mean time per image of `scan_bytes` vs `zbarimg` per image.
//!
//! `MEDCARD_BENCH_ZBAR_RUNS` sets N (default 30). Nothing subtracted; ratios printed at the end.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use image::{DynamicImage, GrayImage, Luma};

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
}

const BASE45: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

fn pointer_text() -> String {
    let mut rng = Rng(2026);
    let mut s = String::from("MC1:");
    for _ in 0..420 {
        s.push(char::from(BASE45.get(rng.below(45) as usize).copied().unwrap_or(b'0')));
    }
    s
}

fn frame(text: Option<&str>) -> GrayImage {
    let mut img = GrayImage::from_pixel(1280, 720, Luma([255]));
    if let Some(Ok(code)) = text.map(|t| qr::render::render_image(t, 4)) {
        image::imageops::overlay(&mut img, &code, 420, 170);
    }
    let mut rng = Rng(7);
    let img = GrayImage::from_fn(1280, 720, |x, y| {
        let v = f64::from(img.get_pixel(x, y).0[0]);
        let light = 0.6 + 0.4 * f64::from(x + y) / 2000.0;
        let noise = rng.below(25) as f64 - 12.0;
        Luma([(25.0 + v * 0.8 * light + noise).clamp(0.0, 255.0) as u8])
    });
    image::imageops::blur(&img, 0.8)
}

fn save_png(img: &GrayImage, path: &Path) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let _ = DynamicImage::ImageLuma8(img.clone()).write_to(&mut out, image::ImageFormat::Png);
    let bytes = out.into_inner();
    let _ = std::fs::write(path, &bytes);
    bytes
}

/// Mean wall time of `zbarimg --raw -q path` over `runs` invocations, and its output.
fn zbar_time(path: &Path, runs: u32) -> Option<(Duration, String)> {
    let mut total = Duration::ZERO;
    let mut text = String::new();
    for _ in 0..runs {
        let t = Instant::now();
        let out = Command::new("zbarimg").args(["--raw", "-q"]).arg(path).output().ok()?;
        total += t.elapsed();
        text = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    Some((total / runs.max(1), text))
}

fn mean_time<F: FnMut()>(runs: u32, mut f: F) -> Duration {
    f(); // warm-up
    let t = Instant::now();
    for _ in 0..runs {
        f();
    }
    t.elapsed() / runs.max(1)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Setup {
    dir: PathBuf,
    text: String,
    frame: DynamicImage,
    frame_png: Vec<u8>,
    blank: DynamicImage,
}

fn setup() -> Setup {
    let dir = std::env::temp_dir().join(format!("medcard-qr-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let text = pointer_text();
    let f = frame(Some(&text));
    let frame_png = save_png(&f, &dir.join("frame.png"));
    let b = frame(None);
    let _ = save_png(&b, &dir.join("blank.png"));
    let _ = save_png(&GrayImage::from_pixel(32, 32, Luma([255])), &dir.join("tiny.png"));
    Setup { dir, text, frame: DynamicImage::ImageLuma8(f), frame_png, blank: DynamicImage::ImageLuma8(b) }
}

fn bench_scan(c: &mut Criterion) {
    let s = setup();
    let found = qr::scan::scan_image(&s.frame);
    assert_eq!(found, vec![s.text.clone()], "the bench frame must decode");
    let mut g = c.benchmark_group("scan");
    g.sample_size(20);
    g.bench_function("frame_1280x720_one_code_scan_image", |b| b.iter(|| qr::scan::scan_image(&s.frame)));
    g.bench_function("frame_1280x720_one_code_scan_bytes_png", |b| b.iter(|| qr::scan::scan_bytes(&s.frame_png)));
    g.sample_size(10);
    g.bench_function("frame_1280x720_no_code_worst_case", |b| b.iter(|| qr::scan::scan_image(&s.blank)));
    let camera = qr::scan::Scanner::new(qr::scan::ScanOptions::camera());
    g.bench_function("frame_1280x720_no_code_camera_preset", |b| b.iter(|| camera.scan_image(&s.blank)));
    g.bench_function("frame_1280x720_one_code_camera_preset", |b| b.iter(|| camera.scan_image(&s.frame)));
    g.finish();
}

criterion_group!(benches, bench_scan);

fn reference() {
    let s = setup();
    let runs: u32 = std::env::var("MEDCARD_BENCH_ZBAR_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    println!("\n== reference: zbarimg 0.23 vs our scanner, same frame, same run ({runs} runs each) ==");
    let ours_img = mean_time(runs, || drop(qr::scan::scan_image(&s.frame)));
    let ours_png = mean_time(runs, || drop(qr::scan::scan_bytes(&s.frame_png)));
    let ours_blank = mean_time(runs.min(10), || drop(qr::scan::scan_image(&s.blank)));
    let tiny = zbar_time(&s.dir.join("tiny.png"), runs).map(|(t, _)| t);
    match (zbar_time(&s.dir.join("frame.png"), runs), zbar_time(&s.dir.join("blank.png"), runs)) {
        (Some((zf, ztext)), Some((zb, _))) => {
            if let Some(t) = tiny {
                println!("zbarimg tiny.png        {:8.2} ms per invocation (32x32 white: process start-up)", ms(t));
            }
            let zbar_ok = ztext.strip_suffix('\n') == Some(s.text.as_str());
            println!("zbarimg frame.png       {:8.2} ms per invocation (read the code: {zbar_ok})", ms(zf));
            println!("zbarimg blank.png       {:8.2} ms per invocation (start-up + PNG decode + search)", ms(zb));
            println!("ours scan_image(frame)  {:8.2} ms   ratio ours/zbarimg {:.2}", ms(ours_img), ms(ours_img) / ms(zf));
            println!("ours scan_bytes(png)    {:8.2} ms   ratio ours/zbarimg {:.2}", ms(ours_png), ms(ours_png) / ms(zf));
            println!("ours scan_image(blank)  {:8.2} ms   (every attempt, no code)", ms(ours_blank));
            println!(
                "zbarimg frame minus blank {:6.2} ms (rough decode-only time; start-up not subtracted above)",
                ms(zf.saturating_sub(zb))
            );
        }
        _ => println!("zbarimg not available: no reference (install zbar-tools)"),
    }

    let corpus = std::env::var_os("MEDCARD_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora"))
        .join("zxing-qr");
    let mut pngs = Vec::new();
    for d in std::fs::read_dir(&corpus).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
            if f.path().extension().is_some_and(|e| e == "png") {
                pngs.push(f.path());
            }
        }
    }
    pngs.sort();
    if pngs.is_empty() {
        println!("zxing-qr corpus not found at {}", corpus.display());
        return;
    }
    let files: Vec<Vec<u8>> = pngs.iter().map(|p| std::fs::read(p).unwrap_or_default()).collect();
    let rounds = 3u32;
    let t = Instant::now();
    for _ in 0..rounds {
        for f in &files {
            drop(qr::scan::scan_bytes(f));
        }
    }
    let ours = t.elapsed() / (rounds * files.len() as u32);
    let t = Instant::now();
    for p in &pngs {
        let _ = Command::new("zbarimg").args(["--raw", "-q"]).arg(p).output();
    }
    let zbar = t.elapsed() / pngs.len() as u32;
    println!("\n== zxing-qr corpus, {} photos ==", pngs.len());
    println!("ours scan_bytes mean    {:8.2} ms per photo ({rounds} rounds)", ms(ours));
    println!("zbarimg mean            {:8.2} ms per invocation   ratio ours/zbarimg {:.2}", ms(zbar), ms(ours) / ms(zbar));
    let _ = std::fs::remove_dir_all(&s.dir);
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    reference();
}
