//! `medcard staff issue|list|revoke`: staff cards (docs/staff.md), and `medcard emergency` and
//! `medcard patient access-report`, which need one.

use std::path::PathBuf;

use clap::Subcommand;
use reader::access_report;
use reader::clinic::ClinicState;
use reader::issue::{IssueStep, STAFF_VALIDITY_DAYS, StaffIssueRequest};
use reader::staff::{Action, Role};
use reader::staff_card::{self, EntrySigner};
use reader::{Keystore, PinBlock};

use crate::cli::{self, CliError, DataArg, Output, ReaderArg, StaffArg, print_json};

#[derive(Subcommand)]
pub enum StaffCommand {
    /// Issue a staff card: the same PIV card edge as a patient card (keys, certificates chained
    /// to the clinic CA, per-card management key), with a staff credential naming the staff id,
    /// name and role. The first staff card of a clinic must be an administrator's, and from then
    /// on every staff and admin command needs an administrator's sign-in (--staff-reader).
    #[command(
        after_help = "Examples:\n  medcard staff issue --reader 'Virtual PCD 00 00' --staff-id A-01 --name 'R. Admin' --role admin\n  \
        medcard staff issue --reader 'Virtual PCD 00 00' --staff-id S-0042 --name 'Dr N. Lee' --role clinician --staff-reader 'Virtual PCD 00 01'\n\n\
        Roles: reception (runs the kiosk), clinician (scans and reads within consent; emergency access),\n\
        admin (cards, trust list, records, audit). The new PIN and PUK are asked on the terminal (not echoed) or\n\
        read from stdin, one per line, after the administrator's own PIN when --staff-reader is given.\n\
        Keep the PUK with the clinic's administrator: it unblocks a PIN blocked by three wrong tries (medcard card unblock)."
    )]
    Issue {
        #[command(flatten)]
        reader: ReaderArg,
        /// Staff id: 1-32 characters of A-Z, a-z, 0-9, '.', '_', '-'.
        #[arg(long, value_name = "ID")]
        staff_id: String,
        /// The name shown in the audit log and in patients' access reports.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// reception, clinician or admin.
        #[arg(long, value_name = "ROLE")]
        role: String,
        /// The card's current PUK (default: the blank-card default 12345678).
        #[arg(long, value_name = "PUK", default_value = "12345678")]
        current_puk: String,
        /// Validity in days.
        #[arg(long, value_name = "DAYS", default_value_t = STAFF_VALIDITY_DAYS)]
        days: u32,
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        format: Output,
    },
    /// List the staff cards this clinic issued, with their role and revocation status.
    #[command(after_help = "Examples:\n  medcard staff list\n  medcard staff list --json --staff-reader R")]
    List {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        format: Output,
    },
    /// Revoke every card of a member of staff: sign-ins with it are refused everywhere from the
    /// next check on.
    #[command(after_help = "Examples:\n  medcard staff revoke --staff-id S-0042 --reason 'left the clinic' --staff-reader R")]
    Revoke {
        #[arg(long, value_name = "ID")]
        staff_id: String,
        /// Why (kept in the clinic database; not copied into the audit log).
        #[arg(long, value_name = "TEXT", default_value = "revoked by clinic")]
        reason: String,
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        format: Output,
    },
}

/// The state, its actor naming the signed-in administrator after the device user.
fn acting(state: &ClinicState, signer: Option<&mut dyn EntrySigner>) -> ClinicState {
    match signer {
        // `cli::actor()` names the signed-in administrator once the sign-in is done.
        Some(_) => state.clone().with_actor(&cli::actor()),
        None => state.clone(),
    }
}

