//! Arbitrary images and arbitrary bytes into the scanner never panic.
//!
//! Case counts: `MEDCARD_SCAN_PROPTEST_CASES` (default 48 per image property; the byte properties
//! run 8 times as many, they are cheap). Images cover 0x0, 1xN, Nx1, random sizes up to 260 px,
//! random pixels, sparse random blocks, and real codes under heavy random noise and damage.

mod scan_support;

use image::{DynamicImage, GrayImage, Luma, RgbImage};
use proptest::prelude::*;

fn config(scale: u32) -> ProptestConfig {
    ProptestConfig {
        cases: scan_support::cases("MEDCARD_SCAN_PROPTEST_CASES", 48).saturating_mul(scale),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn gray_from(w: u32, h: u32, pixels: &[u8]) -> GrayImage {
    GrayImage::from_fn(w, h, |x, y| {
        let i = (y as usize * w as usize + x as usize) % pixels.len().max(1);
        Luma([pixels.get(i).copied().unwrap_or(0)])
    })
}

proptest! {
    #![proptest_config(config(1))]

    #[test]
    fn random_gray_images_of_any_size_never_panic(w in 0u32..260, h in 0u32..260, pixels in prop::collection::vec(any::<u8>(), 1..512)) {
        let _ = qr::scan::scan_image(&DynamicImage::ImageLuma8(gray_from(w, h, &pixels)));
    }

    #[test]
    fn thin_and_empty_images_never_panic(long in 0u32..3000, short in 0u32..3, value in any::<u8>()) {
        let _ = qr::scan::scan_image(&DynamicImage::ImageLuma8(GrayImage::from_pixel(long, short, Luma([value]))));
        let _ = qr::scan::scan_image(&DynamicImage::ImageLuma8(GrayImage::from_pixel(short, long, Luma([value]))));
    }

    #[test]
    fn blocky_binary_images_never_panic(w in 21u32..200, h in 21u32..200, block in 1u32..8, bits in prop::collection::vec(any::<bool>(), 64..1024)) {
        // large uniform blocks look like finder patterns and modules far more often than noise
        let img = GrayImage::from_fn(w, h, |x, y| {
            let i = ((y / block) as usize * 97 + (x / block) as usize) % bits.len();
            Luma([if bits.get(i).copied().unwrap_or(false) { 0 } else { 255 }])
        });
        let _ = qr::scan::scan_image(&DynamicImage::ImageLuma8(img));
    }

    #[test]
    fn real_codes_under_heavy_noise_and_damage_never_panic(
        len in 1usize..300,
        module_px in 1u32..5,
        noise in 0u8..255,
        seed in any::<u64>(),
        cuts in prop::collection::vec((any::<u16>(), any::<u16>(), 1u16..40, 1u16..40, any::<u8>()), 0..12),
    ) {
        let mut rng = scan_support::Rng(seed);
        let text = scan_support::mc1_text(&mut rng, len);
        let code = qr::render::render_image(&text, module_px).unwrap_or_default();
        let (w, h) = (code.width() + 40, code.height() + 30);
        let mut img = GrayImage::from_pixel(w, h, Luma([255]));
        image::imageops::overlay(&mut img, &code, 20, 15);
        for p in img.pixels_mut() {
            let n = rng.below(u64::from(noise) * 2 + 1) as i32 - i32::from(noise);
            p.0[0] = (i32::from(p.0[0]) + n).clamp(0, 255) as u8;
        }
        for (x, y, cw, ch, v) in cuts {
            let (x0, y0) = (u32::from(x) % w, u32::from(y) % h);
            for yy in y0..(y0 + u32::from(ch)).min(h) {
                for xx in x0..(x0 + u32::from(cw)).min(w) {
                    img.put_pixel(xx, yy, Luma([v]));
                }
            }
        }
        let got = qr::scan::scan_image(&DynamicImage::ImageLuma8(img));
        // a code may be lost to the damage, but nothing else can appear
        prop_assert!(got.iter().all(|t| *t == text), "unexpected text from a damaged code: {got:?}");
    }

    #[test]
    fn random_colour_images_never_panic(w in 0u32..120, h in 0u32..120, seed in any::<u64>()) {
        let mut rng = scan_support::Rng(seed);
        let img = RgbImage::from_fn(w, h, |_, _| image::Rgb([rng.below(256) as u8, rng.below(256) as u8, rng.below(256) as u8]));
        let _ = qr::scan::scan_image(&DynamicImage::ImageRgb8(img));
    }
}

proptest! {
    #![proptest_config(config(8))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = qr::scan::scan_bytes(&bytes);
    }

    #[test]
    fn damaged_png_files_never_panic(len in 1usize..200, flips in prop::collection::vec((any::<u16>(), any::<u8>()), 1..16), cut in any::<u16>()) {
        let mut rng = scan_support::Rng(len as u64);
        let mut png = qr::render::render_png(&scan_support::mc1_text(&mut rng, len), 2).unwrap_or_default();
        for (at, xor) in flips {
            let n = png.len().max(1);
            if let Some(b) = png.get_mut(usize::from(at) % n) {
                *b ^= xor;
            }
        }
        png.truncate(usize::from(cut).max(8));
        let _ = qr::scan::scan_bytes(&png);
    }
}
