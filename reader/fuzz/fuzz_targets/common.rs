//! Shared by the reader fuzz targets and `seedgen`: the fixed clinic the seeds were made in.
#![allow(dead_code)]

/// The time every fixture is valid at (2027-01-15).
pub const NOW: i64 = 1_800_000_000;
/// The fixture clinic and patient (see `seedgen`).
pub const CLINIC_ID: &str = "fuzz-clinic";
pub const PATIENT_ID: &str = "P-1001";
pub const PIN: &str = "123456";
/// The content key every record seed is sealed with.
pub const RECORD_KEY: [u8; 32] = [7; 32];

/// Cuts `data` into frames: a 2-byte big-endian length, then that many bytes (a shorter tail is
/// the last frame). The same framing as vpcd, so one format for APDU streams and card replies.
pub fn frames(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((len, rest)) = data.split_first_chunk::<2>() {
        let len = usize::from(u16::from_be_bytes(*len));
        let (frame, rest) = rest.split_at(len.min(rest.len()));
        out.push(frame);
        data = rest;
    }
    out
}

/// The inverse of [`frames`].
pub fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
}
