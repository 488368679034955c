//! Shared helpers of the scanner tests: where the corpora are, and running `zbarimg`.
#![allow(dead_code)] // each test binary uses a part of it

use std::path::{Path, PathBuf};
use std::process::Command;

/// `MEDCARD_CORPORA`, else `../../shared/corpora` from this crate (the project layout).
pub fn corpora() -> PathBuf {
    std::env::var_os("MEDCARD_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora"))
}

/// Texts `zbarimg --raw -q` reads from `path` (QR only), or None if it found nothing.
/// Each symbol is printed followed by a newline; with one symbol the text is exact, with
/// several the split on newlines is ambiguous, so the raw output is returned as well.
#[allow(clippy::panic)] // a test helper: no zbarimg means the comparison cannot run
pub fn zbarimg(path: &Path) -> ZbarResult {
    let out = Command::new("zbarimg")
        .args(["--raw", "-q", "-Sdisable", "-Sqrcode.enable"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run zbarimg (install zbar-tools): {e}"));
    ZbarResult { raw: out.stdout, status: out.status.code() }
}

/// What zbarimg printed.
pub struct ZbarResult {
    /// stdout bytes.
    pub raw: Vec<u8>,
    /// exit status (0 = found, 4 = nothing found).
    pub status: Option<i32>,
}

impl ZbarResult {
    /// Whether `expected` is exactly one of the symbols printed: the output is `expected` + "\n",
    /// or contains it as a whole line group at a symbol boundary.
    pub fn has(&self, expected: &[u8]) -> bool {
        let mut want = expected.to_vec();
        want.push(b'\n');
        if self.raw == want {
            return true;
        }
        // several symbols: expected at the start or right after a newline, followed by newline
        self.raw.windows(want.len()).enumerate().any(|(i, w)| w == want.as_slice() && (i == 0 || self.raw.get(i - 1) == Some(&b'\n')))
    }

    /// The single text when exactly one symbol was printed (strip the final newline).
    pub fn single_text(&self) -> Option<String> {
        let s = String::from_utf8(self.raw.clone()).ok()?;
        s.strip_suffix('\n').map(str::to_string)
    }
}

/// Whether zbarimg is on the PATH.
pub fn have_zbarimg() -> bool {
    Command::new("zbarimg").arg("--version").output().is_ok()
}

/// A small deterministic generator (SplitMix64) for test data outside proptest.
pub struct Rng(pub u64);

impl Rng {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The QR alphanumeric set (ISO/IEC 18004 Table 5).
pub const ALPHANUMERIC: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
/// The base45 alphabet (RFC 9285) is the same 45 characters.
pub const BASE45: &[u8] = ALPHANUMERIC;

/// "MC1:" followed by `len` random base45 characters.
pub fn mc1_text(rng: &mut Rng, len: usize) -> String {
    let mut s = String::from("MC1:");
    for _ in 0..len {
        let i = rng.below(BASE45.len() as u64) as usize;
        s.push(char::from(*BASE45.get(i).unwrap_or(&b'0')));
    }
    s
}

/// Case count from the environment variable `name`, else `default`.
pub fn cases(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A fresh temporary directory for this test process.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("medcard-qr-{tag}-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Decodes standard base64 (RFC 4648 §4, padding optional, whitespace ignored).
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xFF) as u8);
        }
    }
    Some(out)
}
