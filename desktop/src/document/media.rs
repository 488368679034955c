//! What a record's bytes are: magic bytes first, then the declared media type, then a look at
//! the content (JSON, prose, other bytes); JSON and text rendered with their size caps. FHIR
//! JSON goes on to [`super::fhir`].

use serde_json::Value;
use std::fmt::Write as _;
use std::io;

use super::fhir::{self, resource_type};
use super::{MAX_TEXT_BYTES, Rendered, cap_to, cut_at_boundary, human_size};

/// Kinds of content offered to save rather than shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryKind {
    /// A PDF document (`%PDF-` header).
    Pdf,
    /// A PNG image (PNG signature).
    Png,
    /// A JPEG image (`FF D8 FF`).
    Jpeg,
    /// Anything else.
    Other,
}

impl BinaryKind {
    /// The media type of this kind (`application/octet-stream` for `Other`).
    #[must_use]
    pub fn media_type(self) -> &'static str {
        match self {
            BinaryKind::Pdf => "application/pdf",
            BinaryKind::Png => "image/png",
            BinaryKind::Jpeg => "image/jpeg",
            BinaryKind::Other => "application/octet-stream",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            BinaryKind::Pdf => "PDF document",
            BinaryKind::Png => "PNG image",
            BinaryKind::Jpeg => "JPEG image",
            BinaryKind::Other => "Binary content",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            BinaryKind::Pdf => "pdf",
            BinaryKind::Png => "png",
            BinaryKind::Jpeg => "jpg",
            BinaryKind::Other => "bin",
        }
    }
}

/// Renders a record for display. `media_type` is the declared one (parameters such as
/// `; charset=utf-8` and letter case are ignored); the content's magic bytes take precedence.
#[must_use]
pub fn render(media_type: &str, bytes: &[u8]) -> Rendered {
    let declared = Declared::parse(media_type);
    let essence = essence(media_type);
    if bytes.is_empty() {
        return Rendered::Text { text: String::new(), notes: vec!["The record is empty.".to_owned()] };
    }

    if let Some(kind) = sniff_magic(bytes) {
        let mut note = format!("{} ({}): not shown here; save it to open it.", kind.describe(), human_size(bytes.len()));
        if kind.media_type() != essence {
            let _ = write!(note, " Declared as {}, recognised by its content.", shown_type(&essence));
        }
        return Rendered::Binary { kind, extension: kind.extension(), bytes: bytes.len(), note };
    }

    match declared {
        Declared::Json => render_json_declared(&essence, bytes),
        Declared::Text => render_text_declared(&essence, bytes),
        Declared::Pdf | Declared::Png | Declared::Jpeg => {
            let missing = match declared {
                Declared::Pdf => "no %PDF- header",
                Declared::Png => "no PNG signature",
                _ => "no JPEG marker",
            };
            let note = format!(
                "Declared as {} ({}) but its content has {missing}; save it to inspect it.",
                shown_type(&essence),
                human_size(bytes.len())
            );
            Rendered::Binary { kind: BinaryKind::Other, extension: "bin", bytes: bytes.len(), note }
        }
        Declared::OtherBinary(extension) => {
            let note = format!("{} ({}): not shown here; save it to open it.", shown_type(&essence), human_size(bytes.len()));
            Rendered::Binary { kind: BinaryKind::Other, extension, bytes: bytes.len(), note }
        }
        Declared::Unknown => render_unknown(&essence, bytes),
    }
}

