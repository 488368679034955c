//! Binarization of a grayscale image into a dark/light bitmap for the QR detector.
//!
//! Three families, because no single one wins on camera photos:
//! - [`otsu`]: one global threshold from the histogram (N. Otsu, 1979). Best on evenly lit
//!   prints and screenshots; fails under a light gradient or a shadow.
//! - [`local_mean`]: a pixel is dark if it is darker than the mean of its `window`×`window`
//!   neighbourhood by more than `offset` (integral image, O(1) per pixel). Handles gradients;
//!   the offset keeps flat areas light instead of salt-and-pepper noise.
//! - [`sauvola`]: threshold `m · (1 + k · (s / 128 − 1))` from the local mean `m` and standard
//!   deviation `s` (J. Sauvola, M. Pietikäinen, 2000). Keeps low-contrast dark modules that a
//!   fixed offset loses.

/// A bitmap the size of the image: `true` = dark module pixel.
#[derive(Debug, Clone)]
pub struct Bitmap {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major, `width * height` entries.
    pub dark: Vec<bool>,
}

impl Bitmap {
    /// Whether the pixel at (x, y) is dark; outside the image counts as light.
    #[must_use]
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.width && self.dark.get(y * self.width + x).copied().unwrap_or(false)
    }

    /// The same bitmap with dark and light swapped (light-on-dark codes).
    #[must_use]
    pub fn inverted(&self) -> Bitmap {
        Bitmap { width: self.width, height: self.height, dark: self.dark.iter().map(|d| !d).collect() }
    }
}

/// Otsu's global threshold of `gray` (the level maximising between-class variance).
#[must_use]
pub fn otsu_level(gray: &image::GrayImage) -> u8 {
    let mut hist = [0u64; 256];
    for p in gray.as_raw() {
        if let Some(h) = hist.get_mut(usize::from(*p)) {
            *h += 1;
        }
    }
    let total: u64 = hist.iter().sum();
    let sum_all: f64 = hist.iter().enumerate().map(|(i, c)| i as f64 * *c as f64).sum();
    let (mut w_b, mut sum_b, mut best, mut best_t) = (0f64, 0f64, -1f64, 127u8);
    for (t, c) in hist.iter().enumerate() {
        w_b += *c as f64;
        if w_b == 0.0 {
            continue;
        }
        let w_f = total as f64 - w_b;
        if w_f == 0.0 {
            break;
        }
        sum_b += t as f64 * *c as f64;
        let m_b = sum_b / w_b;
        let m_f = (sum_all - sum_b) / w_f;
        let between = w_b * w_f * (m_b - m_f) * (m_b - m_f);
        if between > best {
            best = between;
            best_t = u8::try_from(t).unwrap_or(u8::MAX);
        }
    }
    best_t
}

/// Global Otsu binarization: dark where luma <= the Otsu level.
#[must_use]
pub fn otsu(gray: &image::GrayImage) -> Bitmap {
    let t = otsu_level(gray);
    Bitmap { width: gray.width() as usize, height: gray.height() as usize, dark: gray.as_raw().iter().map(|p| *p <= t).collect() }
}

/// Summed-area table of luma (and optionally luma²) with one extra zero row and column.
struct Integral {
    w1: usize,
    sum: Vec<u32>,
    sq: Vec<u64>,
}

impl Integral {
    /// `squares`: also build the table of squares (Sauvola needs it, local mean does not).
    /// u32 sums hold any image up to 16.8 Mpx (255 × 2²⁴ < 2³²); the scanner's views are smaller.
    fn new(gray: &image::GrayImage, squares: bool) -> Integral {
        let (w, h) = (gray.width() as usize, gray.height() as usize);
        let w1 = w + 1;
        let mut sum = vec![0u32; w1 * (h + 1)];
        let mut sq = if squares { vec![0u64; w1 * (h + 1)] } else { Vec::new() };
        for (y, row) in gray.as_raw().chunks_exact(w.max(1)).enumerate().take(h) {
            let (above, here) = sum.split_at_mut((y + 1) * w1);
            let above = above.get(y * w1..).unwrap_or_default();
            let mut rs = 0u32;
            for ((p, a), out) in row.iter().zip(above.iter().skip(1)).zip(here.iter_mut().skip(1)) {
                rs = rs.wrapping_add(u32::from(*p));
                *out = a.wrapping_add(rs);
            }
            if squares {
                let (above, here) = sq.split_at_mut((y + 1) * w1);
                let above = above.get(y * w1..).unwrap_or_default();
                let mut rq = 0u64;
                for ((p, a), out) in row.iter().zip(above.iter().skip(1)).zip(here.iter_mut().skip(1)) {
                    rq += u64::from(*p) * u64::from(*p);
                    *out = a + rq;
                }
            }
        }
        Integral { w1, sum, sq }
    }

