//! Scanning from a camera (cargo feature `camera`): V4L2 through `linuxvideo` (pure Rust, no C
//! library to build). A thread reads frames (YUYV or MJPEG, about 1280×720), keeps the luma,
//! sends a small preview to the UI and offers every frame to the QR scanner's live loop
//! (`qr::scan::live`), which scans the newest frame with the camera budget (30 ms), never a
//! queue, until exactly one code is read; several codes in view are reported with their count,
//! and scanning goes on. The frame decoding is a pure function with tests, the live loop is
//! tested on generated frame sequences in the qr crate; only the V4L2 device loop needs a camera
//! and is exercised by hand.
//!
//! Without the feature the app builds and runs the same, with image files and pasted text.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};

use image::GrayImage;

/// What the camera thread reports.
#[derive(Debug)]
pub enum CamEvent {
    /// A downscaled preview of the current frame.
    Preview(egui::ColorImage),
    /// One QR code was read: its text.
    Found(String),
    /// Several codes are in view (how many): the bedside does not guess which one was meant.
    Several(usize),
    /// The camera failed or stopped: what to do.
    Failed(String),
}

/// A video capture device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraInfo {
    /// `/dev/videoN`.
    pub path: PathBuf,
    /// The device's name.
    pub name: String,
}

/// The cameras on this machine (those that capture video).
#[must_use]
pub fn cameras() -> Vec<CameraInfo> {
    let Ok(list) = linuxvideo::list() else { return Vec::new() };
    list.filter_map(Result::ok)
        .filter(|d| d.supported_buf_types().contains(linuxvideo::BufTypes::VIDEO_CAPTURE))
        .filter_map(|d| {
            let name = d.capabilities().ok()?.card().to_owned();
            Some(CameraInfo { path: d.path().ok()?, name })
        })
        .collect()
}

/// A running camera scan; dropping it stops the camera.
pub struct CameraScan {
    rx: Receiver<CamEvent>,
    stop: Arc<AtomicBool>,
}

impl Drop for CameraScan {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl CameraScan {
    /// Starts scanning with the camera at `path`; `wake` repaints the UI.
    #[must_use]
    pub fn start(path: &Path, wake: impl Fn() + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (path.to_owned(), stop.clone());
        let spawned = std::thread::Builder::new().name("camera".into()).spawn(move || {
            if let Err(e) = run(&p, &tx, &s, &wake) {
                let _ = tx.send(CamEvent::Failed(format!(
                    "the camera {} stopped: {e}. Check it is connected and not used by another program, or open an image file instead",
                    p.display()
                )));
            }
            wake();
        });
        if spawned.is_err() {
            let (tx2, rx2) = mpsc::channel();
            let _ = tx2.send(CamEvent::Failed("could not start the camera thread".into()));
            return CameraScan { rx: rx2, stop };
        }
        CameraScan { rx, stop }
    }

    /// What happened since the last call.
    pub fn poll(&mut self) -> Vec<CamEvent> {
        self.rx.try_iter().collect()
    }
}

/// Frame formats the scanner reads, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFormat {
    /// YUV 4:2:2 interleaved (Y0 U Y1 V): the luma is every other byte.
    Yuyv,
    /// Motion JPEG: each frame a JPEG.
    Mjpeg,
}

/// The luma plane of one frame, or why not. Pure; never panics on short or odd buffers.
///
/// # Errors
/// A frame too short for its size, or an undecodable JPEG.
pub fn frame_luma(format: FrameFormat, data: &[u8], width: u32, height: u32, bytes_per_line: u32) -> Result<GrayImage, String> {
    match format {
        FrameFormat::Yuyv => {
            let stride = usize::try_from(bytes_per_line.max(width.saturating_mul(2))).map_err(|e| e.to_string())?;
            let (w, h) = (usize::try_from(width).map_err(|e| e.to_string())?, usize::try_from(height).map_err(|e| e.to_string())?);
            let need = stride.checked_mul(h).ok_or("frame size overflows")?;
            if data.len() < need || w == 0 || h == 0 {
                return Err(format!("short frame: {} bytes for {width}x{height}", data.len()));
            }
            let mut luma = Vec::with_capacity(w * h);
            for row in data.chunks(stride).take(h) {
                luma.extend(row.iter().step_by(2).take(w));
            }
            GrayImage::from_raw(width, height, luma).ok_or_else(|| "frame size mismatch".to_owned())
        }
        FrameFormat::Mjpeg => image::load_from_memory_with_format(data, image::ImageFormat::Jpeg)
            .map(|i| i.to_luma8())
            .map_err(|e| format!("undecodable camera frame: {e}")),
    }
}

