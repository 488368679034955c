//! Photos (JPEG) are decoded straight to their luma channel for scanning (`decode_gray`): the
//! grey picture matches the full colour decode converted to grey, codes in colour and grey
//! JPEGs are read, and damaged JPEG files never panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod scan_support;

use image::{GrayImage, Rgb, RgbImage};
use proptest::prelude::*;

/// A colour "photo" of `text`'s QR code: the code on a tinted gradient, as JPEG.
fn colour_photo(text: &str, w: u32, h: u32, quality: u8) -> Vec<u8> {
    let png = qr::render::render_png(text, 4).unwrap();
    let code = image::load_from_memory(&png).unwrap().to_rgb8();
    let mut photo = RgbImage::from_fn(w, h, |x, y| {
        let g = (x + y) * 90 / (w + h);
        Rgb([u8::try_from(140 + g).unwrap(), u8::try_from(150 + g / 2).unwrap(), u8::try_from(120 + g).unwrap()])
    });
    let (x, y) = (w.saturating_sub(code.width()) / 2, h.saturating_sub(code.height()) / 2);
    image::imageops::overlay(&mut photo, &code, i64::from(x), i64::from(y));
    let mut jpg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, quality).encode_image(&photo).unwrap();
    jpg
}

fn mean_abs_diff(a: &GrayImage, b: &GrayImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
    sum as f64 / a.as_raw().len() as f64
}

#[test]
fn a_colour_jpeg_decodes_to_the_same_grey_as_the_full_decoder_and_its_code_is_read() {
    let mut rng = scan_support::Rng(7);
    let text = scan_support::mc1_text(&mut rng, 300);
    let jpg = colour_photo(&text, 1600, 1200, 90);
    let grey = qr::scan::decode_gray(&jpg).unwrap();
    let full = qr::scan::decode_image(&jpg).unwrap().to_luma8();
    let d = mean_abs_diff(&grey, &full);
    assert!(d < 2.0, "luma channel vs colour→grey: mean difference {d:.2} levels");
    assert_eq!(qr::scan::scan_bytes(&jpg).unwrap(), [text]);
}

#[test]
fn a_grey_jpeg_and_a_png_are_read_through_the_same_path() {
    let mut rng = scan_support::Rng(8);
    let text = scan_support::mc1_text(&mut rng, 200);
    let png = qr::render::render_png(&text, 6).unwrap();
    let grey = image::load_from_memory(&png).unwrap().to_luma8();
    let mut jpg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, 85).encode_image(&grey).unwrap();
    assert_eq!(qr::scan::decode_gray(&jpg).unwrap().dimensions(), grey.dimensions());
    assert_eq!(qr::scan::scan_bytes(&jpg).unwrap(), std::slice::from_ref(&text));
    assert_eq!(qr::scan::decode_gray(&png).unwrap(), grey, "a PNG is decoded, then converted");
    assert_eq!(qr::scan::scan_bytes(&png).unwrap(), [text]);
}

#[test]
fn a_jpeg_larger_than_the_limit_is_refused_from_its_header() {
    // A valid header claiming 40000 x 40000 pixels (over MAX_INPUT_SIDE) and no image data.
    let mut jpg = colour_photo("MC1:X", 64, 64, 80);
    let sof = jpg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpg[sof + 5..sof + 9].copy_from_slice(&[0x9C, 0x40, 0x9C, 0x40]);
    match qr::scan::decode_gray(&jpg) {
        Err(qr::scan::ScanError::TooLarge { width: 40000, height: 40000, .. }) => {}
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: scan_support::cases("MEDCARD_SCAN_PROPTEST_CASES", 48) * 4, ..ProptestConfig::default() })]

    #[test]
    fn damaged_jpeg_files_never_panic(flips in prop::collection::vec((any::<u16>(), any::<u8>()), 1..16), cut in any::<u16>()) {
        let mut jpg = colour_photo("MC1:DAMAGED", 96, 96, 70);
        for (at, xor) in flips {
            let n = jpg.len();
            if let Some(b) = jpg.get_mut(usize::from(at) % n) {
                *b ^= xor;
            }
        }
        jpg.truncate(usize::from(cut).max(4));
        let _ = qr::scan::decode_gray(&jpg);
        let _ = qr::scan::scan_bytes(&jpg);
    }
}
