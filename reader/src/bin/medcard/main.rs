//! `medcard`: the MedCard command line. One module per command group (`readers`, `card`, ...);
//! each returns `Result<(), reader::Error>` and `main` turns an error into a message and exit 1.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod audit;
mod cache;
mod card;
mod checkin;
mod clinic_cli;
mod consent;
mod init;
mod qr;
mod readers;
mod scan;
mod trust;
mod record;


#[derive(Parser)]
#[command(
    name = "medcard",
    version,
    about = "MedCard patient cards: readers, cards and QR pointers",
    after_help = "Examples:\n  medcard readers\n  medcard card info --reader 'Virtual PCD 00 00' --json\n  medcard qr inspect --trust clinic.pem code.png\n\n\
                  Exit status: 0 on success, 1 on any error (message on stderr); `medcard qr` has its own (see its --help)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new clinic: issuer key, clinic CA certificate and master secret.
    Init(init::InitArgs),
    /// The patient's consent token on the card: set, show, revoke.
    Consent {
        #[command(subcommand)]
        command: consent::ConsentCommand,
    },
    /// The trust list: issuer keys of this and other clinics.
    Trust {
        #[command(subcommand)]
        command: trust::TrustCommand,
    },
    /// Encrypted records in the clinic store (add, list, get).
    Record {
        #[command(subcommand)]
        command: record::RecordCommand,
    },
    /// The bedside cache of verified records (list, purge).
    Cache {
        #[command(subcommand)]
        command: cache::CacheCommand,
    },
    /// The tamper-evident audit log (show, verify, checkpoint, prove, consistency).
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// List the smart-card readers and whether each holds a card.
    Readers {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Work with the card in a reader.
    Card {
        #[command(subcommand)]
        command: card::CardCommand,
    },
    /// Kiosk check-in: card, PIN and consent make one signed QR code for the consented records.
    Checkin(checkin::CheckinArgs),
    /// Bedside scan: verify a QR code (image or text), fetch, check and cache its records, show them.
    Scan(scan::ScanArgs),
    /// QR pointers: decode images, inspect and verify codes layer by layer.
    Qr {
        #[command(subcommand)]
        command: qr::QrCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Record { command } => return record::run(command),
        Command::Cache { command } => return cache::run(command),
        Command::Audit { command } => return audit::run(command),
        Command::Qr { command } => return qr::run(command),
        Command::Scan(args) => return scan::run(&args),
        Command::Checkin(args) => checkin::run(&args),
        Command::Readers { json } => readers::readers(json),
        Command::Card { command } => card::run(command),
        Command::Init(args) => init::run(&args),
        Command::Consent { command } => consent::run(command),
        Command::Trust { command } => trust::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("medcard: error: {e}");
            ExitCode::FAILURE
        }
    }
}
