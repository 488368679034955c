//! The scanner's strategies, each proven on a synthetic image made for it: several codes in one
//! image, light-on-dark, rotation, tiny and huge images, noise and blur, and the size limits.

mod scan_support;

use image::{DynamicImage, GrayImage, Luma};
use qr::scan::{ScanError, ScanOptions, Scanner};
use scan_support::Rng;

/// A scanner without a time budget: which codes a test finds must not depend on machine load.
fn unbudgeted() -> Scanner {
    Scanner::new(ScanOptions::unbudgeted())
}

fn code(text: &str, module_px: u32) -> GrayImage {
    let img = qr::render::render_image(text, module_px);
    assert!(img.is_ok(), "render {text:?}: {img:?}");
    img.unwrap_or_default()
}

fn canvas(w: u32, h: u32, luma: u8) -> GrayImage {
    GrayImage::from_pixel(w, h, Luma([luma]))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn three_codes_on_one_canvas_are_all_returned() {
    let texts = ["MC1:FIRST CODE 111", "MC1:SECOND/CODE-222", "MC1:THIRD+CODE 333 $%*"];
    let mut img = canvas(900, 400, 255);
    for (i, t) in texts.iter().enumerate() {
        image::imageops::overlay(&mut img, &code(t, 6), 20 + 300 * i as i64, 40);
    }
    let got = unbudgeted().scan_image(&DynamicImage::ImageLuma8(img));
    assert_eq!(sorted(got), sorted(texts.iter().map(|t| t.to_string()).collect()));
}

#[test]
fn two_codes_of_different_sizes_and_the_same_text_twice_are_returned_once_each() {
    let mut img = canvas(800, 500, 230);
    image::imageops::overlay(&mut img, &code("MC1:BIG", 10), 10, 10);
    image::imageops::overlay(&mut img, &code("MC1:SMALL", 4), 500, 300);
    image::imageops::overlay(&mut img, &code("MC1:SMALL", 3), 450, 30);
    let got = unbudgeted().scan_image(&DynamicImage::ImageLuma8(img));
    assert_eq!(sorted(got), vec!["MC1:BIG".to_string(), "MC1:SMALL".to_string()]);
}

#[test]
fn a_light_on_dark_code_decodes_through_inversion() {
    let mut img = code("MC1:INVERTED 42", 5);
    image::imageops::invert(&mut img);
    let report = unbudgeted().scan_report(&DynamicImage::ImageLuma8(img));
    assert_eq!(report.texts(), vec!["MC1:INVERTED 42".to_string()]);
    assert!(report.codes.iter().all(|f| f.attempt.inverted), "found by an inverted attempt: {report:?}");
}

fn rotated(img: &GrayImage, degrees: f64) -> GrayImage {
    // rotate about the centre on a larger white canvas with bilinear sampling
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    let side = (w.hypot(h) + 20.0).ceil() as u32;
    let (s, c) = degrees.to_radians().sin_cos();
    let half = f64::from(side) / 2.0;
    GrayImage::from_fn(side, side, |x, y| {
        let (dx, dy) = (f64::from(x) - half, f64::from(y) - half);
        let (sx, sy) = (c * dx - s * dy + w / 2.0, s * dx + c * dy + h / 2.0);
        if sx < 0.0 || sy < 0.0 || sx >= w - 1.0 || sy >= h - 1.0 {
            return Luma([255]);
        }
        let (x0, y0) = (sx.floor() as u32, sy.floor() as u32);
        let (fx, fy) = (sx - sx.floor(), sy - sy.floor());
        let p = |x: u32, y: u32| f64::from(img.get_pixel_checked(x, y).map_or(255, |p| p.0[0]));
        let v = (p(x0, y0) * (1.0 - fx) + p(x0 + 1, y0) * fx) * (1.0 - fy) + (p(x0, y0 + 1) * (1.0 - fx) + p(x0 + 1, y0 + 1) * fx) * fy;
        Luma([v.round().clamp(0.0, 255.0) as u8])
    })
}

#[test]
fn codes_rotated_by_right_and_arbitrary_angles_decode() {
    let text = "MC1:ROTATED 0123456789";
    let base = code(text, 5);
    for degrees in [90.0, 180.0, 270.0, 17.0, 30.0, 45.0, 133.0, 200.0] {
        let img = rotated(&base, degrees);
        let got = unbudgeted().scan_image(&DynamicImage::ImageLuma8(img));
        assert_eq!(got, vec![text.to_string()], "rotated by {degrees} degrees");
    }
}

#[test]
fn a_tiny_code_at_one_pixel_per_module_is_read_by_upscaling() {
    let text = "MC1:TINY ONE PIXEL MODULES";
    let img = code(text, 1);
    assert!(img.width() < 60, "the code is {} px wide", img.width());
    let report = unbudgeted().scan_report(&DynamicImage::ImageLuma8(img));
    assert_eq!(report.texts(), vec![text.to_string()]);
}

#[test]
fn a_small_code_in_a_huge_photo_is_read_after_downscaling() {
    let text = "MC1:LARGE PHOTO 6000X4000";
    let mut img = canvas(6000, 4000, 200);
    image::imageops::overlay(&mut img, &code(text, 16), 2500, 1500);
    let report = unbudgeted().scan_report(&DynamicImage::ImageLuma8(img));
    assert_eq!(report.texts(), vec![text.to_string()]);
    // the outline is in the coordinates of the 6000x4000 input: it covers the symbol (from
    // (2564, 1564), 25 modules of 16 px) and is not much larger
    let outline = report.codes.first().map(|f| f.corners).unwrap_or_default();
    let (xs, ys): (Vec<f64>, Vec<f64>) = outline.iter().copied().unzip();
    let (x0, x1) = (xs.iter().copied().fold(f64::MAX, f64::min), xs.iter().copied().fold(f64::MIN, f64::max));
    let (y0, y1) = (ys.iter().copied().fold(f64::MAX, f64::min), ys.iter().copied().fold(f64::MIN, f64::max));
    assert!(x0 < 2580.0 && y0 < 1580.0 && x1 > 2948.0 && y1 > 1948.0, "outline {outline:?}");
    assert!(x0 > 2400.0 && y0 > 1400.0 && x1 < 3120.0 && y1 < 2120.0, "outline {outline:?}");
}

#[test]
fn a_code_under_uneven_light_noise_and_blur_decodes() {
    let text = "MC1:NOISY 6BFOXN*TS0BI$ZD.P9UOL97O4-2HH77HRM3DSPTLRR+%3";
    let mut rng = Rng(99);
    let mut img = canvas(640, 480, 0);
    let c = code(text, 4);
    image::imageops::overlay(&mut img, &c, 150, 80);
    // a light gradient from left (dim) to right (bright), dark modules stay darker than light ones
    let img = GrayImage::from_fn(640, 480, |x, y| {
        let base = f64::from(img.get_pixel(x, y).0[0]);
        let light = 0.45 + 0.55 * f64::from(x) / 640.0;
        let noise = rng.below(41) as f64 - 20.0;
        Luma([(30.0 + base * 0.8 * light + noise).clamp(0.0, 255.0) as u8])
    });
    let img = image::imageops::blur(&img, 1.2);
    assert_eq!(unbudgeted().scan_image(&DynamicImage::ImageLuma8(img)), vec![text.to_string()]);
}

#[test]
fn an_image_without_a_code_gives_no_text_and_no_error() {
    let mut rng = Rng(5);
    let img = GrayImage::from_fn(320, 240, |_, _| Luma([rng.below(256) as u8]));
    let png = {
        let mut out = std::io::Cursor::new(Vec::new());
        assert!(DynamicImage::ImageLuma8(img).write_to(&mut out, image::ImageFormat::Png).is_ok());
        out.into_inner()
    };
    assert_eq!(qr::scan::scan_bytes(&png).ok(), Some(Vec::new()));
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

/// A PNG claiming `w`x`h` 8-bit gray pixels, with a few bytes of image data and no more.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit grayscale
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn an_absurdly_large_image_is_refused_from_its_header() {
    let got = qr::scan::scan_bytes(&png_header(50_000, 50_000));
    assert!(matches!(got, Err(ScanError::TooLarge { width: 50_000, height: 50_000, .. })), "{got:?}");
    let got = qr::scan::scan_bytes(&png_header(20_000, 20_000));
    assert!(matches!(got, Err(ScanError::TooLarge { .. })), "400 Mpx is over the pixel limit: {got:?}");
}

#[test]
fn bytes_that_are_no_image_are_an_image_error() {
    assert!(matches!(qr::scan::scan_bytes(b"MC1:NOT AN IMAGE"), Err(ScanError::Image(_))));
    assert!(matches!(qr::scan::scan_bytes(&[]), Err(ScanError::Image(_))));
}

#[test]
fn exhaustive_scanning_runs_every_attempt_and_finds_the_same_code() {
    let img = DynamicImage::ImageLuma8(code("MC1:EXHAUSTIVE", 4));
    let quick = unbudgeted().scan_report(&img);
    let all = Scanner::new(ScanOptions { exhaustive: true, ..ScanOptions::unbudgeted() }).scan_report(&img);
    assert_eq!(quick.attempts, 1, "a clean render is read by the first attempt");
    assert!(all.attempts > quick.attempts);
    assert_eq!(all.texts(), quick.texts());
}

#[test]
fn a_code_with_few_pixels_per_module_in_a_big_photo_is_read_at_full_resolution() {
    // 3 px per module in a 4000x3000 photo: 1.2 px per module after the downscale to 1600 px,
    // too few for any decoder, so only the view taken from the full-resolution input reads it
    let mut rng = Rng(31);
    let text = scan_support::mc1_text(&mut rng, 300);
    let mut img = canvas(4000, 3000, 210);
    image::imageops::overlay(&mut img, &code(&text, 3), 1800, 1300);
    let report = unbudgeted().scan_report(&DynamicImage::ImageLuma8(img));
    assert_eq!(report.texts(), vec![text]);
    assert!(report.codes.iter().all(|f| f.attempt.view.scale > 1.0), "read from the full-resolution view: {report:?}");
}

#[test]
fn an_attempt_that_overruns_its_time_limit_stops_the_scan_and_says_so() {
    // a code in a large frame, so that the first attempt takes milliseconds, not microseconds
    let mut frame = canvas(1600, 1200, 220);
    image::imageops::overlay(&mut frame, &code("MC1:TIME LIMIT", 8), 600, 400);
    let img = DynamicImage::ImageLuma8(frame);
    let options = ScanOptions { attempt_timeout: Some(std::time::Duration::ZERO), ..ScanOptions::unbudgeted() };
    let report = Scanner::new(options).scan_report(&img);
    assert!(report.timed_out, "a zero limit is overrun by the first attempt: {report:?}");
    assert_eq!(report.attempts, 1);
    let unlimited = ScanOptions { attempt_timeout: None, ..ScanOptions::unbudgeted() };
    assert_eq!(Scanner::new(unlimited).scan_image(&img), vec!["MC1:TIME LIMIT".to_string()]);
}

#[test]
fn a_zero_budget_runs_only_the_first_attempt_and_says_it_stopped_at_the_budget() {
    let mut rng = Rng(17);
    let noise = DynamicImage::ImageLuma8(GrayImage::from_fn(640, 480, |_, _| Luma([rng.below(256) as u8])));
    let options = ScanOptions { budget: Some(std::time::Duration::ZERO), ..ScanOptions::default() };
    let report = Scanner::new(options).scan_report(&noise);
    assert_eq!(report.attempts, 1, "{report}");
    assert!(report.over_budget, "{report}");
    let all = unbudgeted().scan_report(&noise);
    assert!(all.attempts > 1 && !all.over_budget, "{all}");
}

#[test]
fn four_codes_in_one_picture_are_each_reported() {
    let texts = ["MC1:WARD A", "MC1:WARD B", "MC1:WARD C", "MC1:WARD D"];
    let mut img = canvas(900, 700, 225);
    for (i, (t, degrees)) in texts.iter().zip([3.0, -4.0, 6.0, -2.0]).enumerate() {
        let c = rotated(&code(t, 5), degrees);
        image::imageops::overlay(&mut img, &c, 30 + 440 * (i as i64 % 2), 20 + 340 * (i as i64 / 2));
    }
    let report = unbudgeted().scan_report(&DynamicImage::ImageLuma8(img));
    assert_eq!(sorted(report.texts()), sorted(texts.iter().map(|t| t.to_string()).collect()), "{report}");
}
