//! A verified record's bytes turned into something a clinician can read at the bedside.
//!
//! Pure functions, no UI: [`render`] takes the record's declared media type and its plaintext and
//! returns a [`Rendered`] the view only has to draw. FHIR R4 resources (Patient,
//! AllergyIntolerance, MedicationStatement, Condition, Observation, Composition, and Bundles of
//! them) become one [`Section`] each; other JSON is pretty-printed; UTF-8 text is shown as is; PDF,
//! images and anything else are offered to save.
//!
//! The content decides, the declared type only hints: bytes starting `%PDF-` are a PDF and PNG or
//! JPEG magic an image whatever the record claims (the note says when the claim disagrees); JSON
//! with a `resourceType` is FHIR even when declared `application/json`. Nothing here panics on any
//! input: serde_json's recursion limit bounds nesting, strings put into rows are capped at
//! [`MAX_VALUE_CHARS`], pretty JSON and text at [`MAX_TEXT_BYTES`], sections at [`MAX_SECTIONS`].
//! Missing fields are omitted and fields of the wrong JSON type ignored.

use serde_json::Value;
use std::fmt::Write as _;
use std::io;

/// Longest value (in characters) put into a [`Section`] row or title; longer ones end in "…".
pub const MAX_VALUE_CHARS: usize = 500;
/// Most bytes of pretty JSON or text kept for display; the rest is cut with a note.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;
/// Most sections made from one record (a Bundle with more entries gets a closing "… more" section).
pub const MAX_SECTIONS: usize = 1000;
/// Most items of one list (identifiers, reactions, components, dosages) shown in a section.
const MAX_LIST_ITEMS: usize = 50;
/// Bundles nested deeper than this are listed as "Other resource: Bundle".
const MAX_BUNDLE_DEPTH: usize = 4;
/// A PDF header may follow some junk; PDF 1.7 (ISO 32000-1 §7.5.2) readers look in the first 1024 bytes.
const PDF_HEADER_WINDOW: usize = 1024;

/// What the bedside view shows for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendered {
    /// FHIR resources rendered as a readable summary (one section per resource) plus the pretty JSON.
    Fhir {
        /// One section per resource, in document order.
        sections: Vec<Section>,
        /// The whole JSON, pretty-printed (capped at [`MAX_TEXT_BYTES`]).
        pretty: String,
        /// Lines for the reader: declared type disagreed, output cut, and so on. Usually empty.
        notes: Vec<String>,
    },
    /// Any other JSON, pretty-printed (capped at [`MAX_TEXT_BYTES`]).
    Json {
        /// The JSON, pretty-printed.
        pretty: String,
        /// As for [`Rendered::Fhir`].
        notes: Vec<String>,
    },
    /// UTF-8 text (capped at [`MAX_TEXT_BYTES`]).
    Text {
        /// The text, without a byte order mark.
        text: String,
        /// As for [`Rendered::Fhir`].
        notes: Vec<String>,
    },
    /// Not shown inline: offered to save (PDF, images, unknown bytes).
    Binary {
        /// What the content is, by its magic bytes (or its declared type for `Other`).
        kind: BinaryKind,
        /// Suggested file extension, without the dot ("pdf", "png", "jpg", "bin", ...).
        extension: &'static str,
        /// Size of the content in bytes.
        bytes: usize,
        /// One line saying what it is and why it is not shown.
        note: String,
    },
}

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

/// One resource as a clinician reads it: a title, labelled rows, maybe a warning.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    /// E.g. "Allergy: Penicillin", "Patient: Alex Demo", "Other resource: Encounter".
    pub title: String,
    /// (label, value) pairs in reading order; fields the resource lacks are simply absent.
    pub rows: Vec<(String, String)>,
    /// Something to see first, e.g. "High criticality allergy" or "Abnormal result: High".
    pub warning: Option<String>,
}

impl Section {
    fn new(title: impl AsRef<str>) -> Self {
        Section { title: cap(title.as_ref()), rows: Vec::new(), warning: None }
    }

    fn row(&mut self, label: impl Into<String>, value: Option<String>) {
        if let Some(v) = value {
            let v = cap(v.trim());
            if !v.is_empty() {
                self.rows.push((label.into(), v));
            }
        }
    }
}

