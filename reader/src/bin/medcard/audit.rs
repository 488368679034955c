//! `medcard audit show|alerts|verify|checkpoint|prove|consistency` (docs/audit-log.md).

use std::path::PathBuf;

use clap::Subcommand;
use reader::audit;

use crate::cli::{self, CliError, DataArg, Output};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Show entries.
    Show {
        /// Only entries at or after this Unix time.
        #[arg(long, value_name = "UNIX_SECONDS")]
        since: Option<i64>,
        #[command(flatten)]
        format: Output,
        #[command(flatten)]
        data: DataArg,
    },
    /// Access alerts: repeated PIN failures on a card (3 within 60 minutes), one user reading
    /// records of many patients (10 distinct within 10 minutes), reads or shares outside consent
    /// (every refusal), refused QR codes in a row (5 from one user). Alerts are data: exit 0.
    #[command(after_help = "Examples:\n  medcard audit alerts\n  medcard audit alerts --since 1795430000 --json")]
    Alerts {
        /// Only entries at or after this Unix time.
        #[arg(long, value_name = "UNIX_SECONDS")]
        since: Option<i64>,
        #[command(flatten)]
        format: Output,
        #[command(flatten)]
        data: DataArg,
    },
    /// Recompute the tree from the rows and check every row and stored checkpoint (exit 1 naming the first bad entry).
    Verify {
        #[command(flatten)]
        format: Output,
        #[command(flatten)]
        data: DataArg,
    },
    /// Sign a checkpoint of the whole log with the clinic issuer key (and optionally save it for a witness).
    Checkpoint {
        /// Also write the signed checkpoint (COSE_Sign1) to this file: a new file (mode 0600),
        /// never over an existing file, never inside the data directory.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        format: Output,
        #[command(flatten)]
        data: DataArg,
    },
    /// Inclusion proof of entry N in the latest checkpoint.
    Prove {
        #[arg(long, value_name = "N")]
        entry: u64,
        #[command(flatten)]
        format: Output,
        #[command(flatten)]
        data: DataArg,
    },
    /// Consistency proof from an older saved checkpoint to the latest: the log only grew.
    Consistency {
        /// A checkpoint file written by `medcard audit checkpoint --out`.
        #[arg(long, value_name = "CHECKPOINT")]
        old: PathBuf,
        #[command(flatten)]
        format: Output,
        #[command(flatten)]
        data: DataArg,
    },
}

pub fn run(cmd: AuditCommand) -> Result<(), CliError> {
    match cmd {
        AuditCommand::Show { since, format, data } => show(&data, since, format),
        AuditCommand::Alerts { since, format, data } => alerts(&data, since, format),
        AuditCommand::Verify { format, data } => verify(&data, format),
        AuditCommand::Checkpoint { out, format, data } => checkpoint(&data, out, format),
        AuditCommand::Prove { entry, format, data } => prove(&data, entry, format),
        AuditCommand::Consistency { old, format, data } => consistency(&data, &old, format),
    }
}

/// The entries: the clinic log in clinic mode, else this device's.
fn entries(c: &cli::Clinic, since: Option<i64>) -> Result<Vec<audit::Entry>, CliError> {
    match c.state.with_clinic_db(|pg| pg.audit_entries(since))? {
        Some(e) => Ok(e),
        None => Ok(audit::entries(&c.db, 0, since)?),
    }
}

/// Clinic mode: the whole clinic log's latest checkpoint and the leaf hashes it covers
/// (recomputed from the rows); `None` in single-device mode.
/// A signed checkpoint and the leaf hashes of the entries it covers.
type Tree = (audit::Checkpoint, Vec<[u8; 32]>);

fn clinic_tree(c: &cli::Clinic) -> Result<Option<Tree>, CliError> {
    let Some((stored, entries)) = c.state.with_clinic_db(|pg| Ok((pg.audit_checkpoints()?, pg.audit_entries(None)?)))? else {
        return Ok(None);
    };
    let cp = audit::latest_of(&stored, &c.ks.issuer_public())?
        .ok_or_else(|| audit::AuditError::Range("no checkpoint yet: run `medcard audit checkpoint` first".into()))?;
    let leaves = audit::leaf_hashes_of(&entries, cp.tree_size)?;
    Ok(Some((cp, leaves)))
}

fn hexes(v: &[[u8; 32]]) -> Vec<String> {
    v.iter().map(hex::encode).collect()
}

fn alerts(data: &DataArg, since: Option<i64>, format: Output) -> Result<(), CliError> {
    let c = data.clinic()?;
    let entries = entries(&c, since)?;
    let found = audit::alerts::alerts(&entries, &audit::alerts::Rules::default());
    if format.json {
        println!("{}", serde_json::to_string_pretty(&found).unwrap_or_default());
    } else if found.is_empty() {
        println!("no alerts in {} audit entries", entries.len());
    } else {
        for a in &found {
            let seqs: Vec<String> = a.entries.iter().map(|s| format!("#{s}")).collect();
            println!(
                "ALERT {}: {}\n  entries: {}",
                serde_json::to_value(a.rule).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
                a.message,
                seqs.join(" ")
            );
        }
        println!("{} alert(s) in {} audit entries", found.len(), entries.len());
    }
    Ok(())
}