// ---------------------------------------------------------------------------------------------
// Media types and sniffing

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Declared {
    Json,
    Text,
    Pdf,
    Png,
    Jpeg,
    /// A known non-text type, with its usual extension.
    OtherBinary(&'static str),
    Unknown,
}

impl Declared {
    fn parse(media_type: &str) -> Self {
        let e = essence(media_type);
        match e.as_str() {
            "application/json" | "application/fhir+json" | "text/json" => Declared::Json,
            "application/pdf" => Declared::Pdf,
            "image/png" => Declared::Png,
            "image/jpeg" | "image/jpg" | "image/pjpeg" => Declared::Jpeg,
            "image/gif" => Declared::OtherBinary("gif"),
            "image/webp" => Declared::OtherBinary("webp"),
            "image/tiff" => Declared::OtherBinary("tiff"),
            "application/dicom" => Declared::OtherBinary("dcm"),
            "application/zip" => Declared::OtherBinary("zip"),
            "application/xml" | "application/fhir+xml" => Declared::Text,
            _ if e.ends_with("+json") => Declared::Json,
            _ if e.ends_with("+xml") || e.starts_with("text/") => Declared::Text,
            _ => Declared::Unknown,
        }
    }
}

/// The media type without parameters, trimmed and lower-cased.
fn essence(media_type: &str) -> String {
    media_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

fn shown_type(essence: &str) -> String {
    if essence.is_empty() { "(no media type)".to_owned() } else { cap_to(essence, 100) }
}

fn sniff_magic(bytes: &[u8]) -> Option<BinaryKind> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(PNG) {
        return Some(BinaryKind::Png);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(BinaryKind::Jpeg);
    }
    // ISO 32000-1 §7.5.2: a PDF starts with its header line "%PDF-1.n". (Readers tolerate junk
    // before it; a record is written by us, so only the strict form counts.)
    bytes.starts_with(b"%PDF-").then_some(BinaryKind::Pdf)
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

// ---------------------------------------------------------------------------------------------
// JSON and text

fn render_json_declared(essence: &str, bytes: &[u8]) -> Rendered {
    let body = strip_bom(bytes);
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => render_json_value(&value, Vec::new()),
        Err(err) => match std::str::from_utf8(body) {
            Ok(text) => {
                let note =
                    format!("Declared as {} but not valid JSON ({}); shown as text.", shown_type(essence), cap_to(&err.to_string(), 200));
                text_rendered(text, vec![note])
            }
            Err(utf8) => not_text(essence, bytes, body, &utf8),
        },
    }
}

fn render_text_declared(essence: &str, bytes: &[u8]) -> Rendered {
    let body = strip_bom(bytes);
    match std::str::from_utf8(body) {
        Ok(text) => {
            // A FHIR resource mislabelled as text is still shown as FHIR; other JSON stays text.
            if looks_like_json_object(text)
                && let Ok(value) = serde_json::from_str::<Value>(text)
                && resource_type(&value).is_some()
            {
                let note = format!("Declared as {}, recognised as FHIR JSON by its content.", shown_type(essence));
                return render_json_value(&value, vec![note]);
            }
            text_rendered(text, Vec::new())
        }
        Err(utf8) => not_text(essence, bytes, body, &utf8),
    }
}

fn render_unknown(essence: &str, bytes: &[u8]) -> Rendered {
    let body = strip_bom(bytes);
    let Ok(text) = std::str::from_utf8(body) else {
        let note = format!("{} ({}): not shown here; save it to open it.", shown_type(essence), human_size(bytes.len()));
        return Rendered::Binary { kind: BinaryKind::Other, extension: "bin", bytes: bytes.len(), note };
    };
    if (looks_like_json_object(text) || text.trim_start().starts_with('['))
        && let Ok(value) = serde_json::from_str::<Value>(text)
    {
        let note = format!("Declared as {}, recognised as JSON by its content.", shown_type(essence));
        return render_json_value(&value, vec![note]);
    }
    if looks_like_prose(text) {
        let note = format!("Declared as {}, shown as text.", shown_type(essence));
        return text_rendered(text, vec![note]);
    }
    let note = format!("{} ({}): not shown here; save it to open it.", shown_type(essence), human_size(bytes.len()));
    Rendered::Binary { kind: BinaryKind::Other, extension: "bin", bytes: bytes.len(), note }
}

fn looks_like_json_object(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

/// Text a person wrote: no control characters other than tab, newline, carriage return, form feed.
fn looks_like_prose(text: &str) -> bool {
    !text.is_empty() && !text.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}'))
}

/// `bytes` is the whole record, `body` the part after any byte order mark that failed to decode.
fn not_text(essence: &str, bytes: &[u8], body: &[u8], err: &std::str::Utf8Error) -> Rendered {
    let len = bytes.len();
    let offset = err.valid_up_to() + len.saturating_sub(body.len());
    let note = format!(
        "Declared as {} but not valid UTF-8 text (invalid byte at offset {offset}); {}: save it to inspect it.",
        shown_type(essence),
        human_size(len)
    );
    Rendered::Binary { kind: BinaryKind::Other, extension: "bin", bytes: len, note }
}

fn text_rendered(text: &str, mut notes: Vec<String>) -> Rendered {
    let total = text.len();
    let (kept, cut) = cut_at_boundary(text, MAX_TEXT_BYTES);
    if cut {
        notes.push(format!("Text cut after {} of {}.", human_size(kept.len()), human_size(total)));
    }
    Rendered::Text { text: kept.to_owned(), notes }
}

fn render_json_value(value: &Value, mut notes: Vec<String>) -> Rendered {
    let pretty = pretty_capped(value, &mut notes);
    if resource_type(value).is_some() {
        Rendered::Fhir { sections: fhir::summarise(value), pretty, notes }
    } else {
        Rendered::Json { pretty, notes }
    }
}

/// A writer that keeps at most `limit` bytes and then fails, so serialisation stops early.
struct CappedWriter {
    buf: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.buf.len());
        if data.len() > room {
            self.buf.extend_from_slice(data.get(..room).unwrap_or_default());
            self.overflowed = true;
            return Err(io::Error::other("display cap reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn pretty_capped(value: &Value, notes: &mut Vec<String>) -> String {
    let mut w = CappedWriter { buf: Vec::new(), limit: MAX_TEXT_BYTES, overflowed: false };
    let result = serde_json::to_writer_pretty(&mut w, value);
    let valid = match std::str::from_utf8(&w.buf) {
        Ok(s) => s.len(),
        Err(e) => e.valid_up_to(),
    };
    w.buf.truncate(valid);
    let mut out = String::from_utf8(w.buf).unwrap_or_default();
    if w.overflowed {
        out.push_str("\n…");
        notes.push(format!("JSON cut after {} of pretty text.", human_size(MAX_TEXT_BYTES)));
    } else if let Err(e) = result {
        notes.push(format!("JSON could not be printed in full: {}", cap_to(&e.to_string(), 200)));
    }
    out
}
