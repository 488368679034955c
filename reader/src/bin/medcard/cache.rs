//! `medcard cache list|purge`: the bedside cache of verified records (docs/database.md).

use clap::Subcommand;
use reader::audit::{EventKind, Outcome};
use reader::category;

use crate::cli::{self, CliError, DataArg, Output, print_json};

#[derive(Subcommand)]
pub enum CacheCommand {
    /// List cached records with their provenance (never their contents).
    List {
        #[command(flatten)]
        format: Output,
        #[command(flatten)]
        data: DataArg,
    },
    /// Remove everything expired, revoked or no longer covered by consent.
    Purge {
        #[command(flatten)]
        format: Output,
        #[command(flatten)]
        data: DataArg,
    },
}

pub fn run(cmd: CacheCommand) -> Result<(), CliError> {
    match cmd {
        CacheCommand::List { format, data } => list(&data, format),
        CacheCommand::Purge { format, data } => purge(&data, format),
    }
}

fn list(data: &DataArg, format: Output) -> Result<(), CliError> {
    let c = data.clinic()?;
    let rows = c.db.cache_list()?;
    let t = cli::now()?;
    if format.json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({"qr_id": r.qr_id, "patient_id": r.patient_id, "locator": r.locator,
                    "categories": category::join(&r.categories), "issuer_kid": hex::encode(&r.issuer_kid),
                    "verified_at": r.verified_at, "expires_at": r.expires_at, "expired": r.expires_at <= t,
                    "media_type": r.media_type, "bytes": r.document.len()})
            })
            .collect();
        print_json(&serde_json::Value::Array(v));
    } else {
        println!(
            "{:<32}  {:<12}  {:<20}  {:<16}  {:>10}  {:>10}  state",
            "qr id", "patient", "categories", "issuer kid", "verified", "expires"
        );
        for r in &rows {
            println!(
                "{:<32}  {:<12}  {:<20}  {:<16}  {:>10}  {:>10}  {}",
                r.qr_id,
                r.patient_id,
                category::join(&r.categories),
                hex::encode(&r.issuer_kid),
                r.verified_at,
                r.expires_at,
                if r.expires_at <= t { "expired" } else { "valid" }
            );
        }
        println!("{} cached record(s)", rows.len());
    }
    Ok(())
}

fn purge(data: &DataArg, format: Output) -> Result<(), CliError> {
    let mut c = data.clinic()?;
    let n = c.db.cache_purge(cli::now()?)?;
    c.audit(EventKind::CachePurge, "cache", Outcome::Ok, format!("removed={n}"))?;
    if format.json {
        println!("{}", serde_json::json!({ "removed": n }));
    } else {
        println!("removed {n} cached record(s)");
    }
    Ok(())
}
