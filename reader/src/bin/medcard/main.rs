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
mod staff;
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
    #[command(flatten)]
    staff: cli::StaffArg,
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
    /// Staff cards: issue, list, revoke (docs/staff.md).
    Staff {
        #[command(subcommand)]
        command: staff::StaffCommand,
    },
    /// Emergency access ("break the glass"): a clinician opens a patient's emergency data without their code.
    Emergency(staff::EmergencyArgs),
    /// The patient's access report: who read their records, and every emergency access.
    Patient {
        #[command(subcommand)]
        command: staff::PatientCommand,
    },
    /// QR pointers: decode images, inspect and verify codes layer by layer.
    Qr {
        #[command(subcommand)]
        command: qr::QrCommand,
    },
}

/// The right an administrative command needs once the clinic has staff cards (the permission
/// table is `reader::staff::role`), with the command's data directory; `None`: no staff right
/// (read-only commands, the kiosk's patient self-service, and the commands that sign in
/// themselves: scan, staff, emergency, patient).
fn needs_admin(command: &Command) -> Option<(reader::staff::Action, &'static str, cli::DataArg)> {
    use card::CardCommand as C;
    use reader::staff::Action;
    use record::RecordCommand as R;
    use trust::TrustCommand as T;
    match command {
        Command::Card { command: C::Issue { data, .. } | C::Revoke { data, .. } | C::Unblock { data, .. } } => {
            Some((Action::ManageCards, "issue, revoke or unblock cards", data.clone()))
        }
        Command::Trust { command: T::Add { data, .. } | T::Remove { data, .. } | T::Import { data, .. } } => {
            Some((Action::EditTrust, "change the trust list", data.clone()))
        }
        Command::Record { command: R::Add { data, .. } | R::Get { data, .. } } => {
            Some((Action::AddRecords, "add or export records", data.clone()))
        }
        Command::Audit { command: audit::AuditCommand::Checkpoint { data, .. } } => {
            Some((Action::Administer, "sign audit checkpoints", data.clone()))
        }
        _ => None,
    }
}

fn run(command: Command, staff: &cli::StaffArg) -> Result<ExitCode, cli::CliError> {
    let done = |r: Result<(), cli::CliError>| r.map(|()| ExitCode::SUCCESS);
    match command {
        Command::Record { command } => done(record::run(command)),
        Command::Cache { command } => done(cache::run(command)),
        Command::Audit { command } => done(audit::run(command)),
        Command::Qr { command } => qr::run(command),
        Command::Scan(args) => done(scan::run(&args, staff)),
        Command::Checkin(args) => done(checkin::run(&args)),
        Command::Readers { format } => done(readers::readers(format)),
        Command::Card { command } => done(card::run(command)),
        Command::Init(args) => done(init::run(&args)),
        Command::Device { command } => done(device::run(command)),
        Command::Consent { command } => done(consent::run(command)),
        Command::Trust { command } => done(trust::run(command)),
        Command::Staff { command } => done(staff::run(command, staff)),
        Command::Emergency(args) => done(staff::emergency(&args, staff)),
        Command::Patient { command } => done(staff::patient(command, staff)),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match needs_admin(&cli.command) {
        // Signed in for the command's right (or refused, audited) once the clinic has staff cards.
        Some((action, what, data)) => {
            data.state().and_then(|(_, state)| cli::as_staff(&cli.staff, &data, &state, action, what, |_| run(cli.command, &cli.staff)))
        }
        None => run(cli.command, &cli.staff),
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