fn run(path: &Path, tx: &Sender<CamEvent>, stop: &AtomicBool, wake: &dyn Fn()) -> Result<(), String> {
    use linuxvideo::format::{PixFormat, PixelFormat};
    let device = linuxvideo::Device::open(path).map_err(|e| e.to_string())?;
    let formats: Vec<PixelFormat> =
        device.formats(linuxvideo::BufType::VIDEO_CAPTURE).filter_map(Result::ok).map(|f| f.pixel_format()).collect();
    let (pixel, format) = if formats.contains(&PixelFormat::YUYV) {
        (PixelFormat::YUYV, FrameFormat::Yuyv)
    } else if formats.contains(&PixelFormat::MJPG) {
        (PixelFormat::MJPG, FrameFormat::Mjpeg)
    } else {
        return Err(format!("it offers none of the formats MedCard reads (YUYV, MJPEG): {formats:?}"));
    };
    let capture = device.video_capture(PixFormat::new(1280, 720, pixel)).map_err(|e| e.to_string())?;
    let (w, h, bpl) = (capture.format().width(), capture.format().height(), capture.format().bytes_per_line());
    let mut stream = capture.into_stream().map_err(|e| e.to_string())?;
    let mut live = qr::scan::live::LiveScanner::start(qr::scan::ScanOptions::camera(), || {}).map_err(|e| e.to_string())?;
    let mut several = 0;
    while !stop.load(Ordering::SeqCst) {
        let frame = stream.dequeue(|buf| Ok(frame_luma(format, &buf, w, h, bpl))).map_err(|e| e.to_string())?;
        let Ok(luma) = frame else { continue };
        let preview = image::imageops::thumbnail(&luma, 480, 270);
        let size = [preview.width() as usize, preview.height() as usize];
        if tx.send(CamEvent::Preview(egui::ColorImage::from_gray(size, preview.as_raw()))).is_err() {
            return Ok(());
        }
        // The frame replaces any frame the scanner has not started on; results of earlier frames
        // arrive meanwhile (checked at every frame, 30 times a second).
        live.offer(luma);
        for scanned in live.poll() {
            match outcome(&scanned.report) {
                Some(CamEvent::Found(text)) => {
                    let _ = tx.send(CamEvent::Found(text));
                    wake();
                    return Ok(());
                }
                Some(CamEvent::Several(n)) if n != several => {
                    several = n;
                    let _ = tx.send(CamEvent::Several(n));
                }
                _ => {}
            }
        }
        wake();
    }
    Ok(())
}

/// What one scanned frame means for the bedside: one code read, several in view, or nothing.
#[must_use]
pub fn outcome(report: &qr::scan::ScanReport) -> Option<CamEvent> {
    match report.codes.as_slice() {
        [] => None,
        [one] => Some(CamEvent::Found(one.text.clone())),
        more => Some(CamEvent::Several(more.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yuyv_from(luma: &GrayImage) -> Vec<u8> {
        luma.as_raw().iter().flat_map(|&y| [y, 128]).collect()
    }

    #[test]
    fn a_yuyv_frame_holding_a_qr_code_scans_to_its_text() {
        let code = qr::render::render_image("MC1:CAMERA-TEST-0123456789", 6).unwrap_or_else(|e| unreachable!("{e}"));
        let mut frame = GrayImage::from_pixel(640, 480, image::Luma([200]));
        image::imageops::overlay(&mut frame, &code, 100, 60);
        let bytes = yuyv_from(&frame);
        let luma = frame_luma(FrameFormat::Yuyv, &bytes, 640, 480, 1280).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(luma, frame);
        let texts = qr::scan::Scanner::new(qr::scan::ScanOptions::camera()).scan_image(&image::DynamicImage::ImageLuma8(luma));
        assert_eq!(texts, vec!["MC1:CAMERA-TEST-0123456789".to_owned()]);
    }

    #[test]
    fn a_frame_with_two_codes_is_reported_as_several_not_read() {
        let mut frame = GrayImage::from_pixel(900, 480, image::Luma([210]));
        for (i, t) in ["MC1:LEFT", "MC1:RIGHT"].iter().enumerate() {
            let code = qr::render::render_image(t, 6).unwrap_or_else(|e| unreachable!("{e}"));
            image::imageops::overlay(&mut frame, &code, 30 + 450 * i as i64, 60);
        }
        let report = qr::scan::Scanner::new(qr::scan::ScanOptions::unbudgeted()).scan_gray(frame);
        assert!(matches!(outcome(&report), Some(CamEvent::Several(2))), "{report}");
        assert!(outcome(&qr::scan::ScanReport::default()).is_none());
    }

    #[test]
    fn short_or_odd_frames_are_errors_not_panics() {
        assert!(frame_luma(FrameFormat::Yuyv, &[1, 2, 3], 640, 480, 1280).is_err());
        assert!(frame_luma(FrameFormat::Yuyv, &[], 0, 0, 0).is_err());
        assert!(frame_luma(FrameFormat::Yuyv, &[0; 64], u32::MAX, u32::MAX, u32::MAX).is_err());
        assert!(frame_luma(FrameFormat::Mjpeg, b"not a jpeg", 640, 480, 0).is_err());
        // A padded stride (bytes per line > 2 x width) keeps only the pixels.
        let padded: Vec<u8> = (0..4).flat_map(|_| [9, 128, 9, 128, 0, 0]).collect();
        let luma = frame_luma(FrameFormat::Yuyv, &padded, 2, 4, 6).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(luma.as_raw(), &vec![9; 8]);
    }
}
