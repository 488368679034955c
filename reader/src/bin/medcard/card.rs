//! `medcard card ...`: work with the card in a reader (info, issue, verify, PIN management) and
//! the clinic's card records (list, revoke).

use clap::Subcommand;
use reader::clinic;
use reader::issue::{self, Counting, IssueRequest, IssueStep};
use reader::{CardInfo, PcscContext, PinBlock, PinStatus, Piv};

use crate::cli::{self, CliError, DataArg, Output, ReaderArg, print_json};

/// Environment variable (tests only): stop at this issuance step (`IssueStep::name`, e.g.
/// `certificate-9A`), say so on stderr and wait for a line on stdin before going on.
const PAUSE_ENV: &str = "MEDCARD_TEST_PAUSE_AT";

#[derive(Subcommand)]
pub enum CardCommand {
    /// Show the card's serial, version, CHUID GUID, certificates, PIN tries left and patient
    /// objects. Needs no PIN and spends no try.
    #[command(after_help = "Examples:\n  medcard card info --reader 'Virtual PCD 00 00'\n  medcard card info --reader R --json")]
    Info {
        #[command(flatten)]
        reader: ReaderArg,
        #[command(flatten)]
        format: Output,
    },
    /// Issue a patient card: per-card management key, 9A/9C/9E keys with certificates signed by
    /// the clinic CA, the patient's PIN and PUK, and the card credential (written last).
    #[command(after_help = "Examples:\n  medcard card issue --reader 'Virtual PCD 00 00' --patient-id P-1001 --name 'Ada Lovelace'\n  \
        medcard card issue --reader R --patient-id P-1001 --name Ada --pin 482913 --puk 77120934 --json\n\n\
        Without --pin/--puk they are asked on the terminal (not echoed) or read from stdin, one per line.\n\
        Re-issuing a card of this clinic works; pass --current-puk if the patient's PUK is not the blank default.")]
    Issue {
        #[command(flatten)]
        reader: ReaderArg,
        /// The patient id (1-64 characters).
        #[arg(long, value_name = "ID")]
        patient_id: String,
        /// The patient's name (kept in the clinic records, not on the card).
        #[arg(long, value_name = "NAME")]
        name: String,
        /// The new PIN (6-8 digits). Prefer the prompt: flags show in the process list.
        #[arg(long, value_name = "PIN")]
        pin: Option<String>,
        /// The new PUK (6-8 digits).
        #[arg(long, value_name = "PUK")]
        puk: Option<String>,
        /// The card's current PUK (default: the blank-card default 12345678).
        #[arg(long, value_name = "PUK", default_value = "12345678")]
        current_puk: String,
        /// Credential and certificate validity in days.
        #[arg(long, value_name = "DAYS", default_value_t = issue::DEFAULT_VALIDITY_DAYS)]
        days: u32,
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        format: Output,
    },
    /// Prove the card genuine: credential against the trust list and revocation list, then a
    /// 9E signature over a fresh challenge. With --pin, also verify the PIN (patient present).
    #[command(after_help = "Examples:\n  medcard card verify --reader 'Virtual PCD 00 00'\n  \
        medcard card verify --reader R --pin --json      (PIN asked on the terminal)\n  \
        medcard card verify --reader R --pin 482913\n\n\
        Exit status 0 only for a genuine, trusted, unrevoked card (and the right PIN with --pin).")]
    Verify {
        #[command(flatten)]
        reader: ReaderArg,
        /// Also verify the PIN; without a value it is asked for.
        #[arg(long, value_name = "PIN", num_args = 0..=1, default_missing_value = "")]
        pin: Option<String>,
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        format: Output,
    },
    /// Change the PIN (needs the current PIN).
    #[command(
        after_help = "Examples:\n  medcard card change-pin --reader R\n  medcard card change-pin --reader R --old-pin 123456 --new-pin 654321"
    )]
    ChangePin {
        #[command(flatten)]
        reader: ReaderArg,
        /// The current PIN (asked for when absent).
        #[arg(long, value_name = "PIN")]
        old_pin: Option<String>,
        /// The new PIN, 6-8 digits (asked for when absent).
        #[arg(long, value_name = "PIN")]
        new_pin: Option<String>,
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        format: Output,
    },
    /// Unblock the PIN (or set a forgotten one) with the PUK.
    #[command(
        after_help = "Examples:\n  medcard card unblock --reader R\n  medcard card unblock --reader R --puk 77120934 --new-pin 111222"
    )]
    Unblock {
        #[command(flatten)]
        reader: ReaderArg,
        /// The PUK (asked for when absent).
        #[arg(long, value_name = "PUK")]
        puk: Option<String>,
        /// The new PIN, 6-8 digits (asked for when absent).
        #[arg(long, value_name = "PIN")]
        new_pin: Option<String>,
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        format: Output,
    },
    /// Revoke a card by serial: `card verify` refuses it from then on.
    #[command(after_help = "Examples:\n  medcard card revoke --serial 4242001 --reason lost")]
    Revoke {
        /// The card serial (see `medcard card list`).
        #[arg(long, value_name = "SERIAL")]
        serial: u32,
        /// Why (kept in the clinic database; not copied into the audit log).
        #[arg(long, value_name = "TEXT", default_value = "revoked by clinic")]
        reason: String,
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        format: Output,
    },
    /// List the cards this clinic issued, with revocation status.
    #[command(after_help = "Examples:\n  medcard card list --json")]
    List {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        format: Output,
    },
}

