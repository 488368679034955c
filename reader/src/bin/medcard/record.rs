//! `medcard record add|list|get`: encrypted records in the clinic store (docs/records.md).

use std::path::{Path, PathBuf};

use clap::Subcommand;
use reader::audit::{EventKind, Outcome};
use reader::category::Category;
use reader::db::DbError;
use reader::export::ExportError;
use reader::keystore::KeyPurpose;
use reader::records::{self, AddedRecord, NewRecord};

use crate::cli::{self, CliError, DataArg, Output, actor, print_json};

/// Why `record get` did not write the record (audited as `record.read` with [`ReadError::outcome`]).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No such record, or the index could not be read.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The clinic's records index (clinic mode).
    #[error(transparent)]
    Clinic(#[from] reader::clinic::ClinicError),
    /// The record could not be opened: the store, an altered key or record, or metadata that
    /// contradicts the index.
    #[error(transparent)]
    Open(#[from] records::OpenRowError),
    /// The `--out` file was refused or not written.
    #[error(transparent)]
    Export(#[from] ExportError),
}

impl ReadError {
    /// The audit outcome: `integrity-failed` when the stored bytes or key were altered.
    #[must_use]
    pub fn outcome(&self) -> Outcome {
        match self {
            ReadError::Open(e) if e.is_integrity() => Outcome::IntegrityFailed,
            _ => Outcome::Failed,
        }
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
        #[command(flatten)]
        format: Output,
        /// The document.
        file: PathBuf,
        #[command(flatten)]
        data: DataArg,
    },
    /// List indexed records (metadata only).
    List {
        #[arg(long, value_name = "ID")]
        patient_id: Option<String>,
        #[command(flatten)]
        format: Output,
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

pub fn run(cmd: RecordCommand) -> Result<(), CliError> {
    match cmd {
        RecordCommand::Add { patient_id, category, media_type, author, format, file, data } => {
            add(&data, patient_id, category, media_type, author, format, &file)
        }
        RecordCommand::List { patient_id, format, data } => list(&data, patient_id.as_deref(), format),
        RecordCommand::Get { id, out, data } => get(&data, &id, &out),
    }
}

fn add(
    data: &DataArg,
    patient_id: String,
    category: Category,
    media_type: Option<String>,
    author: Option<String>,
    format: Output,
    file: &Path,
) -> Result<(), CliError> {
    let c = data.clinic()?;
    let new = NewRecord {
        patient_id,
        category,
        media_type: media_type.unwrap_or_else(|| records::media_type_for(file).to_owned()),
        author: author.unwrap_or_else(actor),
    };
    let added = records::add_record_file_in(&c.ks, &c.state, &c.store, &new, file, cli::now()?)?;
    let AddedRecord { meta, locator, size } = added;
    if format.json {
        print_json(&serde_json::json!({"record_id": meta.record_id, "locator": locator.to_string(), "size": size,
            "patient_id": meta.patient_id, "category": meta.category.as_str(), "media_type": meta.media_type}));
    } else {
        println!("record {} added ({} bytes sealed)", meta.record_id, size);
        println!("locator: {locator}");
    }
    Ok(())
}

fn list(data: &DataArg, patient_id: Option<&str>, format: Output) -> Result<(), CliError> {
    let c = data.clinic()?;
    let rows = c.state.records(patient_id)?;
    if format.json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({"record_id": r.meta.record_id, "patient_id": r.meta.patient_id,
                "category": r.meta.category.as_str(), "media_type": r.meta.media_type, "created": r.meta.created,
                "author": r.meta.author, "locator": r.locator.to_string(), "size": r.size})
            })
            .collect();
        print_json(&serde_json::Value::Array(v));
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

fn get(data: &DataArg, id: &str, out: &Path) -> Result<(), CliError> {
    let mut c = data.clinic()?;
    let result = (|| -> Result<String, ReadError> {
        let data_dir = c.ks.data_dir().to_path_buf();
        reader::export::check_new(&data_dir, out)?;
        let row = c.state.record(id)?;
        let wrap = c.ks.derive_key(KeyPurpose::RecordKeyWrap).map_err(reader::clinic::ClinicError::from)?;
        let opened = records::open_row(&wrap, &c.store, &row)?;
        reader::export::write_new_export(&data_dir, out, opened.document())?;
        Ok(row.meta.patient_id)
    })();
    match result {
        Ok(patient) => {
            c.audit(EventKind::RecordRead, id, Outcome::Ok, format!("patient={patient}"))?;
            println!("record {id} written to {}", out.display());
            Ok(())
        }
        Err(e) => {
            // Record the refusal (ids and the error class only), then report it.
            let _ = c.audit(EventKind::RecordRead, id, e.outcome(), String::new());
            Err(e.into())
        }
    }
}
