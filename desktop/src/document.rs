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
    /// Something to see first, e.g. "High criticality allergy to Penicillin" or "Abnormal result: HbA1c High".
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
    if bytes.is_empty() {
        return Rendered::Text { text: String::new(), notes: vec!["The record is empty.".to_owned()] };
    }

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
            let note =
                format!("{} ({}): not shown here; save it to open it.", shown_type(&essence), human_size(bytes.len()));
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
                let note = format!(
                    "Declared as {} but not valid JSON ({}); shown as text.",
                    shown_type(essence),
                    cap_to(&err.to_string(), 200)
                );
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
        let mut summary = Summary::default();
        summary.resource(value, 0);
        let Summary { mut sections, skipped } = summary;
        if skipped > 0 {
            sections.push(Section::new(format!("… {skipped} more entries not shown")));
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

/// Sections made so far, and how many resources were left out past [`MAX_SECTIONS`].
#[derive(Default)]
struct Summary {
    sections: Vec<Section>,
    skipped: usize,
}

impl Summary {
    fn push(&mut self, section: Section) {
        if self.sections.len() < MAX_SECTIONS {
            self.sections.push(section);
        } else {
            self.skipped += 1;
        }
    }

    fn resource(&mut self, resource: &Value, depth: usize) {
        match resource_type(resource) {
            Some("Bundle") if depth < MAX_BUNDLE_DEPTH => self.bundle(resource, depth),
            Some("Patient") => self.push(patient(resource)),
            Some("AllergyIntolerance") => self.push(allergy(resource)),
            Some("MedicationStatement") => self.push(medication_statement(resource)),
            Some("Condition") => self.push(condition(resource)),
            Some("Observation") => self.push(observation(resource)),
            Some("Composition") => self.push(composition(resource)),
            Some(other) => self.push(Section::new(format!("Other resource: {other}"))),
            None => self.push(Section::new("Other resource: (no resourceType)")),
        }
    }

    /// Entries in order; an entry without a `resource` (e.g. a search link) is skipped.
    fn bundle(&mut self, b: &Value, depth: usize) {
        let entries = list(b, "entry");
        let mut any = false;
        for resource in entries.iter().filter_map(|e| e.get("resource")) {
            any = true;
            if self.sections.len() >= MAX_SECTIONS {
                self.skipped += 1;
            } else {
                self.resource(resource, depth + 1);
            }
        }
        if !any {
            let kind = str_at(b, "type").map(|t| format!(" ({t})")).unwrap_or_default();
            let mut s = Section::new(format!("Empty bundle{kind}"));
            s.row("Entries", Some(entries.len().to_string()));
            self.push(s);
        }
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
    s.row("Test", code.clone());
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
            // Name the test, so the warning stands on its own when shown apart from the section.
            let what =
                code.as_deref().map(|c| format!("{} {}", cap_to(c, 100), i.text)).unwrap_or_else(|| i.text.clone());
            abnormal.insert(0, what);
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
    crate::style::size(n as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const SUMMARY: &[u8] = include_bytes!("../samples/summary.json");
    const ALLERGIES: &[u8] = include_bytes!("../samples/allergies.json");
    const MEDICATIONS: &[u8] = include_bytes!("../samples/medications.json");
    const LABS: &[u8] = include_bytes!("../samples/labs.json");
    const NOTES: &[u8] = include_bytes!("../samples/notes.txt");
    const IMAGING: &[u8] = include_bytes!("../samples/imaging.png");

    const FHIR: &str = "application/fhir+json";

    fn sections(r: &Rendered) -> &[Section] {
        match r {
            Rendered::Fhir { sections, .. } => sections,
            other => panic!("expected FHIR, got {other:?}"),
        }
    }

    fn render_value(v: &Value) -> Rendered {
        render(FHIR, v.to_string().as_bytes())
    }

    fn one_section(v: &Value) -> Section {
        let r = render_value(v);
        let s = sections(&r);
        assert_eq!(s.len(), 1, "{s:?}");
        s[0].clone()
    }

    fn row<'a>(s: &'a Section, label: &str) -> Option<&'a str> {
        s.rows.iter().find(|(l, _)| l == label).map(|(_, v)| v.as_str())
    }

    fn rows<'a>(s: &'a Section, label: &str) -> Vec<&'a str> {
        s.rows.iter().filter(|(l, _)| l == label).map(|(_, v)| v.as_str()).collect()
    }

    // ----- samples -----

    #[test]
    fn sample_allergy_says_penicillin_high_criticality_and_hives() {
        let s = one_section(&serde_json::from_slice(ALLERGIES).unwrap());
        assert_eq!(s.title, "Allergy: Penicillin");
        assert_eq!(row(&s, "Criticality"), Some("high"));
        assert_eq!(row(&s, "Clinical status"), Some("Active"));
        assert_eq!(row(&s, "Verification"), Some("Confirmed"));
        assert_eq!(row(&s, "Category"), Some("medication"));
        let reaction = row(&s, "Reaction").unwrap();
        assert!(reaction.starts_with("Hives (moderate)"), "{reaction}");
        let warning = s.warning.unwrap();
        assert!(warning.contains("High criticality") && warning.contains("Penicillin"), "{warning}");
    }

    #[test]
    fn sample_summary_shows_patient_then_both_conditions() {
        let r = render(FHIR, SUMMARY);
        let s = sections(&r);
        let titles: Vec<&str> = s.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(
            titles,
            ["Patient: Alex Demo", "Condition: Type 2 diabetes mellitus", "Condition: Essential hypertension"]
        );
        assert_eq!(row(&s[0], "Birth date"), Some("1968-04-12"));
        assert_eq!(row(&s[0], "Identifier"), Some("P-1001 (MedCard patient id)"));
        assert_eq!(row(&s[1], "Clinical status"), Some("Active"));
        assert_eq!(row(&s[1], "Severity"), Some("Moderate"));
        assert_eq!(row(&s[1], "Onset"), Some("2015-06-01"));
        let Rendered::Fhir { pretty, notes, .. } = &r else { unreachable!() };
        assert!(pretty.contains("\"resourceType\": \"Bundle\""));
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn sample_medications_list_each_statement_with_dosage_and_period() {
        let r = render(FHIR, MEDICATIONS);
        let s = sections(&r);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].title, "Medication: Metformin 500 mg tablet");
        assert_eq!(row(&s[0], "Dosage"), Some("1 tablet by mouth twice daily with meals"));
        assert_eq!(row(&s[0], "Status"), Some("active"));
        assert_eq!(row(&s[0], "Effective"), Some("since 2015-06-15"));
        assert_eq!(row(&s[0], "Reason"), Some("Type 2 diabetes mellitus"));
        assert_eq!(s[1].title, "Medication: Lisinopril 10 mg tablet");
        assert_eq!(row(&s[2], "Status"), Some("stopped"));
        assert_eq!(row(&s[2], "Effective"), Some("2004-08-02 to 2004-08-03"));
        assert!(row(&s[2], "Note").unwrap().contains("penicillin"));
    }

    #[test]
    fn sample_labs_flag_high_hba1c_and_systolic_but_not_normal_potassium() {
        let r = render(FHIR, LABS);
        let s = sections(&r);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].title, "Observation: HbA1c");
        assert_eq!(row(&s[0], "Value"), Some("7.8 %"));
        assert_eq!(row(&s[0], "Interpretation"), Some("High"));
        assert_eq!(row(&s[0], "Reference range"), Some("4.0 % to 5.6 %"));
        assert_eq!(row(&s[0], "Effective"), Some("2026-10-28T08:15:00Z"));
        assert_eq!(s[0].warning.as_deref(), Some("Abnormal result: HbA1c High"));
        assert_eq!(s[1].title, "Observation: Potassium");
        assert_eq!(row(&s[1], "Value"), Some("4.6 mmol/L"));
        assert_eq!(s[1].warning, None);
        assert_eq!(s[2].title, "Observation: Blood pressure");
        assert_eq!(row(&s[2], "Systolic"), Some("148 mmHg [High]"));
        assert_eq!(row(&s[2], "Diastolic"), Some("86 mmHg"));
        assert_eq!(row(&s[2], "Value"), None);
        assert_eq!(s[2].warning.as_deref(), Some("Abnormal result: Systolic High"));
    }

    #[test]
    fn sample_note_is_text() {
        let Rendered::Text { text, notes } = render("text/plain", NOTES) else { panic!("not text") };
        assert!(text.contains("ALLERGY: penicillin"));
        assert!(notes.is_empty());
    }

    #[test]
    fn sample_image_is_offered_as_png() {
        let r = render("image/png", IMAGING);
        let Rendered::Binary { kind, extension, bytes, note } = r else { panic!("not binary") };
        assert_eq!((kind, extension, bytes), (BinaryKind::Png, "png", IMAGING.len()));
        assert!(note.starts_with("PNG image"), "{note}");
        assert!(!note.contains("Declared as"), "{note}");
    }

    #[test]
    fn samples_are_small_and_name_the_fictional_patient() {
        for (name, bytes) in [
            ("summary", SUMMARY),
            ("allergies", ALLERGIES),
            ("medications", MEDICATIONS),
            ("labs", LABS),
            ("notes", NOTES),
        ] {
            assert!(bytes.len() < 8 * 1024, "{name} is {} bytes", bytes.len());
            let text = std::str::from_utf8(bytes).unwrap();
            assert!(text.contains("P-1001"), "{name} does not name P-1001");
            assert!(text.to_ascii_lowercase().contains("fictional"), "{name} does not say it is fictional");
        }
        assert!(IMAGING.len() < 8 * 1024);
    }

    // ----- Patient -----

    #[test]
    fn patient_prefers_the_official_name_and_lists_identifiers() {
        let s = one_section(&json!({
            "resourceType": "Patient",
            "name": [{"use": "nickname", "given": ["Al"]}, {"use": "official", "prefix": ["Dr"], "given": ["Alex", "J"], "family": "Demo"}],
            "gender": "female", "birthDate": "1970-01-02",
            "identifier": [{"system": "urn:x", "value": "123"}, {"value": "456"}, {"system": "urn:nothing"}]
        }));
        assert_eq!(s.title, "Patient: Dr Alex J Demo");
        assert_eq!(row(&s, "Gender"), Some("female"));
        assert_eq!(rows(&s, "Identifier"), ["123 (urn:x)", "456"]);
        assert_eq!(s.warning, None);
    }

    #[test]
    fn patient_name_text_and_deceased_warning() {
        let s = one_section(
            &json!({"resourceType": "Patient", "name": [{"text": "Kim Doe"}], "deceasedDateTime": "2020-01-01"}),
        );
        assert_eq!(s.title, "Patient: Kim Doe");
        assert_eq!(s.warning.as_deref(), Some("Patient recorded as deceased (2020-01-01)"));
        let s = one_section(&json!({"resourceType": "Patient", "deceasedBoolean": true}));
        assert_eq!(s.title, "Patient");
        assert!(s.rows.is_empty());
        assert!(s.warning.is_some());
    }

    // ----- AllergyIntolerance -----

    #[test]
    fn allergy_without_text_uses_coding_display_then_code() {
        let s = one_section(&json!({"resourceType": "AllergyIntolerance",
            "code": {"coding": [{"code": "91936005", "display": "Allergy to penicillin"}]}}));
        assert_eq!(s.title, "Allergy: Allergy to penicillin");
        let s = one_section(&json!({"resourceType": "AllergyIntolerance", "code": {"coding": [{"code": "91936005"}]}}));
        assert_eq!(s.title, "Allergy: 91936005");
        assert_eq!(s.warning, None);
    }

    #[test]
    fn severe_reaction_warns_even_with_low_criticality() {
        let s = one_section(&json!({"resourceType": "AllergyIntolerance", "type": "intolerance", "criticality": "low",
            "code": {"text": "Codeine"},
            "reaction": [{"manifestation": [{"text": "Vomiting"}, {"text": "Dizziness"}], "severity": "severe"}]}));
        assert_eq!(s.title, "Intolerance: Codeine");
        assert_eq!(row(&s, "Reaction"), Some("Vomiting, Dizziness (severe)"));
        assert_eq!(s.warning.as_deref(), Some("Severe reaction recorded to Codeine"));
    }

    #[test]
    fn refuted_allergy_does_not_warn() {
        let s = one_section(
            &json!({"resourceType": "AllergyIntolerance", "criticality": "high", "code": {"text": "Latex"},
            "verificationStatus": {"coding": [{"code": "refuted"}]}}),
        );
        assert_eq!(row(&s, "Verification"), Some("refuted"));
        assert_eq!(s.warning, None);
    }

    // ----- MedicationStatement -----

    #[test]
    fn medication_reference_and_structured_dosage_are_used_when_there_is_no_text() {
        let s = one_section(&json!({"resourceType": "MedicationStatement", "status": "active",
            "medicationReference": {"reference": "Medication/m1", "display": "Insulin glargine"},
            "effectiveDateTime": "2026-01-01",
            "dosage": [{"route": {"text": "subcutaneous"}, "timing": {"code": {"text": "at bedtime"}}}]}));
        assert_eq!(s.title, "Medication: Insulin glargine");
        assert_eq!(row(&s, "Dosage"), Some("subcutaneous, at bedtime"));
        assert_eq!(row(&s, "Effective"), Some("2026-01-01"));
    }

    // ----- Condition -----

    #[test]
    fn condition_shows_code_status_onset_and_abatement() {
        let s = one_section(&json!({"resourceType": "Condition",
            "code": {"coding": [{"display": "Asthma"}]},
            "clinicalStatus": {"coding": [{"code": "resolved"}]},
            "onsetAge": {"value": 7, "unit": "years"},
            "abatementPeriod": {"end": "2001-05-01"},
            "bodySite": [{"text": "Lung"}]}));
        assert_eq!(s.title, "Condition: Asthma");
        assert_eq!(row(&s, "Clinical status"), Some("resolved"));
        assert_eq!(row(&s, "Onset"), Some("age 7 years"));
        assert_eq!(row(&s, "Abatement"), Some("until 2001-05-01"));
        assert_eq!(row(&s, "Body site"), Some("Lung"));
    }

    // ----- Observation -----

    #[test]
    fn observation_value_kinds() {
        let base = |k: &str, v: Value| {
            let mut o = json!({"resourceType": "Observation", "code": {"text": "X"}});
            o[k] = v;
            one_section(&o)
        };
        assert_eq!(row(&base("valueString", json!("trace")), "Value"), Some("trace"));
        assert_eq!(
            row(&base("valueCodeableConcept", json!({"coding": [{"display": "Positive"}]})), "Value"),
            Some("Positive")
        );
        assert_eq!(row(&base("valueBoolean", json!(false)), "Value"), Some("no"));
        assert_eq!(row(&base("valueInteger", json!(3)), "Value"), Some("3"));
        assert_eq!(
            row(&base("valueQuantity", json!({"value": 10, "comparator": "<", "code": "mg/L"})), "Value"),
            Some("<10 mg/L")
        );
        assert_eq!(
            row(&base("valueRange", json!({"low": {"value": 1}, "high": {"value": 2, "unit": "g"}})), "Value"),
            Some("1 to 2 g")
        );
    }

    #[test]
    fn observation_low_interpretation_and_text_reference_range() {
        let s = one_section(&json!({"resourceType": "Observation", "code": {"text": "Sodium"}, "status": "final",
            "valueQuantity": {"value": 128, "unit": "mmol/L"},
            "interpretation": [{"coding": [{"code": "LL", "display": "Critical low"}]}],
            "referenceRange": [{"text": "135-145 mmol/L"}, {"low": {"value": 136}}]}));
        assert_eq!(s.warning.as_deref(), Some("Abnormal result: Sodium Critical low"));
        assert_eq!(rows(&s, "Reference range"), ["135-145 mmol/L", "at least 136"]);
        assert_eq!(row(&s, "Status"), Some("final"));
    }

    // ----- Bundle -----

    #[test]
    fn bundle_keeps_entry_order_and_names_unknown_resources() {
        let r = render_value(&json!({"resourceType": "Bundle", "type": "searchset", "entry": [
            {"resource": {"resourceType": "Encounter"}},
            {"search": {"mode": "outcome"}},
            {"resource": {"resourceType": "Condition", "code": {"text": "Gout"}}},
            {"resource": {"noType": true}},
            {"resource": {"resourceType": "Bundle", "type": "collection",
                "entry": [{"resource": {"resourceType": "Patient", "name": [{"text": "Inner"}]}}]}},
            {"resource": {"resourceType": "Composition", "title": "Discharge summary", "date": "2026-01-01"}}
        ]}));
        let titles: Vec<&str> = sections(&r).iter().map(|s| s.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Other resource: Encounter",
                "Condition: Gout",
                "Other resource: (no resourceType)",
                "Patient: Inner",
                "Document: Discharge summary"
            ]
        );
    }

    #[test]
    fn empty_bundle_is_one_section_saying_so() {
        let s = one_section(&json!({"resourceType": "Bundle", "type": "document", "entry": []}));
        assert_eq!(s.title, "Empty bundle (document)");
        let s = one_section(&json!({"resourceType": "Bundle"}));
        assert_eq!(s.title, "Empty bundle");
    }

    #[test]
    fn deeply_nested_bundles_stop_at_the_depth_limit() {
        let mut v = json!({"resourceType": "Patient", "name": [{"text": "Deep"}]});
        for _ in 0..10 {
            v = json!({"resourceType": "Bundle", "entry": [{"resource": v}]});
        }
        let s = one_section(&v);
        assert_eq!(s.title, "Other resource: Bundle");
    }

    #[test]
    fn huge_bundle_is_cut_at_max_sections_with_a_count_of_the_rest() {
        let entries: Vec<Value> = (0..MAX_SECTIONS + 25)
            .map(|i| json!({"resource": {"resourceType": "Condition", "code": {"text": i.to_string()}}}))
            .collect();
        let r = render_value(&json!({"resourceType": "Bundle", "entry": entries}));
        let s = sections(&r);
        assert_eq!(s.len(), MAX_SECTIONS + 1);
        assert_eq!(s[MAX_SECTIONS - 1].title, format!("Condition: {}", MAX_SECTIONS - 1));
        assert_eq!(s[MAX_SECTIONS].title, "… 25 more entries not shown");
    }

    // ----- robustness of fields -----

    #[test]
    fn wrong_types_are_ignored_and_missing_fields_omitted() {
        let s = one_section(&json!({"resourceType": "AllergyIntolerance", "criticality": 5, "code": ["x"],
            "reaction": "hives", "clinicalStatus": {"coding": "active"}, "category": [1, "food"]}));
        assert_eq!(s.title, "Allergy");
        assert_eq!(s.rows, [("Category".to_owned(), "food".to_owned())]);
        assert_eq!(s.warning, None);
        let s = one_section(&json!({"resourceType": "Observation", "valueQuantity": {"value": "7", "unit": "%"},
            "component": [{"valueString": "a"}, 3], "interpretation": {"text": "H"}}));
        assert_eq!(s.title, "Observation");
        assert_eq!(rows(&s, "Component"), ["a", "(no value)"]);
        assert_eq!(row(&s, "Value"), None);
    }

    #[test]
    fn long_strings_are_capped_in_titles_and_rows() {
        let long = "é".repeat(10_000);
        let s = one_section(&json!({"resourceType": "Condition", "code": {"text": long}, "note": [{"text": long}]}));
        assert_eq!(s.title.chars().count(), MAX_VALUE_CHARS);
        assert!(s.title.ends_with('…'));
        let note = row(&s, "Note").unwrap();
        assert_eq!(note.chars().count(), MAX_VALUE_CHARS);
        assert!(note.ends_with('…'));
    }

    // ----- sniffing and media types -----

    #[test]
    fn fhir_declared_as_plain_json_is_still_fhir() {
        let r = render("application/json", br#"{"resourceType":"Patient","name":[{"text":"A B"}]}"#);
        assert_eq!(sections(&r)[0].title, "Patient: A B");
    }

    #[test]
    fn fhir_declared_as_text_is_fhir_with_a_note() {
        let r = render("text/plain", br#"  {"resourceType":"Condition"}"#);
        let Rendered::Fhir { notes, .. } = &r else { panic!("{r:?}") };
        assert!(notes[0].contains("text/plain"), "{notes:?}");
    }

    #[test]
    fn other_json_is_pretty_printed() {
        let r = render("application/fhir+json", br#"{"a":[1,2],"b":{"c":null}}"#);
        let Rendered::Json { pretty, notes } = r else { panic!() };
        assert_eq!(pretty, "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {\n    \"c\": null\n  }\n}");
        assert!(notes.is_empty());
        // Plain JSON declared as text stays text.
        assert!(matches!(render("text/plain", b"{\"a\":1}"), Rendered::Text { .. }));
    }

    #[test]
    fn media_type_parameters_case_and_bom_are_ignored() {
        let mut body = b"\xEF\xBB\xBF".to_vec();
        body.extend_from_slice(br#"{"resourceType":"Observation","code":{"text":"Pulse"}}"#);
        let r = render(" Application/FHIR+JSON; fhirVersion=4.0 ", &body);
        assert_eq!(sections(&r)[0].title, "Observation: Pulse");
        let Rendered::Text { text, .. } = render("TEXT/PLAIN; charset=utf-8", b"\xEF\xBB\xBFhello") else { panic!() };
        assert_eq!(text, "hello");
    }

    #[test]
    fn pdf_magic_wins_over_the_declared_type_and_the_note_says_so() {
        let pdf = b"%PDF-1.7\n%\xE2\xE3\n1 0 obj";
        let Rendered::Binary { kind, extension, bytes, note } = render("text/plain", pdf) else { panic!() };
        assert_eq!((kind, extension, bytes), (BinaryKind::Pdf, "pdf", pdf.len()));
        assert!(note.contains("Declared as text/plain"), "{note}");
        let Rendered::Binary { kind, note, .. } = render("application/pdf", b"%PDF-1.4 ...") else { panic!() };
        assert_eq!(kind, BinaryKind::Pdf);
        assert!(!note.contains("Declared as"), "{note}");
    }

    #[test]
    fn png_and_jpeg_magic_win_over_the_declared_type() {
        let r = render("application/json", IMAGING);
        assert!(
            matches!(&r, Rendered::Binary { kind: BinaryKind::Png, note, .. } if note.contains("application/json"))
        );
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'];
        let r = render("image/png", &jpeg);
        assert!(
            matches!(&r, Rendered::Binary { kind: BinaryKind::Jpeg, extension: "jpg", note, .. } if note.contains("image/png")),
            "{r:?}"
        );
        let r = render("image/jpeg", &jpeg);
        assert!(matches!(&r, Rendered::Binary { kind: BinaryKind::Jpeg, note, .. } if !note.contains("Declared")));
    }

    #[test]
    fn declared_pdf_without_its_header_is_other_bytes() {
        let r = render("application/pdf", b"hello");
        assert!(
            matches!(&r, Rendered::Binary { kind: BinaryKind::Other, extension: "bin", note, .. } if note.contains("no %PDF- header")),
            "{r:?}"
        );
    }

    #[test]
    fn invalid_utf8_text_is_offered_as_binary() {
        let text = b"ok \xFF\xFE bad";
        let r = render("text/plain", text);
        assert!(
            matches!(&r, Rendered::Binary { kind: BinaryKind::Other, bytes, note, .. }
                if *bytes == text.len() && note.contains("offset 3")),
            "{r:?}"
        );
        assert!(matches!(render("application/json", b"\xC3\x28"), Rendered::Binary { kind: BinaryKind::Other, .. }));
        // The offset counts from the start of the record, byte order mark included.
        let r = render("text/plain", b"\xEF\xBB\xBFok\xFF");
        assert!(matches!(&r, Rendered::Binary { note, .. } if note.contains("offset 5")), "{r:?}");
    }

    #[test]
    fn invalid_json_is_shown_as_text_with_the_parse_error() {
        let Rendered::Text { text, notes } = render(FHIR, b"{\"resourceType\": ") else { panic!() };
        assert_eq!(text, "{\"resourceType\": ");
        assert!(notes[0].contains("not valid JSON"), "{notes:?}");
    }

    #[test]
    fn unknown_type_is_sniffed_as_json_text_or_bytes() {
        assert!(matches!(render("application/octet-stream", b"[1,2]"), Rendered::Json { .. }));
        assert!(matches!(render("", b"{\"resourceType\":\"Patient\"}"), Rendered::Fhir { .. }));
        assert!(matches!(render("application/x-whatever", b"Plain words.\n"), Rendered::Text { .. }));
        assert!(matches!(
            render("application/octet-stream", b"\x00\x01\x02"),
            Rendered::Binary { kind: BinaryKind::Other, extension: "bin", bytes: 3, .. }
        ));
        assert!(matches!(
            render("image/gif", b"GIF89a"),
            Rendered::Binary { kind: BinaryKind::Other, extension: "gif", .. }
        ));
    }

    #[test]
    fn empty_record_says_it_is_empty() {
        for mt in [FHIR, "text/plain", "application/pdf", ""] {
            let Rendered::Text { text, notes } = render(mt, b"") else { panic!("{mt}") };
            assert!(text.is_empty());
            assert_eq!(notes, ["The record is empty."]);
        }
    }

    #[test]
    fn json_nested_past_the_recursion_limit_does_not_panic() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let r = render("application/json", deep.as_bytes());
        assert!(matches!(&r, Rendered::Text { notes, .. } if notes[0].contains("not valid JSON")), "{:?}", r);
        let deep = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
        assert!(matches!(render("application/octet-stream", deep.as_bytes()), Rendered::Text { .. }));
    }

    #[test]
    fn huge_pretty_json_and_text_are_cut_with_a_note() {
        let v = json!({"resourceType": "Condition", "code": {"text": "ü".repeat(MAX_TEXT_BYTES)}});
        let Rendered::Fhir { sections, pretty, notes } = render_value(&v) else { panic!() };
        assert!(pretty.len() <= MAX_TEXT_BYTES + "\n…".len());
        assert!(pretty.ends_with('…'));
        assert!(notes.iter().any(|n| n.contains("JSON cut")), "{notes:?}");
        assert_eq!(sections[0].title.chars().count(), MAX_VALUE_CHARS);

        let text = "ab\n".repeat(MAX_TEXT_BYTES);
        let Rendered::Text { text: shown, notes } = render("text/plain", text.as_bytes()) else { panic!() };
        assert_eq!(shown.len(), MAX_TEXT_BYTES);
        assert_eq!(notes, ["Text cut after 1.0 MB of 3.1 MB."]);
    }

    #[test]
    fn text_cut_lands_on_a_char_boundary() {
        let (kept, cut) = cut_at_boundary("aé", 2);
        assert_eq!((kept, cut), ("a", true));
        assert_eq!(cap_to("abcdef", 4), "abc…");
        assert_eq!(cap_to("abcd", 4), "abcd");
    }

    // ----- properties -----

    fn check_invariants(input_len: usize, r: &Rendered) {
        match r {
            Rendered::Fhir { sections, pretty, .. } => {
                assert!(pretty.len() <= MAX_TEXT_BYTES + 4);
                assert!(sections.len() <= MAX_SECTIONS + 1);
                for s in sections {
                    assert!(s.title.chars().count() <= MAX_VALUE_CHARS);
                    for (label, value) in &s.rows {
                        assert!(!label.is_empty() && !value.is_empty());
                        assert!(value.chars().count() <= MAX_VALUE_CHARS);
                    }
                    if let Some(w) = &s.warning {
                        assert!(w.chars().count() <= MAX_VALUE_CHARS);
                    }
                }
            }
            Rendered::Json { pretty, .. } => assert!(pretty.len() <= MAX_TEXT_BYTES + 4),
            Rendered::Text { text, .. } => assert!(text.len() <= MAX_TEXT_BYTES && text.len() <= input_len),
            Rendered::Binary { bytes, extension, note, .. } => {
                assert_eq!(*bytes, input_len);
                assert!(!extension.is_empty() && !note.is_empty());
            }
        }
    }

    /// Magic numbers and openings that steer `render` down each path.
    const PREFIXES: &[&[u8]] =
        &[b"", b"%PDF-", b"\x89PNG\r\n\x1a\n", b"\xFF\xD8\xFF", b"{", b"\xEF\xBB\xBF", b"[", b"{\"resourceType\":"];

    const MEDIA_TYPES: &[&str] = &[
        "application/fhir+json",
        "application/json",
        "text/plain",
        "application/pdf",
        "image/png",
        "image/jpeg",
        "application/octet-stream",
        "application/fhir+xml",
        "",
        "TEXT/Plain; charset=utf-8",
    ];

    /// Keys and strings FHIR summaries look at, so random trees reach the summary code.
    const FHIR_WORDS: &[&str] = &[
        "resourceType",
        "Bundle",
        "Patient",
        "AllergyIntolerance",
        "MedicationStatement",
        "Condition",
        "Observation",
        "Composition",
        "entry",
        "resource",
        "type",
        "name",
        "text",
        "given",
        "family",
        "use",
        "official",
        "identifier",
        "value",
        "system",
        "code",
        "coding",
        "display",
        "criticality",
        "high",
        "severe",
        "reaction",
        "manifestation",
        "severity",
        "clinicalStatus",
        "verificationStatus",
        "refuted",
        "medicationCodeableConcept",
        "medicationReference",
        "dosage",
        "effectivePeriod",
        "start",
        "end",
        "effectiveDateTime",
        "onsetAge",
        "onsetPeriod",
        "valueQuantity",
        "unit",
        "comparator",
        "valueString",
        "valueCodeableConcept",
        "valueRange",
        "valueRatio",
        "numerator",
        "denominator",
        "low",
        "component",
        "interpretation",
        "H",
        "referenceRange",
        "note",
        "deceasedBoolean",
        "title",
    ];

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(FHIR_WORDS).prop_map(str::to_owned),
            1 => ".{0,12}",
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            word().prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 96, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((word(), inner), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// A resource of a known type whose fields are random trees.
    fn fhir_like() -> impl Strategy<Value = Value> {
        (
            prop::sample::select(&FHIR_WORDS[1..8]),
            prop::collection::vec((word(), json_value()), 0..10),
            prop::collection::vec(json_value(), 0..4),
        )
            .prop_map(|(rt, fields, entries)| {
                let mut m: serde_json::Map<String, Value> = fields.into_iter().collect();
                m.insert("resourceType".to_owned(), Value::from(rt));
                if rt == "Bundle" {
                    let e = entries.into_iter().map(|r| json!({"resource": r})).collect();
                    m.insert("entry".to_owned(), Value::Array(e));
                }
                Value::Object(m)
            })
    }

    /// One change to a sample record: the node at a pre-order index (modulo the node count) is
    /// replaced by a random value, emptied, or made into a very long string.
    #[derive(Debug, Clone)]
    enum Mutation {
        Replace(usize, Value),
        Null(usize),
        Long(usize),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            3 => (any::<usize>(), json_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
            1 => any::<usize>().prop_map(Mutation::Null),
            1 => any::<usize>().prop_map(Mutation::Long),
        ]
    }

    fn count_nodes(v: &Value) -> usize {
        1 + match v {
            Value::Array(a) => a.iter().map(count_nodes).sum(),
            Value::Object(o) => o.values().map(count_nodes).sum(),
            _ => 0,
        }
    }

    /// Applies `f` to the node numbered `target` in pre-order (`seen` counts nodes visited so far).
    fn at_node(v: &mut Value, target: usize, seen: &mut usize, f: &mut dyn FnMut(&mut Value)) -> bool {
        if *seen == target {
            f(v);
            return true;
        }
        *seen += 1;
        match v {
            Value::Array(a) => a.iter_mut().any(|c| at_node(c, target, seen, f)),
            Value::Object(o) => o.values_mut().any(|c| at_node(c, target, seen, f)),
            _ => false,
        }
    }

    fn mutate(mut v: Value, mutations: &[Mutation]) -> Value {
        for m in mutations {
            let (i, new) = match m {
                Mutation::Replace(i, new) => (*i, new.clone()),
                Mutation::Null(i) => (*i, Value::Null),
                Mutation::Long(i) => (*i, Value::String("x".repeat(2 * MAX_VALUE_CHARS))),
            };
            let target = i % count_nodes(&v);
            at_node(&mut v, target, &mut 0, &mut |node| *node = new.clone());
        }
        v
    }

    /// The sample records and each resource inside them, as starting points for mutation.
    fn sample_resources() -> Vec<Value> {
        let mut out = Vec::new();
        for bytes in [SUMMARY, ALLERGIES, MEDICATIONS, LABS] {
            let v: Value = serde_json::from_slice(bytes).unwrap();
            for e in list(&v, "entry") {
                out.extend(e.get("resource").cloned());
            }
            out.push(v);
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

        #[test]
        fn render_never_panics_on_arbitrary_bytes(
            mt in prop::sample::select(MEDIA_TYPES),
            prefix in prop::sample::select(PREFIXES),
            body in prop::collection::vec(any::<u8>(), 0..512),
        ) {
            let mut bytes = prefix.to_vec();
            bytes.extend_from_slice(&body);
            check_invariants(bytes.len(), &render(mt, &bytes));
        }

        #[test]
        fn render_never_panics_on_arbitrary_json(
            mt in prop::sample::select(&["application/json", "application/fhir+json"]),
            v in json_value(),
        ) {
            let bytes = serde_json::to_vec(&v).unwrap();
            let r = render(mt, &bytes);
            check_invariants(bytes.len(), &r);
            let is_resource = v.get("resourceType").is_some_and(Value::is_string);
            prop_assert_eq!(matches!(r, Rendered::Fhir { .. }), is_resource);
        }

        #[test]
        fn render_never_panics_on_fhir_like_resources(
            mt in prop::sample::select(&["application/json", "application/fhir+json", "text/plain"]),
            v in fhir_like(),
        ) {
            let bytes = serde_json::to_vec(&v).unwrap();
            let r = render(mt, &bytes);
            check_invariants(bytes.len(), &r);
            prop_assert!(matches!(&r, Rendered::Fhir { sections, .. } if !sections.is_empty()), "{:?}", r);
        }

        #[test]
        fn render_never_panics_on_mutated_samples(
            seed in prop::sample::select(sample_resources()),
            mutations in prop::collection::vec(mutation(), 1..4),
        ) {
            let v = mutate(seed, &mutations);
            let bytes = serde_json::to_vec(&v).unwrap();
            let r = render(FHIR, &bytes);
            check_invariants(bytes.len(), &r);
            let is_resource = v.get("resourceType").is_some_and(Value::is_string);
            prop_assert_eq!(matches!(r, Rendered::Fhir { .. }), is_resource);
        }
    }
}