pub fn run(command: CardCommand) -> Result<(), CliError> {
    match command {
        CardCommand::Info { reader, format } => card_info(&reader, format),
        CardCommand::Issue { reader, patient_id, name, pin, puk, current_puk, days, data, format } => {
            card_issue(&reader, patient_id, name, pin, puk, &current_puk, days, &data, format)
        }
        CardCommand::Verify { reader, pin, data, format } => card_verify(&reader, pin.as_deref(), &data, format),
        CardCommand::ChangePin { reader, old_pin, new_pin, data, format } => {
            let (_, state) = data.state()?;
            let old = cli::pin(old_pin.as_deref(), "current PIN")?;
            let new = cli::pin(new_pin.as_deref(), "new PIN")?;
            let now = cli::now()?;
            cli::with_card(&reader, |piv| clinic::change_pin(piv, &state, &old, &new, now))?;
            done(format, "PIN changed")
        }
        CardCommand::Unblock { reader, puk, new_pin, data, format } => {
            let (_, state) = data.state()?;
            let puk = cli::puk(puk.as_deref(), "PUK")?;
            let new = cli::pin(new_pin.as_deref(), "new PIN")?;
            let now = cli::now()?;
            cli::with_card(&reader, |piv| clinic::unblock_pin(piv, &state, &puk, &new, now))?;
            done(format, "PIN unblocked and replaced; 3 tries")
        }
        CardCommand::Revoke { serial, reason, data, format } => {
            let (_, state) = data.state()?;
            let r = state.revoke(serial, cli::now()?, &reason)?;
            if format.json {
                print_json(&serde_json::to_value(&r).unwrap_or_default());
            } else {
                println!("card {} revoked at {} ({})", r.serial, r.revoked_at, r.reason);
            }
            Ok(())
        }
        CardCommand::List { data, format } => {
            let (_, state) = data.state()?;
            let revoked = state.revocations()?;
            let cards = state.cards()?;
            if format.json {
                let list: Vec<_> = cards
                    .iter()
                    .map(|c| {
                        let mut v = serde_json::to_value(c).unwrap_or_default();
                        if let Some(o) = v.as_object_mut() {
                            o.insert("revoked".into(), revoked.iter().any(|r| r.serial == c.serial).into());
                        }
                        v
                    })
                    .collect();
                print_json(&serde_json::Value::Array(list));
            } else {
                for c in &cards {
                    let r = if revoked.iter().any(|r| r.serial == c.serial) { " REVOKED" } else { "" };
                    println!("{}\t{}\t{}\texpires {}{r}", c.serial, c.patient_id, c.name, c.expires_at);
                }
            }
            Ok(())
        }
    }
}