    fn row<'a, T>(&self, table: &'a [T], y: usize) -> &'a [T] {
        table.get(y * self.w1..(y + 1) * self.w1).unwrap_or_default()
    }
}

/// Binarizes with `dark(luma, window sum, window sum of squares, window pixel count)`.
fn local<F: FnMut(u8, u32, u64, u32) -> bool>(gray: &image::GrayImage, window: usize, squares: bool, mut dark: F) -> Bitmap {
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    let integral = Integral::new(gray, squares);
    let r = (window / 2).max(1);
    let mut out = Vec::with_capacity(w * h);
    for (y, row) in gray.as_raw().chunks_exact(w.max(1)).enumerate().take(h) {
        let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(h));
        let (top, bottom) = (integral.row(&integral.sum, y0), integral.row(&integral.sum, y1));
        let (qtop, qbottom) = (integral.row(&integral.sq, y0), integral.row(&integral.sq, y1));
        let rows = (y1 - y0) as u32;
        for (x, p) in row.iter().enumerate() {
            let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(w));
            let at = |t: &[u32], i: usize| t.get(i).copied().unwrap_or(0);
            let s = at(bottom, x1).wrapping_sub(at(bottom, x0)).wrapping_sub(at(top, x1)).wrapping_add(at(top, x0));
            let q = if squares {
                let at = |t: &[u64], i: usize| t.get(i).copied().unwrap_or(0);
                (at(qbottom, x1) + at(qtop, x0)).saturating_sub(at(qbottom, x0) + at(qtop, x1))
            } else {
                0
            };
            out.push(dark(*p, s, q, rows * (x1 - x0) as u32));
        }
    }
    Bitmap { width: w, height: h, dark: out }
}

/// Local-mean binarization (see the module docs); `offset` in luma levels.
#[must_use]
pub fn local_mean(gray: &image::GrayImage, window: usize, offset: u8) -> Bitmap {
    let offset = u64::from(offset);
    // p < sum/n − offset  ⇔  (p + offset)·n < sum, in integers
    local(gray, window, false, |p, s, _, n| (u64::from(p) + offset) * u64::from(n) < u64::from(s))
}

/// Sauvola binarization with sensitivity `k` (0.2 to 0.5 is usual).
#[must_use]
pub fn sauvola(gray: &image::GrayImage, window: usize, k: f64) -> Bitmap {
    local(gray, window, true, |p, s, q, n| {
        let n = f64::from(n.max(1));
        let mean = f64::from(s) / n;
        let var = (q as f64 / n - mean * mean).max(0.0);
        // p <= m·(1 + k·(σ/128 − 1))  ⇔  a <= m·k·σ/128 with a = p − m·(1 − k); squared, no sqrt
        let a = f64::from(p) - mean * (1.0 - k);
        a <= 0.0 || (a * 128.0) * (a * 128.0) <= (mean * k) * (mean * k) * var
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_image() -> image::GrayImage {
        image::GrayImage::from_fn(40, 10, |x, _| if x < 20 { image::Luma([30]) } else { image::Luma([220]) })
    }

    #[test]
    fn otsu_separates_two_levels() {
        let img = split_image();
        let t = otsu_level(&img);
        assert!((30..220).contains(&t), "threshold {t} between the two levels");
        let b = otsu(&img);
        assert!(b.is_dark(0, 0) && !b.is_dark(39, 9));
    }

    #[test]
    fn local_mean_keeps_flat_areas_light() {
        let flat = image::GrayImage::from_pixel(30, 30, image::Luma([128]));
        assert!(local_mean(&flat, 9, 5).dark.iter().all(|d| !d));
        assert!(sauvola(&flat, 9, 0.3).dark.iter().all(|d| !d));
    }

    #[test]
    fn local_methods_find_the_dark_side_of_an_edge() {
        let img = split_image();
        for b in [local_mean(&img, 9, 5), sauvola(&img, 9, 0.3)] {
            assert!(b.is_dark(18, 5) && !b.is_dark(21, 5));
        }
    }

    #[test]
    fn empty_image_gives_empty_bitmap() {
        let img = image::GrayImage::new(0, 0);
        assert!(otsu(&img).dark.is_empty());
        assert!(local_mean(&img, 9, 5).dark.is_empty());
    }
}
