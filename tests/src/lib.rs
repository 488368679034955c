//! End-to-end tests live in `tests/` (see `tests/checkin_scan.rs` and `docs/checkin-scan.md`);
//! this library is empty.
#![forbid(unsafe_code)]
