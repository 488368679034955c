//! The image scanner (qr/src/scan.rs): image file bytes (PNG, JPEG, ...) → grey → QR texts,
//! through the size limits, the decoders and every binarizer/scale/rotation attempt.
//! `scan_bytes` must return texts or a typed `ScanError`.
//!
//! The scanner deliberately contains panics of the third-party image decoders with
//! `catch_unwind` (they are not ours to fix); libfuzzer-sys aborts in its panic hook before
//! any unwinding, so this target restores the default hook: a panic the scanner catches is
//! fine, one that escapes still aborts (libfuzzer-sys's own `catch_unwind` around the target).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        let _ = std::panic::take_hook();
        std::panic::set_hook(Box::new(|info| eprintln!("panic (caught or not): {info}")));
    },
    |data: &[u8]| {
        if let Ok(texts) = qr::scan::scan_bytes(data) {
            for t in texts {
                assert!(!t.is_empty());
            }
        }
    }
);
