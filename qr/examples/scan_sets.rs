//! In-process scoring of the scanner on image sets (`N.png` + expected text `N.txt`), for
//! `scripts/scanner-bench.py` and for tuning: per set, codes read, total and p95 scan time,
//! attempts, panics caught, and the images missed.
//!
//! `cargo run --release -p qr --example scan_sets -- [--camera | --unbudgeted] DIR...`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use qr::scan::{ScanOptions, Scanner};

fn main() {
    let mut options = ScanOptions::default();
    let mut dirs = Vec::new();
    let mut verbose = false;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--camera" => options = ScanOptions::camera(),
            "--unbudgeted" => options = ScanOptions::unbudgeted(),
            "--verbose" => verbose = true,
            _ => dirs.push(PathBuf::from(a)),
        }
    }
    let scanner = Scanner::new(options);
    let (mut all_n, mut all_ok) = (0, 0);
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            eprintln!("{}: not a directory", dir.display());
            continue;
        };
        let mut images: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("png" | "jpg" | "jpeg" | "gif")))
            .filter(|p| p.with_extension("txt").exists())
            .collect();
        images.sort();
        let (mut ok, mut panics, mut attempts) = (0, 0, 0);
        let mut times: Vec<Duration> = Vec::new();
        let mut missed = Vec::new();
        for path in &images {
            let (Ok(bytes), Ok(expected)) = (std::fs::read(path), std::fs::read(path.with_extension("txt"))) else { continue };
            let t0 = Instant::now();
            let report = qr::scan::decode_gray(&bytes).map(|g| scanner.scan_gray(g));
            times.push(t0.elapsed());
            match report {
                Ok(r) => {
                    if verbose {
                        println!("  {}: {r}", path.display());
                    }
                    panics += r.panics;
                    attempts += r.attempts;
                    if r.codes.iter().any(|f| f.text.as_bytes() == expected.as_slice()) {
                        ok += 1;
                    } else {
                        missed.push(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
                    }
                }
                Err(e) => missed.push(format!("{} ({e})", path.display())),
            }
        }
        let total: Duration = times.iter().sum();
        times.sort();
        let p95 = times.get(((times.len() as f64 - 1.0) * 0.95).round() as usize).copied().unwrap_or_default();
        println!(
            "{}: {ok}/{} read, total {:.0} ms, p95 {:.1} ms, {attempts} attempts, {panics} panics caught; missed {missed:?}",
            dir.display(),
            images.len(),
            total.as_secs_f64() * 1e3,
            p95.as_secs_f64() * 1e3
        );
        all_n += images.len();
        all_ok += ok;
    }
    println!("all: {all_ok}/{all_n}");
}
