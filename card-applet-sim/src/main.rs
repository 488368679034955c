//! `card-sim`: makes simulated MedCard patient cards and serves them to pcscd through vpcd.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use card_applet_sim::persist::{self, FileStore};
use card_applet_sim::vpcd::{self, ServeOptions};
use card_applet_sim::{Card, PersistError, PersistentState};
use clap::{Parser, Subcommand};

/// Simulated MedCard patient card (a PIV card, NIST SP 800-73-4, P-256) on the real
/// smart-card stack: pcscd + vsmartcard's vpcd.
#[derive(Parser)]
#[command(name = "card-sim", version, propagate_version = true)]
#[command(after_help = "Example:\n  \
    card-sim new --out patient.card --serial 12345\n  \
    card-sim serve --card patient.card      # reader 'Virtual PCD 00 00'\n  \
    opensc-tool -n                          # Personal Identity Verification Card")]
struct Cli {
    /// More logging: -v info, -vv debug (every APDU, without PINs or keys), -vvv trace.
    /// RUST_LOG overrides (e.g. RUST_LOG=card_applet_sim=debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a blank card file, as blank PIV cards ship: PIN 123456, PUK 12345678, management
    /// key 3DES 010203040506070801020304050607080102030405060708, no keys.
    /// Refuses to overwrite an existing file.
    New {
        /// Where to write the card file (mode 0600).
        #[arg(long, value_name = "CARD")]
        out: PathBuf,
        /// Card serial (decimal); random if not given.
        #[arg(long, value_name = "N")]
        serial: Option<u32>,
    },
    /// Insert the card into vpcd's virtual reader and answer the host until SIGINT/SIGTERM.
    /// Reconnects when vpcd/pcscd restarts. Every change is saved to CARD atomically.
    ///
    /// Needs pcscd running with vsmartcard's vpcd driver (`bash scripts/setup.sh` installs and
    /// starts both); the card then shows in reader "Virtual PCD 00 00" (`opensc-tool -l`).
    /// While vpcd is unreachable, card-sim keeps retrying (backoff up to 2 s) and warns once.
    ///
    /// SIGINT (Ctrl-C) or SIGTERM: removes the card and exits 0, after finishing the command in
    /// progress (so the card file is always whole); a second signal exits 1 at once.
    /// Exits non-zero if CARD is missing, corrupt or truncated (the error names the file; it is
    /// never replaced by a blank card), or if another card-sim serves it (lock CARD.lock).
    ///
    /// Logging: -vv (or RUST_LOG=card_applet_sim=debug) logs each APDU's header, lengths and
    /// status word; -vvv also logs the data of commands that carry no secret. The data of VERIFY,
    /// CHANGE REFERENCE DATA, RESET RETRY COUNTER, GENERAL AUTHENTICATE, Yubico SET MANAGEMENT
    /// KEY and IMPORT KEY (and the GET RESPONSEs paging their answers) is never logged.
    Serve {
        /// The card file (made by `card-sim new`).
        #[arg(long, value_name = "CARD")]
        card: PathBuf,
        /// vpcd's address: port 35963 is reader "Virtual PCD 00 00", 35964 "Virtual PCD 00 01".
        #[arg(long, value_name = "HOST:PORT", default_value = vpcd::DEFAULT_ADDR)]
        vpcd: String,
    },
    /// Show what a card file holds: serial, tries left, keys, objects (never any secret).
    Show {
        /// The card file.
        #[arg(long, value_name = "CARD")]
        card: PathBuf,
    },
}

/// A failure, worded for the person at the terminal.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("refusing to overwrite the existing card file {0} (delete it first if you mean it)")]
    Exists(PathBuf),
    #[error("could not create the card file: {0}")]
    Create(#[source] PersistError),
    #[error("could not read a random serial from the OS: {0}")]
    Random(#[source] getrandom::Error),
    #[error(transparent)]
    Load(#[from] persist::LoadError),
    #[error("card file {path} is in use by another card-sim (lock {lock} is held)")]
    InUse { path: PathBuf, lock: PathBuf },
    #[error("could not lock card file {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not install the SIGINT/SIGTERM handler: {0}")]
    Signal(#[source] std::io::Error),
    #[error(transparent)]
    Serve(#[from] vpcd::ServeError),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("card-sim: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                // Transparent wrappers repeat their source's message; print only new causes.
                if !e.to_string().contains(&s.to_string()) {
                    eprintln!("  caused by: {s}");
                }
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn,card_applet_sim=info,card_sim=info",
        1 => "info",
        2 => "info,card_applet_sim=debug,card_sim=debug",
        _ => "debug,card_applet_sim=trace,card_sim=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only on a terminal: logs redirected to a file stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
}

fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::New { out, serial } => new_card(&out, serial),
        Command::Serve { card, vpcd } => serve(&card, &vpcd),
        Command::Show { card } => show(&card),
    }
}

fn new_card(out: &Path, serial: Option<u32>) -> Result<(), CliError> {
    let serial = match serial {
        Some(s) => s,
        None => {
            let mut b = [0u8; 4];
            getrandom::fill(&mut b).map_err(CliError::Random)?;
            // Keep it positive and 8 digits or fewer when printed, like YubiKey serials.
            u32::from_be_bytes(b) % 100_000_000
        }
    };
    persist::create_new(out, &PersistentState::blank(serial)).map_err(|e| match e {
        PersistError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists => CliError::Exists(out.to_path_buf()),
        other => CliError::Create(other),
    })?;
    println!("card-sim: new card {} (serial {serial})", out.display());
    Ok(())
}

/// An exclusive lock next to the card file, so two simulators never serve (and save) the same
/// card. A sidecar file, because each save replaces the card file's inode.
fn lock_card(card: &Path) -> Result<std::fs::File, CliError> {
    let mut name = card.as_os_str().to_owned();
    name.push(".lock");
    let lock = PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|source| CliError::Lock { path: card.to_path_buf(), source })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(CliError::InUse { path: card.to_path_buf(), lock }),
        Err(std::fs::TryLockError::Error(source)) => Err(CliError::Lock { path: card.to_path_buf(), source }),
    }
}

fn serve(card_path: &Path, addr: &str) -> Result<(), CliError> {
    let _lock = lock_card(card_path)?;
    let state = persist::load(card_path)?;
    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while shutting down terminates at once.
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&shutdown)).map_err(CliError::Signal)?;
        signal_hook::flag::register(signal, Arc::clone(&shutdown)).map_err(CliError::Signal)?;
    }
    tracing::info!(
        card = %card_path.display(),
        serial = state.serial,
        vpcd = addr,
        "serving card"
    );
    let mut card = Card::new(state, Box::new(FileStore::new(card_path)));
    vpcd::serve(&mut card, addr, &shutdown, &ServeOptions::default())?;
    Ok(())
}

fn show(card_path: &Path) -> Result<(), CliError> {
    let state = persist::load(card_path)?;
    println!("card file: {}", card_path.display());
    println!("{state:#?}");
    Ok(())
}
