//! What every `medcard` command shares: the one error type ([`CliError`]) and its exit codes,
//! the data directory ([`DataArg`]), the output format ([`Output`]), the card reader
//! ([`ReaderArg`]), the clock ([`now`]), secrets from flags or the terminal, and the opened clinic.
//!
//! Exit codes (also in `medcard --help` and docs/reader-client.md):
//! - 0: done;
//! - 1: the command failed or was refused (`medcard: error: <what happened and what to do>`);
//! - 2: usage: arguments clap refuses, and `medcard qr`'s unusable input (a file it cannot read,
//!   a key file that is not a key);
//! - 3: a QR code was checked and is INVALID (`medcard scan`, `medcard qr inspect`);
//! - 4: a QR code is NOT VERIFIED: its issuer is in no trust list (`medcard scan`).

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use reader::audit::{self, AuditError, Event, EventKind, Outcome};
use reader::bedside::BedsideError;
use reader::checkin::CheckinError;
use reader::clinic::{ClinicError, ClinicState};
use reader::clock::TestClockError;
use reader::db::{ClinicDb, DbError};
use reader::export::ExportError;
use reader::records::AddError;
use reader::scan_flow::{ScanError, Verdict};
use reader::store::{AnyStore, StoreError};
use reader::trust::TrustError;
use reader::{Keystore, KeystoreError, PcscContext, PcscTransport, PinBlock, Piv, PivError, TransportError, keystore};
use zeroize::Zeroizing;

