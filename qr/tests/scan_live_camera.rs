//! The live camera loop (`qr::scan::live`) on a generated camera sequence: a wristband code
//! moving into view, out of focus, then sharp (tests/camera_support). No camera is needed (no
//! v4l2loopback on CI machines): the frames go through the same loop the desktop app runs on
//! V4L2 frames. Time per frame and frames-to-first-read are measured in a release build by
//! `examples/camera_sequence.rs` (docs/scanner.md); nothing here depends on the machine's speed.

mod camera_support;
mod scan_support;

use std::time::Duration;

use qr::scan::ScanOptions;
use qr::scan::live::LiveScanner;

fn sequence() -> camera_support::Sequence {
    let mut rng = scan_support::Rng(11);
    let text = scan_support::mc1_text(&mut rng, 300);
    camera_support::wristband(&text, 4, 5)
}

#[test]
fn a_code_held_up_to_the_camera_is_read_within_the_first_three_sharp_frames() {
    let seq = sequence();
    let mut live = LiveScanner::start(ScanOptions::camera(), || {}).unwrap_or_else(|e| unreachable!("{e}"));
    let mut first_read = None;
    for (i, frame) in seq.frames.iter().enumerate() {
        // lockstep: each frame is scanned before the next is offered, so every frame counts
        let n = live.offer(frame.clone());
        let scanned = live.wait(Duration::from_secs(60)).unwrap_or_else(|| unreachable!("frame {i} not scanned within 60 s"));
        assert_eq!(scanned.seq, n);
        let texts = scanned.report.texts();
        assert!(texts.iter().all(|t| *t == seq.text), "frame {i}: a wrong text {texts:?}");
        if !texts.is_empty() && first_read.is_none() {
            first_read = Some(i);
        }
    }
    let first = first_read.unwrap_or_else(|| unreachable!("the code was never read"));
    assert!(first >= camera_support::PHASES[0], "read at frame {first}, before the code was in view");
    assert!(first < seq.first_sharp + 3, "first read at frame {first}; the first sharp frame is {}", seq.first_sharp);
}

#[test]
fn frames_offered_faster_than_they_are_scanned_are_skipped_and_the_newest_is_always_scanned() {
    let seq = sequence();
    let mut live = LiveScanner::start(ScanOptions::camera(), || {}).unwrap_or_else(|e| unreachable!("{e}"));
    let mut scanned = Vec::new();
    let mut last = 0;
    for frame in &seq.frames {
        last = live.offer(frame.clone());
        std::thread::sleep(Duration::from_millis(33)); // the camera's 30 frames per second
        scanned.extend(live.poll());
    }
    while scanned.last().is_none_or(|s| s.seq != last) {
        scanned.push(live.wait(Duration::from_secs(60)).unwrap_or_else(|| unreachable!("the last frame was not scanned")));
    }
    assert!(
        scanned.iter().zip(scanned.iter().skip(1)).all(|(a, b)| a.seq < b.seq),
        "frames are scanned newest-first, never an older one after a newer"
    );
    assert_eq!(scanned.len() as u64 + live.skipped(), seq.frames.len() as u64, "every frame is scanned or skipped, once");
    assert!(scanned.iter().any(|s| s.report.texts() == vec![seq.text.clone()]), "the sharp code was read");
}
