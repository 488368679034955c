//! `medcard`: the MedCard command line. One module per command group (`readers`, `card`, ...);
//! each returns `Result<_, CliError>` ([`cli`]: the shared arguments, the clock, the one error
//! type) and `main` turns an error into its message and documented exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod audit;
mod cache;
mod card;
mod checkin;
mod cli;
mod consent;
mod device;
mod init;
mod qr;
mod readers;
mod record;
mod scan;
mod trust;

#[derive(Parser)]
#[command(
    name = "medcard",
    version,
    about = "MedCard patient cards: readers, cards and QR pointers",
    after_help = "Examples:\n  medcard readers\n  medcard card info --reader 'Virtual PCD 00 00' --json\n  medcard qr inspect --trust clinic.pem code.png\n\n\
                  Exit status: 0 done; 1 the command failed or was refused (message on stderr: what happened, what to do);\n\
                  2 usage (arguments, or `medcard qr` input that cannot be used); 3 a QR code is INVALID (scan, qr inspect);\n\
                  4 a QR code is NOT VERIFIED: its issuer is in no trust list (scan).\n\
                  Every command that reads the time uses one clock: the system clock (MEDCARD_NOW=<Unix seconds> in test builds)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new clinic: issuer key, clinic CA certificate and master secret.
    Init(init::InitArgs),
    /// A clinic of many devices: set up the clinic database, join this device, status, sync.
    Device {
        #[command(subcommand)]
        command: device::DeviceCommand,
    },
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
        #[command(flatten)]
        format: cli::Output,
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
    let done = |r: Result<(), cli::CliError>| r.map(|()| ExitCode::SUCCESS);
    let result = match cli.command {
        Command::Record { command } => done(record::run(command)),
        Command::Cache { command } => done(cache::run(command)),
        Command::Audit { command } => done(audit::run(command)),
        Command::Qr { command } => qr::run(command),
        Command::Scan(args) => done(scan::run(&args)),
        Command::Checkin(args) => done(checkin::run(&args)),
        Command::Readers { format } => done(readers::readers(format)),
        Command::Card { command } => done(card::run(command)),
        Command::Init(args) => done(init::run(&args)),
        Command::Device { command } => done(device::run(command)),
        Command::Consent { command } => done(consent::run(command)),
        Command::Trust { command } => done(trust::run(command)),
    };
    result.unwrap_or_else(|e| e.report())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks its own rules (unique argument ids, ...) only when a command is parsed in a
    /// debug build: check every subcommand here so a clash fails the unit tests, not a user.
    #[test]
    fn every_command_line_definition_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
