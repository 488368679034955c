//! The ZXing detector and decoder, through `rxing` (the pure-Rust port of ZXing): the scanner's
//! first pass (docs/scanner.md says why).
//!
//! ZXing's hybrid binarizer (local thresholds over 8×8 blocks) and its finder-pattern search with
//! "try harder" read most camera photos in a few milliseconds, where rqrr needs several
//! binarizations and scales; its multiple-code reader splits the image around each code it
//! finds, so every code of a picture with several is reported. rqrr stays as the fallback: it
//! reads some blurred and damaged codes that ZXing does not.
//!
//! rxing yields text already decoded with the code's character set (ECI, or the ISO/IEC 18004
//! default with ZXing's Shift_JIS/UTF-8 guess), and the centres of the three finder patterns
//! or the symbol's corners, from which an outline of the symbol is made.

use image::GrayImage;
use rxing::multi::{GenericMultipleBarcodeReader, MultipleBarcodeReader};
use rxing::{BarcodeFormat, BinaryBitmap, DecodeHints, Luma8LuminanceSource, MultiUseMultiFormatReader, common::HybridBinarizer};

use super::Hit;

/// Every QR code ZXing finds in `img` (dark on light, or light on dark with `inverted`).
/// "Nothing found" and every decoding error are an empty list; a panic is the caller's to catch.
pub(super) fn detect(img: &GrayImage, inverted: bool) -> Vec<Hit> {
    let mut luma = img.as_raw().clone();
    if inverted {
        luma.iter_mut().for_each(|v| *v = 255 - *v);
    }
    let source = Luma8LuminanceSource::new(luma, img.width(), img.height());
    let mut bitmap = BinaryBitmap::new(HybridBinarizer::new(source));
    let hints = DecodeHints {
        PossibleFormats: Some(std::iter::once(BarcodeFormat::QR_CODE).collect()),
        TryHarder: Some(true),
        ..DecodeHints::default()
    };
    let mut reader = GenericMultipleBarcodeReader::new(MultiUseMultiFormatReader::default());
    let Ok(results) = reader.decode_multiple_with_hints(&mut bitmap, &hints) else { return Vec::new() };
    results
        .iter()
        .filter(|r| *r.getBarcodeFormat() == BarcodeFormat::QR_CODE)
        .filter_map(|r| {
            let points: Vec<(f64, f64)> = r.getPoints().iter().map(|p| (f64::from(p.x), f64::from(p.y))).collect();
            Some(Hit { corners: outline(&points)?, text: Some(r.getText().to_owned()) })
        })
        .collect()
}

/// An outline of the symbol: four points in order around it. ZXing reports either the three
/// finder centres and an alignment pattern (bottom-left, top-left, top-right, alignment; its Java
/// detector) or the symbol's four corners (its C++ detector's port), both in order around the
/// symbol; with three points the fourth corner of the parallelogram is added. A finder centre is
/// 3.5 modules in from the edges, so the outline is widened by 20% about its centre to cover
/// the symbol. It tells codes apart (a second reading of the same place is not a second code);
/// which of its points is the symbol's top-left corner is not known.
fn outline(points: &[(f64, f64)]) -> Option<[(f64, f64); 4]> {
    let quad = match points {
        [a, b, c] => [*a, *b, *c, (a.0 + c.0 - b.0, a.1 + c.1 - b.1)],
        [a, b, c, d, ..] => [*a, *b, *c, *d],
        _ => return None,
    };
    let centre = (quad.iter().map(|p| p.0).sum::<f64>() / 4.0, quad.iter().map(|p| p.1).sum::<f64>() / 4.0);
    let quad = quad.map(|p| (p.0 + (p.0 - centre.0) * 0.2, p.1 + (p.1 - centre.1) * 0.2));
    quad.iter().all(|(x, y)| x.is_finite() && y.is_finite()).then_some(quad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_finder_centres_give_a_widened_parallelogram() {
        let q = outline(&[(10.0, 90.0), (10.0, 10.0), (90.0, 10.0)]).unwrap_or_else(|| unreachable!());
        assert_eq!(q, [(2.0, 98.0), (2.0, 2.0), (98.0, 2.0), (98.0, 98.0)]);
    }

    #[test]
    fn four_corners_are_kept_in_their_order_and_widened() {
        let q = outline(&[(0.0, 0.0), (100.0, 0.0), (100.0, 100.0), (0.0, 100.0), (50.0, 50.0)]).unwrap_or_else(|| unreachable!());
        assert_eq!(q, [(-10.0, -10.0), (110.0, -10.0), (110.0, 110.0), (-10.0, 110.0)]);
    }

    #[test]
    fn fewer_than_three_points_or_non_finite_ones_give_no_outline() {
        assert!(outline(&[(1.0, 2.0), (3.0, 4.0)]).is_none());
        assert!(outline(&[(f64::NAN, 2.0), (3.0, 4.0), (5.0, 6.0)]).is_none());
    }
}
