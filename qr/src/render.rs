//! Rendering QR text to an image and PNG bytes (alphanumeric mode, ECC level Q, quiet zone).
//!
//! Text made only of the QR alphanumeric set (`0-9 A-Z space $ % * + - . / :`, which covers
//! `MC1:` + base45) is encoded as one alphanumeric segment (5.5 bits per character); any other
//! text falls back to one byte-mode segment (UTF-8 bytes, 8 bits per byte, no ECI). The smallest
//! version (1..=40) that holds the segment at error correction level Q is chosen. The image has a
//! 4-module quiet zone on every side (ISO/IEC 18004:2015 §9.1), dark modules are luma 0 and light
//! ones luma 255.

use qrcode::bits::Bits;
use qrcode::{Color, EcLevel, QrCode, Version};

/// Quiet zone width in modules on every side (the minimum ISO/IEC 18004 asks for).
pub const QUIET_ZONE_MODULES: u32 = 4;

/// Largest accepted `module_px` (a version-40 code at this size is 11 840 px wide).
pub const MAX_MODULE_PX: u32 = 64;

/// Why a text could not be rendered as a QR code.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The text does not fit the largest QR version at level Q.
    #[error("text of {len} characters is too long for a QR code at error correction level Q")]
    TooLong { len: usize },
    /// PNG encoding failed.
    #[error("could not encode the QR image as PNG: {0}")]
    Png(String),
    /// `module_px` is 0 or larger than [`MAX_MODULE_PX`].
    #[error("module size of {got} px is outside 1..={max} px")]
    ModuleSize { got: u32, max: u32 },
}

/// How the text was put into the symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One alphanumeric segment (the text is all in the QR alphanumeric set).
    Alphanumeric,
    /// One byte segment (UTF-8 bytes of the text).
    Byte,
}

/// What [`encode`] chose for a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QrInfo {
    /// QR version, 1..=40.
    pub version: u8,
    /// Symbol width in modules, without the quiet zone (17 + 4 × version).
    pub modules: u32,
    /// Segment mode used.
    pub mode: Mode,
}

/// True if every character of `text` is in the QR alphanumeric set (ISO/IEC 18004 §7.4.5).
#[must_use]
pub fn is_alphanumeric(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'Z' | b' ' | b'$' | b'%' | b'*' | b'+' | b'-' | b'.' | b'/' | b':'))
}

/// Encodes `text` in the smallest version that holds it at level Q (see the module docs).
pub fn encode(text: &str) -> Result<(QrCode, QrInfo), RenderError> {
    let mode = if is_alphanumeric(text) { Mode::Alphanumeric } else { Mode::Byte };
    for v in 1..=40i16 {
        let mut bits = Bits::new(Version::Normal(v));
        let pushed = match mode {
            Mode::Alphanumeric => bits.push_alphanumeric_data(text.as_bytes()),
            Mode::Byte => bits.push_byte_data(text.as_bytes()),
        };
        if pushed.is_err() || bits.push_terminator(EcLevel::Q).is_err() {
            continue; // does not fit this version: try the next one
        }
        let Ok(code) = QrCode::with_bits(bits, EcLevel::Q) else { continue };
        let modules = u32::try_from(code.width()).map_err(|_| RenderError::TooLong { len: text.len() })?;
        let version = u8::try_from(v).map_err(|_| RenderError::TooLong { len: text.len() })?;
        return Ok((code, QrInfo { version, modules, mode }));
    }
    Err(RenderError::TooLong { len: text.len() })
}

/// The version, size and mode [`render_image`] would use for `text`.
pub fn qr_info(text: &str) -> Result<QrInfo, RenderError> {
    encode(text).map(|(_, info)| info)
}

/// The QR version (1..=40) [`render_image`] would use for `text` at level Q.
pub fn qr_version(text: &str) -> Result<u8, RenderError> {
    qr_info(text).map(|info| info.version)
}

/// Renders `text` as a QR code (ECC level Q, 4-module quiet zone) with `module_px` pixels per module.
pub fn render_image(text: &str, module_px: u32) -> Result<image::GrayImage, RenderError> {
    if module_px == 0 || module_px > MAX_MODULE_PX {
        return Err(RenderError::ModuleSize { got: module_px, max: MAX_MODULE_PX });
    }
    let (code, info) = encode(text)?;
    let colors = code.to_colors();
    let side_modules = info.modules + 2 * QUIET_ZONE_MODULES;
    let side = side_modules * module_px;
    let dark = |mx: u32, my: u32| -> bool {
        let (Some(cx), Some(cy)) = (mx.checked_sub(QUIET_ZONE_MODULES), my.checked_sub(QUIET_ZONE_MODULES)) else {
            return false;
        };
        if cx >= info.modules || cy >= info.modules {
            return false;
        }
        let idx = (cy as usize) * (info.modules as usize) + cx as usize;
        colors.get(idx).is_some_and(|c| *c == Color::Dark)
    };
    Ok(image::GrayImage::from_fn(side, side, |x, y| if dark(x / module_px, y / module_px) { image::Luma([0]) } else { image::Luma([255]) }))
}

/// Renders `text` as PNG bytes (see [`render_image`]).
pub fn render_png(text: &str, module_px: u32) -> Result<Vec<u8>, RenderError> {
    let img = render_image(text, module_px)?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).map_err(|e| RenderError::Png(e.to_string()))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphanumeric_text_uses_alphanumeric_mode_and_other_text_byte_mode() {
        assert_eq!(qr_info("MC1:ABC 123$%*+-./").map(|i| i.mode).ok(), Some(Mode::Alphanumeric));
        assert_eq!(qr_info("mc1:lower").map(|i| i.mode).ok(), Some(Mode::Byte));
    }

    #[test]
    fn version_grows_with_text_and_matches_symbol_width() {
        let small = qr_info("MC1:A").ok();
        assert_eq!(small, Some(QrInfo { version: 1, modules: 21, mode: Mode::Alphanumeric }));
        // Level Q alphanumeric capacity of version 15 is 426 characters (ISO/IEC 18004 Table 7).
        assert_eq!(qr_version(&"A".repeat(426)).ok(), Some(15));
        assert_eq!(qr_version(&"A".repeat(427)).ok(), Some(16));
    }

    #[test]
    fn too_long_text_is_refused() {
        assert!(matches!(qr_info(&"A".repeat(5000)), Err(RenderError::TooLong { len: 5000 })));
    }

    #[test]
    fn image_has_quiet_zone_and_requested_module_size() {
        let img = render_image("MC1:A", 3);
        assert!(img.is_ok());
        if let Ok(img) = img {
            assert_eq!(img.width(), (21 + 8) * 3);
            // quiet zone is light, the top-left finder corner is dark
            assert_eq!(img.get_pixel(11, 11).0, [255]);
            assert_eq!(img.get_pixel(12, 12).0, [0]);
        }
    }

    #[test]
    fn zero_module_size_is_refused() {
        assert!(matches!(render_image("A", 0), Err(RenderError::ModuleSize { got: 0, .. })));
    }
}
