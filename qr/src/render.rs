//! Rendering QR text to an image and PNG bytes (alphanumeric mode, ECC level Q, quiet zone).
//! Owned by the scanner/render work; API fixed so the codec can build against it.

/// Why a text could not be rendered as a QR code.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The text does not fit the largest QR version at level Q.
    #[error("text of {len} characters is too long for a QR code at error correction level Q")]
    TooLong { len: usize },
    /// PNG encoding failed.
    #[error("could not encode the QR image as PNG: {0}")]
    Png(String),
}

/// Renders `text` as a QR code (ECC level Q, 4-module quiet zone) with `module_px` pixels per module.
pub fn render_image(text: &str, module_px: u32) -> Result<image::GrayImage, RenderError> {
    let _ = (text, module_px);
    Err(RenderError::Png("not implemented yet".into()))
}

/// Renders `text` as PNG bytes (see [`render_image`]).
pub fn render_png(text: &str, module_px: u32) -> Result<Vec<u8>, RenderError> {
    let _ = (text, module_px);
    Err(RenderError::Png("not implemented yet".into()))
}