pub fn run(command: StaffCommand, staff: &StaffArg) -> Result<(), CliError> {
    match command {
        StaffCommand::Issue { reader, staff_id, name, role, current_puk, days, data, format } => {
            let role: Role = role.parse().map_err(reader::Error::from)?;
            let (ks, state) = data.state()?;
            let first = !state.staff_required()?;
            if first && role != Role::Admin {
                return Err(CliError::Invalid(format!(
                    "this clinic has no staff card yet: the first one must be an administrator's (--role admin), who then signs in to issue the others; got --role {role}"
                )));
            }
            cli::as_staff(staff, &data, &state, Action::ManageCards, "issue staff cards", |signer| {
                let state = acting(&state, signer);
                let req = StaffIssueRequest {
                    staff_id,
                    name,
                    role,
                    pin: cli::pin(None, "new PIN for the staff card")?,
                    puk: cli::puk(None, "new PUK for the staff card")?,
                    current_puk: PinBlock::puk(&current_puk)?,
                    validity_days: days,
                    now: cli::now()?,
                };
                let mut progress = |step: IssueStep| -> Result<(), reader::Error> {
                    if !format.json {
                        eprintln!("issuing: {}", step.name());
                    }
                    Ok(())
                };
                let issued = cli::with_card(&reader, |piv| staff_card::issue_staff_card(piv, &ks, &state, &req, &mut progress))?;
                let c = &issued.credential;
                if format.json {
                    print_json(&serde_json::json!({
                        "serial": c.card_serial, "staff_id": c.staff_id, "name": c.name, "role": c.role,
                        "issuer": c.issuer, "expires_at": c.expires_at, "reissue": issued.reissue,
                        "credential_bytes": issued.credential_bytes.len(),
                        "certificates": issued.certificates.iter().map(|(s, _)| s.to_string()).collect::<Vec<_>>(),
                    }));
                } else {
                    println!("staff card {} issued to {} ({}, {})", c.card_serial, c.name, c.staff_id, c.role);
                }
                Ok(())
            })
        }
        StaffCommand::List { data, format } => {
            let (_, state) = data.state()?;
            cli::as_staff(staff, &data, &state, Action::Administer, "list staff cards", |_| list(&state, format))
        }
        StaffCommand::Revoke { staff_id, reason, data, format } => {
            let (_, state) = data.state()?;
            cli::as_staff(staff, &data, &state, Action::ManageCards, "revoke staff cards", |signer| {
                let state = acting(&state, signer);
                let serials: Vec<u32> = state
                    .cards()?
                    .into_iter()
                    .filter(|c| staff_card::parse_card_row_holder(&c.patient_id).is_some_and(|(_, id)| id == staff_id))
                    .map(|c| c.serial)
                    .collect();
                if serials.is_empty() {
                    return Err(CliError::Invalid(format!("no staff card was issued to {staff_id:?}: see `medcard staff list`")));
                }
                let now = cli::now()?;
                let mut revoked = Vec::new();
                for s in serials {
                    revoked.push(state.revoke(s, now, &reason)?);
                }
                if format.json {
                    print_json(&serde_json::to_value(&revoked).unwrap_or_default());
                } else {
                    for r in &revoked {
                        println!("staff card {} of {staff_id} revoked at {}", r.serial, r.revoked_at);
                    }
                }
                Ok(())
            })
        }
    }
}

fn list(state: &ClinicState, format: Output) -> Result<(), CliError> {
    let revoked = state.revocations()?;
    let rows: Vec<_> = state
        .cards()?
        .into_iter()
        .filter_map(|c| {
            let (role, id) = staff_card::parse_card_row_holder(&c.patient_id)?;
            let is_revoked = revoked.iter().any(|r| r.serial == c.serial);
            Some(serde_json::json!({"serial": c.serial, "staff_id": id, "name": c.name, "role": role,
                "issued_at": c.issued_at, "expires_at": c.expires_at, "revoked": is_revoked}))
        })
        .collect();
    if format.json {
        print_json(&serde_json::Value::Array(rows));
        return Ok(());
    }
    for r in &rows {
        let text = |k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let num = |k: &str| r.get(k).and_then(serde_json::Value::as_i64).unwrap_or_default();
        let rev = if r.get("revoked").and_then(serde_json::Value::as_bool) == Some(true) { "  REVOKED" } else { "" };
        println!(
            "{:<10}  {:<12}  {:<10}  {:<24}  expires {}{rev}",
            num("serial"),
            text("staff_id"),
            text("role"),
            text("name"),
            qr::time::format_rfc3339(num("expires_at"))
        );
    }
    println!("{} staff card(s)", rows.len());
    Ok(())
}

