//! Every code we render reads back to the identical text, in zbarimg and in our own scanner.
//!
//! Cases: `MEDCARD_SCAN_RENDER_CASES` random texts (default 60): "MC1:" + base45 of 200 to 600
//! characters (our pointers), random alphanumeric texts of 1 to 700 characters, and a few
//! byte-mode texts; module size 2 to 6 px.

mod scan_support;

use scan_support::{ALPHANUMERIC, Rng};

fn random_text(rng: &mut Rng, i: u32) -> String {
    match i % 4 {
        0 | 1 => {
            let len = 200 + rng.below(401) as usize;
            scan_support::mc1_text(rng, len)
        }
        2 => {
            let len = 1 + rng.below(700) as usize;
            (0..len).map(|_| char::from(*ALPHANUMERIC.get(rng.below(ALPHANUMERIC.len() as u64) as usize).unwrap_or(&b'A'))).collect()
        }
        _ => {
            // byte mode: printable ASCII including lower case
            let len = 1 + rng.below(200) as usize;
            (0..len).map(|_| char::from(0x20 + rng.below(95) as u8)).collect()
        }
    }
}

#[test]
fn every_rendered_png_decodes_to_the_identical_text_in_zbarimg_and_our_scanner() {
    let n = scan_support::cases("MEDCARD_SCAN_RENDER_CASES", 60);
    let dir = scan_support::temp_dir("render");
    let mut rng = Rng(0x4D43_3121);
    let (mut zbar_ok, mut ours_ok) = (0u32, 0u32);
    let mut failures = Vec::new();
    for i in 0..n {
        let text = random_text(&mut rng, i);
        let module_px = 2 + rng.below(5) as u32;
        let png = qr::render::render_png(&text, module_px);
        assert!(png.is_ok(), "render failed for a {}-character text: {png:?}", text.len());
        let png = png.unwrap_or_default();
        let path = dir.join(format!("{i}.png"));
        assert!(std::fs::write(&path, &png).is_ok(), "cannot write {}", path.display());
        let zbar = scan_support::zbarimg(&path);
        if zbar.single_text().as_deref() == Some(text.as_str()) {
            zbar_ok += 1;
        } else {
            failures.push(format!("zbar: case {i} ({} chars, {module_px} px): got {:?}", text.len(), zbar.single_text()));
        }
        let ours = qr::scan::scan_bytes(&png).unwrap_or_default();
        if ours == vec![text.clone()] {
            ours_ok += 1;
        } else {
            failures.push(format!("ours: case {i} ({} chars): got {ours:?}", text.len()));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("rendered {n} codes: zbarimg read {zbar_ok} identically, our scanner {ours_ok}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_typical_pointer_length_fits_version_15() {
    // A pointer of about 280 bytes is ~420 base45 characters; 426 is version 15-Q's alphanumeric capacity.
    let mut rng = Rng(7);
    let text = scan_support::mc1_text(&mut rng, 422);
    assert_eq!(qr::render::qr_version(&text).ok(), Some(15));
    assert_eq!(qr::render::qr_info(&text).map(|i| i.mode).ok(), Some(qr::render::Mode::Alphanumeric));
}
