//! Measures the live camera loop on the generated wristband sequence (tests/camera_support):
//! time per 1280x720 frame with the camera budget, frames-to-first-read counted from the first
//! sharp frame, and, paced at 30 frames per second, how many frames were skipped and how long
//! after the first sharp frame the code was read. Run in release:
//! `cargo run --release -p qr --example camera_sequence [RUNS]`.

#[path = "../tests/camera_support/mod.rs"]
mod camera_support;

use std::time::{Duration, Instant};

use qr::scan::ScanOptions;
use qr::scan::live::LiveScanner;

const BASE45: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn main() {
    let runs: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let mut per_frame = Vec::new();
    let mut first_reads = Vec::new();
    let mut paced = Vec::new();
    for run in 0..runs {
        let text: String = std::iter::once("MC1:".to_owned())
            .chain((0..300).map(|i| char::from(BASE45.get((i * 7 + run as usize * 13) % 45).copied().unwrap_or(b'0')).to_string()))
            .collect();
        let seq = camera_support::wristband(&text, 4, run + 1);
        let Ok(mut live) = LiveScanner::start(ScanOptions::camera(), || {}) else { return };
        let mut first = None;
        for (i, f) in seq.frames.iter().enumerate() {
            live.offer(f.clone());
            let Some(s) = live.wait(Duration::from_secs(10)) else { return };
            per_frame.push(s.report.elapsed.as_secs_f64() * 1e3);
            if first.is_none() && s.report.texts() == vec![seq.text.clone()] {
                first = Some(i as i64 - seq.first_sharp as i64);
            }
        }
        first_reads.push(first);
        // paced at 30 frames per second, as a camera delivers them
        let Ok(mut live) = LiveScanner::start(ScanOptions::camera(), || {}) else { return };
        let mut sharp_at = None;
        let mut read_after = None;
        for (i, f) in seq.frames.iter().enumerate() {
            if i == seq.first_sharp {
                sharp_at = Some(Instant::now());
            }
            live.offer(f.clone());
            std::thread::sleep(Duration::from_millis(33));
            for s in live.poll() {
                if read_after.is_none() && s.report.texts() == vec![text.clone()] && s.seq as usize >= seq.first_sharp {
                    read_after = sharp_at.map(|t| t.elapsed());
                }
            }
        }
        paced.push((live.skipped(), read_after));
    }
    let sorted = {
        let mut v = per_frame.clone();
        v.sort_by(f64::total_cmp);
        v
    };
    let p95 = sorted.get(((sorted.len() as f64 - 1.0) * 0.95).round() as usize).copied().unwrap_or(0.0);
    println!(
        "lockstep: {} frames, median {:.1} ms per frame, p95 {p95:.1} ms, budget {} ms",
        per_frame.len(),
        median(per_frame),
        ScanOptions::CAMERA_BUDGET.as_millis()
    );
    println!("first read, in frames after the first sharp frame (0 = that frame; negative = while still blurred): {first_reads:?}");
    println!("paced at 30 fps: (frames skipped, time from the first sharp frame to the read) per run: {paced:?}");
}
