//! `render` on the sample records, on each FHIR resource kind and media-type case, and on
//! arbitrary and mutated input (property tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use super::fhir::list;
use super::*;
use proptest::prelude::*;
use serde_json::{Value, json};

const SUMMARY: &[u8] = include_bytes!("../../samples/summary.json");
const ALLERGIES: &[u8] = include_bytes!("../../samples/allergies.json");
const MEDICATIONS: &[u8] = include_bytes!("../../samples/medications.json");
const LABS: &[u8] = include_bytes!("../../samples/labs.json");
const NOTES: &[u8] = include_bytes!("../../samples/notes.txt");
const IMAGING: &[u8] = include_bytes!("../../samples/imaging.png");

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
    assert_eq!(titles, ["Patient: Alex Demo", "Condition: Type 2 diabetes mellitus", "Condition: Essential hypertension"]);
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
    for (name, bytes) in [("summary", SUMMARY), ("allergies", ALLERGIES), ("medications", MEDICATIONS), ("labs", LABS), ("notes", NOTES)] {
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
    let s = one_section(&json!({"resourceType": "Patient", "name": [{"text": "Kim Doe"}], "deceasedDateTime": "2020-01-01"}));
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
    let s = one_section(&json!({"resourceType": "AllergyIntolerance", "criticality": "high", "code": {"text": "Latex"},
        "verificationStatus": {"coding": [{"code": "refuted"}]}}));
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
    assert_eq!(row(&base("valueCodeableConcept", json!({"coding": [{"display": "Positive"}]})), "Value"), Some("Positive"));
    assert_eq!(row(&base("valueBoolean", json!(false)), "Value"), Some("no"));
    assert_eq!(row(&base("valueInteger", json!(3)), "Value"), Some("3"));
    assert_eq!(row(&base("valueQuantity", json!({"value": 10, "comparator": "<", "code": "mg/L"})), "Value"), Some("<10 mg/L"));
    assert_eq!(row(&base("valueRange", json!({"low": {"value": 1}, "high": {"value": 2, "unit": "g"}})), "Value"), Some("1 to 2 g"));
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
    let entries: Vec<Value> =
        (0..MAX_SECTIONS + 25).map(|i| json!({"resource": {"resourceType": "Condition", "code": {"text": i.to_string()}}})).collect();
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
    assert!(matches!(&r, Rendered::Binary { kind: BinaryKind::Png, note, .. } if note.contains("application/json")));
    let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'];
    let r = render("image/png", &jpeg);
    assert!(matches!(&r, Rendered::Binary { kind: BinaryKind::Jpeg, extension: "jpg", note, .. } if note.contains("image/png")), "{r:?}");
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
    assert!(matches!(render("image/gif", b"GIF89a"), Rendered::Binary { kind: BinaryKind::Other, extension: "gif", .. }));
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
const PREFIXES: &[&[u8]] = &[b"", b"%PDF-", b"\x89PNG\r\n\x1a\n", b"\xFF\xD8\xFF", b"{", b"\xEF\xBB\xBF", b"[", b"{\"resourceType\":"];

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