/// `medcard emergency`: break the glass.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  medcard emergency --patient-id P-1001 --reason 'unconscious on arrival, no card' --staff-reader 'Virtual PCD 00 01' --out ./p1001\n\n\
    Opens the patient's emergency data set (default categories allergies, medications, summary; set them in\n\
    <data>/emergency.json as {\"categories\": [...]}) without the patient's code. Needs a clinician's staff card and PIN\n\
    and a reason; runs on a device that holds the clinic's record keys (admin PC or kiosk). Always audited, signed by\n\
    the card, raised by `medcard audit alerts`, and shown in the patient's access report."
)]
pub struct EmergencyArgs {
    /// The patient.
    #[arg(long, value_name = "ID")]
    patient_id: String,
    /// Why, on one line (1-200 characters): kept in the audit log and shown to the patient.
    #[arg(long, value_name = "TEXT", default_value = "")]
    reason: String,
    /// A new directory (0700) to write the records into, one file per record id. Without it, the
    /// records are printed on stdout.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    data: DataArg,
    #[command(flatten)]
    format: Output,
}

pub fn emergency(args: &EmergencyArgs, staff: &StaffArg) -> Result<(), CliError> {
    let c = args.data.clinic()?;
    if let Some(out) = &args.out {
        reader::export::check_new(c.ks.data_dir(), out)?;
    }
    if staff.staff_reader.is_none() {
        return Err(CliError::StaffRequired { what: "open a patient's records without their code" });
    }
    let records = cli::as_staff(staff, &args.data, &c.state, Action::EmergencyAccess, "open emergency data", |signer| {
        let Some(signer) = signer else { return Err(CliError::StaffRequired { what: "open a patient's records without their code" }) };
        Ok(reader::emergency::open(&c.ks, &c.state, &c.store, signer, &args.patient_id, &args.reason, cli::now()?)?)
    })?;
    write_records(&c.ks, args, &records)
}

fn write_records(ks: &Keystore, args: &EmergencyArgs, records: &[reader::emergency::EmergencyRecord]) -> Result<(), CliError> {
    use std::io::Write;
    if let Some(out) = &args.out {
        let dir = reader::export::create_new_dir(ks.data_dir(), out)?;
        for r in records {
            reader::export::write_new_export(ks.data_dir(), &dir.join(&r.record_id), &r.document)?;
        }
    }
    if args.format.json {
        print_json(&serde_json::json!({
            "patient_id": args.patient_id,
            "records": records.iter().map(|r| serde_json::json!({"record_id": r.record_id, "category": r.category.as_str(),
                "media_type": r.media_type, "bytes": r.document.len()})).collect::<Vec<_>>(),
        }));
    } else {
        eprintln!(
            "EMERGENCY ACCESS to {} record(s) of patient {}: audited, signed by your card, and shown to the patient",
            records.len(),
            args.patient_id
        );
        if args.out.is_none() {
            let mut so = std::io::stdout().lock();
            for r in records {
                eprintln!("== {} ({}, {}) ==", r.record_id, r.category, r.media_type);
                so.write_all(&r.document).map_err(CliError::Stdout)?;
            }
            so.flush().map_err(CliError::Stdout)?;
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum PatientCommand {
    /// Who read the patient's records and when, and every emergency access with its reason,
    /// from the audit log (verified first: a log that does not verify gives no report).
    #[command(
        after_help = "Examples:\n  medcard patient access-report --patient-id P-1001\n  medcard patient access-report --patient-id P-1001 --since 1796300000 --json"
    )]
    AccessReport {
        #[arg(long, value_name = "ID")]
        patient_id: String,
        /// Only accesses at or after this Unix time.
        #[arg(long, value_name = "UNIX_SECONDS")]
        since: Option<i64>,
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        format: Output,
    },
}

pub fn patient(cmd: PatientCommand, staff: &StaffArg) -> Result<(), CliError> {
    let PatientCommand::AccessReport { patient_id, since, data, format } = cmd;
    let c = data.clinic()?;
    cli::as_staff(staff, &data, &c.state, Action::Administer, "read patients' access reports", |_| {
        let report = access_report::verified_report(&c.state, &c.ks.issuer_public(), &patient_id, access_report::Since::Time(since))?;
        print_report(&patient_id, &report, format);
        Ok(())
    })
}

/// Prints an access report (text or JSON).
pub fn print_report(patient_id: &str, report: &[reader::access_report::Access], format: Output) {
    if format.json {
        print_json(&serde_json::json!({"patient_id": patient_id, "accesses": report}));
        return;
    }
    if report.is_empty() {
        println!("no one read the records of {patient_id} in this period");
    }
    for a in report {
        println!("{}", reader::access_report::describe(a));
    }
}
