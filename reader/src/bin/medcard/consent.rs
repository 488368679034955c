//! `medcard consent set|show|revoke`: the patient's consent token on the card.

use clap::Subcommand;
use reader::category;
use reader::consent::{self, ConsentRequest, ConsentToken};

use crate::cli::{self, CliError, DataArg, Output, ReaderArg, print_json};

#[derive(Subcommand)]
pub enum ConsentCommand {
    /// Make a new consent token on the card (signed by the card's 9C key; needs the PIN).
    #[command(after_help = "Examples:\n  medcard consent set --reader R --scope summary,allergies --days 30\n  \
        medcard consent set --reader R --scope labs --days 7 --pin 482913 --json\n\n\
        Categories: summary, allergies, medications, labs, imaging, notes.")]
    Set {
        #[command(flatten)]
        reader: ReaderArg,
        /// Comma-separated record categories.
        #[arg(long, value_name = "LIST")]
        scope: String,
        /// Validity in days.
        #[arg(long, value_name = "N", default_value_t = 30)]
        days: u32,
        /// The patient's PIN (asked for when absent).
        #[arg(long, value_name = "PIN")]
        pin: Option<String>,
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        format: Output,
    },
    /// Show and verify the consent token on the card (no PIN).
    #[command(after_help = "Examples:\n  medcard consent show --reader R\n  medcard consent show --reader R --json")]
    Show {
        #[command(flatten)]
        reader: ReaderArg,
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        format: Output,
    },
    /// Revoke consent: a new token version with an empty scope (needs the PIN).
    #[command(after_help = "Examples:\n  medcard consent revoke --reader R\n  medcard consent revoke --reader R --pin 482913 --json")]
    Revoke {
        #[command(flatten)]
        reader: ReaderArg,
        /// The patient's PIN (asked for when absent).
        #[arg(long, value_name = "PIN")]
        pin: Option<String>,
        /// How long the revocation token stays valid, in days.
        #[arg(long, value_name = "N", default_value_t = 3650)]
        days: u32,
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        format: Output,
    },
}

pub fn run(command: ConsentCommand) -> Result<(), CliError> {
    match command {
        ConsentCommand::Set { reader, scope, days, pin, data, format } => {
            let scope = category::parse_list(&scope)?;
            if scope.is_empty() {
                return Err(CliError::Invalid("empty scope: to withdraw consent use `medcard consent revoke`".into()));
            }
            set(&reader, scope, days, pin.as_deref(), &data, format)
        }
        ConsentCommand::Revoke { reader, pin, days, data, format } => set(&reader, Vec::new(), days, pin.as_deref(), &data, format),
        ConsentCommand::Show { reader, data, format } => {
            let (ks, state) = data.state()?;
            let now = cli::now()?;
            let shown = cli::with_card(&reader, |piv| consent::show_in(piv, &ks, &state, now))?;
            if format.json {
                let mut v = serde_json::to_value(&shown.token).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("valid".into(), true.into());
                    o.insert("revoked".into(), shown.token.scope.is_empty().into());
                }
                print_json(&v);
            } else {
                print_token("consent token (verified)", &shown.token);
            }
            Ok(())
        }
    }
}

fn set(
    reader: &ReaderArg,
    scope: Vec<category::Category>,
    days: u32,
    pin: Option<&str>,
    data: &DataArg,
    format: Output,
) -> Result<(), CliError> {
    let (ks, state) = data.state()?;
    let req = ConsentRequest { scope, days, pin: cli::pin(pin, "patient PIN")?, now: cli::now()? };
    // Tests only: stop at a step (see reader::consent::set_with_progress), wait for a stdin line.
    let pause_at = std::env::var("MEDCARD_TEST_PAUSE_AT").ok();
    let mut progress = |step: &'static str| -> Result<(), reader::Error> {
        if pause_at.as_deref() == Some(step) {
            eprintln!("paused at {step}");
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        }
        Ok(())
    };
    let token = cli::with_card(reader, |piv| consent::set_in(piv, &ks, &state, &req, &mut progress))?;
    if format.json {
        print_json(&serde_json::to_value(&token).unwrap_or_default());
    } else {
        print_token(if token.scope.is_empty() { "consent revoked" } else { "consent set" }, &token);
    }
    Ok(())
}

fn print_token(title: &str, t: &ConsentToken) {
    println!("{title}");
    println!("  patient:   {}", t.patient_id);
    println!("  clinic:    {}", t.audience);
    let scope = if t.scope.is_empty() { "(none: consent revoked)".to_owned() } else { category::join(&t.scope) };
    println!("  scope:     {scope}");
    println!("  version:   {}", t.version);
    println!("  issued at: {}", qr::time::format_rfc3339(t.issued_at));
    println!("  expires:   {}", qr::time::format_rfc3339(t.expires_at));
    println!("  token id:  {}", hex::encode(&t.token_id));
}
