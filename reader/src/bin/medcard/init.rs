//! `medcard init`: create a clinic (keystore) in the data directory.

use clap::Args;
use reader::Keystore;

use crate::cli::{self, CliError, DataArg, Output, print_json};

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
    #[command(flatten)]
    pub data: DataArg,
    #[command(flatten)]
    pub format: Output,
}

pub fn run(args: &InitArgs) -> Result<(), CliError> {
    let dir = args.data.dir()?;
    let ks = Keystore::init(&dir, &args.clinic_id, cli::now()?)?;
    let kid = hex::encode(ks.issuer_kid());
    if args.format.json {
        let v = serde_json::json!({
            "clinic_id": ks.clinic_id(),
            "data_dir": dir.display().to_string(),
            "issuer_kid": kid,
        });
        print_json(&v);
    } else {
        println!("clinic {} created in {}", ks.clinic_id(), dir.display());
        println!("issuer kid: {kid}");
        println!("share the clinic CA with other clinics: medcard trust export --out {}.pem", ks.clinic_id());
    }
    Ok(())
}
