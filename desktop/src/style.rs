//! One look for every view: colours with a meaning (good, bad, warning, muted), large touch
//! targets, dates people read. Text is never the only signal: marks carry a word too.

use egui::{Color32, RichText, Ui, Vec2};

/// Body text.
pub const INK: Color32 = Color32::from_rgb(0x1f, 0x29, 0x37);
/// Secondary text.
pub const MUTED: Color32 = Color32::from_rgb(0x5b, 0x65, 0x73);
/// Passed / verified.
pub const GOOD: Color32 = Color32::from_rgb(0x1b, 0x7a, 0x3d);
/// Failed / refused.
pub const BAD: Color32 = Color32::from_rgb(0xb4, 0x23, 0x18);
/// Needs attention (issuer unknown, warnings).
pub const WARN: Color32 = Color32::from_rgb(0x9a, 0x5b, 0x00);
/// The app's accent (primary buttons).
pub const ACCENT: Color32 = Color32::from_rgb(0x1d, 0x4e, 0x89);

/// Light theme, larger text, roomier buttons.
pub fn apply(ctx: &egui::Context) {
    ctx.set_theme(egui::Theme::Light);
    ctx.global_style_mut(|s| {
        s.spacing.button_padding = Vec2::new(12.0, 6.0);
        s.spacing.item_spacing = Vec2::new(10.0, 8.0);
        s.spacing.interact_size.y = 30.0;
        for (ts, size) in [
            (egui::TextStyle::Body, 17.0),
            (egui::TextStyle::Button, 17.0),
            (egui::TextStyle::Monospace, 15.0),
            (egui::TextStyle::Small, 13.0),
            (egui::TextStyle::Heading, 26.0),
        ] {
            if let Some(f) = s.text_styles.get_mut(&ts) {
                f.size = size;
            }
        }
    });
}

/// A screen title.
pub fn heading(ui: &mut Ui, text: &str, color: Color32) {
    ui.label(RichText::new(text).size(34.0).strong().color(color));
}

/// Large plain text (kiosk).
pub fn big_text(ui: &mut Ui, text: &str) {
    ui.label(RichText::new(text).size(24.0).color(INK));
}

/// A large button (PIN pad keys, kiosk actions).
pub fn key(ui: &mut Ui, text: &str, size: Vec2) -> egui::Response {
    ui.add(egui::Button::new(RichText::new(text).size(28.0)).min_size(size))
}

/// The screen's main action.
pub fn primary(ui: &mut Ui, text: &str, size: Vec2) -> egui::Response {
    ui.add(egui::Button::new(RichText::new(text).size(28.0).strong().color(Color32::WHITE)).fill(ACCENT).min_size(size))
}

/// Lays `add` out in a column of `width`, centred in the available width (left-aligned inside).
pub fn centered<R>(ui: &mut Ui, width: f32, add: impl FnOnce(&mut Ui) -> R) -> R {
    ui.horizontal(|ui| {
        ui.add_space(((ui.available_width() - width) / 2.0).max(0.0));
        ui.vertical(|ui| {
            ui.set_width(width);
            add(ui)
        })
        .inner
    })
    .inner
}

/// A smart card drawn going into (or coming out of) a reader slot.
pub fn card_picture(ui: &mut Ui, inserting: bool) {
    let (rect, _) = ui.allocate_exact_size(Vec2::new(220.0, 150.0), egui::Sense::hover());
    let p = ui.painter();
    let slot = egui::Rect::from_center_size(rect.center_bottom() - Vec2::new(0.0, 14.0), Vec2::new(200.0, 16.0));
    p.rect_filled(slot, 6.0, Color32::from_rgb(0x33, 0x3b, 0x47));
    let card = egui::Rect::from_min_size(rect.min + Vec2::new(45.0, 4.0), Vec2::new(130.0, 110.0));
    p.rect_filled(card, 10.0, Color32::from_rgb(0xdb, 0xe7, 0xf5));
    p.rect_stroke(card, 10.0, egui::Stroke::new(2.0, ACCENT), egui::StrokeKind::Inside);
    let chip = egui::Rect::from_min_size(card.min + Vec2::new(16.0, 22.0), Vec2::new(30.0, 24.0));
    p.rect_filled(chip, 4.0, Color32::from_rgb(0xd4, 0xaf, 0x37));
    let arrow_x = card.right() + 18.0;
    let (from, to) = if inserting { (card.top() + 10.0, card.bottom() - 6.0) } else { (card.bottom() - 6.0, card.top() + 10.0) };
    ui.painter().arrow(egui::pos2(arrow_x, from), egui::vec2(0.0, to - from), egui::Stroke::new(3.0, ACCENT));
}

/// A spinner with what is happening.
pub fn busy(ui: &mut Ui, what: &str) {
    ui.add_space(40.0);
    ui.add(egui::Spinner::new().size(64.0));
    ui.add_space(12.0);
    ui.label(RichText::new(what).size(26.0));
}

/// A Unix time as a date people read: "12 March 2027".
#[must_use]
pub fn date(t: i64) -> String {
    let (y, m, d) = qr::time::civil_from_days(t.div_euclid(86_400));
    const MONTHS: [&str; 12] =
        ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
    let month = MONTHS.get(usize::try_from(m.saturating_sub(1)).unwrap_or(0)).copied().unwrap_or("?");
    format!("{d} {month} {y}")
}

/// A Unix time as "2026-11-23 14:05 UTC".
#[must_use]
pub fn date_time(t: i64) -> String {
    let (y, m, d) = qr::time::civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    format!("{y}-{m:02}-{d:02} {:02}:{:02} UTC", s / 3600, (s % 3600) / 60)
}

/// A size for people: "12 bytes", "2.1 kB", "3.4 MB" (decimal units, one decimal). Pure.
#[must_use]
pub fn size(n: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // display only
    let f = n as f64;
    if n < 1000 {
        format!("{n} bytes")
    } else if n < 1_000_000 {
        format!("{:.1} kB", f / 1e3)
    } else {
        format!("{:.1} MB", f / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_sizes() {
        assert_eq!(size(12), "12 bytes");
        assert_eq!(size(999), "999 bytes");
        assert_eq!(size(2100), "2.1 kB");
        assert_eq!(size(3_400_000), "3.4 MB");
    }

    #[test]
    fn dates_read_like_dates() {
        assert_eq!(date(0), "1 January 1970");
        assert_eq!(date(1_795_000_000), "18 November 2026");
        // Agrees with the QR crate's RFC 3339 formatting over a range of times.
        for t in (-100_000_000_i64..4_000_000_000).step_by(7_777_777) {
            let rfc = qr::time::format_rfc3339(t);
            assert_eq!(date_time(t), format!("{} {} UTC", rfc.get(..10).unwrap_or(""), rfc.get(11..16).unwrap_or("")), "{t}");
        }
        assert_eq!(date(951_782_400), "29 February 2000");
    }
}