fn done(format: Output, text: &str) -> Result<(), CliError> {
    if format.json {
        print_json(&serde_json::json!({ "ok": true, "message": text }));
    } else {
        println!("{text}");
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn card_issue(
    reader: &ReaderArg,
    patient_id: String,
    name: String,
    pin: Option<String>,
    puk: Option<String>,
    current_puk: &str,
    days: u32,
    data: &DataArg,
    format: Output,
) -> Result<(), CliError> {
    issue::check_patient_id(&patient_id)?;
    let (ks, state) = data.state()?;
    let req = IssueRequest {
        patient_id,
        name,
        pin: cli::pin(pin.as_deref(), "new PIN for the patient")?,
        puk: cli::puk(puk.as_deref(), "new PUK for the patient")?,
        current_puk: PinBlock::puk(current_puk)?,
        validity_days: days,
        now: cli::now()?,
    };
    let pause_at = std::env::var(PAUSE_ENV).ok();
    let mut progress = |step: IssueStep| -> Result<(), reader::Error> {
        if !format.json {
            eprintln!("issuing: {}", step.name());
        }
        if pause_at.as_deref() == Some(step.name().as_str()) {
            eprintln!("paused at {}", step.name());
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        }
        Ok(())
    };
    let issued = cli::with_card(reader, |piv| clinic::issue_card(piv, &ks, &state, &req, &mut progress))?;
    let c = &issued.credential;
    if format.json {
        print_json(&serde_json::json!({
            "serial": c.card_serial,
            "patient_id": c.patient_id,
            "issuer": c.issuer,
            "expires_at": c.expires_at,
            "reissue": issued.reissue,
            "credential_bytes": issued.credential_bytes.len(),
            "certificates": issued.certificates.iter().map(|(s, _)| s.to_string()).collect::<Vec<_>>(),
        }));
    } else {
        println!("card {} issued to patient {} ({} bytes of credential)", c.card_serial, c.patient_id, issued.credential_bytes.len());
    }
    Ok(())
}

fn card_verify(reader: &ReaderArg, pin: Option<&str>, data: &DataArg, format: Output) -> Result<(), CliError> {
    let (ks, state) = data.state()?;
    let trust = reader::clinic::trust_list(&ks)?;
    let pin = match pin {
        None => None,
        Some("") => Some(cli::pin(None, "PIN")?),
        Some(p) => Some(PinBlock::pin(p)?),
    };
    let now = cli::now()?;
    let started = std::time::Instant::now();
    let (genuine, apdus) = cli::with_card(reader, |piv| {
        let mut counting = Piv::new(Counting::new(piv.transport_mut()));
        let r = clinic::verify_card(&mut counting, &state, &trust, now, pin.as_ref());
        let n = counting.into_inner().count();
        r.map(|g| (g, n))
    })?;
    let elapsed = started.elapsed();
    let c = genuine.credential.credential();
    if format.json {
        print_json(&serde_json::json!({
            "genuine": true,
            "serial": c.card_serial,
            "patient_id": c.patient_id,
            "issuer": c.issuer,
            "signer": genuine.credential.signer(),
            "expires_at": c.expires_at,
            "pin_verified": genuine.pin_verified,
            "apdus": apdus,
            "elapsed_ms": elapsed.as_secs_f64() * 1000.0,
        }));
    } else {
        println!("card {} is genuine: patient {}, issued by {}", c.card_serial, c.patient_id, c.issuer);
        if genuine.pin_verified {
            println!("PIN verified: patient present");
        }
    }
    Ok(())
}

pub fn card_info(reader: &ReaderArg, format: Output) -> Result<(), CliError> {
    let ctx = PcscContext::establish()?;
    let mut transport = ctx.connect(&reader.name)?;
    let info = transport.transaction(|tx| Piv::new(tx).info())??;
    // Leave no security status behind for the next application; a failure here changes nothing
    // for the user (the information was read).
    let _ = transport.disconnect();
    if format.json {
        print_json(&serde_json::to_value(&info).unwrap_or_default());
    } else {
        print_info(&info);
    }
    Ok(())
}

fn print_info(info: &CardInfo) {
    println!("reader:           {}", info.reader);
    if let Some(label) = &info.label {
        println!("application:      {label}");
    }
    println!("serial:           {}", info.serial);
    println!("version:          {}", info.version);
    println!("CHUID GUID:       {}", info.chuid_guid.as_deref().unwrap_or("(no CHUID)"));
    let certs = if info.certificates.is_empty() { "none".to_owned() } else { info.certificates.join(", ") };
    println!("certificates:     {certs}");
    let pin = match info.pin {
        PinStatus::Verified => "verified in this session".to_owned(),
        PinStatus::NotVerified { tries_left } => format!("{tries_left} tries left"),
        PinStatus::Blocked => "blocked (unblock it with the PUK)".to_owned(),
    };
    println!("PIN:              {pin}");
    let obj = |n: Option<usize>| n.map_or("absent".to_owned(), |n| format!("present ({n} bytes)"));
    println!("card credential:  {}", obj(info.card_credential_bytes));
    println!("consent token:    {}", obj(info.consent_token_bytes));
}