/// Why a command did not complete. Each layer's error keeps its type; [`CliError::exit_code`]
/// maps them to the documented exit codes and `main` prints the message.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A clinic card flow (card, PIN, credential, consent, clinic state).
    #[error(transparent)]
    Flow(#[from] reader::Error),
    /// The card client alone (`medcard card info`, a PIN that is not 6-8 digits).
    #[error(transparent)]
    Card(#[from] PivError),
    /// The reader or pcscd.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The data directory or the keystore.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// The clinic state (database, audit log, trust files).
    #[error(transparent)]
    Clinic(#[from] ClinicError),
    /// The clinic database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The audit log could not be read or checked.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The audit log could not be written: the command is not done unaudited.
    #[error("could not write the audit log: {0}")]
    AuditWrite(#[source] AuditError),
    /// A checkpoint of the clinic log (clinic mode) could not be made.
    #[error(transparent)]
    ClinicCheckpoint(Box<reader::clinic_state::pg::PgCheckpointError>),
    /// `audit verify` found the log altered (or its checkpoints wrong).
    #[error("audit log verification FAILED: {0}")]
    AuditFinding(reader::audit::Finding),
    /// The record store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Adding a record.
    #[error(transparent)]
    Add(#[from] AddError),
    /// Reading a record back (`record get`).
    #[error(transparent)]
    Read(#[from] crate::record::ReadError),
    /// The kiosk check-in, after the card session.
    #[error("check-in refused: {0}")]
    Checkin(#[from] CheckinError),
    /// The QR code could not be drawn.
    #[error("rendering the QR code: {0}")]
    Render(#[from] qr::render::RenderError),
    /// The bedside (not a refused code: that is [`CliError::CodeRefused`]).
    #[error(transparent)]
    Bedside(#[from] BedsideError),
    /// A scanned code was refused (already audited).
    #[error("{0}")]
    CodeRefused(ScanError),
    /// A trust-list change or export.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// A clinic file (a trust file, a checkpoint) could not be read.
    #[error(transparent)]
    Fs(#[from] reader::fsutil::FsError),
    /// A file handed out (`--out`).
    #[error(transparent)]
    Export(#[from] ExportError),
    /// A record category we do not know.
    #[error(transparent)]
    Category(#[from] reader::category::UnknownCategory),
    /// `MEDCARD_NOW` is not Unix seconds (test builds).
    #[error(transparent)]
    Clock(#[from] TestClockError),
    /// A file or the terminal could not be read or written.
    #[error("cannot {operation} {}: {source}", path.display())]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing the document to standard output failed (a closed pipe).
    #[error("writing to stdout: {0}")]
    Stdout(#[source] std::io::Error),
    /// An image holds no readable QR code, or is not an image.
    #[error("{}: {source}", path.display())]
    Image {
        path: PathBuf,
        #[source]
        source: reader::scan_flow::ImageError,
    },
    /// `scan --cached ID` names nothing this device may show.
    #[error("cached record {id} is not available: it expired, the consent was revoked, or it was never cached here; scan a fresh QR code")]
    NotCached { id: String },
    /// A secret could not be read from the terminal or stdin, or none was given.
    #[error("{0}")]
    Secret(String),
    /// An argument's value is not usable; the text names the argument and what it expects.
    #[error("{0}")]
    Invalid(String),
    /// `medcard qr`'s input is not usable (exit 2); the text says which and why.
    #[error("{0}")]
    Usage(String),
    /// This clinic has staff cards and the command needs a staff sign-in that was not given
    /// (audited).
    #[error(
        "this clinic requires a staff sign-in to {what}: insert your staff card and pass --staff-reader READER (its PIN is asked for, or read from stdin)"
    )]
    StaffRequired { what: &'static str },
    /// Emergency access refused or failed.
    #[error(transparent)]
    Emergency(#[from] reader::emergency::EmergencyError),
    /// The patient's access report could not be built.
    #[error(transparent)]
    Report(#[from] reader::access_report::ReportError),
}

impl CliError {
    /// The exit code (see the module docs).
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::CodeRefused(e) => match e.verdict() {
                Verdict::IssuerUnknown => 4,
                Verdict::Invalid | Verdict::Verified => 3,
            },
            _ => 1,
        }
    }

    /// Prints the error on stderr (a refused code: its verdict, message and what to do) and
    /// returns the exit code.
    pub fn report(&self) -> ExitCode {
        match self {
            CliError::CodeRefused(e) => {
                let label = match e.verdict() {
                    Verdict::IssuerUnknown => "NOT VERIFIED: issuer unknown",
                    Verdict::Invalid | Verdict::Verified => "INVALID",
                };
                eprintln!("{label}: {e}");
                eprintln!("what to do: {}", e.advice());
            }
            other => eprintln!("medcard: error: {other}"),
        }
        ExitCode::from(self.exit_code())
    }
}

/// `--data DIR`, the one data-directory argument of every command.
#[derive(Args, Clone, Debug)]
pub struct DataArg {
    /// The data directory (default: $MEDCARD_HOME, else $XDG_DATA_HOME/medcard, else
    /// ~/.local/share/medcard).
    #[arg(long, value_name = "DIR", global = true)]
    pub data: Option<PathBuf>,
}

impl DataArg {
    /// The data directory.
    pub fn dir(&self) -> Result<PathBuf, CliError> {
        Ok(keystore::data_dir(self.data.as_deref())?)
    }
    /// The clinic's keystore there.
    pub fn keystore(&self) -> Result<Keystore, CliError> {
        Ok(Keystore::open(&self.dir()?)?)
    }
    /// The clinic state (database opened now, so a command fails plainly before touching a card
    /// when it could not leave an audit trail), naming the command-line user in audit entries.
    pub fn state(&self) -> Result<(Keystore, ClinicState), CliError> {
        let ks = self.keystore()?;
        let state = ClinicState::open(&ks)?.with_actor(&actor());
        Ok((ks, state))
    }
    /// The keystore, database, clinic state and record store (the clinic's, in clinic mode).
    pub fn clinic(&self) -> Result<Clinic, CliError> {
        let dir = self.dir()?;
        let ks = Keystore::open(&dir)?;
        let db = ClinicDb::open_clinic(&ks)?;
        let state = ClinicState::new(&ks).with_actor(&actor());
        let store = record_store(&state, &dir)?;
        Ok(Clinic { ks, db, state, store })
    }
}

/// `--json`, the one output-format argument.
#[derive(Args, Clone, Copy, Debug)]
pub struct Output {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `--reader NAME`, the one card-reader argument.
#[derive(Args, Clone, Debug)]
pub struct ReaderArg {
    /// The reader's name, as `medcard readers` prints it.
    #[arg(long = "reader", id = "reader", value_name = "READER")]
    pub name: String,
}

/// The record store of a data directory: the clinic's (`device.json`: a directory or an S3
/// bucket), else `<data>/records`.
pub fn record_store(state: &ClinicState, dir: &Path) -> Result<AnyStore, CliError> {
    let d = state.deployment()?;
    reader::deployment::open_store(dir, d.as_ref()).map_err(|e| CliError::Clinic(ClinicError::Deployment(e)))
}

/// An opened clinic: keystore, this device's database, the clinic state, record store.
pub struct Clinic {
    pub ks: Keystore,
    pub db: ClinicDb,
    pub state: ClinicState,
    pub store: AnyStore,
}

impl Clinic {
    /// Appends an audit event (to the clinic log in clinic mode); a failure to audit is an
    /// error of the command (fail closed).
    pub fn audit(&mut self, kind: EventKind, subject: &str, outcome: Outcome, detail: String) -> Result<(), CliError> {
        let ev = Event { time: now()?, kind, actor: actor(), subject: subject.to_owned(), outcome, detail };
        self.state.audit(std::slice::from_ref(&ev)).map_err(|e| match e {
            ClinicError::Audit(a) => CliError::AuditWrite(a),
            other => CliError::Clinic(other),
        })
    }
}

/// `--staff-reader READER`: the reader holding the signed-in staff member's card.
#[derive(Args, Clone, Debug, Default)]
pub struct StaffArg {
    /// The reader holding your staff card (required once the clinic has issued staff cards; see
    /// `medcard staff --help`). Its PIN is asked on the terminal, or read as a line from stdin.
    #[arg(long = "staff-reader", value_name = "READER", global = true)]
    pub staff_reader: Option<String>,
}

/// The staff actor of this process's session, once signed in (see [`actor`]).
static STAFF_ACTOR: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Runs `f` as the member of staff whose card is in `--staff-reader`, signed in for `action`
/// (PIN from the terminal or stdin; audited), with the session and its card; the session ends
/// (audited) when `f` returns, and the card is reset. Without `--staff-reader`: `f` gets `None`
/// while the clinic has no staff cards, and the command is refused (audited) once it has.
pub fn as_staff<R>(
    staff: &StaffArg,
    data: &DataArg,
    state: &ClinicState,
    action: reader::staff::Action,
    what: &'static str,
    f: impl FnOnce(Option<&mut dyn reader::staff_card::EntrySigner>) -> Result<R, CliError>,
) -> Result<R, CliError> {
    let now = now()?;
    let Some(name) = &staff.staff_reader else {
        if !state.staff_required()? {
            return f(None);
        }
        let ev = state.event(now, EventKind::StaffSession, "-", Outcome::NoStaffSession, format!("action={action}"));
        state.audit(std::slice::from_ref(&ev)).map_err(|e| match e {
            ClinicError::Audit(a) => CliError::AuditWrite(a),
            other => CliError::Clinic(other),
        })?;
        return Err(CliError::StaffRequired { what });
    };
    let ks = data.keystore()?;
    let pin = pin(None, "staff card PIN")?;
    let ctx = PcscContext::establish()?;
    let mut transport: PcscTransport = ctx.connect(name)?;
    let result = transport.transaction(|tx| -> Result<R, CliError> {
        let mut piv = Piv::new(tx);
        let session = reader::staff_card::sign_in(&mut piv, &ks, state, now, &pin, action)?;
        let _ = STAFF_ACTOR.set(session.actor());
        let mut signer = reader::staff_card::SessionSigner { session: &session, piv: &mut piv };
        let r = f(Some(&mut signer));
        let ended = reader::staff_card::end_session(state, &session, crate::cli::now()?, "signed-out");
        let r = r?;
        ended?;
        Ok(r)
    })?;
    let _ = transport.disconnect();
    result
}

/// Who runs the command, for audit entries: `cli:<login name>`, and after a staff sign-in
/// `cli:<login name> as staff:<staff id>#<serial>` (not in the card's name: these entries are
/// not signed by it; the entries the card signs itself name the card alone,
/// `staff:<staff id>#<serial>`, docs/staff.md).
pub fn actor() -> String {
    match STAFF_ACTOR.get() {
        Some(staff) => format!("cli:{} as {staff}", audit::os_user()),
        None => format!("cli:{}", audit::os_user()),
    }
}

/// The one clock of every command: [`reader::clock::now`] (`MEDCARD_NOW` in test builds only,
/// else the system clock).
pub fn now() -> Result<i64, CliError> {
    Ok(reader::clock::now()?)
}

/// Reads a secret: the flag's value, else a line from the terminal without echo, else (stdin
/// not a terminal) a line from stdin.
pub fn secret(flag: Option<&str>, prompt: &str) -> Result<Zeroizing<String>, CliError> {
    if let Some(v) = flag {
        return Ok(Zeroizing::new(v.to_owned()));
    }
    let stdin = std::io::stdin();
    let line = if stdin.is_terminal() {
        // rpassword prompts on the terminal with echo off and restores it on every path.
        Zeroizing::new(
            rpassword::prompt_password(format!("{prompt}: "))
                .map_err(|e| CliError::Secret(format!("cannot read the {prompt} from the terminal: {e}")))?,
        )
    } else {
        let mut line = Zeroizing::new(String::new());
        stdin.lock().read_line(&mut line).map_err(|e| CliError::Secret(format!("cannot read the {prompt}: {e}")))?;
        line
    };
    let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    if trimmed.is_empty() {
        return Err(CliError::Secret(format!("no {prompt} given")));
    }
    Ok(trimmed)
}

/// A PIN from the flag or the terminal.
pub fn pin(flag: Option<&str>, prompt: &str) -> Result<PinBlock, CliError> {
    Ok(PinBlock::pin(&secret(flag, prompt)?)?)
}

/// A PUK from the flag or the terminal.
pub fn puk(flag: Option<&str>, prompt: &str) -> Result<PinBlock, CliError> {
    Ok(PinBlock::puk(&secret(flag, prompt)?)?)
}

/// Runs `f` on the card in `reader` inside one PC/SC transaction, then disconnects (resetting
/// the card so no PIN or management-key status lingers).
pub fn with_card<R, E>(
    reader: &ReaderArg,
    f: impl FnOnce(&mut Piv<&mut reader::transport::PcscTransaction<'_>>) -> Result<R, E>,
) -> Result<R, CliError>
where
    CliError: From<E>,
{
    let ctx = PcscContext::establish()?;
    let mut transport: PcscTransport = ctx.connect(&reader.name)?;
    let result = transport.transaction(|tx| {
        let mut piv = Piv::new(tx);
        f(&mut piv)
    })?;
    let _ = transport.disconnect();
    Ok(result?)
}

/// Prints `v` as pretty JSON.
pub fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Reads a whole file the user named.
pub fn read_file(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Io { operation: "read", path: path.to_path_buf(), source })
}