/// Renders a record for display. `media_type` is the declared one (parameters such as
/// `; charset=utf-8` and letter case are ignored); the content's magic bytes take precedence.
#[must_use]
pub fn render(media_type: &str, bytes: &[u8]) -> Rendered {
    let declared = Declared::parse(media_type);
    let essence = essence(media_type);

    if let Some(kind) = sniff_magic(bytes) {
        let mut note =
            format!("{} ({}): not shown here; save it to open it.", kind.describe(), human_size(bytes.len()));
        if kind.media_type() != essence {
            let _ = write!(note, " Declared as {}, recognised by its content.", shown_type(&essence));
        }
        return Rendered::Binary { kind, extension: kind.extension(), bytes: bytes.len(), note };
    }

    match declared {
        Declared::Json => render_json_declared(&essence, bytes),
        Declared::Text => render_text_declared(&essence, bytes),
        Declared::Pdf | Declared::Png | Declared::Jpeg | Declared::OtherBinary(_) => {
            let claimed = match declared {
                Declared::Pdf => "no %PDF- header",
                Declared::Png => "no PNG signature",
                Declared::Jpeg => "no JPEG marker",
                _ => "not shown inline",
            };
            let extension = match declared {
                Declared::OtherBinary(ext) => ext,
                _ => "bin",
            };
            let note = format!(
                "Declared as {} ({}), but {claimed}; save it to inspect it.",
                shown_type(&essence),
                human_size(bytes.len())
            );
            let note = if matches!(declared, Declared::OtherBinary(_)) {
                format!("{} ({}): not shown here; save it to open it.", shown_type(&essence), human_size(bytes.len()))
            } else {
                note
            };
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
    let window = bytes.get(..PDF_HEADER_WINDOW).unwrap_or(bytes);
    if window.windows(5).any(|w| w == b"%PDF-") {
        return Some(BinaryKind::Pdf);
    }
    None
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
                let note = format!(
                    "Declared as {} but not valid JSON ({}); shown as text.",
                    shown_type(essence),
                    cap_to(&err.to_string(), 200)
                );
                text_rendered(text, vec![note])
            }
            Err(utf8) => not_text(essence, bytes.len(), &utf8),
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
        Err(utf8) => not_text(essence, bytes.len(), &utf8),
    }
}

