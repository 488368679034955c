//! FHIR R4 resources (Patient, AllergyIntolerance, MedicationStatement, Condition, Observation,
//! Composition, and Bundles of them) as one [`Section`] each, in document order. Missing fields
//! are omitted and fields of the wrong JSON type ignored; lists and nesting are capped.

use serde_json::Value;
use std::fmt::Write as _;

use super::{MAX_SECTIONS, Section, cap, cap_to};

/// Most items of one list (identifiers, reactions, components, dosages) shown in a section.
const MAX_LIST_ITEMS: usize = 50;
/// Bundles nested deeper than this are listed as "Other resource: Bundle".
const MAX_BUNDLE_DEPTH: usize = 4;

/// The sections of a FHIR resource (a Bundle: of its entries), with a closing "… N more" section
/// when there were more than [`MAX_SECTIONS`].
pub(super) fn summarise(resource: &Value) -> Vec<Section> {
    let mut summary = Summary::default();
    summary.resource(resource, 0);
    let Summary { mut sections, skipped } = summary;
    if skipped > 0 {
        sections.push(Section::new(format!("… {skipped} more entries not shown")));
    }
    sections
}

pub(super) fn resource_type(v: &Value) -> Option<&str> {
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
    let name =
        list(p, "name").iter().find(|n| str_at(n, "use") == Some("official")).or_else(|| list(p, "name").first()).and_then(human_name);
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
        let manifestations: Vec<String> = list(r, "manifestation").iter().take(MAX_LIST_ITEMS).filter_map(codeable_text).collect();
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
            let parts: Vec<String> =
                [d.get("route").and_then(codeable_text), d.get("timing").and_then(|t| t.get("code")).and_then(codeable_text)]
                    .into_iter()
                    .flatten()
                    .collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        });
        s.row("Dosage", text);
    }
    s.row("Effective", str_at(m, "effectiveDateTime").map(str::to_owned).or_else(|| m.get("effectivePeriod").and_then(period)));
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
            let what = code.as_deref().map(|c| format!("{} {}", cap_to(c, 100), i.text)).unwrap_or_else(|| i.text.clone());
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
    let abnormal =
        items.iter().any(|i| list(i, "coding").iter().filter_map(|c| str_at(c, "code")).any(|code| ABNORMAL_CODES.contains(&code)));
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

pub(super) fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
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
