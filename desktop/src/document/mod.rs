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
//!
//! `media` tells what the bytes are (magic bytes, declared type, JSON or text) and renders
//! all but FHIR; `fhir` turns FHIR R4 resources into [`Section`]s.

mod fhir;
mod media;
#[cfg(test)]
mod tests;

pub use media::{BinaryKind, render};

/// Longest value (in characters) put into a [`Section`] row or title; longer ones end in "…".
pub const MAX_VALUE_CHARS: usize = 500;
/// Most bytes of pretty JSON or text kept for display; the rest is cut with a note.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;
/// Most sections made from one record (a Bundle with more entries gets a closing "… more" section).
pub const MAX_SECTIONS: usize = 1000;

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