fn render_unknown(essence: &str, bytes: &[u8]) -> Rendered {
    let body = strip_bom(bytes);
    let Ok(text) = std::str::from_utf8(body) else {
        let note =
            format!("{} ({}): not shown here; save it to open it.", shown_type(essence), human_size(bytes.len()));
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

fn not_text(essence: &str, len: usize, err: &std::str::Utf8Error) -> Rendered {
    let note = format!(
        "Declared as {} but not valid UTF-8 text (invalid byte at offset {}); {}: save it to inspect it.",
        shown_type(essence),
        err.valid_up_to(),
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
        let mut sections = Vec::new();
        push_resource_sections(value, 0, &mut sections);
        if sections.len() > MAX_SECTIONS {
            let more = sections.len() - MAX_SECTIONS;
            sections.truncate(MAX_SECTIONS);
            sections.push(Section::new(format!("… {more} more entries not shown")));
        }
        Rendered::Fhir { sections, pretty, notes }
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

// ---------------------------------------------------------------------------------------------
// FHIR R4 summaries

fn resource_type(v: &Value) -> Option<&str> {
    v.get("resourceType").and_then(Value::as_str)
}

fn push_resource_sections(resource: &Value, depth: usize, out: &mut Vec<Section>) {
    if out.len() > MAX_SECTIONS {
        return;
    }
    match resource_type(resource) {
        Some("Bundle") if depth < MAX_BUNDLE_DEPTH => bundle(resource, depth, out),
        Some("Patient") => out.push(patient(resource)),
        Some("AllergyIntolerance") => out.push(allergy(resource)),
        Some("MedicationStatement") => out.push(medication_statement(resource)),
        Some("Condition") => out.push(condition(resource)),
        Some("Observation") => out.push(observation(resource)),
        Some("Composition") => out.push(composition(resource)),
        Some(other) => out.push(Section::new(format!("Other resource: {other}"))),
        None => out.push(Section::new("Other resource: (no resourceType)")),
    }
}

fn bundle(b: &Value, depth: usize, out: &mut Vec<Section>) {
    let entries = b.get("entry").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let with_resource: Vec<&Value> = entries.iter().filter_map(|e| e.get("resource")).collect();
    if with_resource.is_empty() {
        let kind = str_at(b, "type").map(|t| format!(" ({t})")).unwrap_or_default();
        let mut s = Section::new(format!("Empty bundle{kind}"));
        s.row("Entries", Some(entries.len().to_string()));
        out.push(s);
        return;
    }
    for resource in with_resource {
        if out.len() > MAX_SECTIONS {
            return;
        }
        push_resource_sections(resource, depth + 1, out);
    }
}

fn patient(p: &Value) -> Section {
    let name = list(p, "name")
        .iter()
        .find(|n| str_at(n, "use") == Some("official"))
        .or_else(|| list(p, "name").first())
        .and_then(human_name);
    let mut s = Section::new(match &name {
        Some(n) => format!("Patient: {n}"),
        None => "Patient".to_owned(),
    });
    s.row("Name", name);
    s.row("Birth date", str_at(p, "birthDate").map(str::to_owned));
    s.row("Gender", str_at(p, "gender").map(str::to_owned));
    for id in list(p, "identifier").iter().take(MAX_LIST_ITEMS) {
        let Some(value) = str_at(id, "value") else { continue };
        let system = id.get("type").and_then(codeable_text).or_else(|| str_at(id, "system").map(str::to_owned));
        s.row(
            "Identifier",
            Some(match system {
                Some(sys) => format!("{value} ({sys})"),
                None => value.to_owned(),
            }),
        );
    }
    if p.get("deceasedBoolean").and_then(Value::as_bool) == Some(true) {
        s.warning = Some("Patient recorded as deceased".to_owned());
    } else if let Some(when) = str_at(p, "deceasedDateTime") {
        s.warning = Some(cap(&format!("Patient recorded as deceased ({when})")));
    }
    s
}

fn allergy(a: &Value) -> Section {
    let substance = a.get("code").and_then(codeable_text);
    let kind = if str_at(a, "type") == Some("intolerance") { "Intolerance" } else { "Allergy" };
    let mut s = Section::new(match &substance {
        Some(sub) => format!("{kind}: {sub}"),
        None => kind.to_owned(),
    });
    s.row("Substance", substance.clone());
    let criticality = str_at(a, "criticality");
    s.row("Criticality", criticality.map(criticality_label));
    s.row("Clinical status", a.get("clinicalStatus").and_then(codeable_text));
    let verification = a.get("verificationStatus").and_then(codeable_text);
    s.row("Verification", verification.clone());
    let categories: Vec<&str> = list(a, "category").iter().filter_map(Value::as_str).collect();
    if !categories.is_empty() {
        s.row("Category", Some(categories.join(", ")));
    }
    s.row("Onset", onset(a));
    s.row("Recorded", str_at(a, "recordedDate").map(str::to_owned));
    let mut severe = false;
    for r in list(a, "reaction").iter().take(MAX_LIST_ITEMS) {
        let manifestations: Vec<String> =
            list(r, "manifestation").iter().take(MAX_LIST_ITEMS).filter_map(codeable_text).collect();
        let severity = str_at(r, "severity");
        severe |= severity == Some("severe");
        let mut text = if manifestations.is_empty() { "reaction".to_owned() } else { manifestations.join(", ") };
        if let Some(sev) = severity {
            let _ = write!(text, " ({sev})");
        }
        if let Some(desc) = str_at(r, "description") {
            let _ = write!(text, ": {desc}");
        }
        s.row("Reaction", Some(text));
    }
    for n in list(a, "note").iter().take(MAX_LIST_ITEMS) {
        s.row("Note", str_at(n, "text").map(str::to_owned));
    }
    let refuted = verification
        .as_deref()
        .map(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("refuted") || v.contains("entered-in-error") || v.contains("entered in error")
        })
        .unwrap_or(false);
    if !refuted {
        let what = substance.as_deref().unwrap_or("this substance");
        s.warning = match (criticality == Some("high"), severe) {
            (true, _) => Some(cap(&format!("High criticality {} to {what}", kind.to_ascii_lowercase()))),
            (false, true) => Some(cap(&format!("Severe reaction recorded to {what}"))),
            _ => None,
        };
    }
    s
}

fn criticality_label(c: &str) -> String {
    match c {
        "high" => "high".to_owned(),
        "low" => "low".to_owned(),
        "unable-to-assess" => "unable to assess".to_owned(),
        other => other.to_owned(),
    }
}

fn medication_statement(m: &Value) -> Section {
    let medication = m
        .get("medicationCodeableConcept")
        .and_then(codeable_text)
        .or_else(|| m.get("medicationReference").and_then(reference_text))
        // FHIR R5 moved it to medication.concept / medication.reference.
        .or_else(|| m.get("medication").and_then(|x| x.get("concept")).and_then(codeable_text))
        .or_else(|| m.get("medication").and_then(|x| x.get("reference")).and_then(reference_text));
    let mut s = Section::new(match &medication {
        Some(med) => format!("Medication: {med}"),
        None => "Medication".to_owned(),
    });
    s.row("Medication", medication);
    s.row("Status", str_at(m, "status").map(str::to_owned));
    for d in list(m, "dosage").iter().take(MAX_LIST_ITEMS) {
        let text = str_at(d, "text").map(str::to_owned).or_else(|| {
            let parts: Vec<String> = [
                d.get("route").and_then(codeable_text),
                d.get("timing").and_then(|t| t.get("code")).and_then(codeable_text),
            ]
            .into_iter()
            .flatten()
            .collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        });
        s.row("Dosage", text);
    }
    s.row(
        "Effective",
        str_at(m, "effectiveDateTime").map(str::to_owned).or_else(|| m.get("effectivePeriod").and_then(period)),
    );
    for r in list(m, "reasonCode").iter().take(MAX_LIST_ITEMS) {
        s.row("Reason", codeable_text(r));
    }
    s.row("Asserted", str_at(m, "dateAsserted").map(str::to_owned));
    for n in list(m, "note").iter().take(MAX_LIST_ITEMS) {
        s.row("Note", str_at(n, "text").map(str::to_owned));
    }
    s
}

fn condition(c: &Value) -> Section {
    let code = c.get("code").and_then(codeable_text);
    let mut s = Section::new(match &code {
        Some(code) => format!("Condition: {code}"),
        None => "Condition".to_owned(),
    });
    s.row("Condition", code);
    s.row("Clinical status", c.get("clinicalStatus").and_then(codeable_text));
    s.row("Verification", c.get("verificationStatus").and_then(codeable_text));
    s.row("Severity", c.get("severity").and_then(codeable_text));
    s.row("Onset", onset(c));
    s.row(
        "Abatement",
        str_at(c, "abatementDateTime")
            .or_else(|| str_at(c, "abatementString"))
            .map(str::to_owned)
            .or_else(|| c.get("abatementPeriod").and_then(period)),
    );
    for b in list(c, "bodySite").iter().take(MAX_LIST_ITEMS) {
        s.row("Body site", codeable_text(b));
    }
    s.row("Recorded", str_at(c, "recordedDate").map(str::to_owned));
    for n in list(c, "note").iter().take(MAX_LIST_ITEMS) {
        s.row("Note", str_at(n, "text").map(str::to_owned));
    }
    s
}

fn observation(o: &Value) -> Section {
    let code = o.get("code").and_then(codeable_text);
    let mut s = Section::new(match &code {
        Some(code) => format!("Observation: {code}"),
        None => "Observation".to_owned(),
    });
    s.row("Test", code);
    s.row("Value", observation_value(o));
    let mut abnormal: Vec<String> = Vec::new();
    for c in list(o, "component").iter().take(MAX_LIST_ITEMS) {
        let label = c.get("code").and_then(codeable_text).unwrap_or_else(|| "Component".to_owned());
        let mut value = observation_value(c).unwrap_or_else(|| "(no value)".to_owned());
        if let Some(i) = interpretation(c) {
            let _ = write!(value, " [{}]", i.text);
            if i.abnormal {
                abnormal.push(format!("{label} {}", i.text));
            }
        }
        s.row(cap_to(&label, 100), Some(value));
    }
    s.row(
        "Effective",
        str_at(o, "effectiveDateTime")
            .or_else(|| str_at(o, "effectiveInstant"))
            .map(str::to_owned)
            .or_else(|| o.get("effectivePeriod").and_then(period)),
    );
    s.row("Status", str_at(o, "status").map(str::to_owned));
    let interp = interpretation(o);
    if let Some(i) = &interp {
        s.row("Interpretation", Some(i.text.clone()));
        if i.abnormal {
            abnormal.insert(0, i.text.clone());
        }
    }
    for r in list(o, "referenceRange").iter().take(MAX_LIST_ITEMS) {
        s.row("Reference range", reference_range(r));
    }
    for n in list(o, "note").iter().take(MAX_LIST_ITEMS) {
        s.row("Note", str_at(n, "text").map(str::to_owned));
    }
    if !abnormal.is_empty() {
        s.warning = Some(cap(&format!("Abnormal result: {}", abnormal.join("; "))));
    }
    s
}

struct Interpretation {
    text: String,
    abnormal: bool,
}

/// HL7 v3 ObservationInterpretation codes that mean "outside normal".
const ABNORMAL_CODES: &[&str] = &["A", "AA", "H", "HH", "HU", "L", "LL", "LU", "<", ">", "POS", "DET", "R", "W"];

fn interpretation(o: &Value) -> Option<Interpretation> {
    let items = list(o, "interpretation");
    let texts: Vec<String> = items.iter().take(MAX_LIST_ITEMS).filter_map(codeable_text).collect();
    if texts.is_empty() {
        return None;
    }
    let abnormal = items
        .iter()
        .any(|i| list(i, "coding").iter().filter_map(|c| str_at(c, "code")).any(|code| ABNORMAL_CODES.contains(&code)));
    Some(Interpretation { text: texts.join(", "), abnormal })
}

fn observation_value(o: &Value) -> Option<String> {
    if let Some(q) = o.get("valueQuantity") {
        return quantity(q);
    }
    if let Some(c) = o.get("valueCodeableConcept") {
        return codeable_text(c);
    }
    if let Some(t) = str_at(o, "valueString") {
        return Some(t.to_owned());
    }
    if let Some(b) = o.get("valueBoolean").and_then(Value::as_bool) {
        return Some(if b { "yes" } else { "no" }.to_owned());
    }
    if let Some(n) = o.get("valueInteger").filter(|n| n.is_number()) {
        return Some(n.to_string());
    }
    if let Some(r) = o.get("valueRange") {
        return range(r);
    }
    if let Some(r) = o.get("valueRatio") {
        let num = r.get("numerator").and_then(quantity)?;
        let den = r.get("denominator").and_then(quantity)?;
        return Some(format!("{num} / {den}"));
    }
    if let Some(p) = o.get("valuePeriod") {
        return period(p);
    }
    str_at(o, "valueDateTime").or_else(|| str_at(o, "valueTime")).map(str::to_owned)
}

fn composition(c: &Value) -> Section {
    let title = str_at(c, "title");
    let mut s = Section::new(match title {
        Some(t) => format!("Document: {t}"),
        None => "Document".to_owned(),
    });
    s.row("Type", c.get("type").and_then(codeable_text));
    s.row("Date", str_at(c, "date").map(str::to_owned));
    s.row("Status", str_at(c, "status").map(str::to_owned));
    for a in list(c, "author").iter().take(MAX_LIST_ITEMS) {
        s.row("Author", reference_text(a));
    }
    s
}

// ---------------------------------------------------------------------------------------------
// FHIR datatypes

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

/// CodeableConcept: its text, else the codings' displays, else their codes.
fn codeable_text(c: &Value) -> Option<String> {
    if let Some(t) = str_at(c, "text") {
        return Some(t.to_owned());
    }
    let codings = list(c, "coding");
    let displays: Vec<&str> = codings.iter().take(MAX_LIST_ITEMS).filter_map(|x| str_at(x, "display")).collect();
    if !displays.is_empty() {
        return Some(displays.join(", "));
    }
    let codes: Vec<&str> = codings.iter().take(MAX_LIST_ITEMS).filter_map(|x| str_at(x, "code")).collect();
    (!codes.is_empty()).then(|| codes.join(", "))
}

/// HumanName: its text, else prefix given family suffix.
fn human_name(n: &Value) -> Option<String> {
    if let Some(t) = str_at(n, "text") {
        return Some(t.to_owned());
    }
    let mut parts: Vec<&str> = Vec::new();
    parts.extend(list(n, "prefix").iter().take(MAX_LIST_ITEMS).filter_map(Value::as_str));
    parts.extend(list(n, "given").iter().take(MAX_LIST_ITEMS).filter_map(Value::as_str));
    parts.extend(str_at(n, "family"));
    parts.extend(list(n, "suffix").iter().take(MAX_LIST_ITEMS).filter_map(Value::as_str));
    let joined = parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" ");
    (!joined.is_empty()).then_some(joined)
}

fn reference_text(r: &Value) -> Option<String> {
    str_at(r, "display").or_else(|| str_at(r, "reference")).map(str::to_owned)
}

fn period(p: &Value) -> Option<String> {
    match (str_at(p, "start"), str_at(p, "end")) {
        (Some(s), Some(e)) => Some(format!("{s} to {e}")),
        (Some(s), None) => Some(format!("since {s}")),
        (None, Some(e)) => Some(format!("until {e}")),
        (None, None) => None,
    }
}

fn onset(v: &Value) -> Option<String> {
    str_at(v, "onsetDateTime")
        .or_else(|| str_at(v, "onsetString"))
        .map(str::to_owned)
        .or_else(|| v.get("onsetPeriod").and_then(period))
        .or_else(|| v.get("onsetAge").and_then(quantity).map(|a| format!("age {a}")))
}

/// Quantity: comparator, value and unit (or UCUM code).
fn quantity(q: &Value) -> Option<String> {
    let value = q.get("value").filter(|v| v.is_number()).map(Value::to_string);
    let unit = str_at(q, "unit").or_else(|| str_at(q, "code"));
    let comparator = str_at(q, "comparator").unwrap_or_default();
    match (value, unit) {
        (Some(v), Some(u)) => Some(format!("{comparator}{v} {u}")),
        (Some(v), None) => Some(format!("{comparator}{v}")),
        (None, _) => None,
    }
}

fn range(r: &Value) -> Option<String> {
    match (r.get("low").and_then(quantity), r.get("high").and_then(quantity)) {
        (Some(l), Some(h)) => Some(format!("{l} to {h}")),
        (Some(l), None) => Some(format!("at least {l}")),
        (None, Some(h)) => Some(format!("at most {h}")),
        (None, None) => None,
    }
}

fn reference_range(r: &Value) -> Option<String> {
    let bounds = range(r);
    let text = str_at(r, "text").map(str::to_owned);
    let applies = r.get("type").and_then(codeable_text);
    let mut out = match (bounds, text) {
        (Some(b), Some(t)) => format!("{b} ({t})"),
        (Some(b), None) => b,
        (None, Some(t)) => t,
        (None, None) => return None,
    };
    if let Some(a) = applies {
        let _ = write!(out, " [{a}]");
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Small helpers

fn cap(s: &str) -> String {
    cap_to(s, MAX_VALUE_CHARS)
}

/// At most `max` characters; a cut string ends in "…" (which counts as one of them).
fn cap_to(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some(_) => {
            let keep: String = s.chars().take(max.saturating_sub(1)).collect();
            format!("{keep}…")
        }
    }
}

/// The longest prefix of `s` of at most `max` bytes ending on a char boundary, and whether it was cut.
fn cut_at_boundary(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    (s.get(..end).unwrap_or_default(), true)
}

fn human_size(n: usize) -> String {
    const KIB: f64 = 1024.0;
    #[allow(clippy::cast_precision_loss)] // display only
    let f = n as f64;
    if n < 1024 {
        format!("{n} bytes")
    } else if f < KIB * KIB {
        format!("{:.1} KiB", f / KIB)
    } else {
        format!("{:.1} MiB", f / (KIB * KIB))
    }
}
