//! Geometric views of the working image: scaling and rotation, with the map back to the
//! coordinates of the image the caller passed in (to tell which detections are the same code).

use image::GrayImage;

/// A scaled and rotated view of the working image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    /// Scale relative to the working image (0.5 = half size).
    pub scale: f64,
    /// Rotation in degrees, counter-clockwise, about the image centre.
    pub degrees: f64,
}

/// Resizes `gray` by `scale` (area averaging down, bilinear up). Never returns a 0-sized image
/// for a non-empty input.
#[must_use]
pub fn scale(gray: &GrayImage, scale: f64) -> GrayImage {
    if (scale - 1.0).abs() < 1e-9 {
        return gray.clone();
    }
    let nw = ((f64::from(gray.width()) * scale).round() as u32).max(1);
    let nh = ((f64::from(gray.height()) * scale).round() as u32).max(1);
    if scale < 1.0 {
        image::imageops::thumbnail(gray, nw, nh)
    } else {
        image::imageops::resize(gray, nw, nh, image::imageops::FilterType::Triangle)
    }
}

/// Rotates `gray` by `degrees` counter-clockwise about its centre, on a canvas large enough for
/// the whole image; the uncovered corners are filled with `fill`. Right angles are exact.
#[must_use]
pub fn rotate(gray: &GrayImage, degrees: f64, fill: u8) -> GrayImage {
    let d = degrees.rem_euclid(360.0);
    if d.abs() < 1e-9 {
        return gray.clone();
    }
    if (d - 90.0).abs() < 1e-9 {
        return image::imageops::rotate270(gray); // rotate270 turns clockwise by 270 = ccw by 90
    }
    if (d - 180.0).abs() < 1e-9 {
        return image::imageops::rotate180(gray);
    }
    if (d - 270.0).abs() < 1e-9 {
        return image::imageops::rotate90(gray);
    }
    let (w, h) = (f64::from(gray.width()), f64::from(gray.height()));
    let (s, c) = d.to_radians().sin_cos();
    let nw = (w * c.abs() + h * s.abs()).ceil().max(1.0);
    let nh = (w * s.abs() + h * c.abs()).ceil().max(1.0);
    let (cx, cy, ncx, ncy) = (w / 2.0, h / 2.0, nw / 2.0, nh / 2.0);
    GrayImage::from_fn(nw as u32, nh as u32, |x, y| {
        // inverse map: destination pixel centre back into the source (y axis points down, so a
        // counter-clockwise turn on screen is a clockwise one in these coordinates)
        let (dx, dy) = (f64::from(x) + 0.5 - ncx, f64::from(y) + 0.5 - ncy);
        let sx = c * dx - s * dy + cx - 0.5;
        let sy = s * dx + c * dy + cy - 0.5;
        image::Luma([bilinear(gray, sx, sy).unwrap_or(fill)])
    })
}

fn bilinear(gray: &GrayImage, x: f64, y: f64) -> Option<u8> {
    let (w, h) = (gray.width(), gray.height());
    if x < -0.5 || y < -0.5 || x > f64::from(w) - 0.5 || y > f64::from(h) - 0.5 {
        return None;
    }
    let x0 = x.floor().clamp(0.0, f64::from(w.saturating_sub(1)));
    let y0 = y.floor().clamp(0.0, f64::from(h.saturating_sub(1)));
    let (fx, fy) = ((x - x0).clamp(0.0, 1.0), (y - y0).clamp(0.0, 1.0));
    let (x0, y0) = (x0 as u32, y0 as u32);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let p = |x: u32, y: u32| f64::from(gray.get_pixel_checked(x, y).map_or(0, |p| p.0[0]));
    let top = p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx;
    let bottom = p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx;
    Some((top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8)
}

impl View {
    /// Maps a point of this view back to working-image coordinates (`w`×`h` working image).
    #[must_use]
    pub fn to_working(&self, x: f64, y: f64, w: f64, h: f64) -> (f64, f64) {
        let d = self.degrees.rem_euclid(360.0);
        let (sw, sh) = (w * self.scale, h * self.scale);
        let (s, c) = d.to_radians().sin_cos();
        let nw = (sw * c.abs() + sh * s.abs()).round();
        let nh = (sw * s.abs() + sh * c.abs()).round();
        let (dx, dy) = (x - nw / 2.0, y - nh / 2.0);
        let sx = c * dx - s * dy + sw / 2.0;
        let sy = s * dx + c * dy + sh / 2.0;
        (sx / self.scale, sy / self.scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_angle_rotations_keep_every_pixel() {
        let img = GrayImage::from_fn(3, 2, |x, y| image::Luma([(y * 3 + x) as u8]));
        let r = rotate(&img, 90.0, 255);
        assert_eq!((r.width(), r.height()), (2, 3));
        // counter-clockwise: the top-right pixel goes to the top-left
        assert_eq!(r.get_pixel(0, 0).0, [2]);
        assert_eq!(rotate(&rotate(&img, 180.0, 0), 180.0, 0), img);
    }

    #[test]
    fn arbitrary_rotation_grows_the_canvas_and_fills_corners() {
        let img = GrayImage::from_pixel(100, 100, image::Luma([0]));
        let r = rotate(&img, 45.0, 255);
        assert!(r.width() >= 141 && r.width() <= 142);
        assert_eq!(r.get_pixel(0, 0).0, [255]);
        assert_eq!(r.get_pixel(70, 70).0, [0]);
    }

    #[test]
    fn view_maps_points_back_to_the_working_image() {
        for degrees in [0.0, 90.0, 180.0, 270.0, 30.0] {
            let v = View { scale: 2.0, degrees };
            let img = GrayImage::new(100, 60);
            let big = rotate(&scale(&img, 2.0), degrees, 0);
            let (x, y) = v.to_working(f64::from(big.width()) / 2.0, f64::from(big.height()) / 2.0, 100.0, 60.0);
            assert!((x - 50.0).abs() < 1.5 && (y - 30.0).abs() < 1.5, "{degrees}: {x},{y}");
        }
    }
}
