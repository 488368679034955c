//! Helpers shared by the clinic commands (`card`, `consent`, `trust`): the data directory, the
//! keystore, secrets from flags or the terminal, and running card work in one PC/SC transaction.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::Args;
use reader::clinic::ClinicState;
use reader::{Keystore, PcscContext, PcscTransport, PinBlock, Piv, keystore};
use zeroize::Zeroizing;

/// `--data DIR`.
#[derive(Args, Clone)]
pub struct DataArg {
    /// The data directory (default: $MEDCARD_HOME, else $XDG_DATA_HOME/medcard, else
    /// ~/.local/share/medcard).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

impl DataArg {
    pub fn dir(&self) -> Result<PathBuf, reader::Error> {
        Ok(keystore::data_dir(self.data.as_deref())?)
    }
    pub fn keystore(&self) -> Result<Keystore, reader::Error> {
        Ok(Keystore::open(&self.dir()?)?)
    }
}

/// The clinic state (database opened now, so a command fails plainly before touching a card
/// when it could not leave an audit trail), naming the command-line user in audit entries.
pub fn state(ks: &Keystore) -> Result<ClinicState, reader::Error> {
    Ok(ClinicState::open(ks)?.with_actor(&crate::record::actor()))
}

/// Reads a secret: the flag's value, else a line from the terminal without echo, else (stdin
/// not a terminal) a line from stdin.
pub fn secret(flag: Option<&str>, prompt: &str) -> Result<Zeroizing<String>, reader::Error> {
    if let Some(v) = flag {
        return Ok(Zeroizing::new(v.to_owned()));
    }
    let stdin = std::io::stdin();
    let line = if stdin.is_terminal() {
        // rpassword prompts on the terminal with echo off and restores it on every path.
        Zeroizing::new(
            rpassword::prompt_password(format!("{prompt}: "))
                .map_err(|e| reader::Error::InvalidInput(format!("cannot read the {prompt} from the terminal: {e}")))?,
        )
    } else {
        let mut line = Zeroizing::new(String::new());
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| reader::Error::InvalidInput(format!("cannot read the {prompt}: {e}")))?;
        line
    };
    let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    if trimmed.is_empty() {
        return Err(reader::Error::InvalidInput(format!("no {prompt} given")));
    }
    Ok(trimmed)
}

pub fn pin(flag: Option<&str>, prompt: &str) -> Result<PinBlock, reader::Error> {
    PinBlock::pin(&secret(flag, prompt)?)
}

pub fn puk(flag: Option<&str>, prompt: &str) -> Result<PinBlock, reader::Error> {
    PinBlock::puk(&secret(flag, prompt)?)
}

/// Runs `f` on the card in `reader_name` inside one PC/SC transaction, then disconnects
/// (resetting the card so no PIN or management-key status lingers).
pub fn with_card<R>(
    reader_name: &str,
    f: impl FnOnce(&mut Piv<&mut reader::transport::PcscTransaction<'_>>) -> Result<R, reader::Error>,
) -> Result<R, reader::Error> {
    let ctx = PcscContext::establish()?;
    let mut transport: PcscTransport = ctx.connect(reader_name)?;
    let result = transport.transaction(|tx| {
        let mut piv = Piv::new(tx);
        f(&mut piv)
    })?;
    let _ = transport.disconnect();
    result
}

/// Unix time now.
pub fn now() -> i64 {
    reader::clock::system_now()
}

pub fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
