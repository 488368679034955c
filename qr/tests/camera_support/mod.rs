//! A camera sequence, generated like a recording of a clinician holding up a printed wristband
//! code: the empty scene, the code moving into view from the right, then held still out of
//! focus while the camera's autofocus hunts, then sharp. 1280x720 grey frames at 30 frames per
//! second, with a lighting gradient and sensor noise on every frame. Shared by the camera-loop
//! test and `examples/camera_sequence.rs` (which measures it in a release build).

use image::{GrayImage, Luma};

/// The frames and what a scanner should read from them.
pub struct Sequence {
    /// 1280x720 frames, in capture order.
    pub frames: Vec<GrayImage>,
    /// Index of the first frame in which the code is in view and in focus.
    pub first_sharp: usize,
    /// The code's text.
    pub text: String,
}

/// Frames per phase: empty scene, moving into view, out of focus, sharp.
pub const PHASES: [usize; 4] = [6, 8, 8, 14];

struct Noise(u64);
impl Noise {
    fn next(&mut self) -> i32 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % 25) as i32 - 12
    }
}

/// The sequence for a code of `text` at `module_px` pixels per module.
#[must_use]
pub fn wristband(text: &str, module_px: u32, seed: u64) -> Sequence {
    let code = qr::render::render_image(text, module_px).unwrap_or_else(|e| unreachable!("render: {e}"));
    let (w, h) = (1280u32, 720u32);
    let rest_x = i64::from((w - code.width()) / 2);
    let rest_y = i64::from((h - code.height()) / 2);
    let mut noise = Noise(seed);
    let mut frames = Vec::new();
    let total: usize = PHASES.iter().sum();
    for i in 0..total {
        let mut frame = GrayImage::from_fn(w, h, |x, y| Luma([(150.0 + 60.0 * f64::from(x + y) / f64::from(w + h)) as u8]));
        let (moving, focus) = (PHASES[0], PHASES[0] + PHASES[1]);
        let sharp = focus + PHASES[2];
        if i >= moving {
            // into view from the right edge, then at rest
            let x = if i < focus {
                let t = (i - moving + 1) as f64 / PHASES[1] as f64;
                f64::from(w) - t * (f64::from(w) - rest_x as f64)
            } else {
                rest_x as f64
            };
            // out of focus until `sharp`: blur radius falling from 6 to 3 px, then 0.6 px
            let sigma = if i < sharp { 6.0 - 3.0 * (i.saturating_sub(focus)) as f32 / PHASES[2] as f32 } else { 0.6 };
            let patch = image::imageops::blur(&code, sigma);
            // printed on a wristband under ward light: ink at about 40, paper at about 215
            let patch = GrayImage::from_fn(patch.width(), patch.height(), |px, py| {
                Luma([(40.0 + f64::from(patch.get_pixel(px, py).0[0]) * 175.0 / 255.0) as u8])
            });
            image::imageops::overlay(&mut frame, &patch, x as i64, rest_y);
        }
        for p in frame.pixels_mut() {
            p.0[0] = (i32::from(p.0[0]) + noise.next()).clamp(0, 255) as u8;
        }
        frames.push(frame);
    }
    Sequence { frames, first_sharp: PHASES[0] + PHASES[1] + PHASES[2], text: text.to_owned() }
}