fn show(data: &DataArg, since: Option<i64>, format: Output) -> Result<(), CliError> {
    let c = data.clinic()?;
    let entries = entries(&c, since)?;
    if format.json {
        let v: Vec<_> = entries
            .iter()
            .map(|e| {
                serde_json::json!({"seq": e.seq, "time": e.time, "kind": e.kind, "actor": e.actor, "subject": e.subject,
                "outcome": e.outcome, "detail": e.detail, "leaf_hash": hex::encode(&e.leaf_hash)})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        for e in &entries {
            println!("#{:<6} {:>10}  {:<16} {:<16} {:<34} {:<10} {}", e.seq, e.time, e.kind, e.actor, e.subject, e.outcome, e.detail);
        }
        println!("{} entr{}", entries.len(), if entries.len() == 1 { "y" } else { "ies" });
    }
    Ok(())
}

fn verify(data: &DataArg, format: Output) -> Result<(), CliError> {
    let c = data.clinic()?;
    let result = c.state.verify_audit(&c.ks.issuer_public())?;
    match result {
        Ok(r) => {
            if format.json {
                println!(
                    "{}",
                    serde_json::json!({"ok": true, "entries": r.entries, "checkpoints": r.checkpoints, "root": hex::encode(r.root),
                        "staff_signatures": r.staff_signatures})
                );
            } else {
                println!(
                    "audit log OK: {} entries, {} signed checkpoint(s) verified, {} staff card signature(s) verified, root {}",
                    r.entries,
                    r.checkpoints,
                    r.staff_signatures,
                    hex::encode(r.root)
                );
            }
            Ok(())
        }
        Err(finding) => {
            if format.json {
                println!("{}", serde_json::json!({"ok": false, "finding": finding.to_string()}));
            }
            Err(CliError::AuditFinding(finding))
        }
    }
}

fn checkpoint(data: &DataArg, out: Option<PathBuf>, format: Output) -> Result<(), CliError> {
    let mut c = data.clinic()?;
    if let Some(out) = &out {
        reader::export::check_new(c.ks.data_dir(), out)?;
    }
    let signer = c.ks.issuer_signer()?;
    let origin = c.ks.clinic_id().to_owned();
    let now = cli::now()?;
    let shared = c.state.with_clinic_db(|pg| Ok(pg.audit_checkpoint(&origin, now, &signer)))?;
    let (cp, signed) = match shared {
        Some(r) => r.map_err(|e| CliError::ClinicCheckpoint(Box::new(e)))?,
        None => audit::checkpoint(&mut c.db, &origin, now, &signer)?,
    };
    if let Some(out) = &out {
        reader::export::write_new_export(c.ks.data_dir(), out, &signed)?;
    }
    if format.json {
        println!(
            "{}",
            serde_json::json!({"origin": cp.origin, "tree_size": cp.tree_size, "root": hex::encode(cp.root), "time": cp.time,
            "signed": hex::encode(&signed)})
        );
    } else {
        println!("checkpoint: {} entries, root {}, time {}", cp.tree_size, hex::encode(cp.root), qr::time::format_rfc3339(cp.time));
        if let Some(out) = out {
            println!("signed checkpoint written to {}", out.display());
        }
    }
    Ok(())
}

fn prove(data: &DataArg, entry: u64, format: Output) -> Result<(), CliError> {
    let c = data.clinic()?;
    let p = match clinic_tree(&c)? {
        Some((cp, leaves)) => audit::prove_over(&leaves, &cp, entry)?,
        None => audit::prove(&c.db, &c.ks.issuer_public(), entry)?,
    };
    if format.json {
        println!(
            "{}",
            serde_json::json!({"entry": p.seq, "tree_size": p.tree_size, "leaf_hash": hex::encode(p.leaf_hash),
            "root": hex::encode(p.root), "path": hexes(&p.path), "verified": true})
        );
    } else {
        println!("entry #{} is in the signed tree of {} entries (root {})", p.seq, p.tree_size, hex::encode(p.root));
        println!("leaf hash: {}", hex::encode(p.leaf_hash));
        for (i, h) in p.path.iter().enumerate() {
            println!("path[{i}]: {}", hex::encode(h));
        }
        println!("proof verified (RFC 9162 2.1.3.2)");
    }
    Ok(())
}

fn consistency(data: &DataArg, old: &std::path::Path, format: Output) -> Result<(), CliError> {
    let c = data.clinic()?;
    let bytes = cli::read_file(old)?;
    let p = match clinic_tree(&c)? {
        Some((new, leaves)) => audit::consistency_over(&leaves, audit::open_checkpoint(&bytes, &c.ks.issuer_public())?, new)?,
        None => audit::consistency(&c.db, &c.ks.issuer_public(), &bytes)?,
    };
    if format.json {
        println!(
            "{}",
            serde_json::json!({"old_size": p.old.tree_size, "old_root": hex::encode(p.old.root),
            "new_size": p.new.tree_size, "new_root": hex::encode(p.new.root), "path": hexes(&p.path), "verified": true})
        );
    } else {
        println!(
            "the log only grew: {} entries (root {}) -> {} entries (root {})",
            p.old.tree_size,
            hex::encode(p.old.root),
            p.new.tree_size,
            hex::encode(p.new.root)
        );
        for (i, h) in p.path.iter().enumerate() {
            println!("path[{i}]: {}", hex::encode(h));
        }
        println!("proof verified (RFC 9162 2.1.4.2)");
    }
    Ok(())
}
