//! `medcard init`: create a clinic (keystore) in the data directory.

use std::path::PathBuf;

use clap::Args;
use reader::Keystore;
use reader::keystore;

#[derive(Args)]
#[command(after_help = "Examples:\n  medcard init --clinic-id st-mary --data /var/lib/medcard\n  \
                        MEDCARD_HOME=~/clinic medcard init --clinic-id st-mary --json\n\n\
                        Creates <data>/keys/ (mode 0700) with the issuer key, the clinic CA certificate and the\n\
                        master secret (mode 0600). Refuses to touch an existing clinic.")]
pub struct InitArgs {
    /// The clinic's identifier (1-64 characters: A-Z a-z 0-9 . _ -): the issuer of its cards
    /// and the audience of consent tokens.
    #[arg(long, value_name = "ID")]
    pub clinic_id: String,
    /// The data directory (default: $MEDCARD_HOME, else $XDG_DATA_HOME/medcard, else
    /// ~/.local/share/medcard).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Unix time now.
pub fn now() -> i64 {
    reader::clock::system_now()
}

pub fn run(args: &InitArgs) -> Result<(), reader::Error> {
    let dir = keystore::data_dir(args.data.as_deref())?;
    let ks = Keystore::init(&dir, &args.clinic_id, now())?;
    let kid = hex::encode(ks.issuer_kid());
    if args.json {
        let v = serde_json::json!({
            "clinic_id": ks.clinic_id(),
            "data_dir": dir.display().to_string(),
            "issuer_kid": kid,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!("clinic {} created in {}", ks.clinic_id(), dir.display());
        println!("issuer kid: {kid}");
        println!("share the clinic CA with other clinics: medcard trust export --out {}.pem", ks.clinic_id());
    }
    Ok(())
}
