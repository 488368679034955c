//! `medcard record add|list|get`: encrypted records in the clinic store (docs/records.md).
//! Also the shared opening of the clinic (keystore, database, store) for `cache` and `audit`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use reader::audit::{self, Event, EventKind};
use reader::category::Category;
use reader::db::ClinicDb;
use reader::keystore::{self, KeyPurpose, Keystore};
use reader::records::{self, AddedRecord, NewRecord};
use reader::store::{DirStore, RecordStore};

/// The data directory option shared by the record, cache and audit commands.
#[derive(Args, Clone)]
pub struct DataArg {
    /// The data directory (default: $MEDCARD_HOME, else $XDG_DATA_HOME/medcard, else ~/.local/share/medcard).
    #[arg(long, value_name = "DIR", global = true)]
    pub data: Option<PathBuf>,
}

/// An opened clinic.
pub struct Clinic {
    pub ks: Keystore,
    pub db: ClinicDb,
    pub store: DirStore,
}

/// The records directory inside the data directory.
pub const RECORDS_DIR: &str = reader::bedside::RECORDS_DIR;

impl Clinic {
    pub fn open(data: Option<&Path>) -> Result<Clinic, String> {
        let dir = keystore::data_dir(data).map_err(|e| e.to_string())?;
        let ks = Keystore::open(&dir).map_err(|e| e.to_string())?;
        let db = ClinicDb::open_clinic(&ks).map_err(|e| e.to_string())?;
        let store = DirStore::open(&dir.join(RECORDS_DIR)).map_err(|e| e.to_string())?;
        Ok(Clinic { ks, db, store })
    }

    /// Appends an audit event; a failure to audit is an error of the command (fail closed).
    pub fn audit(&mut self, kind: EventKind, subject: &str, outcome: &str, detail: String) -> Result<u64, String> {
        let ev = Event { time: now(), kind, actor: actor(), subject: subject.to_owned(), outcome: outcome.to_owned(), detail };
        audit::append(&mut self.db, &ev).map_err(|e| format!("could not write the audit log: {e}"))
    }
}

/// Who runs the command, for audit entries: `cli:<login name>`.
pub fn actor() -> String {
    format!("cli:{}", audit::os_user())
}

/// Unix time now.
pub fn now() -> i64 {
    reader::clock::system_now()
}

/// Prints the error and returns exit status 1.
pub fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("medcard: error: {msg}");
    ExitCode::FAILURE
}

pub fn finish(r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

#[derive(Subcommand)]
pub enum RecordCommand {
    /// Encrypt a document into the clinic store and index it.
    #[command(after_help = "Example:\n  medcard record add --patient-id P-1001 --category labs results.json")]
    Add {
        /// The patient's id.
        #[arg(long, value_name = "ID")]
        patient_id: String,
        /// summary, allergies, medications, labs, imaging or notes.
        #[arg(long)]
        category: Category,
        /// Media type (default: from the file name: .json FHIR JSON, .pdf, .txt, else octet-stream).
        #[arg(long)]
        media_type: Option<String>,
        /// Author (default: the user running the command).
        #[arg(long)]
        author: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The document.
        file: PathBuf,
        #[command(flatten)]
        data: DataArg,
    },
    /// List indexed records (metadata only).
    List {
        #[arg(long, value_name = "ID")]
        patient_id: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArg,
    },
    /// Decrypt a record to a file (checks the store digest and the AEAD tag first).
    Get {
        /// The record id.
        id: String,
        /// Where to write the document: a new file (mode 0600), never over an existing file,
        /// never inside the data directory.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        data: DataArg,
    },
}

pub fn run(cmd: RecordCommand) -> ExitCode {
    match cmd {
        RecordCommand::Add { patient_id, category, media_type, author, json, file, data } => {
            finish(add(data.data.as_deref(), patient_id, category, media_type, author, json, &file))
        }
        RecordCommand::List { patient_id, json, data } => finish(list(data.data.as_deref(), patient_id.as_deref(), json)),
        RecordCommand::Get { id, out, data } => finish(get(data.data.as_deref(), &id, &out)),
    }
}

fn add(
    data: Option<&Path>,
    patient_id: String,
    category: Category,
    media_type: Option<String>,
    author: Option<String>,
    json: bool,
    file: &Path,
) -> Result<(), String> {
    let c = Clinic::open(data)?;
    let new = NewRecord {
        patient_id,
        category,
        media_type: media_type.unwrap_or_else(|| records::media_type_for(file).to_owned()),
        author: author.unwrap_or_else(actor),
    };
    let added = records::add_record_file(&c.ks, &c.db, &c.store, &new, file, now(), &actor()).map_err(|e| e.to_string())?;
    let AddedRecord { meta, locator, size } = added;
    if json {
        let v = serde_json::json!({"record_id": meta.record_id, "locator": locator.to_string(), "size": size,
            "patient_id": meta.patient_id, "category": meta.category.as_str(), "media_type": meta.media_type});
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!("record {} added ({} bytes sealed)", meta.record_id, size);
        println!("locator: {locator}");
    }
    Ok(())
}

fn list(data: Option<&Path>, patient_id: Option<&str>, json: bool) -> Result<(), String> {
    let c = Clinic::open(data)?;
    let rows = c.db.records(patient_id).map_err(|e| e.to_string())?;
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({"record_id": r.meta.record_id, "patient_id": r.meta.patient_id,
                "category": r.meta.category.as_str(), "media_type": r.meta.media_type, "created": r.meta.created,
                "author": r.meta.author, "locator": r.locator.to_string(), "size": r.size})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!("{:<32}  {:<12}  {:<11}  {:>10}  {:<24}  created", "record", "patient", "category", "bytes", "media type");
        for r in &rows {
            println!(
                "{:<32}  {:<12}  {:<11}  {:>10}  {:<24}  {}",
                r.meta.record_id,
                r.meta.patient_id,
                r.meta.category.as_str(),
                r.size,
                r.meta.media_type,
                qr::time::format_rfc3339(r.meta.created)
            );
        }
        println!("{} record(s)", rows.len());
    }
    Ok(())
}

fn get(data: Option<&Path>, id: &str, out: &Path) -> Result<(), String> {
    let mut c = Clinic::open(data)?;
    let result = (|| {
        let data_dir = c.ks.data_dir().to_path_buf();
        reader::export::check_new(&data_dir, out).map_err(|e| e.to_string())?;
        let row = c.db.record(id).map_err(|e| e.to_string())?;
        let wrap = c.ks.derive_key(KeyPurpose::RecordKeyWrap);
        let key = records::keywrap::unwrap(&wrap, id, &row.wrapped_key).map_err(|e| e.to_string())?;
        let bytes = c.store.get(&row.locator).map_err(|e| e.to_string())?;
        let opened = records::open(bytes, &row.meta.patient_id, &key, &row.locator.to_string()).map_err(|e| e.to_string())?;
        if opened.meta != row.meta {
            return Err(format!("record {id}: the sealed metadata does not match the index row; not writing it"));
        }
        reader::export::write_new_export(&data_dir, out, opened.document()).map_err(|e| e.to_string())?;
        Ok(row.meta.patient_id)
    })();
    match result {
        Ok(patient) => {
            c.audit(EventKind::RecordRead, id, "ok", format!("patient={patient}"))?;
            println!("record {id} written to {}", out.display());
            Ok(())
        }
        Err(e) => {
            // Record the refusal (ids and the error class only), then report it.
            let class = if e.contains("integrity") { "integrity-failed" } else { "failed" };
            let _ = c.audit(EventKind::RecordRead, id, class, String::new());
            Err(e)
        }
    }
}
